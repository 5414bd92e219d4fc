import type { RecordValue } from "../../core/records.js";
import { MMLU_CONTINUATIONS, MMLU_LABELS, mmluAccuracy, mmluPrediction, renderMmluPrompt, type MmluItem, type MmluPromptStyle } from "./scoring.js";
import type { EvalExample, Metric } from "./report.js";
import { limited, stringField, stringsField, type TaskEnv, type TaskOutcome } from "./task-env.js";

/**
 * MMLU: for each question, the k-shot prompt of its subject (the first k dev rows of that subject as shots), and the
 * log-likelihoods of " A" .. " D" after it; the prediction is the most likely letter. Accuracy overall, per category
 * and per subject, pooled over questions (micro) and averaged over subjects (macro).
 */

interface Row extends MmluItem {
  readonly subject: string;
}

function mmluRow(env: TaskEnv, param: string, r: RecordValue, i: number): Row {
  const question = stringField(env, param, r, i, "question");
  const subject = stringField(env, param, r, i, "subject");
  const choices = stringsField(env, param, r, i, "choices");
  if (choices.length !== MMLU_LABELS.length) throw env.rowError(param, i, `has ${choices.length} choices; MMLU questions have ${MMLU_LABELS.length}`);
  const answer = r["answer"];
  if (typeof answer !== "number" || !Number.isInteger(answer) || answer < 0 || answer >= choices.length) throw env.rowError(param, i, `field \`answer\` (${JSON.stringify(answer)}) is not a choice index 0-3`);
  return { question, subject, choices, answer };
}

const acc = (a: { acc: number; stderr: number; n: number }): Metric => ({ value: a.acc, stderr: Number.isFinite(a.stderr) ? a.stderr : null, n: a.n });

export async function mmlu(env: TaskEnv): Promise<TaskOutcome> {
  const p = env.params;
  const shots = Number(p["shots"] ?? 5);
  const style = (p["style"] ?? "hendrycks") as MmluPromptStyle;
  let rows = (await env.rows("data")).map((r, i) => mmluRow(env, "data", r, i));
  const wanted = p["subjects"] as string[] | undefined;
  if (wanted) {
    const present = new Set(rows.map((r) => r.subject));
    const missing = wanted.filter((s) => !present.has(s));
    if (missing.length > 0) throw env.rowError("data", 0, `has no question of subject${missing.length === 1 ? "" : "s"} ${missing.join(", ")}`, `its subjects: ${[...present].sort().join(", ")}`);
    rows = rows.filter((r) => wanted.includes(r.subject));
  }
  const { rows: kept, limited: cut } = limited(rows, p["limit"]);
  // The shots of each subject: its first `shots` dev rows, in the dev set's order.
  const shotsOf = new Map<string, Row[]>();
  if (shots > 0) {
    (await env.rows("dev")).forEach((r, i) => {
      const row = mmluRow(env, "dev", r, i);
      const list = shotsOf.get(row.subject) ?? [];
      if (list.length < shots) list.push(row);
      shotsOf.set(row.subject, list);
    });
    for (const s of new Set(kept.map((r) => r.subject))) {
      const n = shotsOf.get(s)?.length ?? 0;
      if (n < shots) throw env.rowError("dev", 0, `has ${n} question(s) of subject ${s}; ${shots} shots need ${shots}`, "give the dev split of the same data, or fewer shots");
    }
  }
  const prompts = kept.map((r) => renderMmluPrompt(r.subject, shotsOf.get(r.subject) ?? [], r, { style }));
  const answers = await env.loglikelihood(prompts.flatMap((context) => MMLU_CONTINUATIONS.map((continuation) => ({ context, continuation }))));
  const perSubject = new Map<string, number>();
  const results: { subject: string; correct: boolean }[] = [];
  const examples: EvalExample[] = kept.map((r, i) => {
    const lps = MMLU_CONTINUATIONS.map((_, j) => answers[i * MMLU_CONTINUATIONS.length + j]!.logprob);
    const pred = mmluPrediction(lps);
    const k = perSubject.get(r.subject) ?? 0;
    perSubject.set(r.subject, k + 1);
    results.push({ subject: r.subject, correct: pred === r.answer });
    return {
      id: `${r.subject}/${k}`,
      prompt: prompts[i]!,
      output: Object.fromEntries(MMLU_LABELS.map((l, j) => [l, lps[j]])),
      extracted: MMLU_LABELS[pred],
      gold: MMLU_LABELS[r.answer],
      passed: pred === r.answer,
    };
  });
  const a = mmluAccuracy(results);
  const metrics: Record<string, Metric> = { acc: acc(a.overall.micro), acc_macro: acc(a.overall.macro) };
  for (const [c, g] of Object.entries(a.categories)) {
    metrics[`acc:${c}`] = acc(g!.micro);
    metrics[`acc_macro:${c}`] = acc(g!.macro);
  }
  for (const [s, x] of Object.entries(a.subjects)) metrics[`acc:${s}`] = acc(x);
  return { primary: "acc", metrics, examples, limited: cut, notes: { shots, subjects: Object.keys(a.subjects).length }, itemTexts: kept.map((r) => [r.question]) };
}
