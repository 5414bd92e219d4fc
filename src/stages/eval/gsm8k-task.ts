import { mulberry32 } from "../../core/random.js";
import { gsm8kGold, gsm8kStop, gsm8kVerdict, renderGsm8kCotPrompt, renderGsm8kPrompt, type Gsm8kShot, type Gsm8kVariant } from "./scoring.js";
import { rateMetric, type EvalExample } from "./report.js";
import { limited, stringField, type TaskEnv, type TaskOutcome } from "./task-env.js";

/**
 * GSM8K as lm-evaluation-harness runs it: a few-shot prompt (`gsm8k`: shots drawn from the train split with their
 * full solutions; `gsm8k-cot`: the fixed chain-of-thought exemplars), greedy generation until a stop sequence, and
 * exact match of the strictly and the flexibly extracted answers.
 */

/** `k` distinct indices below `n`, drawn from the stream (the same seed and order give the same shots). */
function draw(random: () => number, n: number, k: number): number[] {
  const picked: number[] = [];
  const seen = new Set<number>();
  while (picked.length < k) {
    const i = Math.floor(random() * n);
    if (!seen.has(i)) {
      seen.add(i);
      picked.push(i);
    }
  }
  return picked;
}

export async function gsm8k(env: TaskEnv): Promise<TaskOutcome> {
  const p = env.params;
  const variant = (p["variant"] ?? "gsm8k") as Gsm8kVariant;
  const shots = Number(p["shots"] ?? 8);
  const { rows, limited: cut } = limited(await env.rows("data"), p["limit"]);
  const items = rows.map((r, i) => ({ question: stringField(env, "data", r, i, "question"), answer: stringField(env, "data", r, i, "answer") }));
  let prompts: string[];
  if (variant === "gsm8k-cot") prompts = items.map((it) => renderGsm8kCotPrompt(it.question, shots));
  else {
    const train: Gsm8kShot[] = shots > 0 ? (await env.rows("train")).map((r, i) => ({ question: stringField(env, "train", r, i, "question"), answer: stringField(env, "train", r, i, "answer") })) : [];
    if (shots > train.length) throw env.rowError("train", 0, `has ${train.length} problems; ${shots} shots need more`, "give the train split, or fewer shots");
    const random = mulberry32(Number(p["seed"] ?? 1234));
    prompts = items.map((it) =>
      renderGsm8kPrompt(
        it.question,
        draw(random, train.length, shots).map((k) => train[k]!),
      ),
    );
  }
  const answers = await env.generate(prompts.map((content) => ({ turns: [{ role: "user" as const, content }], stop: gsm8kStop(variant) })));
  const strict: boolean[] = [];
  const flexible: boolean[] = [];
  const examples: EvalExample[] = items.map((it, i) => {
    const { prompt, result } = answers[i]!;
    const v = gsm8kVerdict(result.text, it.answer, variant);
    strict.push(v.strict.correct);
    flexible.push(v.flexible.correct);
    return {
      id: String(i),
      prompt,
      output: result.text,
      extracted: { strict: v.strict.extracted, flexible: v.flexible.extracted },
      gold: gsm8kGold(it.answer),
      passed: v.strict.correct,
      verdict: { strict: v.strict.correct, flexible: v.flexible.correct, finish_reason: result.finish_reason },
    };
  });
  return {
    primary: "exact_match_strict",
    metrics: { exact_match_strict: rateMetric(strict), exact_match_flexible: rateMetric(flexible) },
    examples,
    limited: cut,
    notes: { shots, variant },
    itemTexts: items.map((it) => [it.question]),
  };
}
