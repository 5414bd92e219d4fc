// MT-Bench single-answer grading as FastChat runs it (fastchat/llm_judge/common.py run_judge_single,
// gen_judgment.py, show_result.py): turn 1 is graded with "single-v1" on the first question and answer, turn 2 with
// "single-v1-multi-turn" on the whole two-turn conversation; questions of the categories math, reasoning and coding
// (FastChat's NEED_REF_CATS) are reference-guided with "single-math-v1" and "single-math-v1-multi-turn". The judge
// (temperature 0, at most 2048 tokens) gets the template's system prompt and the filled user prompt. Its rating is
// the first "[[n]]" (an integer or a decimal), else the first "[n]", else -1 (unparsed). Scores are means over the
// ratings that parsed, per turn, per category and overall (show_result.py drops score -1 rows).
import { UserError } from "../../core/errors.js";
import { type MtBenchJudgeTemplate, SINGLE_MATH_V1, SINGLE_MATH_V1_MULTI_TURN, SINGLE_V1, SINGLE_V1_MULTI_TURN } from "./mt-bench-prompts.js";
import { mean, meanStderr } from "./stderr.js";

/** The 8 categories of MT-Bench's 80 questions. */
export const MT_BENCH_CATEGORIES: readonly string[] = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"];
/** Categories graded against reference answers (FastChat's NEED_REF_CATS). */
export const MT_BENCH_REFERENCE_CATEGORIES: readonly string[] = ["math", "reasoning", "coding", "arena-hard-200"];
/** The judge's sampling in FastChat: greedy, at most 2048 tokens. */
export const MT_BENCH_JUDGE_TEMPERATURE = 0;
export const MT_BENCH_JUDGE_MAX_TOKENS = 2048;

/** One row of MT-Bench's question.jsonl; `reference` holds the reference answers per turn (math, reasoning, coding). */
export interface MtBenchQuestion {
  readonly question_id: number | string;
  readonly category: string;
  readonly turns: readonly string[];
  readonly reference?: readonly string[];
}

/** What to send the judge for one turn. */
export interface MtBenchJudgePrompt {
  /** The FastChat template used ("single-v1", "single-math-v1-multi-turn", ...). */
  readonly judge: string;
  readonly system: string;
  readonly user: string;
  readonly messages: readonly { readonly role: "system" | "user"; readonly content: string }[];
}

export function needsReference(category: string): boolean {
  return MT_BENCH_REFERENCE_CATEGORIES.includes(category);
}

/** Python's str.format on a template: each `{name}` replaced once (the inserted texts are not scanned again). */
function format(template: string, fields: Readonly<Record<string, string>>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = fields[name];
    if (v === undefined) throw new Error(`judge template field {${name}} has no value`);
    return v;
  });
}

/** The judge prompt for turn 1 or 2 of `question`, given the model's answers (both turns for turn 2). */
export function mtBenchJudgePrompt(question: MtBenchQuestion, answers: readonly string[], turn: 1 | 2): MtBenchJudgePrompt {
  const where = `MT-Bench question ${question.question_id}`;
  if (question.turns.length < turn) throw new UserError(`${where} has ${question.turns.length} turn(s); turn ${turn} cannot be graded`);
  if (answers.length < turn) throw new UserError(`${where}: turn ${turn} needs ${turn} answer(s), got ${answers.length}`);
  const reference = needsReference(question.category);
  if (reference && (question.reference?.length ?? 0) < turn) {
    throw new UserError(
      `${where} (${question.category}) has no reference answer for turn ${turn}`,
      "math, reasoning and coding questions are graded against reference answers: give them in the question's `reference` list.",
    );
  }
  const ref = question.reference ?? [];
  let t: MtBenchJudgeTemplate;
  let fields: Record<string, string>;
  if (turn === 1) {
    t = reference ? SINGLE_MATH_V1 : SINGLE_V1;
    fields = { question: question.turns[0]!, answer: answers[0]!, ...(reference ? { ref_answer_1: ref[0]! } : {}) };
  } else {
    t = reference ? SINGLE_MATH_V1_MULTI_TURN : SINGLE_V1_MULTI_TURN;
    fields = {
      question_1: question.turns[0]!,
      question_2: question.turns[1]!,
      answer_1: answers[0]!,
      answer_2: answers[1]!,
      ...(reference ? { ref_answer_1: ref[0]!, ref_answer_2: ref[1]! } : {}),
    };
  }
  const user = format(t.template, fields);
  return { judge: t.name, system: t.system, user, messages: [{ role: "system", content: t.system }, { role: "user", content: user }] };
}

const ONE_SCORE = /\[\[([0-9]+\.?[0-9]*)\]\]/;
const ONE_SCORE_BACKUP = /\[([0-9]+\.?[0-9]*)\]/;

/** The judge's rating: the first "[[n]]", else the first "[n]", else -1 (unparsed). */
export function parseMtBenchRating(judgment: string): number {
  const m = ONE_SCORE.exec(judgment) ?? ONE_SCORE_BACKUP.exec(judgment);
  return m ? Number(m[1]) : -1;
}

export interface MtBenchRating {
  readonly category: string;
  readonly turn: 1 | 2;
  /** -1 when the judgment held no rating. */
  readonly rating: number;
}

export interface MtBenchScore {
  /** Mean rating. */
  readonly score: number;
  readonly stderr: number;
  /** Ratings counted (parsed ones). */
  readonly n: number;
}

export interface MtBenchScores {
  readonly overall: MtBenchScore;
  readonly turn1: MtBenchScore;
  readonly turn2: MtBenchScore;
  /** Per category, in MT_BENCH_CATEGORIES order then any other category by name. */
  readonly categories: Readonly<Record<string, MtBenchScore>>;
  /** Judgments with no rating (-1), left out of every mean. */
  readonly unparsed: number;
}

function score(ratings: readonly number[]): MtBenchScore {
  return { score: mean(ratings), stderr: meanStderr(ratings), n: ratings.length };
}

/** Per-turn, per-category and overall mean ratings, the unparsed ones excluded. */
export function mtBenchScores(ratings: readonly MtBenchRating[]): MtBenchScores {
  const valid = ratings.filter((r) => r.rating !== -1);
  const categories: Record<string, MtBenchScore> = {};
  const present = [...new Set(valid.map((r) => r.category))];
  const order = [...MT_BENCH_CATEGORIES.filter((c) => present.includes(c)), ...present.filter((c) => !MT_BENCH_CATEGORIES.includes(c)).sort()];
  for (const c of order) categories[c] = score(valid.filter((r) => r.category === c).map((r) => r.rating));
  return {
    overall: score(valid.map((r) => r.rating)),
    turn1: score(valid.filter((r) => r.turn === 1).map((r) => r.rating)),
    turn2: score(valid.filter((r) => r.turn === 2).map((r) => r.rating)),
    categories,
    unparsed: ratings.length - valid.length,
  };
}
