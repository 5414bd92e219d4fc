import { join } from "node:path";
import type { Json } from "../core/ir.js";
import type { ChatMessage, RequestStats } from "../models/openai.js";

/**
 * What a model stage stores as its artifact: its kind and its parameters with env() values resolved and secrets
 * left as `{ $secret: NAME }`, so the artifact (and every key built from it) never holds a credential; the stage that
 * uses the model reads the secret from the environment when it connects.
 */
export interface ModelArtifact {
  readonly kind: string;
  readonly stage: string;
  readonly params: Readonly<Record<string, Json>>;
  /**
   * Set by a `serve` stage: the id its server is registered under in this itp (core/served.ts). The endpoint's
   * address is asked of that registry (which starts the server when it is not running), not read from `base_url`.
   */
  readonly served?: string;
  /**
   * What decides the model's answers when its parameters do not (a served model: the digest of the model it serves,
   * never the port it listens on this time); request cache keys use it instead of the endpoint's URL.
   */
  readonly identity?: string;
}

/** One request to a model: a chat (messages) or a plain prompt (the model's endpoint decides how it is sent). */
export interface ModelRequest {
  readonly messages: readonly ChatMessage[];
  readonly temperature: number;
  readonly top_p: number;
  readonly max_tokens: number;
  readonly stop?: readonly string[];
  readonly presence_penalty?: number;
  readonly frequency_penalty?: number;
}

/** A model's answer as the request cache keeps it. */
export interface Answer {
  readonly text: string;
  readonly finish_reason: string | null;
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
}

/** A model that answers requests: an HTTP endpoint or a local ONNX model. */
export interface ModelBackend {
  /** Names the model in messages (`teacher (gpt-4o-mini at http://host/v1)`), never with credentials. */
  readonly describe: string;
  /**
   * The request's cache key: a digest of everything that decides the answer (model identity, messages, sampling,
   * and the sample index when answers are sampled). Credentials and limits never enter it.
   */
  key(req: ModelRequest, index: number): string;
  /** Ask the model; `index` > 0 asks for another sample of the same request. */
  complete(req: ModelRequest, index: number, opts: { signal: AbortSignal; stats: RequestStats }): Promise<Answer>;
  /** Price of 1,000 prompt and completion tokens, when the model declares them. */
  readonly price?: { readonly input: number; readonly output: number } | undefined;
  /**
   * The request's key and a way to send it, sharing the work both need (the request body, built once): what
   * {@link ModelSession.ask} uses when the backend has it. Same key and same answer as `key` and `complete`.
   */
  prepare?(req: ModelRequest, index: number): PreparedRequest;
}

/** A request ready to go: its cache key, and its sending. */
export interface PreparedRequest {
  readonly key: string;
  complete(opts: { signal: AbortSignal; stats: RequestStats }): Promise<Answer>;
}

/**
 * A chat as one prompt for a completions endpoint: the system message, then the turns. A single user message is
 * sent as it is, so a plain prompt stays a plain prompt.
 */
export function completionPrompt(messages: readonly ChatMessage[]): string {
  if (messages.length === 1 && messages[0]!.role === "user") return messages[0]!.content;
  return messages.map((m) => (m.role === "system" ? `${m.content}\n\n` : `${m.role === "user" ? "User" : "Assistant"}: ${m.content}\n\n`)).join("") + "Assistant:";
}

/** The .onnx file of an `onnx_model` path: the file itself, or `model.onnx` in the directory it names. */
export function onnxFile(path: string): string {
  return path.endsWith(".onnx") ? path : join(path, "model.onnx");
}
