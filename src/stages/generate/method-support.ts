import { openModelSession } from "../support/model-session.js";
import type { Answer } from "../../generate/backend.js";
import { IN_FLIGHT, ModelSession, orderedMap } from "../../generate/session.js";
import type { StageContext } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import { templatePlaceholders } from "../common.js";
import { mayExceed, rougeLF1, rougeTokens, Vocabulary } from "../support/text.js";
import { checkAbort, unitHash } from "../support/records.js";
import { mulberry32 } from "../../core/random.js";

/**
 * What the generation methods (Alpaca, Self-Instruct, Evol-Instruct, self-chat, back-translation, judging) share:
 * seeded randomness, the ROUGE-L pool that grows as instructions are kept, the target-driven request loop, and
 * the checks of user-supplied prompt templates.
 */

/** A stream of pseudo-random numbers in [0, 1) for (seed, keys...): the same keys give the same stream. */
export function seededRandom(seed: number, ...keys: number[]): () => number {
  let s = seed >>> 0;
  for (const k of keys) s = Math.floor(unitHash(s, k) * 4294967296) >>> 0;
  return mulberry32(s);
}

/** `n` distinct items drawn at random (Python's `random.sample`): a partial Fisher-Yates shuffle of a copy. */
export function sampleItems<T>(random: () => number, items: readonly T[], n: number): T[] {
  const a = items.slice();
  const k = Math.min(n, a.length);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (a.length - i));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, k);
}

/** Shuffle in place (Fisher-Yates). */
export function shuffleItems<T>(random: () => number, a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/**
 * A pool of texts that grows as texts are kept, answering "is this text's ROUGE-L F1 (rouge_score's tokens, no
 * stemmer) above `max` against any text of the pool?" exactly as comparing every pair would, without comparing
 * every pair: Self-Instruct's and Alpaca's similarity rule, applied while generating.
 *
 * The pruning is rougeDedup's (filters.ts), made incremental. F1 = 2 LCS / (|a| + |b|) and LCS is at most the
 * tokens two texts share, so a pair above `max` shares at least max |a| / (2 - max) tokens of a, and as many of b.
 * With every text's tokens in one fixed order, two texts sharing that many share a token among the first
 * |a| - o + 1 of each (prefix filtering). rougeDedup orders tokens rarest first over a dataset it holds whole; here
 * texts arrive one by one, so the order is by vocabulary id, newest first: a token never seen before sorts ahead
 * of all older ones, which leaves the relative order of the tokens already indexed unchanged (the order stays one
 * fixed order), and common words, met early, sort last.
 */
export class RougePool {
  private readonly vocab = new Vocabulary();
  private readonly texts: Int32Array[] = [];
  private readonly postings: number[][] = [];
  /** stamp[q] === probe number: pool text q was already compared during that probe. */
  private readonly stamp: number[] = [];
  private probes = 0;
  private readonly m: number;

  constructor(readonly max: number) {
    // The margin keeps pairs at exactly max (compared in floating point as rouge_score does) among the candidates.
    this.m = max - 1e-9;
  }

  get size(): number {
    return this.texts.length;
  }

  private prefix(a: Int32Array): number[] {
    const m = this.m;
    const need = m <= 0 ? 1 : Math.max(1, Math.ceil((m * a.length) / (2 - m) - 1e-9));
    const len = Math.max(1, a.length - need + 1);
    const sorted = Array.from(a).sort((x, y) => y - x);
    const out: number[] = [];
    for (let k = 0; k < len; k++) if (k === 0 || sorted[k] !== sorted[k - 1]) out.push(sorted[k]!);
    return out;
  }

  /** The first pool text (its index, in the order added) whose F1 with `text` is above max, or undefined. */
  similar(text: string): { index: number; f1: number } | undefined {
    const a = this.vocab.encode(rougeTokens(text));
    if (a.length === 0) return undefined;
    const probe = ++this.probes;
    for (const t of this.prefix(a)) {
      for (const q of this.postings[t] ?? []) {
        if (this.stamp[q] === probe) continue;
        this.stamp[q] = probe;
        const other = this.texts[q]!;
        if (!mayExceed(a.length, other.length, this.max)) continue;
        const f1 = rougeLF1(a, other);
        if (f1 > this.max) return { index: q, f1 };
      }
    }
    return undefined;
  }

  add(text: string): void {
    const a = this.vocab.encode(rougeTokens(text));
    const q = this.texts.length;
    this.texts.push(a);
    this.stamp.push(0);
    if (a.length === 0) return;
    for (const t of this.prefix(a)) (this.postings[t] ??= []).push(q);
  }
}

/** Consecutive answers that yield no record before a target-driven loop gives up (rather than spin, paying). */
export const BARREN_LIMIT = 50;

/**
 * Ask for answers k = 0, 1, 2, ... until `take` has written `target` records, in answer order (so the output is
 * the same whatever order the answers arrive in). Launches only what the answers so far say is needed: the first
 * call alone (its yield unknown), then, while nothing has been yielded, a few at a time, then as many as the mean
 * yield per answer leaves short of the target. `take` returns the records it wrote from one answer and must write
 * no more than `target - written()`. After BARREN_LIMIT answers in a row that yield nothing, fails with a
 * UserError naming the stage and showing the last answer, rather than spin.
 */
export async function untilTarget(
  ctx: StageContext,
  session: ModelSession,
  o: {
    target: number;
    written: () => number;
    call: (k: number) => Promise<Answer>;
    take: (a: Answer, k: number) => Promise<number>;
    /** What the stage keeps, for the error: "instructions". */
    what: string;
    hint: string;
  },
): Promise<void> {
  let answers = 0;
  let yielded = 0;
  let barren = 0;
  const more = (inFlight: number): boolean => {
    if (answers === 0) return inFlight === 0;
    if (yielded === 0) return inFlight < Math.min(answers, 8);
    const mean = yielded / answers;
    return o.written() + inFlight * mean < o.target;
  };
  function* calls() {
    for (let k = 0; ; k++) yield k;
  }
  if (o.written() >= o.target) return;
  await orderedMap(
    calls(),
    { width: IN_FLIGHT, more, onFailure: () => session.abort() },
    (k) => (checkAbort(ctx), o.call(k)),
    async (a, k) => {
      const n = await o.take(a, k);
      answers++;
      yielded += n;
      barren = n > 0 ? 0 : barren + 1;
      ctx.progress(o.written(), o.target);
      if (o.written() >= o.target) return false;
      if (barren >= BARREN_LIMIT) {
        throw new UserError(
          `stage \`${ctx.stage.id}\`: ${BARREN_LIMIT} answers in a row gave no new ${o.what} (${o.written()} of ${o.target} so far); the last one began: ${JSON.stringify(a.text.slice(0, 200))}`,
          o.hint,
        );
      }
      return true;
    },
  );
}

/** The session of an optional model parameter (`judge`, `user_model`), or the stage's own model when it is not set. */
export async function optionalSession(ctx: StageContext, param: string, fallback: ModelSession): Promise<ModelSession> {
  return ctx.inputs.has(`param:${param}`) ? openModelSession(ctx, param) : fallback;
}

/** A prompt parameter (or the default), its placeholders checked against the names the stage fills. */
export function promptParam(ctx: StageContext, name: string, dflt: string, allowed: readonly string[] | ((field: string) => boolean)): string {
  const given = ctx.params[name];
  const text = typeof given === "string" ? given : dflt;
  const r = templatePlaceholders(text);
  if ("error" in r) throw new UserError(`stage \`${ctx.stage.id}\`: parameter ${name}: ${r.error}`);
  const ok = typeof allowed === "function" ? allowed : (f: string) => allowed.includes(f);
  const bad = r.fields.filter((f) => !ok(f));
  if (bad.length > 0) {
    const names = typeof allowed === "function" ? "" : ` (it fills ${allowed.map((f) => `{${f}}`).join(", ")})`;
    throw new UserError(`stage \`${ctx.stage.id}\`: parameter ${name} has the placeholder {${bad[0]}}, which this stage does not fill${names}`, 'write "{{" for a literal brace');
  }
  return text;
}

/** The placeholders of a prompt that name record fields missing from `r` (checked on the first record, to catch typos). */
export function missingFields(prompt: string, r: RecordValue, synthetic: readonly string[]): string[] {
  const p = templatePlaceholders(prompt);
  return "error" in p ? [] : p.fields.filter((f) => !synthetic.includes(f) && !(f in r));
}

/** A required string field of a record, or a UserError naming the record. */
export function textField(ctx: StageContext, r: RecordValue, field: string, where: string): string {
  const v = r[field];
  if (typeof v !== "string") {
    throw new UserError(`stage \`${ctx.stage.id}\`: ${where} has no text field \`${field}\`${v === undefined ? "" : ` (it holds ${JSON.stringify(v).slice(0, 60)})`}`, "the stage reads Instruction records: instruction, input (optional), output");
  }
  return v;
}

/** The user's request in an Instruction record: the instruction, then a blank line and the input when there is one. */
export function instructionText(r: RecordValue): string {
  const instruction = typeof r["instruction"] === "string" ? r["instruction"].trim() : "";
  const input = typeof r["input"] === "string" ? r["input"].trim() : "";
  return input ? `${instruction}\n\n${input}` : instruction;
}

/** Python's `re.sub(r"\s+", " ", s).strip()`. */
export function collapseSpace(s: string): string {
  return s.replace(/\s+/gu, " ").trim();
}
