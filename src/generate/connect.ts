import { UserError } from "../core/errors.js";
import { sha256 } from "../core/digest.js";
import { resolveParams } from "../core/params.js";
import { atRunEnd } from "../core/run-end.js";
import { servedModel } from "../core/served.js";
import type { Completion, RequestStats } from "../models/openai.js";
import { completionPrompt, type Answer, type ModelArtifact, type ModelBackend, type ModelRequest } from "./backend.js";

// Connecting a model artifact to its backend: the OpenAI-compatible client, or the ONNX runner (loaded on first use).

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
  // A served model's address is asked of its server (started on first use), never read from the artifact.
  const served = m.served !== undefined ? servedModel(m.served) : undefined;
  if (m.served !== undefined && !served) throw new UserError(`the model \`${m.stage}\` is served by a \`serve\` stage of another run`, "run the recipe that serves it in this itp: a served model lives as long as its run");
  const servedUrl = served ? await served.ensure() : undefined;
  const config = { ...openaiConfig(params), ...(servedUrl !== undefined ? { baseUrl: servedUrl } : {}) };
  // One client per model identity and limits: stages sharing a model share its concurrency and rate limits.
  const client = sharedClient(sha256(JSON.stringify([m.stage, m.params, servedUrl ?? null])), () => config);
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
  // A served model is known by its identity, not by the port it listens on this run.
  const who = m.identity ?? where;
  const keyOf = (payload: string, index: number): string => sha256(`${who}\n${payload}\n${index}`);
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
