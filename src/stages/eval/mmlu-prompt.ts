// The MMLU k-shot prompt, in two styles whose bytes differ in two places:
// - "hendrycks" (the original, hendrycks/test evaluate.py: format_subject, format_example, gen_prompt):
//   "The following are multiple choice questions (with answers) about {format_subject}.\n\n" where format_subject
//   puts a space before each underscore-separated word, so the header has TWO spaces after "about"
//   ("about  abstract algebra."); the question is used as it is.
// - "lm-eval" (lm-evaluation-harness mmlu/default: description "... about abstract algebra.\n\n", one space;
//   doc_to_text strips the question).
// Both then add per shot: question, "\n{A}. {choice}" per choice, "\nAnswer:", " {label}\n\n"; then the question the
// same way, ending at "\nAnswer:". Shots are the first k dev rows of the subject.
// The model's prediction is the argmax of the log-probabilities of " A", " B", " C", " D" after the prompt.
import { pyStrip } from "./py-text.js";

export const MMLU_LABELS: readonly string[] = ["A", "B", "C", "D"];
/** The continuations scored after the prompt, in label order. */
export const MMLU_CONTINUATIONS: readonly string[] = [" A", " B", " C", " D"];

/** One MMLU row as cais/mmlu has it: `answer` is the index of the right choice. */
export interface MmluItem {
  readonly question: string;
  readonly choices: readonly string[];
  readonly answer: number;
}

export type MmluPromptStyle = "hendrycks" | "lm-eval";

export interface MmluPromptOptions {
  /** Default "hendrycks", the original's bytes. */
  readonly style?: MmluPromptStyle;
}

/** `format_subject`: each underscore-separated word preceded by a space ("high_school_physics" -> " high school physics"). */
export function formatSubject(subject: string): string {
  return subject
    .split("_")
    .map((w) => ` ${w}`)
    .join("");
}

/** The header naming the subject. */
export function mmluHeader(subject: string, opts: MmluPromptOptions = {}): string {
  const about = opts.style === "lm-eval" ? ` ${subject.split("_").join(" ")}` : ` ${formatSubject(subject)}`;
  return `The following are multiple choice questions (with answers) about${about}.\n\n`;
}

function checkItem(item: MmluItem, where: string): void {
  if (item.choices.length !== MMLU_LABELS.length) {
    throw new RangeError(`${where}: MMLU items have ${MMLU_LABELS.length} choices; this one has ${item.choices.length}`);
  }
}

/** `format_example`: the question, its lettered choices, "\nAnswer:", and for a shot its answer " X\n\n". */
export function formatMmluExample(item: MmluItem, includeAnswer: boolean, opts: MmluPromptOptions = {}): string {
  checkItem(item, "question");
  let out = opts.style === "lm-eval" ? pyStrip(item.question) : item.question;
  item.choices.forEach((c, j) => {
    out += `\n${MMLU_LABELS[j]}. ${c}`;
  });
  out += "\nAnswer:";
  if (includeAnswer) {
    const label = MMLU_LABELS[item.answer];
    if (label === undefined) throw new RangeError(`shot answer ${item.answer} is not a choice index 0-3`);
    out += ` ${label}\n\n`;
  }
  return out;
}

/** The whole prompt: header, the shots (the dev split's first k rows of the subject), the question. */
export function renderMmluPrompt(subject: string, shots: readonly MmluItem[], item: MmluItem, opts: MmluPromptOptions = {}): string {
  let out = mmluHeader(subject, opts);
  for (const s of shots) out += formatMmluExample(s, true, opts);
  return out + formatMmluExample(item, false, opts);
}

/** The predicted choice: the index of the highest log-probability (the first on ties, as numpy's argmax). */
export function mmluPrediction(logprobs: readonly number[]): number {
  if (logprobs.length === 0) throw new RangeError("no log-probabilities to choose from");
  let best = 0;
  for (let i = 1; i < logprobs.length; i++) if (logprobs[i]! > logprobs[best]!) best = i;
  return best;
}
