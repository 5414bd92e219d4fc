import { endianness } from "node:os";
import { readFile, rm, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { writeSafetensors } from "../../formats/safetensors.js";
import { cacheKey, canonicalJson, sha256 } from "../../core/digest.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import type { KeyedArtifacts } from "../../core/stage.js";
import { asTemplate, FormatError } from "../support/chat-formats.js";
import { HfTemplateError, isHfChatTemplate, readHfChatTemplate } from "../support/hf-chat-template.js";
import { tokenizeExample } from "./label-mask.js";
import { ExampleError, renderExample, renderPreference, templateRenders, type TrainTemplate } from "./render-spans.js";
import { RowWriter, statsFromCounts, type TokenStats } from "./rows.js";
import { loadTrainTokenizer, type TrainTokenizer } from "./train-tokenizer.js";

/**
 * Data preparation of the training stages: records -> rendered text -> tokens and label masks -> rows -> one
 * safetensors file (the token artifact of src/trainer/README.md), stored under its own key. The key holds only what
 * shapes the tokens (the data's digest, the template and what it renders, the tokenizer files, max_length, packing,
 * loss_on and this implementation's version), so a change of lr or epochs finds it in the store.
 */
export const TOKENS_VERSION = "1";

export type TokensKind = "sft" | "preference";

export interface PrepareTokensOptions {
  /** Where the artifact is kept under its own key (the stage context's `store()`). */
  readonly store: KeyedArtifacts;
  /** The training data: a stage's artifact (its digest enters the key) and its records. */
  readonly data: { readonly stage?: string; readonly digest: string; readonly records?: number | null; read(): AsyncIterable<RecordValue> };
  /** `sft` for sft, lora and qlora (Chat, Instruction, Text records); `preference` for dpo. */
  readonly kind: TokensKind;
  readonly template: TrainTemplate;
  /** The base model's directory (holding tokenizer.json) or the tokenizer.json file. */
  readonly tokenizer: string;
  readonly maxLength: number;
  /** sft only: pack examples into rows of max_length (default false). */
  readonly packing?: boolean;
  /** sft only: "assistant" (default) or "all". */
  readonly lossOn?: "assistant" | "all";
  /** The stage, for messages and the manifest (`train.sft`). */
  readonly stage: string;
  readonly recipe?: string;
  readonly signal?: AbortSignal;
  readonly progress?: (done: number, total?: number) => void;
}

export interface PreparedTokens {
  /** The safetensors file in the store (read-only). */
  readonly path: string;
  readonly key: string;
  readonly digest: string;
  readonly bytes: number;
  /** True when the artifact was found in the store. */
  readonly reused: boolean;
  readonly stats: TokenStats;
  readonly maxLength: number;
  readonly packing: boolean;
  readonly kind: TokensKind;
  /** The loaded tokenizer (decodes the sample that show prints). */
  readonly tokenizer: TrainTokenizer;
}

/** The named components of a token artifact's key. */
export function tokensKeyComponents(o: { dataDigest: string; kind: TokensKind; template: TrainTemplate; tokenizerDigest: string; maxLength: number; packing: boolean; lossOn: "assistant" | "all" }): Record<string, string> {
  return {
    artifact: "tokens",
    impl_version: TOKENS_VERSION,
    kind: o.kind,
    data: o.dataDigest,
    // The template as given and as it renders (a built-in format's text is in the code, not in its name).
    template: sha256(canonicalJson({ template: o.template, renders: templateRenders(o.template) })),
    tokenizer: o.tokenizerDigest,
    max_length: String(o.maxLength),
    packing: String(o.packing),
    loss_on: o.lossOn,
  };
}

/** Prepare (or find) the token artifact of a training stage. Bad records and files are UserErrors naming the stage. */
export async function prepareTokens(o: PrepareTokensOptions): Promise<PreparedTokens> {
  if (endianness() !== "LE") throw new Error("the token artifact is written little-endian from native arrays: a big-endian host is not supported");
  if (!Number.isInteger(o.maxLength) || o.maxLength < 1) throw new UserError(`${o.stage}: max_length must be a positive whole number, not ${o.maxLength}`);
  const packing = o.kind === "sft" && o.packing === true;
  const lossOn = o.kind === "sft" ? (o.lossOn ?? "assistant") : "assistant";
  const tok = await loadTrainTokenizer(o.tokenizer, o.stage);
  const components = tokensKeyComponents({ dataDigest: o.data.digest, kind: o.kind, template: o.template, tokenizerDigest: tok.digest, maxLength: o.maxLength, packing, lossOn });
  const key = cacheKey(components);
  const base = { key, maxLength: o.maxLength, packing, kind: o.kind, tokenizer: tok };

  const found = await o.store.get(key);
  if (found) {
    const m = found.entry;
    return { ...base, path: found.path, digest: m.output.digest, bytes: m.output.bytes, reused: true, stats: statsFromCounts(m.counts) };
  }

  const started = new Date();
  const prefix = await o.store.tmpPath(".tokens");
  const out = `${prefix}.safetensors`;
  const rows = await RowWriter.create(prefix, o.maxLength, packing);
  const special = { bos: tok.bosText, eos: tok.eosText };
  let finished: Awaited<ReturnType<RowWriter["finish"]>> | undefined;
  try {
    let i = 0;
    for await (const r of o.data.read()) {
      i++;
      if (o.signal?.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new Error("interrupted");
      try {
        if (o.kind === "sft") {
          await rows.add(tokenizeExample(tok, renderExample(o.template, r, lossOn, special)));
        } else {
          const p = renderPreference(o.template, r, special);
          await rows.addPair(tokenizeExample(tok, p.chosen), tokenizeExample(tok, p.rejected));
        }
      } catch (e) {
        if (e instanceof ExampleError) throw new UserError(`${o.stage}: record ${i}: ${e.message}`, e.hint);
        if (e instanceof FormatError) throw new UserError(`${o.stage}: record ${i}: ${e.message}`);
        if (e instanceof HfTemplateError) throw new UserError(`${o.stage}: record ${i}: ${e.message}`, e.hint);
        throw e;
      }
      if (i % 256 === 0) o.progress?.(i, o.data.records ?? undefined);
    }
    finished = await rows.finish();
    const { files, stats } = finished;
    if (stats.examples === 0) {
      throw new UserError(
        `${o.stage}: no training example is left: ${i === 0 ? "the data is empty" : `all ${i} records have no token that carries loss${stats.no_loss > 0 ? ` within max_length ${o.maxLength}` : ""}`}`,
        i === 0 ? undefined : "check that the records have assistant answers, or raise max_length",
      );
    }
    const metadata = { kind: o.kind, max_length: String(o.maxLength), packing: String(packing), examples: String(stats.examples) };
    const written = await writeSafetensors(
      out,
      [
        { name: "row_offsets", dtype: "I64", shape: [stats.rows + 1], data: { file: files.rowOffsets } },
        { name: "input_ids", dtype: "I32", shape: [stats.tokens], data: { file: files.inputIds } },
        { name: "labels", dtype: "I32", shape: [stats.tokens], data: { file: files.labels } },
        { name: "position_ids", dtype: "I32", shape: [stats.tokens], data: { file: files.positionIds } },
      ],
      metadata,
    );
    const stored = await o.store.put(key, out, {
      recipe: o.recipe ?? "",
      stage: o.stage,
      kind: `tokens:${o.kind}`,
      impl_version: TOKENS_VERSION,
      components,
      params: { max_length: o.maxLength, packing, loss_on: lossOn, template: o.template },
      inputs: [{ role: "data", stage: o.data.stage ?? "", digest: o.data.digest }],
      files: [{ path: resolve(tok.file), digest: tok.digest }],
      started_at: started.toISOString(),
      output: { digest: written.digest, bytes: written.bytes, records: stats.rows, format: "safetensors" },
      counts: { ...stats },
    });
    return { ...base, path: stored.path, digest: written.digest, bytes: written.bytes, reused: false, stats };
  } finally {
    if (!finished) await rows.abandon();
    for (const ext of [".input_ids", ".labels", ".position_ids", ".row_offsets", ".safetensors"]) await rm(`${prefix}${ext}`, { force: true });
  }
}

/**
 * The template a training stage renders with: its `template` parameter's value when given, else the base model's own
 * chat template (tokenizer_config.json's `chat_template`), else Tulu's format, as the stage kinds document.
 */
export async function trainTemplate(value: unknown, baseDir: string | undefined, stage: string): Promise<TrainTemplate> {
  if (value !== undefined && value !== null) {
    if (isHfChatTemplate(value)) return value;
    try {
      return asTemplate(value);
    } catch (e) {
      if (e instanceof FormatError) throw new UserError(`${stage}: ${e.message}`);
      throw e;
    }
  }
  if (baseDir !== undefined) {
    const dir = (await stat(baseDir).catch(() => undefined))?.isDirectory() ? baseDir : dirname(baseDir);
    const file = join(dir, "tokenizer_config.json");
    const text = await readFile(file, "utf8").catch(() => undefined);
    if (text !== undefined && /"chat_template"/.test(text)) {
      try {
        return readHfChatTemplate(text, file);
      } catch (e) {
        if (e instanceof HfTemplateError) throw new UserError(`${stage}: ${file}: ${e.message}`, e.hint);
        throw e;
      }
    }
  }
  return { format: "tulu" };
}
