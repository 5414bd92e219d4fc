import { openModelSession } from "../support/model-session.js";
import { readFile } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import type { ModelRequest } from "../../generate/backend.js";
import { IN_FLIGHT, orderedMap } from "../../generate/session.js";
import type { StageContext, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import { templatePlaceholders } from "../common.js";
import { fillTemplate } from "../support/chat-formats.js";
import { requestOf, userMessages } from "./generate.js";
import { instructionText, optionalSession, seededRandom } from "./method-support.js";
import { asyncImpl, dataInput } from "../support/records.js";
import { pyWords } from "../support/text.js";

/**
 * `evol_instruct`: Evol-Instruct (WizardLM). The pool starts as the input instructions (with their input, when they
 * have one, as part of the prompt). In each round every instruction of the pool is rewritten by an operation drawn
 * at random (in depth: add constraints, deepen, concretize, increase reasoning steps, complicate input; in breadth:
 * a new, rarer instruction of the same domain), answered, and checked by the elimination rules. A successful
 * evolution is written out and takes the instruction's place in the pool; a failed one is dropped (listed with its
 * reason) and the instruction goes back to the pool unchanged, to be evolved again next round. The output holds
 * every successful evolution of every round, round by round, in pool order.
 */

export const EVOL_OPERATIONS = ["add_constraints", "deepen", "concretize", "increase_reasoning", "complicate_input", "breadth"] as const;
export type EvolOperation = (typeof EVOL_OPERATIONS)[number];

/** What every rewrite prompt ends with: a self-contained instruction, and nothing but it, in the reply. */
const EVOL_TAIL = `The result must make sense on its own and be something a person or an AI could answer. Reply with the new instruction alone: no title, no label, no explanation.

Instruction:
{instruction}`;

/**
 * The default prompts of the operations. Each must elicit one rewritten instruction and nothing else: in depth,
 * harder in its own way while keeping what the instruction asks, adding at most {max_added_words} words
 * (WizardLM: 10 to 20); in breadth, a new instruction of the same domain, rarer, of similar length and complexity.
 */
export const EVOL_PROMPTS: Record<EvolOperation, string> = {
  add_constraints: `Rewrite the instruction below so that it is harder to carry out: add one more constraint or requirement that a good answer must meet, and keep everything it already asks for. Add no more than {max_added_words} words.\n\n${EVOL_TAIL}`,
  deepen: `Rewrite the instruction below so that it asks for more depth: where it asks about an issue, make it ask about that issue in more depth and breadth. Add no more than {max_added_words} words.\n\n${EVOL_TAIL}`,
  concretize: `Rewrite the instruction below so that it is more specific: replace its general concepts with more specific ones. Add no more than {max_added_words} words.\n\n${EVOL_TAIL}`,
  increase_reasoning: `Rewrite the instruction below so that it needs more steps of reasoning: if a few simple thoughts would answer it, make it ask explicitly for reasoning in several steps. Add no more than {max_added_words} words.\n\n${EVOL_TAIL}`,
  complicate_input: `Rewrite the instruction below so that it works on more complex input: give it data in a structured form to work on (a table, JSON, XML, SQL, code or a formula). Besides that data, add no more than {max_added_words} words.\n\n${EVOL_TAIL}`,
  breadth: `Take the instruction below as inspiration and write a brand-new instruction in the same domain but on a rarer, less common topic or task. Make it about as long and as complex as the instruction below.\n\n${EVOL_TAIL}`,
};

/**
 * Elimination rule 1's judge (WizardLM asks a model whether the two are equal). It must elicit one word: "Equal"
 * when the evolved instruction asks for the same thing with the same constraints, depth and breadth as the
 * original, "Different" when it brings something new.
 */
export const INFORMATION_GAIN_PROMPT = `Here are two instructions for an AI assistant. Do they ask for the same thing, with the same constraints and requirements and the same depth and breadth of inquiry? Answer with one word: Equal or Different.

First instruction:
{first}

Second instruction:
{second}`;

/** The judge's sampling: greedy and short. */
const JUDGE_SAMPLING = { temperature: 0, top_p: 1, max_tokens: 16 } as const;

/**
 * Words of the evolving prompts that an evolved instruction must not copy (rule 4): WizardLM's own labels, which
 * other prompt sets use, and the wording of this project's prompts.
 */
export const PROMPT_WORDS: readonly string[] = ["given prompt", "rewritten prompt", "created prompt", "#rewritten prompt#", "#given prompt#", "#created prompt#", "instruction below", "new instruction alone"];

/**
 * English stop words (function words: articles, pronouns, auxiliaries, prepositions, conjunctions, and the
 * fragments of contractions split at the apostrophe), for rule 3.
 */
export const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    "a about above after again against all am an and any are aren as at be because been before being below between both but by can " +
    "couldn d did didn do does doesn doing don down during each few for from further had hadn has hasn have haven having he her here " +
    "hers herself him himself his how i if in into is isn it its itself just ll m ma me mightn more most mustn my myself needn no nor " +
    "not now o of off on once only or other our ours ourselves out over own re s same shan she should shouldn so some such t than " +
    "that the their theirs them themselves then there these they this those through to too under until up ve very was wasn we were " +
    "weren what when where which while who whom why will with won wouldn y you your yours yourself yourselves"
  ).split(" "),
);

/** Rule 4: the first prompt phrase the evolved instruction copies (case-insensitive), or undefined. */
export function copiedPromptWords(instruction: string): string | undefined {
  const t = instruction.toLowerCase();
  return PROMPT_WORDS.find((w) => t.includes(w));
}

/** Rule 2: the answer says "sorry" and is under 80 words (the model struggled with the instruction). */
export function sorryAndShort(answer: string): boolean {
  return /sorry/i.test(answer) && pyWords(answer).length < 80;
}

/** Rule 3: the answer holds nothing but punctuation and stop words (an empty answer included). */
export function onlyStopWords(answer: string): boolean {
  const words = answer.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.every((w) => STOP_WORDS.has(w));
}

/** The information-gain judge's verdict: "different" (a gain), "equal" (none), or undefined when it says neither. */
export function parseEqualVerdict(text: string): "equal" | "different" | undefined {
  const t = text.toLowerCase();
  if (/\b(different|not equal|unequal|not the same)\b/.test(t)) return "different";
  if (/\b(equal|same)\b/.test(t)) return "equal";
  return undefined;
}

/**
 * Rules 2 to 4 on one evolution, in the order that costs least (rule 4 before the instruction is answered): the
 * reason it fails, or undefined. Rule 1 needs the judge and is the stage's.
 */
export function eliminationReason(instruction: string, answer: string | undefined): string | undefined {
  if (instruction.trim() === "") return "empty evolution";
  if (copiedPromptWords(instruction) !== undefined) return "copies words of the evolving prompt";
  if (answer === undefined) return undefined;
  if (sorryAndShort(answer)) return "answer says sorry in under 80 words";
  if (onlyStopWords(answer)) return "answer of only punctuation and stop words";
  return undefined;
}

/** The operation prompts: the defaults, with those of the `prompts` file (if any) in their place, checked. */
async function loadPrompts(ctx: StageContext): Promise<{ ops: Record<EvolOperation, string>; gain: string }> {
  const ops = { ...EVOL_PROMPTS };
  let gain = INFORMATION_GAIN_PROMPT;
  const file = ctx.params["prompts"];
  if (typeof file !== "string") return { ops, gain };
  const path = isAbsolute(file) ? file : resolve(ctx.baseDir, file);
  let given: unknown;
  try {
    given = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`stage \`${ctx.stage.id}\`: cannot read the prompts file ${file}: ${code ?? (e as Error).message}`, 'it is a JSON object {"add_constraints": "...", ...}, relative to the recipe\'s folder');
  }
  if (given === null || typeof given !== "object" || Array.isArray(given)) throw new UserError(`stage \`${ctx.stage.id}\`: ${file} is not a JSON object`, 'write {"add_constraints": "...", "breadth": "...", ...}');
  for (const [k, v] of Object.entries(given as Record<string, unknown>)) {
    const isOp = (EVOL_OPERATIONS as readonly string[]).includes(k);
    if (!isOp && k !== "information_gain") throw new UserError(`stage \`${ctx.stage.id}\`: ${file}: unknown prompt "${k}"`, `the keys are ${[...EVOL_OPERATIONS, "information_gain"].join(", ")}`);
    if (typeof v !== "string" || v.trim() === "") throw new UserError(`stage \`${ctx.stage.id}\`: ${file}: prompt "${k}" is not a non-empty string`);
    const allowed = isOp ? ["instruction", "max_added_words"] : ["first", "second"];
    const p = templatePlaceholders(v);
    const bad = "error" in p ? p.error : p.fields.filter((f) => !allowed.includes(f)).map((f) => `{${f}} is not filled (it fills ${allowed.map((a) => `{${a}}`).join(", ")})`)[0];
    if (bad) throw new UserError(`stage \`${ctx.stage.id}\`: ${file}: prompt "${k}": ${bad}`, 'write "{{" for a literal brace');
    if (isOp) ops[k as EvolOperation] = v;
    else gain = v;
  }
  return { ops, gain };
}

interface Outcome {
  operation: EvolOperation;
  evolved: string;
  answer: string;
  fail?: string;
}

export const evolInstructImpls: Record<string, StageImpl> = {
  evol_instruct: asyncImpl(
    async (ctx, out) => {
      const rounds = Number(ctx.params["rounds"] ?? 4);
      const operations = ((ctx.params["operations"] as EvolOperation[] | undefined) ?? [...EVOL_OPERATIONS]).slice();
      const maxAdded = String(ctx.params["max_added_words"] ?? 20);
      const answerOn = ctx.params["answer"] !== false;
      const eliminate = ctx.params["eliminate"] !== false;
      const seed = Number(ctx.params["seed"] ?? 42);
      const { ops, gain } = await loadPrompts(ctx);
      const session = await openModelSession(ctx);
      const judge = await optionalSession(ctx, "judge", session);

      // The pool: each instruction's current text, and its failures since it last evolved (the sample index of its
      // next rewrite, so that a retry of the same operation on the same text is a new sample, not the cached answer).
      const pool: { text: string; failures: number }[] = [];
      for await (const r of dataInput(ctx).read()) pool.push({ text: instructionText(r as RecordValue), failures: 0 });
      let evolved = 0;

      const evolve = async (item: { text: string; failures: number }, operation: EvolOperation): Promise<Outcome> => {
        const prompt = fillTemplate(ops[operation], { instruction: item.text, max_added_words: maxAdded });
        const text = (await session.ask(requestOf(ctx, userMessages(undefined, prompt)), item.failures)).text.trim();
        const o: Outcome = { operation, evolved: text, answer: "" };
        const early = text === "" ? "empty evolution" : eliminate ? eliminationReason(text, undefined) : undefined;
        if (early) return { ...o, fail: early };
        if (eliminate) {
          const req: ModelRequest = { messages: userMessages(undefined, fillTemplate(gain, { first: item.text, second: text })), ...JUDGE_SAMPLING };
          const verdict = parseEqualVerdict((await judge.ask(req)).text);
          if (verdict === undefined) return { ...o, fail: "unreadable information-gain verdict" };
          if (verdict === "equal") return { ...o, fail: "no information gain" };
        }
        if (!answerOn) return o;
        const answer = (await session.ask(requestOf(ctx, userMessages(undefined, text)))).text.trim();
        const late = eliminate ? eliminationReason(text, answer) : undefined;
        return late ? { ...o, answer, fail: late } : { ...o, answer };
      };

      for (let round = 1; round <= rounds; round++) {
        const items = pool.slice();
        let kept = 0;
        await orderedMap(
          items,
          { width: IN_FLIGHT, onFailure: () => session.abort() },
          (item, i) => evolve(item, operations[Math.floor(seededRandom(seed, round, i)() * operations.length)]!),
          async (o, item, i) => {
            if (o.fail !== undefined) {
              ctx.drop({ instruction: o.evolved, output: o.answer, original: item.text, operation: o.operation, round }, o.fail, `round ${round}, instruction ${i + 1} (${o.operation})`);
              pool[i] = { text: item.text, failures: item.failures + 1 };
              return;
            }
            await out.write({ instruction: o.evolved, output: o.answer });
            pool[i] = { text: o.evolved, failures: 0 };
            kept++;
            if (++evolved % 256 === 0) ctx.progress(evolved);
          },
        );
        ctx.count(`round ${round}: evolved`, kept);
      }
      await session.finish();
      if (judge !== session) await judge.finish();
      ctx.count("records", evolved);
    },
    { files: (p) => (typeof p["prompts"] === "string" ? [p["prompts"]] : []) },
  ),
};
