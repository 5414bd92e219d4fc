import type { RecordValue } from "../../core/records.js";
import { MT_BENCH_JUDGE_MAX_TOKENS, MT_BENCH_JUDGE_TEMPERATURE, mtBenchJudgePrompt, mtBenchScores, parseMtBenchRating, type MtBenchQuestion, type MtBenchScore } from "./scoring.js";
import type { EvalExample, Metric } from "./report.js";
import { limited, stringField, stringsField, type TaskEnv, type TaskOutcome, type Turn } from "./task-env.js";

/**
 * MT-Bench: the model answers the first turn, then the second with its first answer in the conversation; the judge
 * rates each turn 1-10 with FastChat's single-answer prompts (reference-guided for math, reasoning and coding).
 * Scores: overall, per turn and per category; every example keeps both answers and both judgements.
 */

function question(env: TaskEnv, r: RecordValue, i: number): MtBenchQuestion {
  const turns = stringsField(env, "data", r, i, "turns");
  if (turns.length !== 2) throw env.rowError("data", i, `has ${turns.length} turn(s); MT-Bench questions have 2`);
  const id = r["question_id"];
  const reference = r["reference"];
  if (reference !== undefined && reference !== null && !(Array.isArray(reference) && reference.every((x) => typeof x === "string"))) throw env.rowError("data", i, "field `reference` is not a list of strings");
  return { question_id: typeof id === "number" || typeof id === "string" ? id : i + 1, category: stringField(env, "data", r, i, "category"), turns, ...(Array.isArray(reference) ? { reference: reference as string[] } : {}) };
}

const metric = (s: MtBenchScore): Metric => ({ value: s.score, stderr: Number.isFinite(s.stderr) ? s.stderr : null, n: s.n });

export async function mtBench(env: TaskEnv): Promise<TaskOutcome> {
  const { rows, limited: cut } = limited(await env.rows("data"), env.params["limit"]);
  const qs = rows.map((r, i) => question(env, r, i));
  const first = await env.generate(qs.map((q) => ({ turns: [{ role: "user" as const, content: q.turns[0]! }], stop: [] })));
  const second = await env.generate(
    qs.map((q, i) => ({
      turns: [
        { role: "user", content: q.turns[0]! },
        { role: "assistant", content: first[i]!.result.text },
        { role: "user", content: q.turns[1]! },
      ] as Turn[],
      stop: [],
    })),
  );
  const judge = await env.judge("judge");
  const judged = await Promise.all(
    qs.map(async (q, i) => {
      const answers = [first[i]!.result.text, second[i]!.result.text];
      return Promise.all(
        ([1, 2] as const).map(async (turn) => {
          const jp = mtBenchJudgePrompt(q, answers, turn);
          const a = await judge.ask({ messages: jp.messages, temperature: MT_BENCH_JUDGE_TEMPERATURE, top_p: 1, max_tokens: MT_BENCH_JUDGE_MAX_TOKENS });
          return { judge: jp.judge, text: a.text, rating: parseMtBenchRating(a.text) };
        }),
      );
    }),
  );
  const scores = mtBenchScores(qs.flatMap((q, i) => judged[i]!.map((j, t) => ({ category: q.category, turn: (t + 1) as 1 | 2, rating: j.rating }))));
  const metrics: Record<string, Metric> = { score: metric(scores.overall), "score:turn1": metric(scores.turn1), "score:turn2": metric(scores.turn2) };
  for (const [c, s] of Object.entries(scores.categories)) metrics[`score:${c}`] = metric(s);
  const examples: EvalExample[] = qs.map((q, i) => ({
    id: String(q.question_id),
    prompt: [first[i]!.prompt, second[i]!.prompt],
    output: [first[i]!.result.text, second[i]!.result.text],
    ...(q.reference ? { gold: q.reference } : {}),
    verdict: { category: q.category, turns: judged[i]!.map((j) => ({ rating: j.rating === -1 ? null : j.rating, judge: j.judge, rationale: j.text })) },
  }));
  return { primary: "score", metrics, examples, limited: cut, ...(scores.unparsed > 0 ? { notes: { "unreadable ratings": scores.unparsed } } : {}), itemTexts: qs.map((q) => [...q.turns]) };
}
