import { fillTemplate } from "../support/chat-formats.js";
import type { RecordValue } from "../../core/records.js";
import { rateMetric, type EvalExample } from "./report.js";
import { limited, stringField, stringsField, type TaskEnv, type TaskOutcome } from "./task-env.js";

/**
 * Tasks a user declares without code: `multiple_choice` (each choice scored as the continuation of the question by
 * log-likelihood, as lm-evaluation-harness's multiple_choice output type) and `generate_and_check` (a greedy answer
 * compared with the record's answer, exactly or through a regular expression).
 */

/** The index of the largest value (the first on ties). */
function argmax(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

/** The correct choice's index from the record's answer: an index, the choice's text, or its letter (A, B, ...). */
function goldIndex(env: TaskEnv, r: RecordValue, i: number, field: string, choices: readonly string[]): number {
  const v = r[field];
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v < choices.length) return v;
  if (typeof v === "string") {
    const byText = choices.indexOf(v);
    if (byText >= 0) return byText;
    const letter = /^[A-Z]$/.test(v.trim()) ? v.trim().charCodeAt(0) - 65 : -1;
    if (letter >= 0 && letter < choices.length) return letter;
  }
  throw env.rowError("data", i, `field \`${field}\` (${JSON.stringify(v)?.slice(0, 60)}) is not one of the ${choices.length} choices`, "give the correct choice's index (from 0), its text, or its letter");
}

export async function multipleChoice(env: TaskEnv): Promise<TaskOutcome> {
  const p = env.params;
  const [qf, cf, af] = [String(p["question"]), String(p["choices"]), String(p["answer"])];
  const template = String(p["prompt"]);
  const { rows, limited: cut } = limited(await env.rows("data"), p["limit"]);
  const items = rows.map((r, i) => {
    const question = stringField(env, "data", r, i, qf);
    const choices = stringsField(env, "data", r, i, cf);
    if (choices.length < 2) throw env.rowError("data", i, `field \`${cf}\` has ${choices.length} choice(s)`, "a multiple-choice question needs two choices or more");
    return { question, choices, gold: goldIndex(env, r, i, af, choices), context: fillTemplate(template, { ...r, question }) };
  });
  const reqs = items.flatMap((it) => it.choices.map((c) => ({ context: it.context, continuation: ` ${c}` })));
  const answers = await env.loglikelihood(reqs);
  const examples: EvalExample[] = [];
  const acc: boolean[] = [];
  const accNorm: boolean[] = [];
  let k = 0;
  items.forEach((it, i) => {
    const lls = it.choices.map(() => answers[k++]!.logprob);
    const pred = argmax(lls);
    // acc_norm: each log-likelihood divided by its choice's length in characters (lm-evaluation-harness).
    const predNorm = argmax(lls.map((ll, j) => ll / it.choices[j]!.length));
    acc.push(pred === it.gold);
    accNorm.push(predNorm === it.gold);
    examples.push({ id: String(i), prompt: it.context, output: { logprobs: lls }, extracted: it.choices[pred], gold: it.choices[it.gold], passed: pred === it.gold, verdict: { acc_norm: predNorm === it.gold } });
  });
  return { primary: "acc", metrics: { acc: rateMetric(acc), acc_norm: rateMetric(accNorm) }, examples, limited: cut, itemTexts: items.map((it) => [it.question]) };
}

export async function generateAndCheck(env: TaskEnv): Promise<TaskOutcome> {
  const p = env.params;
  const af = String(p["answer"]);
  const match = String(p["match"] ?? "exact");
  const re = match === "exact" ? undefined : new RegExp(match, "u");
  const stop = (p["stop"] as string[] | undefined) ?? [];
  const { rows, limited: cut } = limited(await env.rows("data"), p["limit"]);
  const items = rows.map((r, i) => {
    const gold = r[af];
    if (typeof gold !== "string" && typeof gold !== "number") throw env.rowError("data", i, `field \`${af}\` is ${gold === undefined ? "missing" : "not a string or a number"}`);
    return { prompt: fillTemplate(String(p["prompt"]), r), gold: String(gold) };
  });
  const answers = await env.generate(items.map((it) => ({ turns: [{ role: "user" as const, content: it.prompt }], stop, ...(typeof p["max_tokens"] === "number" ? { max_tokens: p["max_tokens"] } : {}) })));
  const passed: boolean[] = [];
  const examples = items.map((it, i): EvalExample => {
    const { prompt, result } = answers[i]!;
    let extracted: string | null = result.text.trim();
    if (re) {
      const m = re.exec(result.text);
      extracted = m ? (m[1] ?? m[0]).trim() : null;
    }
    const ok = extracted !== null && extracted === it.gold.trim();
    passed.push(ok);
    return { id: String(i), prompt, output: result.text, extracted, gold: it.gold, passed: ok };
  });
  return { primary: "acc", metrics: { acc: rateMetric(passed) }, examples, limited: cut, itemTexts: items.map((it) => [it.prompt]) };
}
