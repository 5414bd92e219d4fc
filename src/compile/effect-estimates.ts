import type { IrProgram, IrStage, Json } from "../core/ir.js";
import { ENDPOINT_KINDS, TRAIN_KINDS, type CostEffect, type EffectContext, type Effects, type GpuEffect } from "./effect-types.js";

// The estimates among a recipe's effects: GPU-hours of its training stages and what its generation costs, from the
// parameters alone (and the record counts the store knows). Documented in the README as estimates.

function durationHours(v: Json | undefined): number | undefined {
  if (v && typeof v === "object" && !Array.isArray(v) && typeof v["duration_ms"] === "number") return v["duration_ms"] / 3_600_000;
  return undefined;
}

/**
 * Sustained training throughput assumed per GPU for the estimate: 100 TFLOP/s (a third of an A100's bf16 peak, a
 * tenth of an H100's). Training FLOPs: 6·N·T for full fine-tuning (forward and backward; Kaplan et al. 2020), 4·N·T
 * for LoRA and QLoRA (no weight gradients of the frozen base), 8·N·T for DPO (the policy's 6 plus the reference
 * model's forward pass), with N the base model's parameters and T the tokens over all epochs.
 */
export const ASSUMED_FLOPS_PER_GPU = 100e12;
const FLOPS_PER_PARAM_TOKEN: Readonly<Record<string, number>> = { sft: 6, lora: 4, qlora: 4, dpo: 8 };

export function gpusOf(stages: readonly IrStage[], ctx: EffectContext): Effects["gpus"] {
  const out: GpuEffect[] = [];
  for (const s of stages) {
    if (TRAIN_KINDS.has(s.kind)) {
      const gpus = typeof s.params["gpus"] === "number" ? s.params["gpus"] : 1;
      const epochs = typeof s.params["epochs"] === "number" ? s.params["epochs"] : 1;
      const t = ctx.training?.(s.id);
      const limit = durationHours(s.params["time"]);
      let hours: number | null = null;
      let basis: string;
      if (gpus === 0) {
        hours = 0;
        basis = "trains on the CPU";
      } else if (t?.params !== undefined && t.tokens !== undefined) {
        const flops = FLOPS_PER_PARAM_TOKEN[s.kind]! * t.params * t.tokens * epochs;
        hours = flops / ASSUMED_FLOPS_PER_GPU / 3600;
        basis = `${FLOPS_PER_PARAM_TOKEN[s.kind]}·N·T FLOPs at ${ASSUMED_FLOPS_PER_GPU / 1e12} TFLOP/s per GPU; N = ${fmtCount(t.params)} parameters, T = ${fmtCount(Math.round(t.tokens * epochs))} tokens${t.tokensUpperBound ? " (at most: examples × max_length)" : ""}`;
        if (limit !== undefined && hours > gpus * limit) {
          hours = gpus * limit;
          basis += `; capped by its time limit (${gpus} × ${fmtNum(limit)} h)`;
        }
      } else if (limit !== undefined) {
        hours = gpus * limit;
        basis = `at most: ${gpus} GPU${gpus === 1 ? "" : "s"} × its time limit of ${fmtNum(limit)} h`;
      } else basis = "not estimated: the base model's size or the data's tokens are not known yet (itp plan knows them once its input is computed; or set `time`)";
      out.push({ stage: s.id, kind: s.kind, gpus, gpu_hours: hours === null ? null : round(hours, 2), basis });
    } else if (s.kind === "serve") {
      const gpus = typeof s.params["gpus"] === "number" ? s.params["gpus"] : 1;
      out.push({ stage: s.id, kind: s.kind, gpus, gpu_hours: null, basis: "a server for the run's duration: not estimated" });
    }
  }
  const known = out.filter((g) => g.gpu_hours !== null);
  return {
    stages: out,
    total_gpus: out.reduce((n, g) => Math.max(n, g.gpus), 0),
    total_gpu_hours: out.length === 0 ? 0 : known.length === out.length ? round(known.reduce((n, g) => n + g.gpu_hours!, 0), 2) : null,
  };
}

/**
 * The estimate of generation cost, where the model's `price_input` / `price_output` (per 1,000 tokens) are set.
 * Requests: from the stage's parameters and its input's record count (known to `itp plan` once the input is
 * computed): one per record (distill, backtranslate, quality_filter, judge pointwise), two per record (judge
 * pairwise), n per record (generate), records × rounds × (1 + answer + eliminate) (evol_instruct), records × turns ×
 * 2 (self_chat), target / per_call (generate_alpaca), 2 × target (self_instruct: instructions and instances), target
 * (generate without input). Prompt tokens per request: the stage's prompt text (prompt, system, rubric,
 * user_prompt; 1,000 characters for a built-in prompt) at 4 characters a token, plus 150 tokens for the record or
 * examples filled in. Completion tokens: max_tokens, an upper bound. Evaluation stages are not estimated.
 */
export const ASSUMED_FILL_TOKENS = 150;
export const BUILTIN_PROMPT_CHARS = 1000;

export function costOf(program: IrProgram, stages: readonly IrStage[], ctx: EffectContext): Effects["cost"] {
  const out: CostEffect[] = [];
  for (const s of stages) {
    const ref = s.params["model"];
    const modelId = ref && typeof ref === "object" && !Array.isArray(ref) && typeof ref["$ref"] === "string" ? ref["$ref"] : undefined;
    const m = modelId ? program.stages.get(modelId) : undefined;
    if (!m || !ENDPOINT_KINDS.has(m.kind)) continue;
    const pin = m.params["price_input"];
    const pout = m.params["price_output"];
    if (typeof pin !== "number" && typeof pout !== "number") continue;
    const base = { stage: s.id, model: m.id };
    const requests = requestsOf(s, ctx);
    if (typeof requests === "string") {
      out.push({ ...base, requests: null, prompt_tokens: null, completion_tokens: null, cost: null, basis: requests });
      continue;
    }
    const promptChars = ["prompt", "system", "rubric", "user_prompt"].reduce((n, k) => n + (typeof s.params[k] === "string" ? (s.params[k] as string).length : 0), 0);
    const perPrompt = Math.ceil((promptChars > 0 ? promptChars : BUILTIN_PROMPT_CHARS) / 4) + ASSUMED_FILL_TOKENS;
    const maxTokens = typeof s.params["max_tokens"] === "number" ? s.params["max_tokens"] : typeof m.params["max_tokens"] === "number" ? m.params["max_tokens"] : 1024;
    const prompt = requests.n * perPrompt;
    const completion = requests.n * maxTokens;
    const cost = (prompt * (typeof pin === "number" ? pin : 0) + completion * (typeof pout === "number" ? pout : 0)) / 1000;
    out.push({
      ...base,
      requests: requests.n,
      prompt_tokens: prompt,
      completion_tokens: completion,
      cost: round(cost, 4),
      basis: `${fmtCount(requests.n)} requests (${requests.how}) × (~${perPrompt} prompt tokens + at most ${maxTokens} completion tokens)`,
    });
  }
  const known = out.filter((c) => c.cost !== null);
  return { stages: out, total: known.length > 0 || out.length === 0 ? round(known.reduce((n, c) => n + c.cost!, 0), 4) : null, partial: known.length < out.length };
}

/** Requests a generation stage sends, or why that is not known yet. */
function requestsOf(s: IrStage, ctx: EffectContext): { n: number; how: string } | string {
  const p = s.params;
  const num = (k: string, d: number) => (typeof p[k] === "number" ? (p[k] as number) : d);
  const data = s.inputs.find((i) => i.role === "data" || i.role === "seeds");
  const records = data ? ctx.records?.(data.from) : undefined;
  const need = (f: (r: number) => { n: number; how: string }) => (records !== undefined ? f(records) : `not estimated: the records of \`${data?.from ?? "its input"}\` are known once it is computed`);
  switch (s.kind) {
    case "generate":
      if (!s.inputs.some((i) => i.role === "data")) return { n: num("target", 1), how: "target" };
      return need((r) => ({ n: r * num("n", 1), how: `${fmtCount(r)} records × n ${num("n", 1)}` }));
    case "self_instruct":
      return { n: 2 * num("target", 52_000), how: "2 × target: instructions and instances" };
    case "generate_alpaca":
      return { n: Math.ceil(num("target", 52_000) / num("per_call", 20)), how: "target / per_call" };
    case "evol_instruct": {
      const per = 1 + (p["answer"] !== false ? 1 : 0) + (p["eliminate"] !== false ? 1 : 0);
      return need((r) => ({ n: r * num("rounds", 4) * per, how: `${fmtCount(r)} records × ${num("rounds", 4)} rounds × ${per}` }));
    }
    case "self_chat":
      return need((r) => ({ n: r * num("turns", 3) * 2, how: `${fmtCount(r)} records × ${num("turns", 3)} turns × 2` }));
    case "judge":
      return need((r) => ({ n: r * (p["mode"] === "pairwise" ? 2 : 1), how: `${fmtCount(r)} records${p["mode"] === "pairwise" ? " × 2 orders" : ""}` }));
    case "distill":
    case "backtranslate":
    case "quality_filter":
      return need((r) => ({ n: r, how: `${fmtCount(r)} records` }));
    default:
      return "not estimated for this kind of stage";
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function fmtNum(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}

function fmtCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  return n.toLocaleString("en-US");
}
