import { openModelSession } from "../support/model-session.js";
import type { ModelRequest } from "../../generate/backend.js";
import { IN_FLIGHT, orderedMap } from "../../generate/session.js";
import type { StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import { SELF_INSTRUCT_BLOCKLIST } from "../common.js";
import { readSeedTasks } from "./alpaca.js";
import { fillTemplate } from "../support/chat-formats.js";
import { selfInstructVerdict } from "../support/self-instruct-rules.js";
import { requestOf, userMessages } from "./generate.js";
import { collapseSpace, promptParam, RougePool, sampleItems, seededRandom, shuffleItems, untilTarget } from "./method-support.js";
import { asyncImpl } from "../support/records.js";

/**
 * `self_instruct`: Self-Instruct's bootstrapping (yizhongw/self-instruct). Instructions first
 * (bootstrap_instructions.py): each call shows up to machine_per_prompt instructions generated so far and enough
 * seed instructions to make human_per_prompt + machine_per_prompt, shuffled, and asks for more; an answer cut by
 * max_tokens is dropped whole; each new instruction passes the Self-Instruct rules and ROUGE-L F1 <= rouge_max
 * against the seeds and every instruction kept so far, until exactly `target`. Then instances
 * (identify_clf_or_not.py, generate_instances.py, prepare_for_finetuning.py): a classification probe at temperature
 * 0 per instruction; classification tasks get their instances output-first (class label, then an input), the others
 * input-first; instances are cleaned (input == output, empty output, input or output ending with ":"; a task whose
 * same input has different outputs is dropped whole; duplicates) and at most max_instances_per_task kept per task,
 * drawn at random. One output record per instance.
 */

/**
 * The default instruction-generation prompt. It must elicit more tasks in the style of the numbered examples
 * (`{examples}`), varied in topic and kind, each one line, numbered on from the examples, with no blank line and no
 * other text: Self-Instruct's stop sequences ("\n\n", "\n16", ...) cut the answer at the first blank line.
 */
export const SELF_INSTRUCT_PROMPT = `Here is a numbered list of tasks that people have given an AI assistant:
{examples}
Add more tasks to the list. Make each one differ from the others in topic and in kind (questions, writing, rewriting, classification, reasoning, advice, ...), and state it in one or two sentences that can be acted on from the text alone. Continue the numbering, one task per line, with no blank lines and nothing else in your reply.`;

/**
 * The classification probe (asked at temperature 0, a few tokens). It must elicit "Yes" when the task's output is
 * one of a finite set of labels and "No" otherwise, from a few labelled examples of this project's own.
 */
export const CLASSIFY_PROBE = `Some tasks are classification tasks: their output is one label from a small, fixed set. Others ask for open-ended output. Answer Yes or No.

Task: Decide whether the movie review below is positive or negative.
Is it classification? Yes

Task: Write a short poem about the first day of spring.
Is it classification? No

Task: Which of the listed animals is a reptile?
Is it classification? Yes

Task: Explain how vaccines train the immune system.
Is it classification? No

Task: Label each email as spam or not spam.
Is it classification? Yes

Task: Suggest three names for a bakery that sells only sourdough bread.
Is it classification? No

Task: Is the following statement true or false?
Is it classification? Yes

Task: Translate the sentence into Spanish.
Is it classification? No

Task: {instruction}
Is it classification?`;

/**
 * Output-first instance generation, for classification tasks. It must elicit, for each possible class label, the
 * label and then an input of that class, as "Class label: <label>" followed by "Input: <input>" on the next line
 * (the input left out when the task needs none): Self-Instruct's format, which {@link parseClassificationInstances}
 * reads.
 */
export const OUTPUT_FIRST_PROMPT = `Below is a classification task. Write examples of it output first: for each class label the task can give, write the label, then an input that belongs to that class. When the task needs no input, write only the label. Write each example in this form and nothing else:
Class label: <the label>
Input: <an input of that class>

Task: {instruction}`;

/**
 * Input-first instance generation, for the other tasks. It must elicit up to `{count}` examples numbered
 * "Example 1", "Example 2", ..., each an "Input:" (left out when the task needs none) and an "Output:": the format
 * {@link parseGenerationInstances} reads.
 */
export const INPUT_FIRST_PROMPT = `Below is a task. Write up to {count} different examples of it, each an input the task works on and the correct output for that input. When the task needs no input, leave the Input line out and write just the output. Write each example in this form and nothing else:
Example 1
Input: <the input>
Output: <the output>

Task: {instruction}`;

export interface Instance {
  input: string;
  output: string;
}

const OUTPUT_LABEL = /Output\s*\d*\s*:/;
const INPUT_LABEL = /Input\s*\d*\s*:/;

/** prepare_for_finetuning.py's parse_input_output: input before the first "Output:", output up to any later "Input:". */
function inputOutput(text: string): Instance {
  let input = "";
  let output: string;
  if (OUTPUT_LABEL.test(text)) {
    const parts = text.split(OUTPUT_LABEL);
    input = parts[0]!.trim();
    output = parts[1]!.trim();
  } else output = text.trim();
  if (INPUT_LABEL.test(output)) output = output.split(INPUT_LABEL)[0]!.trim();
  input = input.replace(/^Input\s*\d*\s*:/, "").trim();
  return { input, output };
}

/** Instances of an input-first answer, as Self-Instruct reads them ("Example N" blocks, or one Input/Output pair). */
export function parseGenerationInstances(raw: string, cutByLength: boolean): Instance[] {
  const text = raw.trim();
  let out: Instance[];
  if (/Example\s?\d*\.?/.test(text)) {
    out = text
      .split(/Example\s?\d*\.?/)
      .map((t) => t.trim())
      .filter((t) => t !== "")
      .map(inputOutput);
  } else if (OUTPUT_LABEL.test(text)) out = [inputOutput(text)];
  else return [];
  return cutByLength ? out.slice(0, -1) : out;
}

/**
 * Instances of an output-first answer, as Self-Instruct reads them: after each "Class label:", the rest of its line
 * is the label (the output) and the lines after it the input. The "Input:" label our prompt asks for is removed.
 */
export function parseClassificationInstances(raw: string, cutByLength: boolean): Instance[] {
  if (!raw.includes("Class label:")) return [];
  const out = raw
    .split("Class label:")
    .slice(1)
    .map((piece) => {
      const t = piece.trim();
      const nl = t.indexOf("\n");
      const label = (nl < 0 ? t : t.slice(0, nl)).trim();
      const input = nl < 0 ? "" : t.slice(nl + 1).trim();
      return { input: input.replace(/^Input\s*\d*\s*:/, "").trim(), output: label };
    });
  return cutByLength ? out.slice(0, -1) : out;
}

/**
 * Self-Instruct's instance clean-up (filter_invalid_instances, then filter_duplicate_instances): the reason each
 * dropped instance went, or, when one non-empty input has different outputs, the whole task (`conflict`).
 */
export function cleanInstances(instances: readonly Instance[]): { kept: Instance[]; dropped: { instance: Instance; reason: string }[]; conflict: boolean } {
  const dropped: { instance: Instance; reason: string }[] = [];
  const valid: Instance[] = [];
  for (const x of instances) {
    if (x.input === x.output) dropped.push({ instance: x, reason: "instance: input equals output" });
    else if (x.output === "") dropped.push({ instance: x, reason: "instance: empty output" });
    else if (x.input.trim().endsWith(":") || x.output.trim().endsWith(":")) dropped.push({ instance: x, reason: "instance: ends with a colon" });
    else valid.push(x);
  }
  const outputs = new Map<string, string>();
  for (const x of valid) {
    if (x.input === "") continue;
    const o = outputs.get(x.input);
    if (o !== undefined && o !== x.output) return { kept: [], dropped, conflict: true };
    outputs.set(x.input, x.output);
  }
  const seen = new Set<string>();
  const kept: Instance[] = [];
  for (const x of valid) {
    const k = JSON.stringify([x.input, x.output]);
    if (seen.has(k)) dropped.push({ instance: x, reason: "instance: duplicate" });
    else {
      seen.add(k);
      kept.push(x);
    }
  }
  return { kept, dropped, conflict: false };
}

/**
 * The instructions of an instruction-generation answer: Self-Instruct splits at "\n<number>. " (its prompt ends
 * with the next number, so the answer's first piece is an instruction). A chat model writes the number itself: a
 * numbered first line is read as an item, and a first piece that ends with ":" is a preamble ("Here are more
 * tasks:"), skipped. Each instruction has its whitespace collapsed and its first letter capitalized (Self-Instruct
 * calls Python's `capitalize()`, which also lowercases the rest; the rest is kept here, for names and code).
 */
export function parseInstructionList(text: string): string[] {
  const pieces = ("\n" + text).split(/\n\d+\s?\.\s/);
  const out: string[] = [];
  pieces.forEach((p, i) => {
    const t = collapseSpace(p);
    if (t === "" || (i === 0 && t.endsWith(":"))) return;
    out.push(t.charAt(0).toUpperCase() + t.slice(1));
  });
  return out;
}

/** Sampling of the classification probe (identify_clf_or_not.py): greedy, a few tokens, one line. */
const PROBE_SAMPLING = { temperature: 0, top_p: 1, max_tokens: 3, stop: ["\n", "Task"] } as const;

/**
 * Sampling of instance generation (generate_instances.py): greedy, presence penalty 1.5, 300 tokens for
 * classification tasks (their prompt is longer) and 350 for the others, stopped before one example too many. (top_p
 * 0 there is the same as greedy; 1 here, which every server accepts.)
 */
function instanceRequest(messages: ModelRequest["messages"], clf: boolean, max: number): ModelRequest {
  return { messages, temperature: 0, top_p: 1, max_tokens: clf ? 300 : 350, presence_penalty: 1.5, stop: [`Example ${max + 1}`, "Task:"] };
}

/** Random draws of the instruction prompts and of the instance sample, kept apart. */
const PROMPTS = 1;
const INSTANCES = 2;

export const selfInstructImpls: Record<string, StageImpl> = {
  self_instruct: asyncImpl(async (ctx, out) => {
    const target = Number(ctx.params["target"] ?? 52_000);
    const humans = Number(ctx.params["human_per_prompt"] ?? 6);
    const machines = Number(ctx.params["machine_per_prompt"] ?? 2);
    const max = Number(ctx.params["rouge_max"] ?? 0.7);
    const maxInstances = Number(ctx.params["max_instances_per_task"] ?? 5);
    const classify = ctx.params["classify"] !== false;
    const seed = Number(ctx.params["seed"] ?? 42);
    const prompt = promptParam(ctx, "prompt", SELF_INSTRUCT_PROMPT, ["examples"]);
    const seeds = (await readSeedTasks(ctx)).map((t) => t.instruction);
    if (seeds.length < humans + machines) {
      throw new UserError(
        `stage \`${ctx.stage.id}\`: self_instruct shows ${humans + machines} instructions per prompt, all of them seeds until instructions are generated, but has ${seeds.length} seeds`,
        "give more seed tasks, or lower human_per_prompt and machine_per_prompt",
      );
    }
    const session = await openModelSession(ctx);
    const verdict = selfInstructVerdict({
      minWords: 4,
      maxWords: 150,
      words: SELF_INSTRUCT_BLOCKLIST,
      blockedPrefixes: ["Write a program"],
      dropPunctuationStart: true,
      dropNonAsciiStart: true,
    });
    const pool = new RougePool(max);
    for (const s of seeds) pool.add(s);
    const generated: string[] = [];
    const poolName = (q: number) => (q < seeds.length ? `seed ${q + 1}` : `generated ${q - seeds.length + 1}`);

    // 1. Instructions, until the target. The prompt of call k draws from the instructions kept when it is launched,
    // which the in-order delivery of answers makes the same on every run.
    await untilTarget(ctx, session, {
      target,
      written: () => generated.length,
      what: "instructions",
      hint: "check the prompt and the stop sequences against what the model answers: Self-Instruct's stop at the first blank line (itp show --dropped lists the answers)",
      call: (k) => {
        const random = seededRandom(seed, PROMPTS, k);
        const shown = sampleItems(random, generated, machines);
        shown.push(...sampleItems(random, seeds, humans + machines - shown.length));
        shuffleItems(random, shown);
        const examples = shown.map((s, i) => `${i + 1}. ${collapseSpace(s).replace(/:+$/, "")}`).join("\n");
        return session.ask(requestOf(ctx, userMessages(undefined, fillTemplate(prompt, { examples }))), k);
      },
      take: async (a, k) => {
        const at = `call ${k + 1}`;
        if (a.finish_reason === "length") {
          ctx.drop({ answer: a.text }, "cut by length", at);
          return 0;
        }
        const items = parseInstructionList(a.text);
        if (items.length === 0) ctx.drop({ answer: a.text }, "unparsable answer: no instructions", at);
        let n = 0;
        for (const inst of items) {
          if (generated.length >= target) break;
          const why = verdict(inst);
          if (why !== undefined) {
            ctx.drop({ instruction: inst }, why, at);
            continue;
          }
          const near = pool.similar(inst);
          if (near) {
            ctx.drop({ instruction: inst }, "ROUGE-L above max", `${at}: F1 ${near.f1.toFixed(3)} with ${poolName(near.index)}`);
            continue;
          }
          pool.add(inst);
          generated.push(inst);
          n++;
        }
        return n;
      },
    });
    ctx.count("instructions", generated.length);

    // 2. Instances of each instruction, in the instructions' order.
    let records = 0;
    let classification = 0;
    await orderedMap(
      generated,
      { width: IN_FLIGHT, onFailure: () => session.abort() },
      async (instruction) => {
        let clf = false;
        if (classify) {
          const probe = await session.ask({ messages: userMessages(undefined, fillTemplate(CLASSIFY_PROBE, { instruction })), ...PROBE_SAMPLING, stop: [...PROBE_SAMPLING.stop] });
          clf = /^\s*yes\b/i.test(probe.text);
        }
        const text = fillTemplate(clf ? OUTPUT_FIRST_PROMPT : INPUT_FIRST_PROMPT, { instruction, count: String(maxInstances) });
        return { clf, answer: await session.ask(instanceRequest(userMessages(undefined, text), clf, maxInstances)) };
      },
      async ({ clf, answer }, instruction, i) => {
        const at = `instruction ${i + 1}`;
        if (clf) classification++;
        const cut = answer.finish_reason === "length";
        const parsed = clf ? parseClassificationInstances(answer.text, cut) : parseGenerationInstances(answer.text, cut);
        if (parsed.length === 0) {
          ctx.drop({ instruction, answer: answer.text }, "task: no instances in the answer", at);
          return;
        }
        const { kept, dropped, conflict } = cleanInstances(parsed);
        for (const d of dropped) ctx.drop({ instruction, ...d.instance }, d.reason, at);
        if (conflict) {
          ctx.drop({ instruction, answer: answer.text }, "task: same input with different outputs", at);
          return;
        }
        // At most max_instances_per_task, drawn at random, kept in the answer's order.
        const chosen = new Set(sampleItems(seededRandom(seed, INSTANCES, i), [...kept.keys()], maxInstances));
        for (const [j, x] of kept.entries()) {
          if (!chosen.has(j)) {
            ctx.drop({ instruction, ...x }, "instance: beyond max_instances_per_task", at);
            continue;
          }
          await out.write({ instruction, input: x.input, output: x.output });
          records++;
        }
        if (i % 256 === 0) ctx.progress(i, generated.length);
      },
    );
    await session.finish();
    if (classify) ctx.count("classification tasks", classification);
    ctx.count("records", records);
  }),
};
