import type { ChatMessage } from "../models/openai.js";

// The contract between the `evaluate` stage (src/stages/eval/) and the models it evaluates. Evaluation asks two
// things of a model, as lm-evaluation-harness does: the log-likelihood of a continuation after a context (multiple
// choice by log-likelihood: MMLU, user tasks) and generation until a stop sequence (GSM8K, IFEval, AlpacaEval,
// MT-Bench). Four backends implement it: a trained model (a folder artifact) scored by the Python worker of
// `itp_trainer`, an `openai_compatible` endpoint (completions with `echo` and `logprobs` for log-likelihoods, chat
// or completions for generation), a `serve` stage's endpoint, and an `onnx_model` run by onnxruntime-node.

/** The log-probability of `continuation` given `context` (both plain text; the continuation usually starts with a space). */
export interface LoglikRequest {
  readonly context: string;
  readonly continuation: string;
}

export interface LoglikResult {
  /** Sum of the continuation's token log-probabilities (natural log). */
  readonly logprob: number;
  /** Whether every continuation token is the model's argmax at its position. */
  readonly greedy: boolean;
  /** Tokens in the continuation. */
  readonly tokens: number;
}

/**
 * One generation. `prompt` is the final text for a model that takes text (a chat template already applied by the
 * evaluate stage when the task is a chat task); `messages` is sent instead to a chat endpoint. Exactly one is set.
 */
export interface GenRequest {
  readonly prompt?: string;
  readonly messages?: readonly ChatMessage[];
  /** The answer is cut before the first of these (not included). */
  readonly stop: readonly string[];
  readonly max_tokens: number;
  /** 0 = greedy. */
  readonly temperature: number;
  /** Nucleus sampling's mass when temperature > 0 (default 1: the whole distribution). */
  readonly top_p?: number;
  /** Seed of sampling when temperature > 0. */
  readonly seed?: number;
}

export interface GenResult {
  readonly text: string;
  readonly finish_reason: "stop" | "length";
  readonly completion_tokens: number;
}

/** A model under evaluation. Batches are the caller's choice; a backend may split them further. */
export interface EvalModel {
  /** Names the model in messages and the report (`\`sft\` (trained, folder 3f2a...)`), never with credentials. */
  readonly describe: string;
  /**
   * What decides the model's answers (the artifact's digest, or the endpoint's URL and model name): with a request's
   * own content it makes the request's cache key, so a rerun or a crash re-pays nothing.
   */
  readonly identity: string;
  /** Whether generation takes `messages` (a chat endpoint) rather than a rendered `prompt`. */
  readonly chat: boolean;
  /** Whether the model can give log-probabilities (an endpoint without `logprobs` cannot). */
  readonly loglik: boolean;
  /**
   * `onResult`, when given, is told of each answer as it arrives (its index in `reqs`), before the call returns: the
   * caching wrapper stores answers one by one, so a crash in the middle of a batch loses none that were answered.
   */
  loglikelihood(reqs: readonly LoglikRequest[], opts: { readonly signal: AbortSignal; readonly onResult?: (index: number, result: LoglikResult) => void }): Promise<LoglikResult[]>;
  generate(reqs: readonly GenRequest[], opts: { readonly signal: AbortSignal; readonly onResult?: (index: number, result: GenResult) => void }): Promise<GenResult[]>;
  /** Stop the worker process or close connections. */
  close(): Promise<void>;
}
