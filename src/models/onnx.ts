import { readdir, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { UserError } from "../core/errors.js";
import { checkSignature, SIGNATURE, type IdType, type LmSignature } from "./onnx-signature.js";
import { loglikTokens, promptIds } from "./loglik-tokens.js";
import { loadTokenizer, type LmTokenizer } from "./onnx-tokenizer.js";
import { argmax, logSumExp, pickToken, seededRandom, type Sampling } from "./sampling.js";

/**
 * Local causal LMs exported to ONNX (the signature is in onnx-signature.ts), run with onnxruntime-node: generation
 * (greedy, temperature, top-p; seeded per request) and log-likelihood scoring of continuations.
 *
 * The export has no key/value cache, so every step runs the whole sequence again: exact and simple, quadratic in
 * length. Sequences of different lengths are batched by padding on the right. In a causal model a position never
 * sees the positions after it, so the pads change none of the logits that are read, whatever the model does with
 * attention_mask and positions: batching gives the same results as one sequence at a time, for any causal export.
 * One decoding loop per model serves every request in flight (`complete` calls and `generate`'s prompts alike), up to
 * `concurrency` sequences per run; a finished sequence's place goes to the next waiting request.
 */

/** Options of a model: the `onnx_model` stage's parameters, paths resolved against the recipe's folder. */
export interface OnnxModelOptions {
  /** The .onnx file, or a folder holding model.onnx. */
  readonly path: string;
  /** Tokenizer folder or file (tokenizer.json or byte_tokenizer.json); default the model's folder. */
  readonly tokenizer?: string;
  /** Context length: prompt plus generated tokens (default 2048). */
  readonly max_length?: number;
  /** Generated tokens when a call sets no max_tokens (default 512). */
  readonly max_tokens?: number;
  readonly execution_provider?: "cpu" | "cuda";
  /** Intra-op threads; default onnxruntime's choice. */
  readonly threads?: number;
  /** Sequences run in one batch (default 1). */
  readonly concurrency?: number;
}

/** One completion's parameters. */
export interface CompleteParams extends Partial<Sampling> {
  /** Most generated tokens (default the model's max_tokens). */
  readonly max_tokens?: number;
  /** Generation stops before the first occurrence of any of these, which is left out of the text. */
  readonly stop?: readonly string[];
  /** Seed of the request's own generator (default 0): the same prompt, parameters and seed give the same text. */
  readonly seed?: number;
  readonly signal?: AbortSignal;
}

export interface GenerateParams extends CompleteParams {
  /** Seed of the call: prompt i draws from its own generator seeded with (seed, i). Default 0. */
  readonly seed?: number;
  /** One seed per prompt, instead of (seed, i): the result of a prompt then does not depend on its place in the call. */
  readonly seeds?: readonly number[];
  /** Called as each prompt finishes (prompts finish out of order), so a caller can cache results one by one. */
  readonly onResult?: (index: number, result: Generation) => void | Promise<void>;
}

export interface Generation {
  readonly text: string;
  /** stop: an end-of-sequence token or a stop string; length: max_tokens or the context length reached. */
  readonly finish_reason: "stop" | "length";
  /** The generated ids, the end-of-sequence token or the token that completed a stop string included. */
  readonly tokens: readonly number[];
  /** Tokens of the prompt as the model saw it (BOS included). */
  readonly prompt_tokens: number;
}

export interface ScorePair {
  readonly prompt: string;
  readonly continuation: string;
}

export interface Score {
  /** log P(continuation | prompt): the sum of `tokens`. */
  readonly logprob: number;
  /** The log-probability of each continuation token. */
  readonly tokens: readonly number[];
  /** Whether every continuation token is the model's most likely one, i.e. the continuation is the greedy decoding. */
  readonly greedy: boolean;
  /** The continuation's token ids. */
  readonly ids: readonly number[];
  /** Whether the start of the prompt was cut to fit max_length. */
  readonly truncated: boolean;
}

const DEFAULT_MAX_LENGTH = 2048;
const DEFAULT_MAX_TOKENS = 512;
/** Most logits one batch may produce (batch x sequence x vocab floats, 1 GiB): longer sequences run in smaller batches. */
const LOGITS_BUDGET = 1 << 28;

/** A request being decoded: its ids grow by one token per step of the shared loop. */
interface Sequence {
  /** Names it in messages (`prompt 3`). */
  readonly label: string;
  readonly ids: number[];
  readonly promptLength: number;
  readonly generated: number[];
  readonly counts: Map<number, number>;
  readonly random: () => number;
  readonly sampling: Sampling;
  readonly maxTokens: number;
  readonly stops: readonly string[];
  readonly signal: AbortSignal | undefined;
  readonly resolve: (g: Generation) => void;
  readonly reject: (e: unknown) => void;
}

export class OnnxCausalLM {
  private constructor(
    /** The .onnx file. */
    readonly file: string,
    private readonly session: InferenceSession,
    readonly signature: LmSignature,
    readonly tokenizer: LmTokenizer,
    readonly maxLength: number,
    readonly maxTokens: number,
    readonly batchSize: number,
  ) {
    this.eos = new Set(tokenizer.eos);
  }

  /** Requests not yet started, first come first served; `decoding` while the loop runs. */
  private waiting: Sequence[] = [];
  private decoding = false;
  private readonly eos: ReadonlySet<number>;

  /** Loads the model and its tokenizer and checks the model's signature; relative paths are resolved from baseDir. */
  static async load(options: OnnxModelOptions, baseDir = process.cwd()): Promise<OnnxCausalLM> {
    const file = await modelFile(resolve(baseDir, options.path));
    const maxLength = options.max_length ?? DEFAULT_MAX_LENGTH;
    const maxTokens = options.max_tokens ?? DEFAULT_MAX_TOKENS;
    const batchSize = options.concurrency ?? 1;
    for (const [name, v] of [["max_length", maxLength], ["max_tokens", maxTokens], ["concurrency", batchSize]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new UserError(`onnx model ${file}: ${name} must be a positive integer, got ${v}`);
    }
    const tokenizer = await loadTokenizer(options.tokenizer !== undefined ? resolve(baseDir, options.tokenizer) : dirname(file), [dirname(file)]);
    let session: InferenceSession;
    try {
      session = await InferenceSession.create(file, {
        executionProviders: [options.execution_provider ?? "cpu"],
        ...(options.threads !== undefined ? { intraOpNumThreads: options.threads } : {}),
        interOpNumThreads: 1,
        graphOptimizationLevel: "all",
        // Failures are reported as UserErrors; onnxruntime would also print them to stderr.
        logSeverityLevel: 4,
      });
    } catch (e) {
      throw new UserError(
        `cannot load ONNX model ${file}: ${firstLine(e)}`,
        options.execution_provider === "cuda"
          ? "the CUDA execution provider needs onnxruntime-node's CUDA binaries and a GPU; try execution_provider = \"cpu\""
          : `is it an ONNX file? A causal LM export needs ${SIGNATURE}`,
      );
    }
    let signature: LmSignature;
    try {
      signature = checkSignature(session, file);
      if (signature.vocab !== undefined) checkSpecialIds(tokenizer, file, signature.vocab);
    } catch (e) {
      await session.release();
      throw e;
    }
    return new OnnxCausalLM(file, session, signature, tokenizer, maxLength, maxTokens, batchSize);
  }

  /** Releases onnxruntime's session; the model cannot be used afterwards. */
  async close(): Promise<void> {
    await this.session.release();
  }

  /**
   * One completion. Concurrent calls share the model's batches (up to `concurrency` sequences per run); a result
   * does not depend on what it was batched with.
   */
  async complete(prompt: string, params: CompleteParams = {}): Promise<Generation> {
    const seq = this.prepare(prompt, params, seededRandom(params.seed ?? 0), "the prompt");
    return new Promise((resolve, reject) => this.enqueue([{ ...seq, resolve, reject }]));
  }

  /** Completions of the prompts, in the order of the prompts. Every prompt is checked before any is decoded. */
  async generate(prompts: readonly string[], params: GenerateParams = {}): Promise<Generation[]> {
    if (params.seeds !== undefined && params.seeds.length !== prompts.length) {
      throw new UserError(`generate: ${params.seeds.length} seeds for ${prompts.length} prompts`, "give one seed per prompt, or seed alone");
    }
    const prepared = prompts.map((text, i) =>
      this.prepare(text, params, params.seeds !== undefined ? seededRandom(params.seeds[i]!) : seededRandom(params.seed ?? 0, i), `prompt ${i}`),
    );
    const sequences: Sequence[] = [];
    const results = prepared.map(
      (seq, i) =>
        new Promise<Generation>((resolve, reject) => sequences.push({ ...seq, resolve, reject })).then(async (g) => {
          await params.onResult?.(i, g);
          return g;
        }),
    );
    // Similar lengths together waste less on padding.
    this.enqueue(sequences.sort((a, b) => a.ids.length - b.ids.length));
    return Promise.all(results);
  }

  /** A request checked and tokenized, not yet queued. */
  private prepare(prompt: string, params: CompleteParams, random: () => number, label: string): Omit<Sequence, "resolve" | "reject"> {
    const sampling = checkSampling(params);
    const maxTokens = params.max_tokens ?? this.maxTokens;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new UserError(`max_tokens must be a positive integer, got ${maxTokens}`);
    const ids = this.promptIds(prompt);
    if (ids.length >= this.maxLength) {
      throw new UserError(
        `${label} has ${ids.length} tokens, which leaves no room to generate within max_length ${this.maxLength} (${this.file})`,
        "shorten the prompt or raise max_length, up to the model's context length",
      );
    }
    this.checkIds(ids, label);
    const stops = (params.stop ?? []).filter((x) => x.length > 0);
    return { label, ids, promptLength: ids.length, generated: [], counts: new Map(), random, sampling, maxTokens, stops, signal: params.signal };
  }

  private enqueue(sequences: readonly Sequence[]): void {
    this.waiting.push(...sequences);
    if (this.decoding) return;
    this.decoding = true;
    void this.decodeLoop();
  }

  /**
   * The decoding loop: each step runs the model once on the active sequences and adds one token to each; a finished
   * sequence's place goes to the next waiting one. A failed run fails the sequences of that batch only.
   */
  private async decodeLoop(): Promise<void> {
    let active: Sequence[] = [];
    const aborted = (s: Sequence) => {
      if (!s.signal?.aborted) return false;
      s.reject(s.signal.reason);
      return true;
    };
    try {
      while (active.length > 0 || this.waiting.length > 0) {
        active = active.filter((s) => !aborted(s));
        let taken = 0;
        while (taken < this.waiting.length && active.length < this.batchSize && this.fits(active, this.waiting[taken]!)) {
          const s = this.waiting[taken++]!;
          if (!aborted(s)) active.push(s);
        }
        this.waiting.splice(0, taken);
        if (active.length === 0) continue;
        let logits: Awaited<ReturnType<OnnxCausalLM["forward"]>>;
        try {
          logits = await this.forward(active.map((s) => s.ids));
        } catch (e) {
          for (const s of active) s.reject(e);
          active = [];
          continue;
        }
        const still: Sequence[] = [];
        for (const [b, s] of active.entries()) {
          let token: number;
          try {
            token = pickToken(logits.row(b, s.ids.length - 1, `generating for ${s.label}`), s.sampling, s.random, s.counts);
          } catch (e) {
            s.reject(e);
            continue;
          }
          s.ids.push(token);
          s.generated.push(token);
          s.counts.set(token, (s.counts.get(token) ?? 0) + 1);
          const done = this.finished(s, token);
          if (done) s.resolve(done);
          else still.push(s);
        }
        active = still;
      }
    } catch (e) {
      // Not expected (failures of runs and rows are handled per sequence), but no request may hang.
      for (const s of [...active, ...this.waiting.splice(0)]) s.reject(e);
    } finally {
      // Cleared in the same tick as the loop's last look at `waiting`, so a request queued later starts a new loop.
      this.decoding = false;
    }
  }

  /**
   * Log-likelihood of each continuation given its prompt, as lm-eval-harness's loglikelihood: whitespace at the end
   * of the prompt moves to the start of the continuation, the continuation's tokens are those of prompt +
   * continuation after the prompt's own tokens, and a prompt too long for max_length loses its start. The
   * tokenizer's BOS (if any) starts every sequence, as in generation; an empty prompt without one is replaced by
   * the end-of-sequence token, so the first continuation token has something to be predicted from.
   */
  async score(pairs: readonly ScorePair[], options: { readonly signal?: AbortSignal } = {}): Promise<Score[]> {
    const items = pairs.map((pair, index) => ({ index, ...this.scoreIds(pair, index) }));
    const order = [...items].sort((a, b) => a.ids.length - b.ids.length || a.index - b.index);
    const results: Score[] = new Array(pairs.length);
    for (let next = 0; next < order.length; ) {
      const batch = [order[next++]!];
      while (next < order.length && batch.length < this.batchSize && this.fits(batch, order[next]!)) batch.push(order[next++]!);
      options.signal?.throwIfAborted();
      const logits = await this.forward(batch.map((it) => it.ids));
      for (const [b, it] of batch.entries()) {
        const tokens: number[] = [];
        let greedy = true;
        for (let j = 0; j < it.continuation.length; j++) {
          // The logits at position p predict the token at p + 1.
          const row = logits.row(b, it.context + j - 1, `scoring pair ${it.index}`);
          const id = it.continuation[j]!;
          if (id >= row.length) throw new UserError(`score pair ${it.index}: token id ${id} is outside the vocabulary of ONNX model ${this.file} (${row.length} logits)`);
          tokens.push(row[id]! - logSumExp(row));
          if (argmax(row) !== id) greedy = false;
        }
        let logprob = 0;
        for (const t of tokens) logprob += t;
        results[it.index] = { logprob, tokens, greedy, ids: it.continuation, truncated: it.truncated };
      }
    }
    return results;
  }

  /** The prompt as the model sees it: the tokenizer's prefix (BOS), then the text; never empty. */
  private promptIds(text: string): number[] {
    return promptIds(this.tokenizer, text);
  }

  private scoreIds(pair: ScorePair, index: number) {
    const t = loglikTokens(this.tokenizer, pair.prompt, pair.continuation, this.maxLength, `score pair ${index}`, this.file);
    this.checkIds(t.ids, `score pair ${index}`);
    return { ids: t.ids, context: t.context, continuation: t.continuation, truncated: t.truncated };
  }

  /** Whether one more sequence keeps the batch's logits within the budget (a batch of one always runs). */
  private fits(batch: readonly { ids: readonly number[] }[], next: { ids: readonly number[] }): boolean {
    if (batch.length === 0) return true;
    const width = Math.max(next.ids.length, ...batch.map((s) => s.ids.length)) + 1;
    return (batch.length + 1) * width * (this.signature.vocab ?? this.tokenizer.vocabSize) <= LOGITS_BUDGET;
  }

  private checkIds(ids: readonly number[], what: string): void {
    const vocab = this.signature.vocab;
    if (vocab === undefined) return;
    const bad = ids.find((id) => id >= vocab);
    if (bad !== undefined) {
      throw new UserError(`${what}: token id ${bad} is outside the vocabulary of ONNX model ${this.file} (${vocab} logits)`, "the tokenizer does not belong to this model");
    }
  }

  /** The result of a sequence that has just generated `token`, or undefined while it goes on. */
  private finished(s: Sequence, token: number): Generation | undefined {
    const done = (text: string, finish_reason: Generation["finish_reason"]): Generation => ({
      text,
      finish_reason,
      tokens: s.generated,
      prompt_tokens: s.promptLength,
    });
    if (this.eos.has(token)) return done(this.tokenizer.decode(s.generated.slice(0, -1)), "stop");
    const atLimit = s.generated.length >= s.maxTokens || s.ids.length >= this.maxLength;
    if (s.stops.length === 0 && !atLimit) return undefined;
    const text = this.tokenizer.decode(s.generated);
    let cut = -1;
    for (const stop of s.stops) {
      const at = text.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) return done(text.slice(0, cut), "stop");
    return atLimit ? done(text, "length") : undefined;
  }

  /** One run of the model on right-padded sequences; `row(b, p)` is the logits at position p of sequence b. */
  private async forward(batch: readonly (readonly number[])[]) {
    const n = batch.length;
    const width = Math.max(...batch.map((s) => s.length));
    const ids = idArray(this.signature.input_ids, n * width);
    const mask = this.signature.attention_mask && idArray(this.signature.attention_mask, n * width);
    const positions = this.signature.position_ids && idArray(this.signature.position_ids, n * width);
    for (let b = 0; b < n; b++) {
      const s = batch[b]!;
      for (let p = 0; p < width; p++) {
        // Pads (id 0) come after the sequence; see the module comment for why they cannot change what is read.
        const real = p < s.length;
        setId(ids, b * width + p, real ? s[p]! : 0);
        if (mask) setId(mask, b * width + p, real ? 1 : 0);
        if (positions) setId(positions, b * width + p, p);
      }
    }
    const tensor = (a: BigInt64Array | Int32Array) => new Tensor(a instanceof BigInt64Array ? "int64" : "int32", a, [n, width]);
    const feeds: Record<string, Tensor> = { input_ids: tensor(ids) };
    if (mask) feeds["attention_mask"] = tensor(mask);
    if (positions) feeds["position_ids"] = tensor(positions);
    let logits: Tensor;
    try {
      logits = (await this.session.run(feeds, ["logits"]))["logits"]!;
    } catch (e) {
      throw new UserError(
        `ONNX model ${this.file} failed on a batch of ${n} sequence${n > 1 ? "s" : ""} of ${width} tokens: ${firstLine(e)}`,
        `is max_length (${this.maxLength}) within the model's context length?`,
      );
    }
    const [lb, lw, vocab] = logits.dims;
    if (logits.dims.length !== 3 || lb !== n || lw !== width || vocab === undefined || vocab < 1) {
      throw new UserError(
        `ONNX model ${this.file}: logits has shape [${logits.dims.join(", ")}] for input [${n}, ${width}], expected [${n}, ${width}, vocab]`,
        `expected ${SIGNATURE}`,
      );
    }
    // An export whose vocabulary is dynamic is checked on its logits.
    if (this.signature.vocab === undefined) checkSpecialIds(this.tokenizer, this.file, vocab);
    const data = logits.data as Float32Array;
    return {
      row: (b: number, p: number, what: string): Float32Array => {
        const row = data.subarray((b * width + p) * vocab, (b * width + p + 1) * vocab);
        for (let i = 0; i < row.length; i++) {
          if (!Number.isFinite(row[i]!)) throw new UserError(`ONNX model ${this.file} returned a non-finite logit (${row[i]}) for token ${i} while ${what}`);
        }
        return row;
      },
    };
  }

}

/** The tokenizer's BOS and EOS ids must have logits, or the tokenizer belongs to another model. */
function checkSpecialIds(tokenizer: LmTokenizer, file: string, vocab: number): void {
  for (const id of [...tokenizer.prefix, ...tokenizer.eos]) {
    if (id >= vocab) {
      throw new UserError(
        `the tokenizer ${tokenizer.source} uses id ${id} (${tokenizer.eos.includes(id) ? "end of sequence" : "start of sequence"}) but ONNX model ${file} has ${vocab} logits`,
        "the tokenizer does not belong to this model",
      );
    }
  }
}

function checkSampling(p: GenerateParams): Sampling {
  const s: Sampling = {
    temperature: p.temperature ?? 0,
    top_p: p.top_p ?? 1,
    presence_penalty: p.presence_penalty ?? 0,
    frequency_penalty: p.frequency_penalty ?? 0,
  };
  if (!(s.temperature >= 0) || !Number.isFinite(s.temperature)) throw new UserError(`temperature must be a number >= 0, got ${s.temperature}`);
  if (!(s.top_p > 0 && s.top_p <= 1)) throw new UserError(`top_p must be in (0, 1], got ${s.top_p}`);
  for (const k of ["presence_penalty", "frequency_penalty"] as const) {
    if (!Number.isFinite(s[k])) throw new UserError(`${k} must be a finite number, got ${s[k]}`);
  }
  return s;
}

/** The .onnx file at path: the file itself, or model.onnx in a folder. */
async function modelFile(path: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new UserError(`ONNX model ${path} does not exist`, "path is the .onnx file or a folder holding model.onnx, relative to the recipe file");
  if (!info.isDirectory()) return path;
  const file = join(path, "model.onnx");
  if ((await stat(file).catch(() => undefined))?.isFile()) return file;
  const others = (await readdir(path)).filter((f) => f.endsWith(".onnx"));
  throw new UserError(
    `no model.onnx in ${path}`,
    others.length > 0 ? `the folder has ${others.join(", ")}: give the file as path` : "path is the .onnx file or a folder holding model.onnx",
  );
}

function idArray(type: IdType, n: number): BigInt64Array | Int32Array {
  return type === "int64" ? new BigInt64Array(n) : new Int32Array(n);
}

function setId(a: BigInt64Array | Int32Array, i: number, v: number): void {
  if (a instanceof BigInt64Array) a[i] = BigInt(v);
  else a[i] = v;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!.trim();
}
