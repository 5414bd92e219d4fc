import type { ModelSession } from "../../generate/session.js";
import { ALPACA_EVAL_JUDGE_MAX_TOKENS, alpacaJudgePrompts, alpacaWinRate, combineOrders, lengthControlledWinRate, parseAlpacaPreference, type AlpacaJudgePrompt } from "./scoring.js";
import type { EvalExample, Metric } from "./report.js";
import { limited, stringField, type TaskEnv, type TaskOutcome } from "./task-env.js";

/**
 * AlpacaEval: the model answers each instruction; the judge compares its answer with the baseline's (the data's
 * `output`, or a baseline model's answer) in both orders, and the two preferences are averaged (position bias
 * cancels). Win rate with its standard error, and AlpacaEval 2's length-controlled win rate.
 */

/** The judge's preference for one order: its text answer read as "m" (output_1) or "M" (output_2). */
async function ask(judge: ModelSession, p: AlpacaJudgePrompt): Promise<{ text: string; preference: number }> {
  const a = await judge.ask({ messages: p.messages, temperature: 0, top_p: 1, max_tokens: ALPACA_EVAL_JUDGE_MAX_TOKENS });
  return { text: a.text, preference: parseAlpacaPreference(a.text) };
}

export async function alpacaEval(env: TaskEnv): Promise<TaskOutcome> {
  const p = env.params;
  const { rows, limited: cut } = limited(await env.rows("data"), p["limit"]);
  const items = rows.map((r, i) => ({ instruction: stringField(env, "data", r, i, "instruction"), reference: env.has("baseline") ? "" : stringField(env, "data", r, i, "output") }));
  const turns = items.map((it) => ({ turns: [{ role: "user" as const, content: it.instruction }], stop: [] }));
  const answers = await env.generate(turns);
  let baseline = items.map((it) => it.reference);
  if (env.has("baseline")) {
    const b = await env.judge("baseline");
    baseline = await Promise.all(items.map(async (it) => (await b.ask({ messages: [{ role: "user", content: it.instruction }], temperature: 0, top_p: 1, max_tokens: env.maxTokens })).text));
  }
  const judge = await env.judge("judge");
  const judged = await Promise.all(
    items.map(async (it, i) => {
      const prompts = alpacaJudgePrompts(it.instruction, answers[i]!.result.text, baseline[i]!);
      const [baselineFirst, modelFirst] = await Promise.all([ask(judge, prompts.baselineFirst), ask(judge, prompts.modelFirst)]);
      return { baselineFirst, modelFirst, preference: combineOrders(baselineFirst.preference, modelFirst.preference) };
    }),
  );
  const preferences = judged.map((j) => j.preference);
  const wr = alpacaWinRate(preferences);
  const metrics: Record<string, Metric> = { win_rate: { value: wr.win_rate, stderr: Number.isFinite(wr.standard_error) ? wr.standard_error : null, n: wr.n_total }, discrete_win_rate: { value: wr.discrete_win_rate, stderr: null, n: wr.n_total } };
  if (p["length_controlled"] !== false && wr.n_total > 0) {
    const lc = lengthControlledWinRate(items.map((_, i) => ({ preference: preferences[i]!, baselineLength: baseline[i]!.length, modelLength: answers[i]!.result.text.length })));
    metrics["length_controlled_win_rate"] = { value: lc.length_controlled_winrate, stderr: Number.isFinite(lc.lc_standard_error_fit) ? lc.lc_standard_error_fit : null, n: lc.n };
  }
  const examples: EvalExample[] = items.map((it, i) => {
    const j = judged[i]!;
    return {
      id: String(i),
      prompt: answers[i]!.prompt,
      output: answers[i]!.result.text,
      gold: baseline[i],
      ...(Number.isNaN(j.preference) ? {} : { passed: j.preference > 1.5 }),
      verdict: { preference: Number.isNaN(j.preference) ? null : j.preference, baseline_first: j.baselineFirst.text, model_first: j.modelFirst.text },
    };
  });
  const unreadable = judged.filter((j) => Number.isNaN(j.preference)).length;
  return {
    primary: "win_rate",
    metrics,
    examples,
    limited: cut,
    notes: { wins: wr.n_wins, losses: wr.n_wins_base, draws: wr.n_draws, ...(unreadable > 0 ? { "unreadable judgements": unreadable } : {}) },
    itemTexts: items.map((it) => [it.instruction]),
  };
}
