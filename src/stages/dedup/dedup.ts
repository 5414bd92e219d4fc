import type { StageContext, StageImpl } from "../../core/stage.js";
import type { RecordValue } from "../../core/records.js";
import { asyncImpl, checkAbort, listInputs, mapRecords } from "../support/records.js";
import { dedupKey, f1FromLcs, fieldText, LcsPattern, rougeTokens, Vocabulary } from "../support/text.js";
import { resolveBanding } from "./lsh-bands.js";
import { clusterSignatures, SignatureBuilder, type Clustering } from "./minhash.js";

/**
 * Deduplication. Every one keeps the order of the records it keeps and counts what it does in the manifest:
 * `kept`, and `dropped: <reason>` for each reason that dropped something; each dropped record names the record it
 * duplicates.
 */

const param = <T>(ctx: StageContext, name: string, dflt: T): T => (ctx.params[name] === undefined ? dflt : (ctx.params[name] as T));
const at = (ctx: StageContext, i: number) => () => `${ctx.stage.id}: record ${i + 1}`;

/** How a dropped record's detail names another record: its id, else the first words of a text of it. */
export function recordLabel(r: RecordValue, text: string | undefined): string {
  const id = r["id"];
  if (typeof id === "string" || typeof id === "number") return `id ${JSON.stringify(id)}`;
  if (text === undefined) return "";
  const words = text.trim().split(/\s+/);
  return `"${words.slice(0, 8).join(" ")}${words.length > 8 ? " ..." : ""}"`;
}

/**
 * Self-Instruct's ROUGE-L similarity filter: texts in order, each kept unless its ROUGE-L F1 against an earlier kept
 * text (or a text of `against`) is above `max`. Returns the indices kept; `onDuplicate` hears, for each dropped
 * text, the first pool text found above `max` (pool: the `against` texts, then the kept ones) and the F1.
 *
 * Exactly the all-pairs result, without comparing all pairs. The LCS of two texts is at most their shared tokens
 * (as multisets), and F1 = 2 LCS / (|a| + |b|), so a pair above `max` shares at least o(|a|) = max |a| / (2 - max)
 * tokens (the other text is at least max / (2 - max) as long, or F1 cannot reach max). Prefix filtering (as in
 * set-similarity joins, PPJoin): with the tokens of every text ordered the same way (rarest first), two texts that
 * share o tokens share a token among the first |a| - o + 1 of each. So each kept text is indexed under the tokens of
 * its prefix, with the position of each token's first occurrence, and a text looks up the kept texts found under
 * its own prefix's tokens. Occurrences of a token are ordered with it, so a prefix holding a token holds its first
 * occurrence and multisets need nothing more. When a kept text is met first, under a token at position i of this
 * text and j of the kept one, no token ordered before it is shared (it would have been met under that one), so the
 * two share at most min(|a| - i, |b| - j) tokens (PPJoin's positional filter): the pair is compared only if that
 * bound, and so the LCS, can give an F1 above max. The LCS itself is bit-parallel ({@link LcsPattern}).
 */
export function rougeDedup(
  texts: Iterable<string>,
  max: number,
  against: Iterable<string> = [],
  onEach?: (i: number) => void,
  onDuplicate?: (i: number, poolIndex: number, f1: number) => void,
): number[] {
  const vocab = new Vocabulary();
  const pre: Int32Array[] = [];
  for (const t of against) pre.push(vocab.encode(rougeTokens(t)));
  const toks: Int32Array[] = [];
  for (const t of texts) toks.push(vocab.encode(rougeTokens(t)));
  // Token order: rarest first over everything compared (any fixed order is correct; rare tokens keep the lists short).
  const freq = new Int32Array(vocab.size);
  for (const list of [pre, toks]) for (const a of list) for (let k = 0; k < a.length; k++) freq[a[k]!]!++;
  const byRarity = Array.from({ length: vocab.size }, (_, id) => id).sort((x, y) => freq[x]! - freq[y]! || x - y);
  const rank = new Int32Array(vocab.size);
  byRarity.forEach((id, r) => (rank[id] = r));
  // The margin keeps pairs at exactly max (compared in floating point as rouge_score does) among the candidates.
  const m = max - 1e-9;
  // A text's prefix: its distinct tokens among the first |a| - o + 1 in rank order, each with the position of its
  // first occurrence in that order, as pairs (token, position) in rank order.
  const prefix = (a: Int32Array): number[] => {
    const need = m <= 0 ? 1 : Math.max(1, Math.ceil((m * a.length) / (2 - m) - 1e-9));
    const len = Math.max(1, a.length - need + 1);
    const sorted = Array.from(a).sort((x, y) => rank[x]! - rank[y]!);
    const out: number[] = [];
    for (let k = 0; k < len; k++) if (k === 0 || sorted[k] !== sorted[k - 1]) out.push(sorted[k]!, k);
    return out;
  };
  const pool: Int32Array[] = [];
  // The pool texts' lengths, apart: reading them from the texts themselves costs a cache miss per candidate.
  const poolLength = new Int32Array(pre.length + toks.length);
  // postings[t]: pairs (pool index q, tokens of q from t's first occurrence on in rank order).
  const postings: number[][] = Array.from({ length: vocab.size }, () => []);
  const add = (a: Int32Array, pre?: number[]) => {
    const q = pool.length;
    pool.push(a);
    poolLength[q] = a.length;
    if (a.length === 0) return;
    const p = pre ?? prefix(a);
    for (let k = 0; k < p.length; k += 2) postings[p[k]!]!.push(q, a.length - p[k + 1]!);
  };
  for (const a of pre) add(a);
  // seen[q] === i + 1: pool text q was already a candidate of text i.
  const seen = new Int32Array(pre.length + toks.length);
  const pattern = new LcsPattern();
  const keptIdx: number[] = [];
  for (let i = 0; i < toks.length; i++) {
    const a = toks[i]!;
    const la = a.length;
    let dup = false;
    let p: number[] | undefined;
    if (la > 0) {
      p = prefix(a);
      pattern.set(a);
      search: for (let k = 0; k < p.length; k += 2) {
        const list = postings[p[k]!]!;
        const restA = la - p[k + 1]!;
        for (let e = 0; e < list.length; e += 2) {
          const q = list[e]!;
          if (seen[q] === i + 1) continue;
          seen[q] = i + 1;
          const lb = poolLength[q]!;
          // Shared tokens at most: F1 <= 2 shared / (|a| + |b|). Covers the length bound (shared <= min(|a|, |b|)).
          const shared = Math.min(restA, list[e + 1]!);
          if ((2 * shared) / (la + lb) <= m) continue;
          const f1 = f1FromLcs(pattern.lcs(pool[q]!), la, lb);
          if (f1 > max) {
            dup = true;
            onDuplicate?.(i, q, f1);
            break search;
          }
        }
      }
    }
    if (!dup) {
      add(a, p);
      keptIdx.push(i);
    }
    onEach?.(i + 1);
  }
  return keptIdx;
}

export const dedupImpls: Record<string, StageImpl> = {
  exact_dedup: asyncImpl(async (ctx, out) => {
    const fields = ctx.params["fields"] as string[] | undefined;
    const normalize = param(ctx, "normalize", true);
    // Key -> the first record with it (0-based), named in each duplicate's drop detail.
    const first = new Map<string, number>();
    let kept = 0;
    await mapRecords(ctx, out, (r, i) => {
      const k = dedupKey(r, fields, normalize);
      const j = first.get(k);
      if (j === undefined) {
        first.set(k, i);
        kept++;
        return r;
      }
      ctx.drop(r, "duplicate", `of record ${j + 1}`);
      return undefined;
    });
    ctx.count("kept", kept);
  }),

  minhash_dedup: asyncImpl(async (ctx, out) => {
    const field = String(ctx.params["field"]);
    const permutations = param(ctx, "permutations", 128);
    const threshold = param(ctx, "threshold", 0.8);
    const banding = resolveBanding(permutations, threshold, ctx.params["bands"] as number | undefined, ctx.params["rows"] as number | undefined);
    const clustering = (ctx.params["clustering"] ?? "union_find") as Clustering;
    // Pass 1: signatures only (the records are read again to write), so memory is 4 x permutations bytes a record.
    const input = ctx.inputs.get("data")!;
    const sb = new SignatureBuilder(param(ctx, "shingle", 5), permutations, param(ctx, "seed", 42), input.records ?? 1024);
    for await (const r of input.read()) {
      sb.add(fieldText(r, field, at(ctx, sb.n)));
      if (sb.n % 4096 === 0) {
        checkAbort(ctx);
        ctx.progress(sb.n, input.records ?? undefined);
      }
    }
    const c = clusterSignatures(sb.signatures, sb.n, sb.empty, { permutations, bands: banding.bands, rows: banding.rows, threshold, clustering, onProgress: () => checkAbort(ctx) });
    // Kept records that have near duplicates: their labels name them in the duplicates' details.
    const hasCopies = new Uint8Array(sb.n);
    for (let i = 0; i < sb.n; i++) if (c.root[i]! !== i) hasCopies[c.root[i]!] = 1;
    const labels = new Map<number, string>();
    let kept = 0;
    await mapRecords(ctx, out, (r, i) => {
      const root = c.root[i]!;
      if (root === i) {
        if (hasCopies[i]) labels.set(i, recordLabel(r, typeof r[field] === "string" ? (r[field] as string) : undefined));
        kept++;
        return r;
      }
      const label = labels.get(root);
      ctx.drop(r, "near duplicate", `of record ${root + 1}${label ? ` (${label})` : ""}`);
      return undefined;
    });
    ctx.count("kept", kept);
    ctx.count("clusters", c.clusters);
    ctx.count("largest cluster", c.largest);
    // The banding used, and whether it was chosen from the threshold: what `itp show` tells.
    ctx.count(banding.chosen ? "LSH bands (chosen for the threshold)" : "LSH bands", banding.bands);
    ctx.count("LSH rows per band", banding.rows);
    if (c.overflows) ctx.count("full LSH buckets skipped", c.overflows);
  }),

  rouge_dedup: asyncImpl(async (ctx, out) => {
    const field = String(ctx.params["field"]);
    const max = param(ctx, "max", 0.7);
    const against: string[] = [];
    // Where each `against` text starts: input stage and the index of its first text (for the drop details).
    const againstFrom: { stage: string; start: number }[] = [];
    for (const a of listInputs(ctx, "against")) {
      againstFrom.push({ stage: a.stage, start: against.length });
      let i = 0;
      for await (const r of a.read()) against.push(fieldText(r, field, () => `${a.stage}: record ${++i}`));
    }
    // The texts are compared in memory (every kept one against every later one); records are read again to write.
    const input = ctx.inputs.get("data")!;
    const texts: string[] = [];
    let i = 0;
    for await (const r of input.read()) {
      texts.push(fieldText(r, field, at(ctx, i)));
      i++;
    }
    const matches = new Map<number, { q: number; f1: number }>();
    const progress = (n: number) => {
      if (n % 256 === 0) {
        checkAbort(ctx);
        ctx.progress(n, texts.length);
      }
    };
    const kept = rougeDedup(texts, max, against, progress, (j, q, f1) => matches.set(j, { q, f1 }));
    const keep = new Uint8Array(texts.length);
    for (const k of kept) keep[k] = 1;
    // The pool is the `against` texts, then the kept texts in order.
    const which = (q: number): string => {
      if (q >= against.length) return `record ${kept[q - against.length]! + 1}`;
      let from = againstFrom[0]!;
      for (const f of againstFrom) if (f.start <= q) from = f;
      return `${from.stage} record ${q - from.start + 1}`;
    };
    await mapRecords(ctx, out, (r, j) => {
      if (keep[j]) return r;
      const m = matches.get(j)!;
      ctx.drop(r, "ROUGE-L above max", `F1 ${m.f1.toFixed(3)} with ${which(m.q)}`);
      return undefined;
    });
    ctx.count("kept", kept.length);
  }),
};
