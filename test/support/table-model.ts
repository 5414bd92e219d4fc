import { Effect } from "effect";
import type { EvalModel, GenRequest, LoglikRequest } from "../../src/generate/eval-model.js";
import { evaluateImpl } from "../../src/stages/eval/evaluate.js";
import { taskRunners } from "../../src/stages/eval/tasks.js";
import type { Report } from "../../src/stages/eval/report.js";
import { makeCtx, recordSink } from "./stage-ctx.js";

/**
 * A model at the EvalModel seam for tests of the `evaluate` stage: a character bigram model (its log-likelihoods can
 * be computed again in a test, independently) whose generations come from a function of the prompt. What the stage
 * sends is recorded, so prompts are asserted byte for byte.
 */
export class TableModel implements EvalModel {
  readonly describe = "the test's table model";
  readonly identity = "table";
  readonly loglik = true;
  readonly loglikAsked: LoglikRequest[] = [];
  readonly genAsked: GenRequest[] = [];
  constructor(
    private readonly answers: (prompt: string) => string,
    readonly chat = false,
  ) {}
  async loglikelihood(reqs: readonly LoglikRequest[]) {
    this.loglikAsked.push(...reqs);
    return reqs.map((r) => ({ logprob: bigramLogprob(r.context, r.continuation), greedy: false, tokens: r.continuation.length }));
  }
  async generate(reqs: readonly GenRequest[]) {
    this.genAsked.push(...reqs);
    return reqs.map((r) => ({ text: this.answers(r.prompt ?? JSON.stringify(r.messages)), finish_reason: "stop" as const, completion_tokens: 3 }));
  }
  async close() {}
}

/** log P(continuation | context) under a bigram model of characters: P(b | a) = 1 / (1 + |a - b|) normalized over 128 codes. */
export function bigramLogprob(context: string, continuation: string): number {
  let prev = context.charCodeAt(context.length - 1) % 128;
  let lp = 0;
  for (const ch of continuation) {
    const c = ch.charCodeAt(0) % 128;
    let z = 0;
    for (let x = 0; x < 128; x++) z += 1 / (1 + Math.abs(prev - x));
    lp += Math.log(1 / (1 + Math.abs(prev - c)) / z);
    prev = c;
  }
  return lp;
}

/** Run `evaluate` with these parameters and inputs on a model: its Report and counts. */
export async function evaluateWith(params: Record<string, unknown>, inputs: Record<string, unknown>, model: EvalModel): Promise<{ report: Report; counts: Record<string, number> }> {
  const { ctx, values, counts } = makeCtx({ batch_size: 2, max_tokens: 64, contamination_ngram: 13, seed: 42, ...params }, inputs);
  await Effect.runPromise(evaluateImpl(async () => model, taskRunners).run(ctx, recordSink([], values)));
  return { report: values[0] as Report, counts };
}
