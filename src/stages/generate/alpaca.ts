import { openModelSession } from "../support/model-session.js";
import type { StageContext, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import { ALPACA_EXTRA_BLOCKLIST, SELF_INSTRUCT_BLOCKLIST } from "../common.js";
import { fillTemplate } from "../support/chat-formats.js";
import { selfInstructVerdict } from "../support/self-instruct-rules.js";
import { requestOf, userMessages } from "./generate.js";
import { collapseSpace, promptParam, RougePool, sampleItems, seededRandom, textField, untilTarget } from "./method-support.js";
import { asyncImpl, dataInput } from "../support/records.js";

/**
 * `generate_alpaca`: Stanford Alpaca's data generation (tatsu-lab/stanford_alpaca, generate_instruction.py). Each
 * call shows `seeds_per_prompt` seed tasks, drawn at random from the seeds only, in Alpaca's numbered block format
 * and asks for `per_call` new tasks in the same format; the answer is split into blocks the Alpaca way, each block's
 * instruction passes the Self-Instruct rules with Alpaca's larger blocklist and then ROUGE-L F1 <= rouge_max against
 * every instruction so far (seeds included), and joins that pool. One instance per instruction; the loop stops at
 * exactly `target` records.
 */

/**
 * The default generation prompt. It must elicit `{count}` new tasks, varied in kind and wording, doable by a
 * text-only model, each written as a block "N. Instruction: / N. Input: / N. Output:" with "<noinput>" for a task
 * that needs no input and "###" between blocks, which is what {@link parseAlpacaBlocks} reads. `{examples}` holds
 * the seed tasks in that format.
 */
export const ALPACA_PROMPT = `You are writing tasks for a dataset that teaches an AI assistant to follow instructions. Write {count} new tasks, each with an instruction, an input and an output.

What makes a good set of tasks:
1. Each task is different from the others: different verbs, different sentence patterns, different topics.
2. Many kinds of task appear: open questions, writing, rewriting, summarizing, classifying, extracting, brainstorming, reasoning, advice, code.
3. An instruction is one or two sentences of English, either a command or a question.
4. A text-only assistant can carry the task out: nothing that needs seeing, hearing, browsing or acting in the world.
5. A task has an input only when it needs one (a passage, a list, a sentence to work on): then the input is concrete and under 100 words. Otherwise its input is <noinput>. About two tasks in five have an input.
6. The output is a complete, correct response to the instruction and input, in under 100 words.

Write every task in exactly this form, with ### on a line of its own before each one, numbering on from the examples:
###
N. Instruction: <the instruction>
N. Input:
<the input, or <noinput>>
N. Output:
<the output>

The examples:
{examples}`;

/** The seed tasks shown in a prompt, as Alpaca encodes them (instruction on one line without a trailing colon). */
export function alpacaExamples(tasks: readonly { instruction: string; input: string; output: string }[]): string {
  return tasks
    .map((t, i) => {
      const instruction = collapseSpace(t.instruction).replace(/:+$/, "");
      const input = t.input === "" ? "<noinput>" : t.input;
      return `###\n${i + 1}. Instruction: ${instruction}\n${i + 1}. Input:\n${input}\n${i + 1}. Output:\n${t.output}\n`;
    })
    .join("");
}

export interface AlpacaTask {
  instruction: string;
  input: string;
  output: string;
}

/**
 * Tasks from an answer, the Alpaca way: the answer is cut at "###" (and, for answers that leave the separators
 * out, before each "N. Instruction:" line); a block is a task when it holds exactly the labels "N. Instruction:",
 * "N. Input:", "N. Output:" in that order with one N; an input of "<noinput>" (any case) is empty. When the answer
 * was cut by max_tokens its last block is dropped, complete or not, as Alpaca does. A first block without any label
 * is a preamble ("Here are 20 tasks:") and skipped; other blocks that are not tasks are returned as problems.
 *
 * Alpaca's own parser expects the numbers to continue its prompt's (it prefills "4. Instruction:"); a chat model
 * writes its own numbering, so any N is taken as long as a block's three labels agree.
 */
export function parseAlpacaBlocks(text: string, cutByLength: boolean): { tasks: AlpacaTask[]; problems: { block: string; reason: string }[] } {
  const pieces = text.split(/###|\n(?=[ \t]*\d+\.\s+Instruction:)/);
  const tasks: AlpacaTask[] = [];
  const problems: { block: string; reason: string }[] = [];
  let last = pieces.length - 1;
  while (last >= 0 && pieces[last]!.trim() === "") last--;
  let seenContent = false;
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i]!;
    if (piece.trim() === "") continue;
    const first = !seenContent;
    seenContent = true;
    if (i === last && cutByLength) {
      problems.push({ block: piece.trim(), reason: "cut by length" });
      continue;
    }
    const labels = [...piece.matchAll(/(\d+)\.\s+(Instruction|Input|Output):/g)];
    if (labels.length === 0 && first) continue;
    const [a, b, c] = labels;
    if (labels.length !== 3 || a![2] !== "Instruction" || b![2] !== "Input" || c![2] !== "Output" || a![1] !== b![1] || b![1] !== c![1]) {
      problems.push({ block: piece.trim(), reason: "malformed task block" });
      continue;
    }
    const input = piece.slice(b!.index! + b![0].length, c!.index).trim();
    tasks.push({
      instruction: piece.slice(a!.index! + a![0].length, b!.index).trim(),
      input: input.toLowerCase() === "<noinput>" ? "" : input,
      output: piece.slice(c!.index! + c![0].length).trim(),
    });
  }
  return { tasks, problems };
}

/** Seed tasks as Alpaca reads them: instruction, input ("" when absent) and output of each record. */
export async function readSeedTasks(ctx: StageContext, role = "seeds"): Promise<AlpacaTask[]> {
  const seeds: AlpacaTask[] = [];
  for await (const r of dataInput(ctx, role).read()) {
    const where = `seed record ${seeds.length + 1}`;
    const input = r["input"];
    seeds.push({
      instruction: textField(ctx, r, "instruction", where),
      input: typeof input === "string" ? input : "",
      output: typeof r["output"] === "string" ? r["output"] : "",
    });
  }
  return seeds;
}

export const alpacaImpls: Record<string, StageImpl> = {
  generate_alpaca: asyncImpl(async (ctx, out) => {
    const target = Number(ctx.params["target"] ?? 52_000);
    const perCall = Number(ctx.params["per_call"] ?? 20);
    const perPrompt = Number(ctx.params["seeds_per_prompt"] ?? 3);
    const max = Number(ctx.params["rouge_max"] ?? 0.7);
    const seed = Number(ctx.params["seed"] ?? 42);
    const prompt = promptParam(ctx, "prompt", ALPACA_PROMPT, ["examples", "count"]);
    const seeds = await readSeedTasks(ctx);
    if (seeds.length < perPrompt) {
      throw new UserError(`stage \`${ctx.stage.id}\`: generate_alpaca shows ${perPrompt} seed tasks per prompt but has ${seeds.length}`, "give more seed tasks, or lower seeds_per_prompt");
    }
    const session = await openModelSession(ctx);
    const verdict = selfInstructVerdict({
      minWords: 4,
      maxWords: 150,
      words: [...SELF_INSTRUCT_BLOCKLIST, ...ALPACA_EXTRA_BLOCKLIST],
      blockedPrefixes: ["Write a program"],
      dropPunctuationStart: true,
      dropNonAsciiStart: true,
    });
    const pool = new RougePool(max);
    for (const s of seeds) pool.add(s.instruction);
    const poolName = (q: number) => (q < seeds.length ? `seed ${q + 1}` : `generated ${q - seeds.length + 1}`);
    let written = 0;

    await untilTarget(ctx, session, {
      target,
      written: () => written,
      what: "instructions",
      hint: "check the prompt against what the model answers (itp show --dropped lists the answers and why each task was dropped)",
      call: (k) => {
        // Examples from the seed tasks only, as Alpaca samples them; the call number is the sample index, so a prompt
        // that happens to repeat is still a new sample.
        const shown = sampleItems(seededRandom(seed, k), seeds, perPrompt);
        const text = fillTemplate(prompt, { examples: alpacaExamples(shown), count: String(perCall) });
        return session.ask(requestOf(ctx, userMessages(undefined, text)), k);
      },
      take: async (a, k) => {
        const at = `call ${k + 1}`;
        const { tasks, problems } = parseAlpacaBlocks(a.text, a.finish_reason === "length");
        if (tasks.length === 0 && problems.length === 0) ctx.drop({ answer: a.text }, "unparsable answer: no task blocks", at);
        for (const p of problems) ctx.drop({ block: p.block }, p.reason, at);
        let n = 0;
        for (const t of tasks) {
          if (written >= target) break;
          const why = verdict(t.instruction);
          if (why !== undefined) {
            ctx.drop({ ...t }, why, at);
            continue;
          }
          const near = pool.similar(t.instruction);
          if (near) {
            ctx.drop({ ...t }, "ROUGE-L above max", `${at}: F1 ${near.f1.toFixed(3)} with ${poolName(near.index)}`);
            continue;
          }
          pool.add(t.instruction);
          await out.write({ instruction: t.instruction, input: t.input, output: t.output });
          written++;
          n++;
        }
        return n;
      },
    });
    await session.finish();
    ctx.count("records", written);
  }),
};
