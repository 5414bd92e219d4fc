import { openModelSession } from "../support/model-session.js";
import type { ChatMessage } from "../../models/openai.js";
import { parseScore } from "../../generate/parsers.js";
import { IN_FLIGHT, ModelSession, orderedMap } from "../../generate/session.js";
import type { StageContext, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import { templatePlaceholders } from "../common.js";
import { fillTemplate } from "../support/chat-formats.js";
import { requestOf, userMessages } from "./generate.js";
import { instructionText, promptParam } from "./method-support.js";
import { transcriptOf } from "./self-chat.js";
import { asyncImpl, dataInput } from "../support/records.js";

/**
 * LLM-as-judge (`judge`) and Humpback's self-curation (`quality_filter`). Both read what a record asks and what was
 * answered: an Instruction's instruction (and input) and output, a Chat's turns before its last assistant message
 * and that message, a Preference's prompt; rubrics see them as {request} and {response} ({response_a} and
 * {response_b} when comparing), next to the record's own fields and {scale}.
 */

/** Ask the model to rate one record with a rubric over its request, its response and the scale. */
function askRating(ctx: StageContext, session: ModelSession, rubric: string, scale: number) {
  const fields = fieldsOf(rubric);
  // async: a record that cannot fill the rubric fails the map, not the caller of the mapper
  return async (r: RecordValue, i: number) => {
    const v = rubricValues(r, fields, { ...exchangeOf(r), scale: String(scale) });
    if ("missing" in v) throw missingError(ctx, r, i, v.missing, "rubric");
    return session.ask(requestOf(ctx, userMessages(undefined, fillTemplate(rubric, v.values))));
  };
}

/**
 * The default pointwise rubric. It must elicit a short explanation, then the score on its own last line as
 * "Score: N" with N from 1 to {scale}, which {@link judgeScore} reads.
 */
export const POINTWISE_RUBRIC = `You are reviewing an AI assistant's response to a user's request. Judge how helpful, correct and complete the response is and how closely it does what the request asks. Clear, honest writing counts in its favour; padding, evasion and invented facts count against it. Length alone is no merit.

[Request]
{request}

[Response]
{response}

Explain your judgement in two to four sentences. Then, on a last line of its own, rate the response from 1 (useless or wrong) to {scale} (as good as a response to this request can be), in the form "Score: N".`;

/**
 * The default pairwise rubric. It must elicit a short comparison, then the verdict on its own last line as
 * "Verdict: A", "Verdict: B" or "Verdict: tie", which {@link parseVerdict} reads.
 */
export const PAIRWISE_RUBRIC = `Two AI assistants answered the same user request. Decide which response serves the user better: more helpful, more correct, more complete, closer to what the request asks. Judge the content, not the length, and do not let the order in which the responses are shown sway you.

[Request]
{request}

[Response A]
{response_a}

[Response B]
{response_b}

Compare the two in two to four sentences. Then, on a last line of its own, give your verdict in the form "Verdict: A", "Verdict: B" or "Verdict: tie".`;

/**
 * The default self-curation rubric for Humpback's 5-point scale. It must elicit a short explanation and then
 * "Score: N": 5 for an answer an AI assistant should give, written as one, down to 1 for an answer that misses the
 * request. (Humpback's own prompt is prose of its authors; these are this project's words for the same scale.)
 */
export const CURATION_RUBRIC_5 = `Below is a request from a user and a candidate answer. Decide how good an example the answer is of the way an AI assistant should respond to this request, on this 5-point scale:
1: The answer misses the request: it is off topic, incomplete, or not a response to it at all.
2: The answer touches the request but leaves its main point unaddressed.
3: The answer addresses the request, but reads like a text copied from somewhere else (a blog post, a forum thread, a web page), not like an assistant's reply.
4: The answer is written from an assistant's point of view and addresses the request well, but could be more concise, focused or well organized.
5: The answer is a model assistant reply: focused on the request, complete, accurate, well written and free of irrelevant content.

[Request]
{request}

[Answer]
{response}

Explain your rating in one to three sentences. Then, on a last line of its own, write "Score: N" with N from 1 to 5.`;

/** The self-curation rubric for any other scale. */
export const CURATION_RUBRIC = `Below is a request from a user and a candidate answer. Rate how good an example the answer is of the way an AI assistant should respond to this request, from 1 (it misses the request, or is not a reply to it at all) to {scale} (a focused, complete, accurate and well-written assistant reply, free of irrelevant content). An answer that reads like a text copied from a web page rather than a reply to the user scores in the middle at best.

[Request]
{request}

[Answer]
{response}

Explain your rating in one to three sentences. Then, on a last line of its own, write "Score: N" with N from 1 to {scale}.`;

/**
 * A judge's score on a 1..scale rubric: MT-Bench's "[[N]]" (the last one) when the answer has it, otherwise the last
 * "Score: N" (or "N/scale", or a number alone on a line). Undefined when none is in range.
 */
export function judgeScore(answer: string, scale: number): number | undefined {
  const bracketed = [...answer.matchAll(/\[\[\s*(\d+(?:\.\d+)?)\s*\]\]/g)];
  if (bracketed.length > 0) {
    const v = Number(bracketed[bracketed.length - 1]![1]);
    if (v >= 1 && v <= scale) return v;
  }
  return parseScore(answer, scale);
}

/**
 * A pairwise verdict: the last "Verdict: A|B|tie" in the answer (MT-Bench's "[[A]]", "[[B]]" and "[[C]]" for a tie
 * are read too). Undefined when there is none.
 */
export function parseVerdict(answer: string): "A" | "B" | "tie" | undefined {
  const all = [...answer.matchAll(/verdict\s*[:=]?\s*[*"'[]*\s*(A|B|tie|draw)\b|\[\[\s*(A|B|C)\s*\]\]/gi)];
  if (all.length === 0) return undefined;
  const m = all[all.length - 1]!;
  const v = (m[1] ?? m[2])!.toLowerCase();
  return v === "a" ? "A" : v === "b" ? "B" : "tie";
}

/**
 * The preference of a pair judged in both orders (first shown as A, then second shown as A): 1 (the first
 * candidate), 2 (the second) or 1.5 (a tie). A preference that flips with the order is position bias, not a
 * preference, and counts as a tie (MT-Bench's rule for inconsistent swapped judgements).
 */
export function pairPreference(inOrder: "A" | "B" | "tie", swapped: "A" | "B" | "tie"): { preference: 1 | 1.5 | 2; consistent: boolean } {
  const first = inOrder === "A" ? 1 : inOrder === "B" ? 2 : 1.5;
  const second = swapped === "A" ? 2 : swapped === "B" ? 1 : 1.5;
  return first === second ? { preference: first, consistent: true } : { preference: 1.5, consistent: false };
}

/** The text of a response value: a string, or the last assistant message of a list of messages. */
function responseText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    for (let i = v.length - 1; i >= 0; i--) {
      const m = v[i] as { role?: unknown; content?: unknown };
      if (m?.role === "assistant" && typeof m.content === "string") return m.content;
    }
  }
  return undefined;
}

/**
 * What a record asks and what was answered. Instruction: the instruction (then a blank line and the input) and the
 * output. Chat: the turns before the last assistant message (one "[User]"/"[Assistant]" paragraph each, or the user
 * message alone when it is the only one) and that message. Otherwise the first of prompt, question, instruction,
 * and of output, response, completion.
 */
export function exchangeOf(r: RecordValue): { request?: string; response?: string } {
  const messages = r["messages"];
  if (Array.isArray(messages)) {
    const ms = messages.filter((m): m is ChatMessage => m !== null && typeof m === "object" && typeof (m as ChatMessage).content === "string");
    let last = -1;
    for (let i = ms.length - 1; i >= 0; i--)
      if (ms[i]!.role === "assistant") {
        last = i;
        break;
      }
    if (last < 0) return {};
    const before = ms.slice(0, last).filter((m) => m.role !== "system");
    const request = before.length === 1 && before[0]!.role === "user" ? before[0]!.content : transcriptOf(before);
    return { request, response: ms[last]!.content };
  }
  const out: { request?: string; response?: string } = {};
  if (typeof r["instruction"] === "string") out.request = instructionText(r);
  else
    for (const f of ["prompt", "question"])
      if (typeof r[f] === "string") {
        out.request = r[f] as string;
        break;
      }
  for (const f of ["output", "response", "completion"]) {
    const t = responseText(r[f]);
    if (t !== undefined) {
      out.response = t;
      break;
    }
  }
  return out;
}

/**
 * The values a rubric is filled with for one record, or the name of a placeholder the record cannot fill (checked
 * on every record: a record that lacks what the rubric reads is a user error, not a silent empty string).
 */
function rubricValues(r: RecordValue, fields: readonly string[], synthetic: Record<string, string | undefined>): { values: Record<string, unknown> } | { missing: string } {
  const values: Record<string, unknown> = { ...r, ...synthetic };
  for (const f of fields) if (values[f] === undefined) return { missing: f };
  return { values };
}

function missingError(ctx: StageContext, r: RecordValue, i: number, field: string, param: string): UserError {
  const synthetic = ["request", "response", "response_a", "response_b"].includes(field);
  return new UserError(
    `stage \`${ctx.stage.id}\`: record ${i + 1} cannot fill the ${param}'s {${field}} (it has ${Object.keys(r).join(", ") || "no fields"})`,
    synthetic
      ? `{${field}} is read from instruction/input and output, a chat's messages, or the candidates: give a ${param} with {field} placeholders that name fields of the records`
      : `name a field the records have, or write "{{" for a literal brace`,
  );
}

/** The placeholders of a rubric, for the per-record check. */
function fieldsOf(text: string): string[] {
  const p = templatePlaceholders(text);
  return "error" in p ? [] : [...new Set(p.fields)];
}

const pointwise = async (ctx: StageContext, session: ModelSession, write: (r: RecordValue) => Promise<void>): Promise<void> => {
  const scale = Number(ctx.params["scale"] ?? 5);
  const scoreField = String(ctx.params["score_field"] ?? "score");
  const rationaleField = String(ctx.params["rationale_field"] ?? "rationale");
  const min = typeof ctx.params["min_score"] === "number" ? ctx.params["min_score"] : undefined;
  const rubric = promptParam(ctx, "rubric", POINTWISE_RUBRIC, () => true);
  const input = dataInput(ctx);
  let kept = 0;
  let total = 0;
  await orderedMap(
    input.read(),
    { width: IN_FLIGHT, onFailure: () => session.abort() },
    askRating(ctx, session, rubric, scale),
    async (a, r, i) => {
      total++;
      const score = judgeScore(a.text, scale);
      const rationale = a.text.trim();
      if (score === undefined) ctx.drop({ ...r, [rationaleField]: rationale }, "unreadable score", `record ${i + 1}`);
      else if (min !== undefined && score < min) ctx.drop({ ...r, [scoreField]: score, [rationaleField]: rationale }, "score below min_score", `record ${i + 1}: score ${score} of ${scale}`);
      else {
        await write({ ...r, [scoreField]: score, [rationaleField]: rationale });
        kept++;
      }
      if (total % 256 === 0) ctx.progress(total, input.records ?? undefined);
    },
  );
  ctx.count("records", kept);
};

const pairwise = async (ctx: StageContext, session: ModelSession, write: (r: RecordValue) => Promise<void>): Promise<void> => {
  const [first, second] = ctx.params["candidates"] as [string, string];
  const scoreField = String(ctx.params["score_field"] ?? "score");
  const rationaleField = String(ctx.params["rationale_field"] ?? "rationale");
  const min = typeof ctx.params["min_score"] === "number" ? ctx.params["min_score"] : undefined;
  const rubric = promptParam(ctx, "rubric", PAIRWISE_RUBRIC, () => true);
  const fields = fieldsOf(rubric);
  const input = dataInput(ctx);
  let kept = 0;
  let total = 0;
  let inconsistent = 0;
  const tally = { first: 0, second: 0, tie: 0 };
  await orderedMap(
    input.read(),
    { width: IN_FLIGHT, onFailure: () => session.abort() },
    async (r, i) => {
      const a = responseText(r[first]);
      const b = responseText(r[second]);
      if (a === undefined) throw missingError(ctx, r, i, first, "candidates");
      if (b === undefined) throw missingError(ctx, r, i, second, "candidates");
      const { request } = exchangeOf(r);
      const ask = (x: string, y: string) => {
        const v = rubricValues(r, fields, { request, response_a: x, response_b: y });
        if ("missing" in v) throw missingError(ctx, r, i, v.missing, "rubric");
        return session.ask(requestOf(ctx, userMessages(undefined, fillTemplate(rubric, v.values))));
      };
      // Both orders: the first candidate shown as A, then as B.
      const [inOrder, swapped] = await Promise.all([ask(a, b), ask(b, a)]);
      return { inOrder: inOrder.text, swapped: swapped.text };
    },
    async (o, r, i) => {
      total++;
      const rationale = [o.inOrder.trim(), o.swapped.trim()];
      const v1 = parseVerdict(o.inOrder);
      const v2 = parseVerdict(o.swapped);
      if (v1 === undefined || v2 === undefined) {
        ctx.drop({ ...r, [rationaleField]: rationale }, "unreadable verdict", `record ${i + 1}, ${v1 === undefined ? "candidates in order" : "candidates swapped"}`);
        return;
      }
      const { preference, consistent } = pairPreference(v1, v2);
      if (!consistent) inconsistent++;
      tally[preference === 1 ? "first" : preference === 2 ? "second" : "tie"]++;
      if (min !== undefined && preference < min) ctx.drop({ ...r, [scoreField]: preference, [rationaleField]: rationale }, "score below min_score", `record ${i + 1}: preference ${preference}`);
      else {
        await write({ ...r, [scoreField]: preference, [rationaleField]: rationale });
        kept++;
      }
      if (total % 256 === 0) ctx.progress(total, input.records ?? undefined);
    },
  );
  ctx.count(`preferred: ${first}`, tally.first);
  ctx.count(`preferred: ${second}`, tally.second);
  ctx.count("preferred: tie", tally.tie);
  if (inconsistent > 0) ctx.count("ties by inconsistent order", inconsistent);
  ctx.count("records", kept);
};

export const judgeImpls: Record<string, StageImpl> = {
  /**
   * `judge`: pointwise, each record gets the judge's score (score_field) and its whole answer (rationale_field);
   * pairwise, both orders are asked and the record gets the preference and the two answers (in order, swapped).
   * With min_score, lower records are dropped, listed with the score and the rationale.
   */
  judge: asyncImpl(async (ctx, out) => {
    const session = await openModelSession(ctx);
    const write = (r: RecordValue) => out.write(r);
    if (ctx.params["mode"] === "pairwise") await pairwise(ctx, session, write);
    else await pointwise(ctx, session, write);
    await session.finish();
  }),

  /**
   * `quality_filter`: Humpback's self-curation. The model rates each record on 1..scale; records rated min_score or
   * more are kept unchanged, the others dropped with their score and the rater's words (an unreadable rating is
   * dropped too, with the answer). The manifest counts the ratings given.
   */
  quality_filter: asyncImpl(async (ctx, out) => {
    const scale = Number(ctx.params["scale"] ?? 5);
    const min = Number(ctx.params["min_score"] ?? 5);
    const rubric = promptParam(ctx, "rubric", scale === 5 ? CURATION_RUBRIC_5 : CURATION_RUBRIC, () => true);
    const session = await openModelSession(ctx);
    const input = dataInput(ctx);
    const ratings = new Map<number, number>();
    let kept = 0;
    let total = 0;
    await orderedMap(
      input.read(),
      { width: IN_FLIGHT, onFailure: () => session.abort() },
      askRating(ctx, session, rubric, scale),
      async (a, r, i) => {
        total++;
        const score = judgeScore(a.text, scale);
        const rationale = a.text.trim();
        if (score === undefined) ctx.drop({ ...r, rationale }, "unreadable score", `record ${i + 1}`);
        else {
          ratings.set(score, (ratings.get(score) ?? 0) + 1);
          if (score < min) ctx.drop({ ...r, score, rationale }, "score below min_score", `record ${i + 1}: score ${score} of ${scale}`);
          else {
            await out.write(r);
            kept++;
          }
        }
        if (total % 256 === 0) ctx.progress(total, input.records ?? undefined);
      },
    );
    await session.finish();
    if (scale <= 10) for (const s of [...ratings.keys()].sort((x, y) => x - y)) ctx.count(`rated ${s}`, ratings.get(s)!);
    ctx.count("kept", kept);
  }),
};
