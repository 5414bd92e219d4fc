import { sha256 } from "../core/digest.js";
import { completionPrompt, type ModelArtifact } from "./backend.js";
import type { EvalModel } from "./eval-model.js";
import { loadOnnxModel } from "./onnx-backend.js";

/**
 * An `onnx_model` under evaluation, run by onnxruntime-node (models/onnx.ts): log-likelihoods by its `score`
 * (lm-evaluation-harness's rules, batched by the model's `concurrency`), generation by its decoding loop with stop
 * sequences. The session is the run's, shared with generation stages, and closed when the run ends.
 */
export async function onnxEvalModel(m: ModelArtifact, baseDir: string): Promise<EvalModel> {
  const { lm, identity, options } = await loadOnnxModel(m, baseDir);
  return {
    describe: `\`${m.stage}\` (ONNX ${options.path})`,
    identity: sha256(JSON.stringify(["onnx_model", identity])),
    chat: false,
    loglik: true,
    async loglikelihood(reqs, opts) {
      const scores = await lm.score(
        reqs.map((r) => ({ prompt: r.context, continuation: r.continuation })),
        { signal: opts.signal },
      );
      const out = scores.map((s) => ({ logprob: s.logprob, greedy: s.greedy, tokens: s.ids.length }));
      out.forEach((r, i) => opts.onResult?.(i, r));
      return out;
    },
    generate(reqs, opts) {
      // Concurrent completions share the model's decoding batches; each has its own seed (its own, or 0), so an
      // answer does not depend on what it was batched with.
      return Promise.all(
        reqs.map(async (r, i) => {
          const g = await lm.complete(r.prompt ?? completionPrompt(r.messages ?? []), { temperature: r.temperature, ...(r.top_p !== undefined ? { top_p: r.top_p } : {}), max_tokens: r.max_tokens, stop: r.stop, seed: r.seed ?? 0, signal: opts.signal });
          const out = { text: g.text, finish_reason: g.finish_reason, completion_tokens: g.tokens.length };
          opts.onResult?.(i, out);
          return out;
        }),
      );
    },
    close: async () => undefined,
  };
}

