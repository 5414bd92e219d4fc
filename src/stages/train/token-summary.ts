import { SafetensorsFile } from "../../formats/safetensors.js";
import { UserError } from "../../core/errors.js";
import type { KeyedArtifacts } from "../../core/stage.js";
import { IGNORE, statsFromCounts, type TokenStats } from "./rows.js";
import { loadTrainTokenizer, type TrainTokenizer } from "./train-tokenizer.js";

/**
 * What `itp show` prints of a token artifact: the counts (examples, rows, tokens, truncated examples, share of
 * tokens with loss) and the first rows decoded, with the text that carries no loss marked: dimmed on a terminal,
 * else in [brackets].
 */
export interface TokenSample {
  readonly row: number;
  /** The row's examples (a packed row holds several), each as runs of text with or without loss. */
  readonly examples: readonly { readonly tokens: number; readonly runs: readonly { readonly loss: boolean; readonly text: string }[] }[];
}

export interface TokenSummary {
  readonly stats: TokenStats;
  readonly loss_share: number;
  readonly max_length: number;
  readonly packing: boolean;
  readonly kind: string;
  readonly sample: readonly TokenSample[];
}

/** Read the first `rows` rows of a token artifact back and decode them. */
export async function tokenSummary(path: string, stats: TokenStats, tok: TrainTokenizer, rows = 1): Promise<TokenSummary> {
  const f = await SafetensorsFile.open(path);
  try {
    const offsets = await f.int64("row_offsets");
    const sample: TokenSample[] = [];
    for (let r = 0; r < Math.min(rows, offsets.length - 1); r++) {
      const [from, to] = [offsets[r]!, offsets[r + 1]!];
      const ids = await f.int32("input_ids", from, to);
      const labels = await f.int32("labels", from, to);
      const pos = await f.int32("position_ids", from, to);
      const examples: { tokens: number; runs: { loss: boolean; text: string }[] }[] = [];
      let i = 0;
      while (i < ids.length) {
        let end = i + 1;
        while (end < ids.length && pos[end] !== 0) end++;
        const runs: { loss: boolean; text: string }[] = [];
        for (let a = i; a < end; ) {
          const loss = labels[a] !== IGNORE;
          let b = a + 1;
          while (b < end && (labels[b] !== IGNORE) === loss) b++;
          runs.push({ loss, text: tok.decode(Array.from(ids.subarray(a, b))) });
          a = b;
        }
        examples.push({ tokens: end - i, runs });
        i = end;
      }
      sample.push({ row: r, examples });
    }
    const m = f.metadata;
    return {
      stats,
      loss_share: stats.tokens > 0 ? stats.loss_tokens / stats.tokens : 0,
      max_length: Number(m["max_length"]),
      packing: m["packing"] === "true",
      kind: m["kind"] ?? "sft",
      sample,
    };
  } finally {
    await f.close();
  }
}

/**
 * The summary of the token artifact stored under `key` (PreparedTokens.key), decoded with the tokenizer its manifest
 * names; what a training stage's `itp show` prints.
 */
export async function storedTokenSummary(store: KeyedArtifacts, key: string, rows = 1): Promise<TokenSummary> {
  const found = await store.get(key);
  if (!found) throw new UserError(`the token artifact ${key.slice(0, 12)} is not in the store (or was damaged)`, "run the training stage again to prepare it");
  const m = found.entry;
  const stats = statsFromCounts(m.counts);
  const tokenizer = m.files[0]?.path;
  if (!tokenizer) throw new UserError(`the token artifact ${key.slice(0, 12)} names no tokenizer`);
  return tokenSummary(found.path, stats, await loadTrainTokenizer(tokenizer, m.stage), rows);
}

const DIM = "\x1b[2m";
const UNDIM = "\x1b[22m";

/** The summary as text lines; `color` dims the masked text instead of bracketing it. */
export function formatTokenSummary(s: TokenSummary, color: boolean): string[] {
  const n = (x: number) => x.toLocaleString("en-US");
  const st = s.stats;
  const out: string[] = [];
  const unit = s.kind === "preference" ? "pairs" : "examples";
  out.push(`tokens    ${n(st.examples)} ${unit} in ${n(st.rows)} rows of at most ${n(s.max_length)} tokens (packing ${s.packing ? "on" : "off"}), ${n(st.tokens)} tokens`);
  out.push(`          ${(s.loss_share * 100).toFixed(1)}% of tokens carry loss; ${n(st.truncated)} ${unit} truncated to max_length${st.no_loss > 0 ? `; ${n(st.no_loss)} left out (no token with loss)` : ""}`);
  for (const row of s.sample) {
    out.push(`sample    row ${row.row}${row.examples.length > 1 ? ` (${row.examples.length} examples)` : ""}; text without loss ${color ? "dimmed" : "in [brackets]"}`);
    row.examples.forEach((ex, k) => {
      if (row.examples.length > 1) out.push(`  example ${k + 1} (${n(ex.tokens)} tokens)`);
      const text = ex.runs.map((r) => (r.loss ? r.text : color ? `${DIM}${r.text}${UNDIM}` : `[${r.text}]`)).join("");
      for (const line of text.split("\n")) out.push(`    ${line}`);
    });
  }
  return out;
}
