import { z } from "zod";
import { secretString, value } from "../schema.js";
import { dataInput, doc, duration, ms, natInt, posInt, lazyEntries } from "../common.js";
import type { StageKind } from "../registry.js";

/**
 * Models: stages with no inputs whose output is a `Model` handle, used by generation, judging, training and
 * evaluation stages. A model's identity (for cache keys) is its name/path and endpoint, never its credentials.
 */
export function modelStages(): StageKind[] {
  return lazyEntries<StageKind>([
    {
      name: "openai_compatible",
      category: "model",
      doc: "A model behind an OpenAI-compatible HTTP API (OpenAI, vLLM, TGI, llama.cpp server, Ollama). Requests are bounded by concurrency and rate limits, retried with exponential backoff and jitter (honoring Retry-After), and cached one by one as they complete.",
      inputs: [],
      output: "Model",
      params: () => z.object({
        model: z.string().min(1).describe("Model name sent in each request, e.g. \"gpt-4o-mini\"."),
        base_url: z.string().min(1).default("https://api.openai.com/v1").describe("Base URL of the API (up to and including /v1)."),
        api_key: doc(secretString().optional(), "API key; give it as secret(\"NAME\") so it never enters cache keys, logs or manifests."),
        headers: z.record(z.string().min(1), z.string()).default({}).describe("Extra HTTP headers sent with each request (not for credentials: use api_key)."),
        kind: z.enum(["chat", "completions"]).default("chat").describe("Endpoint used: /chat/completions or /completions."),
        concurrency: posInt().default(8).describe("Most requests in flight at once (default 8: our choice)."),
        rpm: posInt().optional().describe("Request-per-minute limit; default none."),
        tpm: posInt().optional().describe("Token-per-minute limit (prompt + completion); default none."),
        timeout: duration().default(ms(120_000)).describe("Longest wait for an answer, and for each gap in its body (default 120s)."),
        connect_timeout: duration().default(ms(10_000)).describe("Longest wait to open a connection (default 10s)."),
        max_retries: natInt().default(5).describe("Retries of a failed request (timeouts, 429, 5xx) before the stage fails."),
        retry: value("retry_policy").optional().describe("Full retry policy, e.g. backoff(max_retries: 8, initial: 2s); overrides max_retries."),
        temperature: z.number().min(0).max(2).optional().describe("Default sampling temperature for stages that set none."),
        top_p: z.number().gt(0).lte(1).optional().describe("Default nucleus sampling top_p for stages that set none."),
        max_tokens: posInt().optional().describe("Default completion length limit for stages that set none."),
        seed: natInt().optional().describe("Seed sent with each request, where the server supports it."),
        price_input: z.number().nonnegative().optional().describe("Price per 1,000 prompt tokens, for cost reports."),
        price_output: z.number().nonnegative().optional().describe("Price per 1,000 completion tokens, for cost reports."),
      }),
      version: "2",
    },
    {
      name: "onnx_model",
      category: "model",
      doc: "A local model exported to ONNX, run with onnxruntime-node (greedy or sampled decoding of a causal LM).",
      inputs: [],
      output: "Model",
      params: () => z.object({
        path: z.string().min(1).describe("Path of the .onnx file or of a directory holding model.onnx, relative to the recipe file."),
        tokenizer: z.string().min(1).optional().describe("Tokenizer directory (tokenizer.json); default the model's directory."),
        max_length: posInt().default(2048).describe("Context length: prompt plus generated tokens (default 2048: our choice)."),
        max_tokens: posInt().default(512).describe("Default number of generated tokens."),
        execution_provider: z.enum(["cpu", "cuda"]).default("cpu").describe("onnxruntime execution provider."),
        threads: posInt().optional().describe("Intra-op threads; default onnxruntime's choice."),
        concurrency: posInt().default(1).describe("Sequences decoded at once."),
      }),
      version: "1",
    },
    {
      name: "serve",
      category: "model",
      doc: "Serves a model (a trained model, or an hf_model folder) behind an OpenAI-compatible server started as a local process (vLLM by default; the command is a template: SGLang, TGI or any server with /v1/models and /v1/completions), waits until /v1/models answers, and hands the stages that use it an endpoint model. The server is started when a stage that uses it runs (not when all of them are cached) and stopped when the run ends, fails or is interrupted. Answers are cached under the served model's identity, never its port.",
      inputs: [dataInput("Model", "The model to serve.", "model")],
      output: "Model",
      params: () => z.object({
        command: z.string().min(1).default("{python} -m vllm.entrypoints.openai.api_server --model {path} --host {host} --port {port} --served-model-name {name}").describe("The server's command line, split on spaces after filling {python} (ITP_PYTHON), {path} (the model's folder), {host}, {port} (a free port) and {name}."),
        name: z.string().min(1).default("model").describe("The model name requests carry (vLLM's --served-model-name)."),
        kind: z.enum(["completions", "chat"]).default("completions").describe("Endpoint for generation: /completions (prompts rendered by the stage, default) or /chat/completions (the server's chat template). Log-likelihoods always use /completions."),
        timeout: duration().default(ms(600_000)).describe("Longest wait for /v1/models to answer after the start (default 10 min: loading a large model takes minutes)."),
        concurrency: posInt().default(32).describe("Most requests in flight to the server (default 32)."),
        gpus: natInt().default(1).describe("GPUs the server's process is given (CUDA_VISIBLE_DEVICES), from the local executor's devices; 0 for a server that needs none."),
      }),
      version: "1",
    },
    {
      name: "hf_model",
      category: "model",
      doc: "A model identity on the Hugging Face hub or a local directory in its format: the base of a training stage, or a model to evaluate.",
      inputs: [],
      output: "Model",
      params: () => z.object({
        repo: z.string().min(1).describe("Hub repository id (e.g. \"meta-llama/Llama-2-7b-hf\") or a local model directory."),
        revision: z.string().min(1).optional().describe("Hub revision (commit sha or tag) to pin; recommended for reproducibility."),
        tokenizer: z.string().min(1).optional().describe("Tokenizer repository id or directory; default the model's own."),
        token: doc(secretString().optional(), "Access token for gated models; give it as secret(\"HF_TOKEN\")."),
      }),
      version: "1",
    },
  ]);
}
