import { openModelSession } from "../support/model-session.js";
import { parseJsonAnswer, parseNumberedList, parseRegex, parseText, type Parsed } from "../../generate/parsers.js";
import type { ModelRequest } from "../../generate/backend.js";
import { IN_FLIGHT, orderedMap } from "../../generate/session.js";
import type { StageContext, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import { fillTemplate } from "../support/chat-formats.js";
import { asyncImpl, checkAbort, dataInput } from "../support/records.js";

/** The sampling parameters every generation stage declares, as a request (the messages filled in per call). */
export function requestOf(ctx: StageContext, messages: ModelRequest["messages"]): ModelRequest {
  const p = ctx.params;
  return {
    messages,
    temperature: Number(p["temperature"] ?? 0.7),
    top_p: Number(p["top_p"] ?? 1),
    max_tokens: Number(p["max_tokens"] ?? 1024),
    ...(Array.isArray(p["stop"]) && p["stop"].length > 0 ? { stop: p["stop"] as string[] } : {}),
    ...(typeof p["presence_penalty"] === "number" && p["presence_penalty"] !== 0 ? { presence_penalty: p["presence_penalty"] } : {}),
  };
}

/** A user message, after the system message when there is one. */
export function userMessages(system: unknown, content: string): ModelRequest["messages"] {
  return typeof system === "string" && system.length > 0
    ? [
        { role: "system", content: system },
        { role: "user", content },
      ]
    : [{ role: "user", content }];
}

function parserOf(ctx: StageContext): (answer: string) => Parsed {
  const field = String(ctx.params["output_field"] ?? "output");
  switch (ctx.params["parser"] ?? "text") {
    case "numbered_list":
      return (a) => parseNumberedList(a, field);
    case "json":
      return parseJsonAnswer;
    case "regex": {
      const re = new RegExp(String(ctx.params["pattern"]), "u");
      return (a) => parseRegex(a, re);
    }
    default:
      return (a) => parseText(a, field);
  }
}

/** Consecutive answers that yield no record before a target-driven loop gives up (rather than spin, paying). */
const BARREN_LIMIT = 50;

/**
 * `generate`: for each input record the prompt is filled and sent n times; each answer is parsed into records that
 * keep the input's fields. With no input, the prompt is sent again and again (sample 0, 1, 2, ...) until `target`
 * records exist. Output order is input order, then sample order, then the parser's order: never arrival order.
 */
const generate: StageImpl = asyncImpl(async (ctx, out) => {
  const session = await openModelSession(ctx);
  const parse = parserOf(ctx);
  const prompt = String(ctx.params["prompt"]);
  const n = Number(ctx.params["n"] ?? 1);
  const target = ctx.params["target"] as number | undefined;
  const input = ctx.inputs.get("data");
  if (!input && target === undefined) throw new UserError(`stage \`${ctx.stage.id}\`: generate with no input needs a target`, "set target = N: how many records to produce");
  let written = 0;
  let barren = 0;
  let lastAnswer = "";
  // With a target, launch only what the answers so far say is needed: the first answer alone (its yield unknown),
  // then as many as the mean records per answer leaves short of the target. Without one, everything is needed.
  let answers = 0;
  let yielded = 0;
  const more = (inFlight: number): boolean => {
    if (target === undefined) return true;
    if (answers === 0) return inFlight === 0;
    const mean = Math.max(yielded / answers, 1e-3);
    return written + inFlight * mean < target;
  };
  const emit = async (answer: string, base: RecordValue, at: string): Promise<boolean> => {
    lastAnswer = answer;
    const parsed = parse(answer);
    answers++;
    if (!("error" in parsed)) yielded += parsed.records.length;
    if ("error" in parsed) {
      ctx.drop({ ...base, answer }, `unparsable answer: ${parsed.error}`, at);
      barren++;
    } else {
      barren = 0;
      for (const r of parsed.records) {
        if (target !== undefined && written >= target) break;
        await out.write({ ...base, ...r });
        written++;
      }
    }
    if (written % 256 === 0) ctx.progress(written, target);
    if (target === undefined && barren > 0) return true;
    if (barren >= BARREN_LIMIT) {
      throw new UserError(
        `stage \`${ctx.stage.id}\`: ${BARREN_LIMIT} answers in a row gave no record (parser ${String(ctx.params["parser"] ?? "text")}); the last one began: ${JSON.stringify(lastAnswer.slice(0, 200))}`,
        "check the prompt and the parser against what the model answers (itp show --dropped lists the answers)",
      );
    }
    return target === undefined || written < target;
  };
  if (input) {
    // One job per (record, sample).
    async function* jobs() {
      let i = 0;
      for await (const r of input!.read()) {
        for (let k = 0; k < n; k++) yield { r, k, i };
        i++;
      }
    }
    await orderedMap(
      jobs(),
      { width: IN_FLIGHT, more, onFailure: () => session.abort() },
      (j) => session.ask(requestOf(ctx, userMessages(ctx.params["system"], fillTemplate(prompt, j.r))), j.k),
      (a, j) => emit(a.text, j.r, `record ${j.i + 1}, sample ${j.k + 1}`),
    );
  } else {
    const request = requestOf(ctx, userMessages(ctx.params["system"], prompt));
    function* samples() {
      for (let k = 0; ; k++) yield k;
    }
    await orderedMap(samples(), { width: IN_FLIGHT, more, onFailure: () => session.abort() }, (k) => (checkAbort(ctx), session.ask(request, k)), (a, k) => emit(a.text, {}, `sample ${k + 1}`));
  }
  await session.finish();
  ctx.count("records", written);
  if (target !== undefined && written < target) ctx.count("short of target", target - written);
  ctx.progress(written, target ?? written);
});

/**
 * Each instruction record answered by the stage's model (the user turn: promptOf), in input order; `use` gets the
 * trimmed answer, an empty answer is dropped and counted. What distill and spin_pairs share.
 */
async function answerEach(ctx: StageContext, use: (answer: string, r: RecordValue, idx: number) => Promise<void>): Promise<void> {
  const session = await openModelSession(ctx);
  let i = 0;
  await orderedMap(
    dataInput(ctx).read(),
    { width: IN_FLIGHT, onFailure: () => session.abort() },
    (r) => session.ask(requestOf(ctx, userMessages(ctx.params["system"], promptOf(r)))),
    async (a, r, idx) => {
      const text = a.text.trim();
      if (!text) ctx.drop(r, "empty answer", `record ${idx + 1}`);
      else await use(text, r, idx);
      if (++i % 256 === 0) ctx.progress(i, dataInput(ctx).records ?? undefined);
    },
  );
  await session.finish();
}

/** `distill`: each instruction answered by the teacher; its answer becomes the output. */
const distill: StageImpl = asyncImpl((ctx, out) => answerEach(ctx, (text, r) => out.write({ ...r, output: text })));

/** `spin_pairs`: the model's answer to each instruction becomes the rejected side of a preference, the SFT output the chosen. */
const spinPairs: StageImpl = asyncImpl((ctx, out) =>
  answerEach(ctx, async (text, r, idx) => {
    const gold = String(r["output"] ?? "");
    if (text === gold.trim()) ctx.drop({ ...r, answer: text }, "answer equals the SFT output", `record ${idx + 1}`);
    else await out.write({ prompt: promptOf(r), chosen: gold, rejected: text });
  }),
);

/** An instruction record as the user's turn: the instruction, then a blank line and the input when there is one. */
function promptOf(r: RecordValue): string {
  const input = typeof r["input"] === "string" ? r["input"].trim() : "";
  return input ? `${String(r["instruction"] ?? "")}\n\n${input}` : String(r["instruction"] ?? "");
}

export const generateImpls: Record<string, StageImpl> = { generate, distill, spin_pairs: spinPairs };
