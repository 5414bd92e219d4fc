import type { GenResult, LoglikRequest, LoglikResult } from "../../generate/eval-model.js";
import type { ModelSession } from "../../generate/session.js";
import type { RecordValue } from "../../core/records.js";
import type { EvalExample, Metric } from "./report.js";

/** A task as the Report keeps it, before the stage adds its name, parameters and contamination count. */
export interface TaskOutcome {
  readonly primary: string;
  readonly metrics: Readonly<Record<string, Metric>>;
  readonly examples: readonly EvalExample[];
  readonly limited: boolean;
  readonly notes?: Readonly<Record<string, number | string>>;
  /** The texts of each test item that are checked against the training data (question, prompt, turns). */
  readonly itemTexts: readonly (readonly string[])[];
}

/** A chat turn of a generation prompt. */
export interface Turn {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
}

/**
 * What a task may ask of the stage running it. Requests are answered in order, in batches, through the request
 * cache; a generation prompt is given as the conversation so far and is wrapped by the stage (a chat template, or the
 * messages of a chat endpoint).
 */
export interface TaskEnv {
  /** The task's parameters (datasets and models as `{$ref}`). */
  readonly params: Readonly<Record<string, unknown>>;
  /** The task's name in the report (messages name it). */
  readonly name: string;
  /** The records of a dataset parameter of the task (`data`, `dev`, `train`), in order. */
  rows(param: string): Promise<RecordValue[]>;
  /** Whether the task has this dataset parameter. */
  has(param: string): boolean;
  loglikelihood(reqs: readonly LoglikRequest[]): Promise<LoglikResult[]>;
  /** Generations for conversations ending in a user turn; `prompt` in each answer is what was sent. */
  generate(reqs: readonly { readonly turns: readonly Turn[]; readonly stop: readonly string[]; readonly max_tokens?: number }[]): Promise<{ readonly prompt: unknown; readonly result: GenResult }[]>;
  /** The session of a model parameter of the task (`judge`, `baseline`). */
  judge(param: string): Promise<ModelSession>;
  /** An error about record `index` (from 0) of the dataset parameter `param`: names the task, the stage and the row. */
  rowError(param: string, index: number, message: string, hint?: string): Error;
  /** The stage's longest generation. */
  readonly maxTokens: number;
  readonly signal: AbortSignal;
}

/** A task: runs on its environment and returns its metrics and examples. */
export type TaskRunner = (env: TaskEnv) => Promise<TaskOutcome>;

/** A string field of a row, or the row's error. */
export function stringField(env: TaskEnv, param: string, r: RecordValue, i: number, field: string): string {
  const v = r[field];
  if (typeof v === "string") return v;
  throw env.rowError(param, i, `field \`${field}\` is ${v === undefined ? "missing" : `not a string (${JSON.stringify(v)?.slice(0, 60)})`}`);
}

/** A list-of-strings field of a row, or the row's error. */
export function stringsField(env: TaskEnv, param: string, r: RecordValue, i: number, field: string): string[] {
  const v = r[field];
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  throw env.rowError(param, i, `field \`${field}\` is ${v === undefined ? "missing" : `not a list of strings (${JSON.stringify(v)?.slice(0, 60)})`}`);
}

/** The rows a `limit` keeps, and whether it cut any. */
export function limited<T>(rows: readonly T[], limit: unknown): { rows: readonly T[]; limited: boolean } {
  return typeof limit === "number" && rows.length > limit ? { rows: rows.slice(0, limit), limited: true } : { rows, limited: false };
}
