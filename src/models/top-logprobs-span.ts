/**
 * Where a completions answer's `top_logprobs` array lies in its JSON text, and where each of its elements does, so
 * the answer can be parsed without it and the few elements a log-likelihood reads parsed alone. An echoed prompt's
 * `top_logprobs` is one small object per token, each with a key of its own: more than half of what JSON.parse spends
 * on an MMLU answer, for the two or three tokens of the continuation.
 *
 * Found only where that is certain for valid JSON, else undefined (the caller parses the whole text): exactly one
 * `"top_logprobs"` followed by `:` outside a string (a `"` not escaped opens or closes a string, and a string that
 * closes cannot be followed by a letter, so such a quote opens the key), no `\u` escape in the text (a key could be
 * spelled with one), and an array whose brackets balance outside strings, with no empty element.
 */
export interface TopLogprobsSpan {
  /** The array, `[` to `]` inclusive: [start, end). */
  readonly start: number;
  readonly end: number;
  /** Element k is the text [starts[k], ends[k]). */
  readonly starts: readonly number[];
  readonly ends: readonly number[];
}

const KEY = '"top_logprobs"';
const QUOTE = 34;
const BACKSLASH = 92;

export function topLogprobsSpan(t: string): TopLogprobsSpan | undefined {
  if (t.includes("\\u")) return undefined;
  let value = -1;
  for (let at = t.indexOf(KEY); at >= 0; at = t.indexOf(KEY, at + 1)) {
    if (escaped(t, at)) continue;
    let k = at + KEY.length;
    while (isSpace(t.charCodeAt(k))) k++;
    if (t.charCodeAt(k) !== 58 /* : */) continue;
    if (value >= 0) return undefined; // twice: which one JSON.parse keeps is not ours to guess
    value = k + 1;
  }
  if (value < 0) return undefined;
  let i = value;
  while (isSpace(t.charCodeAt(i))) i++;
  if (t.charCodeAt(i) !== 91 /* [ */) return undefined;
  const start = i;
  const starts: number[] = [];
  const ends: number[] = [];
  let depth = 0;
  let from = -1; // where the current element starts, -1 before its first character
  for (; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c === QUOTE) {
      if (depth === 1 && from < 0) from = i;
      let j = t.indexOf('"', i + 1);
      while (j >= 0 && escaped(t, j)) j = t.indexOf('"', j + 1);
      if (j < 0) return undefined;
      i = j;
    } else if (c === 91 || c === 123 /* [ { */) {
      if (depth === 1 && from < 0) from = i;
      depth++;
    } else if (c === 93 || c === 125 /* ] } */) {
      depth--;
      if (depth === 0) {
        if (from >= 0) {
          starts.push(from);
          ends.push(i);
        } else if (starts.length > 0) return undefined; // `[1,]`
        return { start, end: i + 1, starts, ends };
      }
    } else if (depth === 1) {
      if (c === 44 /* , */) {
        if (from < 0) return undefined; // an empty element
        starts.push(from);
        ends.push(i);
        from = -1;
      } else if (from < 0 && !isSpace(c)) from = i;
    }
  }
  return undefined;
}

/** Whether the quote at `at` is escaped: an odd number of backslashes before it. */
function escaped(t: string, at: number): boolean {
  let n = 0;
  for (let j = at - 1; j >= 0 && t.charCodeAt(j) === BACKSLASH; j--) n++;
  return n % 2 === 1;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}
