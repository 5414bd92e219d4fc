import type { Json } from "../compile/ir.js";
import { UserError } from "../runtime/impl.js";
import { sha256 } from "../runtime/digest.js";
import { resolveParams } from "../runtime/keys.js";
import { atRunEnd } from "../runtime/run-end.js";
import type { ChatMessage, Completion, RequestStats } from "../models/openai.js";

/**
 * What a model stage stores as its artifact: its kind and its parameters with env() values resolved and secrets
 * left as `{ $secret: NAME }`, so the artifact (and every key built from it) never holds a credential; the stage that
 * uses the model reads the secret from the environment when it connects.
 */
export interface ModelArtifact {
  readonly kind: string;
  readonly stage: string;
  readonly params: Readonly<Record<string, Json>>;
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

/** Samples beyond the first differ by seed where the server takes one (the model's seed plus the sample index). */
function sampleSeed(modelSeed: unknown, index: number): number | undefined {
  return typeof modelSeed === "number" && index > 0 ? modelSeed + index : undefined;
}

/** The backend of a model artifact (the `model` parameter's input). */
export async function modelBackend(m: ModelArtifact, baseDir: string): Promise<ModelBackend> {
  if (m.kind === "openai_compatible") return openaiBackend(m);
  if (m.kind === "onnx_model") {
    const { onnxBackend } = await import("./onnx-backend.js");
    return onnxBackend(m, baseDir);
  }
  throw new UserError(`model \`${m.stage}\` (${m.kind}) cannot generate text here`, "generation needs an openai_compatible or onnx_model model");
}

async function openaiBackend(m: ModelArtifact): Promise<ModelBackend> {
  const { closeSharedClients, openaiConfig, sharedClient } = await import("../models/openai.js");
  atRunEnd(closeSharedClients);
  const params = resolveParams(m.params, true);
  const config = openaiConfig(params);
  // One client per model identity and limits: stages sharing a model share its concurrency and rate limits.
  const client = sharedClient(sha256(JSON.stringify([m.stage, m.params])), () => config);
  const endpoint = config.endpoint ?? "chat";
  const where = `${config.baseUrl.replace(/\/+$/, "")}/${endpoint === "chat" ? "chat/completions" : "completions"}`;
  const modelSeed = params["seed"];
  // The body is what the cache key digests: built by the client's own builder, so key and request always agree.
  const body = (req: ModelRequest, index: number): string => {
    // Left undefined, the sample seed gives way to the model's own seed (the client's default).
    const seed = sampleSeed(modelSeed, index);
    const sampling = { temperature: req.temperature, top_p: req.top_p, max_tokens: req.max_tokens, stop: req.stop, presence_penalty: req.presence_penalty, frequency_penalty: req.frequency_penalty, seed };
    return endpoint === "chat" ? client.chatBody({ messages: req.messages, ...sampling }) : client.completionBody({ prompt: completionPrompt(req.messages), ...sampling });
  };
  const keyOf = (payload: string, index: number): string => sha256(`${where}\n${payload}\n${index}`);
  const send = async (payload: string, req: ModelRequest, opts: { signal: AbortSignal; stats: RequestStats }): Promise<Answer> => {
    const c: Completion = await client.send(endpoint, payload, opts, req.max_tokens);
    const choice = c.choices[0];
    if (!choice) throw new UserError(`${where}: the answer has no choices`, "the server does not answer in the OpenAI format: check base_url and kind");
    return { text: choice.text, finish_reason: choice.finish_reason, prompt_tokens: c.usage?.prompt_tokens ?? 0, completion_tokens: c.usage?.completion_tokens ?? 0 };
  };
  const priceIn = params["price_input"];
  const priceOut = params["price_output"];
  return {
    describe: `\`${m.stage}\` (${config.model} at ${config.baseUrl})`,
    price: typeof priceIn === "number" || typeof priceOut === "number" ? { input: Number(priceIn ?? 0), output: Number(priceOut ?? 0) } : undefined,
    key: (req, index) => keyOf(body(req, index), index),
    complete: (req, index, opts) => send(body(req, index), req, opts),
    prepare(req, index) {
      const payload = body(req, index);
      return { key: keyOf(payload, index), complete: (opts) => send(payload, req, opts) };
    },
  };
}

/**
 * A chat as one prompt for a completions endpoint: the system message, then the turns. A single user message is
 * sent as it is, so a plain prompt stays a plain prompt.
 */
export function completionPrompt(messages: readonly ChatMessage[]): string {
  if (messages.length === 1 && messages[0]!.role === "user") return messages[0]!.content;
  return messages.map((m) => (m.role === "system" ? `${m.content}\n\n` : `${m.role === "user" ? "User" : "Assistant"}: ${m.content}\n\n`)).join("") + "Assistant:";
}
