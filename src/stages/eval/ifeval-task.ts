import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import { ifevalCheckers, ifevalMetrics, ifevalVerdict, type IfevalItem, type IfevalKwargs } from "./scoring.js";
import { metricOf, type EvalExample, type Metric } from "./report.js";
import { limited, stringField, stringsField, type TaskEnv, type TaskOutcome } from "./task-env.js";

/**
 * IFEval: the prompt alone, greedy generation, then the 25 verifiable instructions checked on the response, strictly
 * and loosely. Prompt-level and instruction-level accuracy, strict and/or loose, and the accuracy of each instruction
 * id; every example keeps each instruction's two verdicts.
 */

function ifevalRow(env: TaskEnv, r: RecordValue, i: number): IfevalItem & { key: string } {
  const prompt = stringField(env, "data", r, i, "prompt");
  const ids = stringsField(env, "data", r, i, "instruction_id_list");
  const kwargs = r["kwargs"];
  if (!Array.isArray(kwargs) || kwargs.some((k) => k === null || typeof k !== "object" || Array.isArray(k))) throw env.rowError("data", i, "field `kwargs` is not a list of objects (one per instruction)");
  const item = { key: String(r["key"] ?? i), prompt, instruction_id_list: ids, kwargs: kwargs as IfevalKwargs[] };
  try {
    ifevalCheckers(item); // unknown ids and bad arguments are the data's error, before anything is asked
  } catch (e) {
    throw env.rowError("data", i, (e as Error).message, e instanceof UserError ? e.hint : undefined);
  }
  return item;
}


export async function ifeval(env: TaskEnv): Promise<TaskOutcome> {
  const p = env.params;
  const mode = String(p["mode"] ?? "both");
  const { rows, limited: cut } = limited(await env.rows("data"), p["limit"]);
  const items = rows.map((r, i) => ifevalRow(env, r, i));
  const answers = await env.generate(items.map((it) => ({ turns: [{ role: "user" as const, content: it.prompt }], stop: [] })));
  const scored = items.map((it, i) => ({ instruction_id_list: it.instruction_id_list, ...ifevalVerdict(it, answers[i]!.result.text) }));
  const m = ifevalMetrics(scored);
  const metrics: Record<string, Metric> = {};
  const strict = mode !== "loose";
  const loose = mode !== "strict";
  if (strict) {
    metrics["prompt_level_strict_acc"] = metricOf(m.prompt_level_strict_acc);
    metrics["inst_level_strict_acc"] = metricOf(m.inst_level_strict_acc);
  }
  if (loose) {
    metrics["prompt_level_loose_acc"] = metricOf(m.prompt_level_loose_acc);
    metrics["inst_level_loose_acc"] = metricOf(m.inst_level_loose_acc);
  }
  for (const [id, a] of Object.entries(m.per_instruction)) {
    if (strict) metrics[`strict:${id}`] = { value: a.strict, stderr: null, n: a.n };
    if (loose) metrics[`loose:${id}`] = { value: a.loose, stderr: null, n: a.n };
  }
  const examples: EvalExample[] = items.map((it, i) => {
    const s = scored[i]!;
    return {
      id: it.key,
      prompt: answers[i]!.prompt,
      output: answers[i]!.result.text,
      passed: strict ? s.strict.every(Boolean) : s.loose.every(Boolean),
      verdict: Object.fromEntries(it.instruction_id_list.map((id, k) => [`${k}:${id}`, { strict: s.strict[k], loose: s.loose[k], kwargs: it.kwargs[k] }])),
    };
  });
  return { primary: strict ? "prompt_level_strict_acc" : "prompt_level_loose_acc", metrics, examples, limited: cut, itemTexts: items.map((it) => [it.prompt]) };
}
