// GSM8K answer extraction and exact match, as lm-evaluation-harness does it (lm_eval/tasks/gsm8k/*.yaml,
// lm_eval/filters/extraction.py RegexFilter, lm_eval/api/metrics.py exact_match):
// - strict-match: the first match of `#### (\-?[0-9\.\,]+)` (gsm8k) or `The answer is (\-?[0-9\.\,]+).`
//   (gsm8k-cot), its group, stripped;
// - flexible-extract: the LAST match of `(-?[$0-9.,]{2,})|(-?[0-9]+)`, its first non-empty group, stripped;
// - a miss is "[invalid]";
// - exact match removes from both sides, in order, the regexes `,`, `\$`, `(?s).*#### `, `\.$`, lower-cases both,
//   and compares the strings.
import { pyStrip } from "./py-text.js";

export const GSM8K_INVALID = "[invalid]";

/** Which task's strict pattern: `gsm8k` ends its solutions with `#### n`, `gsm8k-cot` with `The answer is n.` */
export type Gsm8kVariant = "gsm8k" | "gsm8k-cot";

const STRICT: Record<Gsm8kVariant, RegExp> = {
  gsm8k: /#### (-?[0-9.,]+)/,
  // The reference's final `.` is "any character but a newline", not a literal period.
  "gsm8k-cot": /The answer is (-?[0-9.,]+)[^\n]/,
};
const FLEXIBLE = /(-?[$0-9.,]{2,})|(-?[0-9]+)/g;

/** strict-match: the first match's group, or "[invalid]". */
export function extractStrict(response: string, variant: Gsm8kVariant = "gsm8k"): string {
  const m = STRICT[variant].exec(response);
  return m ? pyStrip(m[1]!) : GSM8K_INVALID;
}

/** flexible-extract: the last number-like match in the response, or "[invalid]". */
export function extractFlexible(response: string): string {
  let last: RegExpMatchArray | undefined;
  for (const m of response.matchAll(FLEXIBLE)) last = m;
  if (!last) return GSM8K_INVALID;
  const group = last[1] || last[2];
  return group ? pyStrip(group) : GSM8K_INVALID;
}

// The `regexes_to_ignore` of the task's exact_match, applied in this order. `\.$` is Python's `$` without
// MULTILINE: the end, or just before a final newline.
const IGNORE: readonly RegExp[] = [/,/g, /\$/g, /[\s\S]*#### /g, /\.(?=\n?$)/g];

/** What exact match compares: the ignored patterns removed, lower-cased. */
export function normalizeGsm8k(s: string): string {
  let out = s;
  for (const re of IGNORE) out = out.replace(re, "");
  return out.toLowerCase();
}

/** Exact match of a prediction (already extracted) against a reference (a full solution or a bare number). */
export function gsm8kExactMatch(prediction: string, reference: string): boolean {
  return normalizeGsm8k(prediction) === normalizeGsm8k(reference);
}

/** The gold number of a GSM8K solution: the text after its last `####`, stripped (gsm8k-cot's `doc_to_target`). */
export function gsm8kGold(answer: string): string {
  const parts = answer.split("####");
  return pyStrip(parts[parts.length - 1]!);
}

export interface Gsm8kFilterVerdict {
  /** What the filter extracted ("[invalid]" on a miss). */
  readonly extracted: string;
  readonly correct: boolean;
}

export interface Gsm8kVerdict {
  readonly strict: Gsm8kFilterVerdict;
  readonly flexible: Gsm8kFilterVerdict;
}

/** Both filters' answers and exact-match verdicts for one generated response against the dataset's `answer`. */
export function gsm8kVerdict(response: string, answer: string, variant: Gsm8kVariant = "gsm8k"): Gsm8kVerdict {
  // gsm8k's target is the whole solution (normalization keeps what follows `#### `); gsm8k-cot's is the number.
  const reference = variant === "gsm8k-cot" ? gsm8kGold(answer) : answer;
  const strict = extractStrict(response, variant);
  const flexible = extractFlexible(response);
  return {
    strict: { extracted: strict, correct: gsm8kExactMatch(strict, reference) },
    flexible: { extracted: flexible, correct: gsm8kExactMatch(flexible, reference) },
  };
}
