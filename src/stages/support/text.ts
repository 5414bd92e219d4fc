import { createHash } from "node:crypto";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";

/**
 * Pure text helpers of the filter, dedup and converter implementations: field text, word counts, the
 * normalizations of exact dedup and decontamination, and ROUGE-L as the `rouge_score` package computes it.
 */

/** Python's `str.isspace()` characters: what `str.strip()` and `str.split()` remove. */
const PY_WS = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";
const PY_WS_SET = new Set(PY_WS);

/** Python's `s.strip()`. */
export function pyStrip(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && PY_WS_SET.has(s[a]!)) a++;
  while (b > a && PY_WS_SET.has(s[b - 1]!)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

const PY_WS_RUN = new RegExp(`[${PY_WS.replace(/\\/g, "\\\\")}]+`, "u");

/** Python's `s.split()`: whitespace-separated words, no empty strings. */
export function pyWords(s: string): string[] {
  const t = pyStrip(s);
  return t.length === 0 ? [] : t.split(PY_WS_RUN);
}

/** Length in Unicode code points (Python's `len` of a str). */
export function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // a high surrogate followed by a low one is one code point
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** The contents of a message list (`[{role, content}]`), or undefined when the value is not one. */
export function messageContents(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: string[] = [];
  for (const m of v) {
    if (m !== null && typeof m === "object" && typeof (m as { content?: unknown }).content === "string") out.push((m as { content: string }).content);
  }
  return out;
}

/**
 * The text of a field: a string as is, a message list as its contents joined by newlines, a number or boolean as
 * written; a missing or null field is the empty string. Other values are an error naming the field.
 */
export function fieldText(r: RecordValue, field: string, where: () => string): string {
  const v = r[field];
  if (typeof v === "string") return v;
  if (v === undefined || v === null) return "";
  const msgs = messageContents(v);
  if (msgs) return msgs.join("\n");
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw new UserError(`${where()}: field \`${field}\` holds ${Array.isArray(v) ? "a list" : "an object"}, not text`, "filters read strings or message lists");
}

/** The separate texts of a field (each message of a message list on its own), for n-gram and mention checks. */
export function fieldTexts(r: RecordValue, field: string): string[] {
  const v = r[field];
  if (typeof v === "string") return [v];
  const msgs = messageContents(v);
  return msgs ?? [];
}

/** Exact-dedup normalization: Unicode NFKC, lowercase, whitespace runs to one space, stripped. */
export function normalizeText(s: string): string {
  return s.normalize("NFKC").toLowerCase().replace(/\s+/gu, " ").trim();
}

/** A value with every string in it normalized (for dedup keys over lists and objects), keys sorted. */
export function normalizeDeep(v: unknown, normalize: boolean): unknown {
  if (typeof v === "string") return normalize ? normalizeText(v) : v;
  if (v === undefined) return normalize ? "" : null;
  if (v === null) return normalize ? "" : null;
  if (typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x) => normalizeDeep(x, normalize));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) out[k] = normalizeDeep((v as Record<string, unknown>)[k], normalize);
  return out;
}

/**
 * The dedup key of a record: the selected fields (or the whole record), normalized, hashed (a set of 32-byte
 * digests stays small for millions of records).
 */
export function dedupKey(r: RecordValue, fields: readonly string[] | undefined, normalize: boolean): string {
  const v = fields ? fields.map((f) => normalizeDeep(r[f], normalize)) : normalizeDeep(r, normalize);
  return createHash("sha256").update(JSON.stringify(v)).digest("base64");
}

/**
 * The tokens of `rouge_score` (google-research, `tokenize.tokenize` without a stemmer): lowercase, every run of
 * characters other than a-z and 0-9 becomes a space, split on whitespace.
 */
export function rougeTokens(text: string): string[] {
  const t = text.toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();
  return t.length === 0 ? [] : t.split(" ");
}

/**
 * Tokens as small integers (one vocabulary per stage run), so that the LCS compares numbers and indexes its masks by
 * token ({@link LcsPattern}).
 */
export class Vocabulary {
  private readonly ids = new Map<string, number>();
  /** Distinct tokens seen: ids are 0 .. size - 1. */
  get size(): number {
    return this.ids.size;
  }
  encode(tokens: readonly string[]): Int32Array {
    const out = new Int32Array(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      let id = this.ids.get(t);
      if (id === undefined) this.ids.set(t, (id = this.ids.size));
      out[i] = id;
    }
    return out;
  }
}

/** Set bits of a 32-bit word. */
function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/**
 * The LCS of one sequence, the pattern, with others, bit-parallel (Allison and Dix 1986; Hyyro 2004): a bit per
 * pattern position, 32 to a word, and for each distinct token of the pattern the mask of the positions holding it.
 * Each token y of the other sequence updates the row of the LCS table at once: U = V & M[y], V = (V + U) | (V - U)
 * (V - U is V & ~U, as U is a subset of V); the LCS is the number of zero bits of V at the end. Time |other| x
 * ceil(|pattern| / 32) word operations instead of |other| x |pattern| cells. Tokens are ids as {@link Vocabulary}
 * gives them (non-negative integers).
 */
export class LcsPattern {
  /** Token id -> 1 + the index of its mask; 0 when the token is not in the pattern. */
  private slot = new Int32Array(1024);
  private readonly distinct: number[] = [];
  private masks = new Int32Array(256);
  private v = new Int32Array(16);
  private words = 0;
  /** The pattern's length in tokens. */
  length = 0;

  set(p: ArrayLike<number>): void {
    for (const t of this.distinct) this.slot[t] = 0;
    this.distinct.length = 0;
    const m = p.length;
    const W = (m + 31) >>> 5;
    this.length = m;
    this.words = W;
    if (this.v.length < W) this.v = new Int32Array(Math.max(W, this.v.length * 2));
    for (let j = 0; j < m; j++) {
      const t = p[j]!;
      if (!Number.isInteger(t) || t < 0 || t >= 2 ** 30) throw new RangeError(`LcsPattern: token ${t} is not a token id`);
      if (t >= this.slot.length) {
        const grown = new Int32Array(Math.max(t + 1, this.slot.length * 2));
        grown.set(this.slot);
        this.slot = grown;
      }
      let s = this.slot[t]!;
      if (s === 0) {
        this.distinct.push(t);
        s = this.slot[t] = this.distinct.length;
        if (this.masks.length < s * W) {
          const grown = new Int32Array(Math.max(s * W, this.masks.length * 2));
          grown.set(this.masks);
          this.masks = grown;
        }
        this.masks.fill(0, (s - 1) * W, s * W);
      }
      this.masks[(s - 1) * W + (j >>> 5)]! |= 1 << (j & 31);
    }
  }

  /** The length of the longest common subsequence of the pattern and `b`. */
  lcs(b: ArrayLike<number>): number {
    const W = this.words;
    if (W === 0) return 0;
    const slot = this.slot;
    const masks = this.masks;
    if (W === 1) {
      // Bits above the pattern's length start at 1 and stay 1 (their mask bits are 0): only real positions count as zeros.
      let v = -1;
      for (let i = 0; i < b.length; i++) {
        // Out of range (a token newer than the pattern's) reads undefined, which `| 0` makes 0: not in the pattern.
        const s = slot[b[i]!]! | 0;
        if (s !== 0) {
          const u = v & masks[s - 1]!;
          // The sum of two int32s taken modulo 2^32 by `|`: the carry out of the word is dropped.
          v = (v + u) | (v & ~u);
        }
      }
      return popcount(~v);
    }
    const v = this.v;
    v.fill(-1, 0, W);
    for (let i = 0; i < b.length; i++) {
      const s = slot[b[i]!]! | 0;
      if (s === 0) continue;
      const base = (s - 1) * W;
      let carry = 0;
      for (let w = 0; w < W; w++) {
        const x = v[w]!;
        const u = x & masks[base + w]!;
        const sum = (x >>> 0) + (u >>> 0) + carry;
        carry = sum > 0xffffffff ? 1 : 0;
        v[w] = sum | (x & ~u);
      }
    }
    let zeros = 0;
    for (let w = 0; w < W; w++) zeros += popcount(~v[w]!);
    return zeros;
  }
}

const shared = new LcsPattern();

/**
 * Length of the longest common subsequence of two sequences of token ids (non-negative integers, e.g. from
 * {@link Vocabulary}): bit-parallel over the shorter one.
 */
export function lcsLength(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (b.length > a.length) [a, b] = [b, a];
  if (b.length === 0) return 0;
  shared.set(b);
  return shared.lcs(a);
}

/**
 * ROUGE-L F1 as `rouge_score` computes it (`_score_lcs`): precision = lcs / |prediction|, recall = lcs / |target|,
 * F1 = 2PR / (P + R), 0 when either side has no tokens or nothing is shared. Symmetric in its arguments.
 */
export function rougeLF1(target: ArrayLike<number>, prediction: ArrayLike<number>): number {
  if (target.length === 0 || prediction.length === 0) return 0;
  const lcs = lcsLength(target, prediction);
  return f1FromLcs(lcs, target.length, prediction.length);
}

export function f1FromLcs(lcs: number, targetLen: number, predictionLen: number): number {
  if (lcs === 0) return 0;
  const p = lcs / predictionLen;
  const r = lcs / targetLen;
  return (2 * p * r) / (p + r);
}

/**
 * Whether two texts of these token counts can have a ROUGE-L F1 above `max`: F1 <= 2 min(a, b) / (a + b), with
 * a margin so that a pair at the bound (compared in floating point the way rouge_score computes it) is checked.
 */
export function mayExceed(a: number, b: number, max: number): boolean {
  if (a === 0 || b === 0) return false;
  return (2 * Math.min(a, b)) / (a + b) > max - 1e-9;
}

/** Words for n-gram decontamination: NFKC, lowercase, every run of non-letters and non-digits is a separator. */
export function ngramWords(text: string): string[] {
  const t = text.normalize("NFKC").toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ").trim();
  return t.length === 0 ? [] : t.split(" ");
}

/**
 * The word n-grams of a text, joined by spaces; a text shorter than n words is one gram, the whole text (so short
 * evaluation questions are still matched, exactly). An empty text has none.
 */
export function ngrams(words: readonly string[], n: number): string[] {
  if (words.length === 0) return [];
  if (words.length < n) return [words.join(" ")];
  const out: string[] = [];
  for (let i = 0; i + n <= words.length; i++) out.push(words.slice(i, i + n).join(" "));
  return out;
}

/** A regular expression source for a literal string. */
export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/**
 * One regular expression matching any of the words: as whole words (not preceded or followed by a letter, digit
 * or underscore: Python's `\b` on str patterns) when `wordBoundary`, ignoring case when `caseInsensitive`.
 * Longer words first, so a phrase wins over its prefix in the reported match.
 */
export function wordsRegex(words: readonly string[], wordBoundary: boolean, caseInsensitive: boolean): RegExp {
  const alts = [...new Set(words)].sort((x, y) => y.length - x.length || (x < y ? -1 : 1)).map(escapeRegex);
  const body = `(?:${alts.join("|")})`;
  const src = wordBoundary ? `(?<![\\p{L}\\p{N}_])${body}(?![\\p{L}\\p{N}_])` : body;
  return new RegExp(src, caseInsensitive ? "iu" : "u");
}
