// Python's notions of whitespace, case and regex classes, for scorers that must behave like Python references
// (lm-evaluation-harness, IFEval, NLTK). JavaScript's `\s`, `\w`, `\d`, `\b`, `.`, `^`/`$` and trim() differ from
// Python's on non-ASCII text and on `\r`, so patterns are built from these classes instead.

/** Python's whitespace (`str.isspace()`, `\s` in a str pattern): JavaScript's `\s` without U+FEFF, plus U+001C-U+001F and U+0085. */
export const WS = "[\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
/** Python's `\S`. */
export const NWS = "[^\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
/** Python's `\w` in a str pattern: letters, numbers (not combining marks) and `_`. Use with the `u` flag. */
export const WORD = "[\\p{L}\\p{N}_]";
/** Python's `\d` in a str pattern: decimal digits of any script. Use with the `u` flag. */
export const DIGIT = "\\p{Nd}";
/** Python's `\b` (Unicode word boundary). Use with the `u` flag. */
export const BOUNDARY = `(?:(?<=${WORD})(?!${WORD})|(?<!${WORD})(?=${WORD}))`;

const wsRe = new RegExp(`^${WS}+|${WS}+$`, "g");
const wsRun = new RegExp(`${WS}+`);

/** `str.strip()` with no argument. */
export function pyStrip(s: string): string {
  return s.replace(wsRe, "");
}

/** `str.strip(chars)`, `lstrip(chars)`, `rstrip(chars)`: remove any of `chars` from the ends. */
export function stripChars(s: string, chars: string, side: "both" | "left" | "right" = "both"): string {
  let a = 0;
  let b = s.length;
  if (side !== "right") while (a < b && chars.includes(s[a]!)) a++;
  if (side !== "left") while (b > a && chars.includes(s[b - 1]!)) b--;
  return s.slice(a, b);
}

/** `str.split()` with no argument: runs of whitespace separate, no empty strings. */
export function pySplit(s: string): string[] {
  const t = pyStrip(s);
  return t === "" ? [] : t.split(wsRun);
}

const hasUpper = /[\p{Uppercase}]/u;
const hasLower = /[\p{Lowercase}]/u;
const hasTitle = /\p{Lt}/u;

/** `str.isupper()`: at least one cased character and none lowercase or titlecase. */
export function pyIsUpper(s: string): boolean {
  return hasUpper.test(s) && !hasLower.test(s) && !hasTitle.test(s);
}

/** `str.islower()`: at least one cased character and none uppercase or titlecase. */
export function pyIsLower(s: string): boolean {
  return hasLower.test(s) && !hasUpper.test(s) && !hasTitle.test(s);
}
