import { isAbsolute, resolve } from "node:path";
import { fileDigest, sha256 } from "../core/digest.js";
import { resolveParams } from "../core/params.js";
import { atRunEnd } from "../core/run-end.js";
import type { OnnxCausalLM } from "../models/onnx.js";
import { completionPrompt, onnxFile, type ModelArtifact, type ModelBackend } from "./backend.js";

/** Models loaded in this process, by file and options: stages that share a model share its session and batches. */
const loaded = new Map<string, Promise<{ lm: OnnxCausalLM; digest: string }>>();

/** The loaded model of an `onnx_model` artifact (shared by the stages of a run), and its identity for cache keys. */
export async function loadOnnxModel(m: ModelArtifact, baseDir: string): Promise<{ lm: OnnxCausalLM; identity: string; options: { path: string; tokenizer?: string } }> {
  const params = resolveParams(m.params, true) as Record<string, unknown>;
  const at = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const options = {
    path: at(String(params["path"])),
    ...(typeof params["tokenizer"] === "string" ? { tokenizer: at(params["tokenizer"]) } : {}),
    ...(typeof params["max_length"] === "number" ? { max_length: params["max_length"] } : {}),
    ...(typeof params["max_tokens"] === "number" ? { max_tokens: params["max_tokens"] } : {}),
    ...(params["execution_provider"] === "cuda" ? { execution_provider: "cuda" as const } : {}),
    ...(typeof params["threads"] === "number" ? { threads: params["threads"] } : {}),
    ...(typeof params["concurrency"] === "number" ? { concurrency: params["concurrency"] } : {}),
  };
  const id = JSON.stringify(options);
  let model = loaded.get(id);
  if (!model) {
    model = (async () => {
      const { OnnxCausalLM } = await import("../models/onnx.js");
      const lm = await OnnxCausalLM.load(options, baseDir);
      atRunEnd(async () => {
        loaded.delete(id);
        await lm.close();
      });
      return { lm, digest: (await fileDigest(onnxFile(options.path))).digest };
    })();
    loaded.set(id, model);
  }
  const { lm, digest } = await model;
  return { lm, identity: sha256(JSON.stringify([digest, options.tokenizer ?? null, options.max_length ?? null])), options };
}

/**
 * A local ONNX causal LM as a backend. A request's identity is the model file's digest, the prompt, the sampling
 * parameters and the sample index; its seed derives from that identity, so an answer never depends on what it was
 * batched with or on the order requests were made.
 */
export async function onnxBackend(m: ModelArtifact, baseDir: string): Promise<ModelBackend> {
  const { lm, identity, options } = await loadOnnxModel(m, baseDir);
  const requestKey = (prompt: string, req: Parameters<ModelBackend["key"]>[0], index: number) =>
    sha256(JSON.stringify([identity, prompt, req.temperature, req.top_p, req.max_tokens, req.stop ?? [], req.presence_penalty ?? 0, req.frequency_penalty ?? 0, index]));
  return {
    describe: `\`${m.stage}\` (${options.path})`,
    price: undefined,
    key: (req, index) => requestKey(completionPrompt(req.messages), req, index),
    async complete(req, index, opts) {
      const prompt = completionPrompt(req.messages);
      const seed = parseInt(requestKey(prompt, req, index).slice(0, 8), 16);
      opts.stats.requests++;
      const g = await lm.complete(prompt, {
        temperature: req.temperature,
        top_p: req.top_p,
        max_tokens: req.max_tokens,
        ...(req.stop ? { stop: req.stop } : {}),
        ...(req.presence_penalty ? { presence_penalty: req.presence_penalty } : {}),
        ...(req.frequency_penalty ? { frequency_penalty: req.frequency_penalty } : {}),
        seed,
        signal: opts.signal,
      });
      opts.stats.succeeded++;
      return { text: g.text, finish_reason: g.finish_reason, prompt_tokens: g.prompt_tokens, completion_tokens: g.tokens.length };
    },
  };
}
