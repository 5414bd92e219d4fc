import { asScores, meanWithStderr, type MeanWithStderr } from "./scoring.js";

// The Report an `evaluate` stage writes (one JSON value): per task its metrics, each with its standard error and
// the count it is over, the contamination count, and every example as it was asked, answered and judged. `itp show`
// prints it; `itp report-diff` compares two of them metric by metric.

/** A metric: a mean over `n` items (or a rate), with the standard error of that mean (null where there is none). */
export interface Metric {
  readonly value: number;
  readonly stderr: number | null;
  readonly n: number;
}

/** One evaluated item: what was asked, what came back, what was read from it and what it was judged. */
export interface EvalExample {
  /** The item's id in its data (MMLU's subject and index, IFEval's key, MT-Bench's question_id, else its index). */
  readonly id: string;
  /** The final prompt text sent (a chat template applied), or the messages sent to a chat endpoint. For MT-Bench, one per turn. */
  readonly prompt: unknown;
  /** The model's raw answer (one per turn for MT-Bench; the chosen choice's log-likelihoods for multiple choice). */
  readonly output: unknown;
  /** What was read from the answer (GSM8K's numbers, the predicted choice). */
  readonly extracted?: unknown;
  readonly gold?: unknown;
  /** Whether the item counts as passed (undefined where a task has no pass or fail, as MT-Bench's ratings). */
  readonly passed?: boolean;
  /** The verdict in detail: per checker for IFEval, the judge's rationale and rating for judged tasks. */
  readonly verdict?: Readonly<Record<string, unknown>>;
}

/** Test items sharing an n-gram with the training data of the model under evaluation. */
export type Contamination =
  | { readonly ngram: number; readonly items: number; readonly contaminated: number; readonly training_data: readonly string[] }
  | { readonly unavailable: string };

export interface TaskReport {
  readonly name: string;
  /** The task's function (`mmlu`, `multiple_choice`, ...). */
  readonly task: string;
  /** The task's parameters, datasets and models named by their stages. */
  readonly params: Readonly<Record<string, unknown>>;
  /** The metric a summary shows first. */
  readonly primary: string;
  /** Metrics by name: `acc`, `acc:stem`, `prompt_strict`, ... (insertion order is the display order). */
  readonly metrics: Readonly<Record<string, Metric>>;
  /** Items evaluated, and whether a `limit` cut the data short. */
  readonly items: number;
  readonly limited: boolean;
  readonly contamination: Contamination;
  /** Counts worth showing (judge answers that could not be read, shots used, ...). */
  readonly notes?: Readonly<Record<string, number | string>>;
}

export const REPORT_FORMAT = "itp.eval/1";

export interface Report {
  readonly format: typeof REPORT_FORMAT;
  /** The evaluated model, as its stage names it. */
  readonly model: string;
  /** How generation prompts were wrapped: a template's description, or "none". */
  readonly template: string;
  readonly tasks: readonly TaskReport[];
  /** Every task's examples, by task name, in data order. */
  readonly examples: Readonly<Record<string, readonly EvalExample[]>>;
}

/** Whether a value read from an artifact is a Report (of this format). */
export function isReport(v: unknown): v is Report {
  if (v === null || typeof v !== "object") return false;
  const o = v as Record<string, unknown>;
  return o["format"] === REPORT_FORMAT && Array.isArray(o["tasks"]) && o["examples"] !== null && typeof o["examples"] === "object";
}

/** A mean with its standard error as a Metric (an undefined standard error, below two items, is null). */
export const metricOf = (m: MeanWithStderr): Metric => ({ value: m.value, stderr: Number.isFinite(m.stderr) ? m.stderr : null, n: m.n });

/** A metric that is the mean of per-item scores, with the standard error of the mean (sample deviation, n - 1). */
export const meanMetric = (scores: readonly number[]): Metric => metricOf(meanWithStderr(scores));

/** Booleans as a mean of 0/1 scores. */
export const rateMetric = (xs: readonly boolean[]): Metric => meanMetric(asScores(xs));
