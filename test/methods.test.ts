import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alpacaExamples, parseAlpacaBlocks } from "../src/stages/generate/alpaca.js";
import { eliminationReason, onlyStopWords, parseEqualVerdict, sorryAndShort } from "../src/stages/generate/evol-instruct.js";
import { exchangeOf, judgeScore, pairPreference, parseVerdict } from "../src/stages/generate/judge.js";
import { RougePool, sampleItems, seededRandom } from "../src/stages/generate/method-support.js";
import { instructionOf } from "../src/stages/generate/backtranslate.js";
import { transcriptOf, userTurn } from "../src/stages/generate/self-chat.js";
import { cleanInstances, parseClassificationInstances, parseGenerationInstances, parseInstructionList } from "../src/stages/generate/self-instruct.js";
import { rougeLF1, rougeTokens, Vocabulary } from "../src/stages/support/text.js";
import { itpAsync, repoRoot, tempTree } from "./support/cli.js";
import { expectUserError } from "./support/user-error.js";
import { fault, faultRate, startOpenAIServer, type OpenAIServer, type ServerRequest } from "./support/openai-server.js";

// The synthetic-data methods (Alpaca, Self-Instruct, Evol-Instruct, self-chat, back-translation, self-curation,
// LLM-as-judge): the parsers and rules each one uses, then each method end to end through the CLI against the
// loopback OpenAI-compatible server, answering as a scripted model would: every answer is a function of the request
// (its text and its sample seed), so a rerun can be compared byte for byte.

// --- Rules and parsers -----------------------------------------------------------------------------------------

describe("Alpaca: prompt encoding and answer blocks", () => {
  it("encodes seed tasks the Alpaca way (collapsed instruction without trailing colon, <noinput>)", () => {
    const text = alpacaExamples([
      { instruction: "Sort  the\nlist:", input: "3, 1, 2", output: "1, 2, 3" },
      { instruction: "Name a color.", input: "", output: "Blue" },
    ]);
    expect(text).toBe("###\n1. Instruction: Sort the list\n1. Input:\n3, 1, 2\n1. Output:\n1, 2, 3\n###\n2. Instruction: Name a color.\n2. Input:\n<noinput>\n2. Output:\nBlue\n");
  });

  it("reads task blocks, skips a preamble, reports malformed blocks and drops the last block when cut by length", () => {
    const answer = `Here are the tasks:
###
4. Instruction: Give an example of a metaphor.
4. Input:
<NoInput>
4. Output:
Time is a thief.
###
5. Instruction: Translate the phrase into French.
5. Input:
Good morning
5. Output:
Bonjour
###
6. Instruction: Only an instruction here.
6. Output:
missing input label
###
7. Instruction: Summarize the passage.
7. Input:
A long passage
7. Output:
A short`;
    const whole = parseAlpacaBlocks(answer, false);
    expect(whole.tasks).toEqual([
      { instruction: "Give an example of a metaphor.", input: "", output: "Time is a thief." },
      { instruction: "Translate the phrase into French.", input: "Good morning", output: "Bonjour" },
      { instruction: "Summarize the passage.", input: "A long passage", output: "A short" },
    ]);
    expect(whole.problems.map((p) => p.reason)).toEqual(["malformed task block"]);
    const cut = parseAlpacaBlocks(answer, true);
    expect(cut.tasks.map((t) => t.instruction)).toEqual(["Give an example of a metaphor.", "Translate the phrase into French."]);
    expect(cut.problems.map((p) => p.reason)).toEqual(["malformed task block", "cut by length"]);
    // Labels that disagree on the number are not a task.
    expect(parseAlpacaBlocks("###\n4. Instruction: A b c d\n5. Input:\nx\n4. Output:\ny", false).problems).toHaveLength(1);
  });
});

describe("Self-Instruct: instruction lists, instances and their clean-up", () => {
  it("splits a numbered continuation, skipping a preamble and capitalizing", () => {
    expect(parseInstructionList("Here are more tasks:\n9. find the odd one out.\n10. Write a  haiku\nabout rain.")).toEqual(["Find the odd one out.", "Write a haiku about rain."]);
    // Self-Instruct's prompt ends with "9.", so a bare first piece is an instruction.
    expect(parseInstructionList("Suggest a name for a cat.\n10. Rate the joke.")).toEqual(["Suggest a name for a cat.", "Rate the joke."]);
  });

  it("parses input-first answers as prepare_for_finetuning.py does, dropping the last instance when cut", () => {
    const text = "Example 1\nInput: 2 + 2\nOutput: 4\nExample 2\nInput: 3 + 5\nOutput: 8\nInput: stray";
    expect(parseGenerationInstances(text, false)).toEqual([
      { input: "2 + 2", output: "4" },
      { input: "3 + 5", output: "8" },
    ]);
    expect(parseGenerationInstances(text, true)).toEqual([{ input: "2 + 2", output: "4" }]);
    expect(parseGenerationInstances("Output: just this", false)).toEqual([{ input: "", output: "just this" }]);
    expect(parseGenerationInstances("no labels at all", false)).toEqual([]);
  });

  it("parses output-first answers: the label line, then the input", () => {
    expect(parseClassificationInstances("Class label: Positive\nInput: I loved it.\nClass label: Negative\nInput: Dull.\nClass label: Neutral", false)).toEqual([
      { input: "I loved it.", output: "Positive" },
      { input: "Dull.", output: "Negative" },
      { input: "", output: "Neutral" },
    ]);
    expect(parseClassificationInstances("Positive: I loved it.", false)).toEqual([]);
  });

  it("cleans instances: input == output, empty output, trailing colons, conflicts, duplicates", () => {
    const r = cleanInstances([
      { input: "a", output: "a" },
      { input: "b", output: "" },
      { input: "c:", output: "x" },
      { input: "d", output: "y:" },
      { input: "e", output: "1" },
      { input: "e", output: "1" },
      { input: "", output: "free" },
    ]);
    expect(r.conflict).toBe(false);
    expect(r.kept).toEqual([
      { input: "e", output: "1" },
      { input: "", output: "free" },
    ]);
    expect(r.dropped.map((d) => d.reason)).toEqual(["instance: input equals output", "instance: empty output", "instance: ends with a colon", "instance: ends with a colon", "instance: duplicate"]);
    // The same non-empty input with two outputs drops the whole task; empty inputs never conflict.
    expect(cleanInstances([{ input: "q", output: "1" }, { input: "q", output: "2" }]).conflict).toBe(true);
    expect(cleanInstances([{ input: "", output: "1" }, { input: "", output: "2" }]).kept).toHaveLength(2);
  });
});

describe("Alpaca and Self-Instruct: the ROUGE-L pool and seeded sampling", () => {
  it("the incremental pool finds exactly the pairs above max that comparing every pair finds", () => {
    const random = seededRandom(7);
    const vocab = ["the", "a", "list", "write", "story", "about", "cats", "dogs", "explain", "why", "sky", "blue", "short", "poem", "give", "three", "tips", "for", "sleep", "good"];
    const texts = Array.from({ length: 300 }, () => Array.from({ length: 3 + Math.floor(random() * 8) }, () => vocab[Math.floor(random() * vocab.length)]).join(" "));
    for (const max of [0.5, 0.7, 0.9]) {
      const pool = new RougePool(max);
      const v = new Vocabulary();
      const kept: Int32Array[] = [];
      for (const t of texts) {
        const a = v.encode(rougeTokens(t));
        const naive = a.length > 0 && kept.some((b) => rougeLF1(a, b) > max);
        expect(pool.similar(t) !== undefined, `${t} at ${max}`).toBe(naive);
        if (!naive) {
          pool.add(t);
          kept.push(a);
        }
      }
      expect(pool.size).toBe(kept.length);
    }
  });

  it("samples are seeded: the same keys give the same draw, other keys another", () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const a = sampleItems(seededRandom(42, 1, 3), items, 8);
    expect(sampleItems(seededRandom(42, 1, 3), items, 8)).toEqual(a);
    expect(new Set(a).size).toBe(8);
    expect(sampleItems(seededRandom(42, 1, 4), items, 8)).not.toEqual(a);
  });
});

describe("Evol-Instruct: elimination rules", () => {
  it("rule 2: 'sorry' in an answer under 80 words", () => {
    expect(sorryAndShort("Sorry, I cannot help with that.")).toBe(true);
    expect(sorryAndShort(`I'm sorry to hear it. ${"word ".repeat(80)}`)).toBe(false);
    expect(sorryAndShort("Here is the answer.")).toBe(false);
  });

  it("rule 3: only punctuation and stop words", () => {
    expect(onlyStopWords("It is what it is...")).toBe(true);
    expect(onlyStopWords("")).toBe(true);
    expect(onlyStopWords("It is a cat.")).toBe(false);
  });

  it("rule 4: copying words of the evolving prompt; rules in order", () => {
    expect(eliminationReason("#Rewritten Prompt#: explain gravity", undefined)).toBe("copies words of the evolving prompt");
    expect(eliminationReason("Rewrite the given prompt to be harder", "x")).toBe("copies words of the evolving prompt");
    expect(eliminationReason("Explain gravity to a child in three steps.", undefined)).toBeUndefined();
    expect(eliminationReason("Explain gravity to a child in three steps.", "Sorry, no.")).toBe("answer says sorry in under 80 words");
    expect(eliminationReason("Explain gravity to a child in three steps.", "... to be, or not to be?")).toBe("answer of only punctuation and stop words");
    expect(eliminationReason("Explain gravity to a child in three steps.", "Mass bends spacetime.")).toBeUndefined();
  });

  it("rule 1: the information-gain verdict", () => {
    expect(parseEqualVerdict("Equal")).toBe("equal");
    expect(parseEqualVerdict("Not Equal")).toBe("different");
    expect(parseEqualVerdict("Different.")).toBe("different");
    expect(parseEqualVerdict("I cannot tell")).toBeUndefined();
  });
});

describe("self-chat, back-translation and judging: turns, instructions, scores, verdicts", () => {
  it("the user simulator's turn loses a copied speaker label; [END] ends the chat", () => {
    expect(userTurn("User: And then what?")).toBe("And then what?");
    expect(userTurn("[Human] Why?")).toBe("Why?");
    expect(userTurn("[END]")).toBeUndefined();
    expect(userTurn("  ")).toBeUndefined();
    expect(transcriptOf([{ role: "system", content: "s" }, { role: "user", content: "Hi" }, { role: "assistant", content: "Hello" }])).toBe("[User] Hi\n\n[Assistant] Hello");
  });

  it("the backward model's instruction loses a repeated label", () => {
    expect(instructionOf("Instruction: What is 2 + 2?\n")).toBe("What is 2 + 2?");
    expect(instructionOf("  How do plants grow?")).toBe("How do plants grow?");
  });

  it("reads scores: [[N]] first, then Score: N, in range only", () => {
    expect(judgeScore("Good answer.\nScore: 4", 5)).toBe(4);
    expect(judgeScore("Rating: [[8]] (Score: 3 for style)", 10)).toBe(8);
    expect(judgeScore("Score: 7", 5)).toBeUndefined();
    expect(judgeScore("I cannot rate this.", 5)).toBeUndefined();
  });

  it("reads pairwise verdicts and resolves the two orders (a flip is a tie)", () => {
    expect(parseVerdict("B is clearer.\nVerdict: B")).toBe("B");
    expect(parseVerdict("Verdict: **A**")).toBe("A");
    expect(parseVerdict("Verdict: tie")).toBe("tie");
    expect(parseVerdict("[[C]]")).toBe("tie");
    expect(parseVerdict("both are fine")).toBeUndefined();
    expect(pairPreference("A", "B")).toEqual({ preference: 1, consistent: true });
    expect(pairPreference("B", "A")).toEqual({ preference: 2, consistent: true });
    expect(pairPreference("A", "A")).toEqual({ preference: 1.5, consistent: false });
    expect(pairPreference("tie", "tie")).toEqual({ preference: 1.5, consistent: true });
    expect(pairPreference("A", "tie")).toEqual({ preference: 1.5, consistent: false });
  });

  it("finds request and response in Instruction, Chat and Preference records", () => {
    expect(exchangeOf({ instruction: "Add.", input: "1 2", output: "3" })).toEqual({ request: "Add.\n\n1 2", response: "3" });
    expect(exchangeOf({ messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello" }] })).toEqual({ request: "Hi", response: "Hello" });
    expect(
      exchangeOf({
        messages: [
          { role: "system", content: "s" },
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Hello" },
          { role: "user", content: "More" },
          { role: "assistant", content: "Sure" },
        ],
      }),
    ).toEqual({ request: "[User] Hi\n\n[Assistant] Hello\n\n[User] More", response: "Sure" });
    expect(exchangeOf({ prompt: "P", chosen: "c", rejected: "r" })).toEqual({ request: "P" });
  });
});

// --- End to end against the loopback server --------------------------------------------------------------------

const hash = (s: string) => createHash("sha256").update(s).digest("hex");
const SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "zu", "ba", "do", "fe", "gi", "ho", "ju"];
/** n made-up words (three syllables each) from a key: distinct keys give texts with next to no words in common. */
function words(key: string, n: number): string[] {
  const h = hash(key) + hash(key + "+");
  return Array.from({ length: n }, (_, i) => [0, 1, 2].map((j) => SYLLABLES[parseInt(h[i * 3 + j]!, 16)]).join(""));
}
const VERBS = ["Explain", "Summarize", "Describe", "Suggest", "Outline", "Rewrite", "Contrast", "Evaluate"];
/** A small number from a key (0..n-1). */
const pick = (key: string, n: number) => parseInt(hash(key).slice(0, 8), 16) % n;

/**
 * The scripted model. It recognizes each method's prompt by its wording and answers in the format asked, with some
 * answers made to fail each rule on purpose, at fixed positions, so the expected counts are known.
 */
function answer(req: ServerRequest): string {
  const c = req.content;
  const key = c + "|" + String(req.body["seed"] ?? "");
  // Alpaca: `count` task blocks. Blocks 0-3 fail on purpose: blocklisted word, too few words, a copy of the first
  // example (ROUGE-L 1), a block without its Output label. The rest are new tasks, every third with an input.
  let m = /Write (\d+) new tasks/.exec(c);
  if (m) {
    const first = /^1\. Instruction: (.*)$/m.exec(c)![1]!;
    const blocks: string[] = [];
    for (let j = 0; j < Number(m[1]); j++) {
      const n = 4 + j;
      const w = words(`${key}#${j}`, 9);
      if (j === 3) {
        blocks.push(`${n}. Instruction: ${VERBS[0]} ${w.slice(0, 5).join(" ")}.\n${n}. Input:\n<noinput>`);
        continue;
      }
      const instruction = j === 0 ? `Draw a map of the ${w[0]} ${w[1]} valley.` : j === 1 ? `Name ${w[0]} ${w[1]}.` : j === 2 ? first : `${VERBS[j % VERBS.length]} ${w.slice(0, 6).join(" ")}.`;
      const input = j % 3 === 0 ? `${w[6]} ${w[7]}` : "<noinput>";
      blocks.push(`${n}. Instruction: ${instruction}\n${n}. Input:\n${input}\n${n}. Output:\n${w[8]} ${w[0]}.`);
    }
    return blocks.map((b) => `###\n${b}`).join("\n");
  }
  // Self-Instruct, instructions: five more, numbered on. Kept: a classification task, a task answered normally and a
  // task whose instances will conflict; dropped: a blocked prefix and a punctuation start.
  if (c.startsWith("Here is a numbered list of tasks")) {
    const shown = c.match(/^\d+\. /gm)!.length;
    const w = words(key, 18);
    const items = [
      `Classify ${w.slice(0, 5).join(" ")} as positive or negative.`,
      `Write a program that sorts ${w.slice(5, 8).join(" ")}.`,
      `Explain ${w.slice(8, 13).join(" ")} to a child.`,
      `"Quoted ${w.slice(13, 16).join(" ")} task."`,
      `Compare ${w.slice(13, 18).join(" ")} carefully.`,
    ];
    return items.map((t, i) => `${shown + 1 + i}. ${t}`).join("\n");
  }
  m = /Task: (.*)\nIs it classification\?$/.exec(c);
  if (m) return m[1]!.startsWith("Classify") ? "Yes" : "No";
  if (c.includes("Write examples of it output first")) {
    const w = words(key, 6);
    return `Class label: Positive\nInput: ${w.slice(0, 3).join(" ")}.\nClass label: Negative\nInput: ${w.slice(3, 6).join(" ")}.`;
  }
  if (c.includes("Write up to 5 different examples")) {
    const task = /\nTask: (.*)$/.exec(c)![1]!;
    const w = words(key, 8);
    if (task.startsWith("Compare")) return `Example 1\nInput: ${w[0]}\nOutput: ${w[1]}\nExample 2\nInput: ${w[0]}\nOutput: ${w[2]}`;
    // Kept: 1, 2, 5; example 3 repeats example 1, example 4's output ends with a colon.
    return `Example 1\nInput: ${w[0]}\nOutput: ${w[1]}\nExample 2\nInput: ${w[2]}\nOutput: ${w[3]}\nExample 3\nInput: ${w[0]}\nOutput: ${w[1]}\nExample 4\nInput: ${w[4]}\nOutput: ${w[5]}:\nExample 5\nOutput: ${w[6]} ${w[7]}`;
  }
  // Evol-Instruct: rewrites (one in ten copies the prompt's label), the information-gain judge (one in ten "Equal").
  m = /\nInstruction:\n([\s\S]*)$/.exec(c);
  if (m && (c.startsWith("Rewrite the instruction below") || c.startsWith("Take the instruction below"))) {
    const w = words(key, 4);
    if (pick(key, 10) === 0) return `#Rewritten Prompt#: ${m[1]}`;
    return c.startsWith("Take") ? `Describe ${w.join(" ")} in detail.` : `${m[1]!.trim()} Also consider ${w[0]} and ${w[1]}.`;
  }
  if (c.includes("Answer with one word: Equal or Different.")) return pick(key, 10) === 1 ? "Equal" : "Different";
  // Self-chat: the user simulator ends the chat after one exchange when the topic asks for brevity.
  if (c.startsWith("You are playing a curious person")) return c.includes("brief") ? "[END]" : `User: Tell me more about ${words(key, 1)[0]}?`;
  // Back-translation: an instruction for each segment; NOTHING gets an empty answer, LONG a long one.
  m = /\nResponse:\n([\s\S]*)\n\nInstruction:\n$/.exec(c);
  if (m) return m[1]!.includes("NOTHING") ? "" : m[1]!.includes("LONG") ? `Instruction: ${"very ".repeat(40)}long` : `Instruction: What does "${m[1]!.slice(0, 24)}" say?`;
  // Self-curation on Humpback's 5-point scale.
  if (c.includes("on this 5-point scale")) return c.includes("excellent") ? "A focused, helpful reply.\nScore: 5" : c.includes("mediocre") ? "Reads like a web page.\nScore: 3" : "I would rather not say.";
  // Pointwise judge (scale 10): [[9]] for "good", Score: 2 for "bad", nothing readable otherwise.
  m = /\[Response\]\n([\s\S]*?)\n\nExplain your judgement/.exec(c);
  if (m) return m[1]!.includes("good") ? "Clear and correct.\nRating: [[9]]" : m[1]!.includes("bad") ? "Wrong.\nScore: 2" : "Hard to say.";
  // Pairwise judge, with a position bias: the longer response wins; equal lengths make it pick A whatever A is;
  // two responses that both say "same" are a tie.
  m = /\[Response A\]\n([\s\S]*?)\n\n\[Response B\]\n([\s\S]*?)\n\nCompare the two/.exec(c);
  if (m) {
    const [a, b] = [m[1]!, m[2]!];
    if (a.includes("same") && b.includes("same")) return "Equally good.\nVerdict: tie";
    return a.length >= b.length ? "A covers more.\nVerdict: A" : "B covers more.\nVerdict: B";
  }
  // Anything else is a question: self-chat's assistant, Evol-Instruct's answers (of evolved instructions, one in ten
  // "sorry", one in ten only stop words).
  if (c.includes("SILENT")) return "";
  const evolved = c.includes(" Also consider ") || c.startsWith("Describe ");
  const p = evolved ? pick(key, 10) : -1;
  if (p === 2) return "Sorry, I cannot answer that.";
  if (p === 3) return "It is what it is.";
  return `Here is an answer: ${words(key, 6).join(" ")}.`;
}

const KEY = "sk-test-methods-0123456789";
const MODEL = `model teacher = openai_compatible() {
  model = "test-model"
  base_url = env("ITP_TEST_BASE_URL")
  api_key = secret("ITP_TEST_KEY")
  seed = 1
  concurrency = 8
  timeout = 5s
  retry = backoff(max_retries: 4, initial: 1ms, max: 20ms)
}
`;

/** 20 seed tasks in the style of Self-Instruct's, as Instruction records. */
const SEED_TASKS: [string, string, string][] = [
  ["Give three tips for staying healthy.", "", "Eat well, exercise, sleep."],
  ["Suggest a name for a new coffee shop.", "", "Bean There."],
  ["Convert the temperature from Celsius to Fahrenheit.", "25 degrees", "77 degrees Fahrenheit."],
  ["Is the following sentence a question or a statement?", "The sky is blue.", "A statement."],
  ["Write a haiku about the ocean.", "", "Waves fold into foam."],
  ["Find the largest number in the list.", "4, 17, 9", "17"],
  ["Explain why leaves change color in autumn.", "", "Chlorophyll breaks down."],
  ["Rewrite the sentence in the passive voice.", "The cat chased the mouse.", "The mouse was chased by the cat."],
  ["List the planets of the solar system in order.", "", "Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus, Neptune."],
  ["Give an antonym for the word.", "generous", "stingy"],
  ["Recommend a book for someone who likes mysteries.", "", "The Hound of the Baskervilles."],
  ["Summarize the plot of Romeo and Juliet in one sentence.", "", "Two young lovers die because of their feuding families."],
  ["Tell me whether the number is prime.", "91", "No, 91 = 7 x 13."],
  ["Describe the taste of a lemon to someone who has never had one.", "", "Sharp, sour and bright."],
  ["Correct the grammar of the sentence.", "She go to school yesterday.", "She went to school yesterday."],
  ["Propose a weekend plan for a family with young children.", "", "A picnic and a museum visit."],
  ["Calculate the area of a circle with the given radius.", "3 cm", "About 28.27 square centimeters."],
  ["Come up with a slogan for a recycling campaign.", "", "Waste less, live more."],
  ["Classify the animal as a mammal, bird or reptile.", "penguin", "bird"],
  ["Offer advice to a student who is nervous before an exam.", "", "Breathe, prepare, and rest well."],
];
const SEEDS = SEED_TASKS.map(([instruction, input, output]) => JSON.stringify({ instruction, input, output })).join("\n") + "\n";
/** The same tasks in the shape of Self-Instruct's data/seed_tasks.jsonl as published. */
const SEED_TASK_FILE =
  SEED_TASKS.map(([instruction, input, output], i) => JSON.stringify({ id: `seed_task_${i}`, name: `task_${i}`, instruction, instances: [{ input, output }], is_classification: input === "The sky is blue." })).join("\n") + "\n";

let server: OpenAIServer;
const env = () => ({ ITP_TEST_BASE_URL: server.url, ITP_TEST_KEY: KEY });

beforeAll(async () => {
  server = await startOpenAIServer({ answer, apiKey: KEY });
});
afterAll(() => server.close());

interface Shown {
  records: number;
  counts: Record<string, number>;
  sample: Record<string, unknown>[];
  digest: string;
}

async function run(dir: string, store: string, ...args: string[]) {
  const r = await itpAsync(["run", "r.itp", "--store", store, ...args], { cwd: dir, env: env() });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r;
}

async function show(dir: string, store: string, stage: string): Promise<Shown> {
  const r = await itpAsync(["show", "r.itp", stage, "--store", store, "--json", "--records", "1000"], { cwd: dir, env: env() });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Shown;
}

const jsonl = (path: string) =>
  readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("the stdlib Alpaca and Evol-Instruct recipes against the server", () => {
  const recipe = `import std/alpaca { generate_alpaca_data }
import std/evol_instruct { evol_instruct_data }

${MODEL}
dataset seeds: SeedTask = jsonl("seeds.jsonl")

generate alpaca = generate_alpaca_data(seeds, teacher: teacher, target: 45)

dataset alpaca_out = export(alpaca, path: "out/alpaca.jsonl")

generate evolved = evol_instruct_data(seed_task_to_instruction(seeds), teacher: teacher, rounds: 4, sample_n: 24)

dataset evolved_out = export(evolved, path: "out/evolved.jsonl")
`;

  it("generate exactly their targets; reruns send zero requests and give the same bytes", async () => {
    const dir = tempTree({ "r.itp": recipe, "seeds.jsonl": SEED_TASK_FILE });
    const store = join(dir, "store");
    server.reset();
    const seen: string[] = [];
    const stop = startCapture(seen);
    try {
      await run(dir, store);
    } finally {
      stop();
    }
    const sent = server.stats.received;

    // Alpaca: 20 blocks per call, 4 of them failing on purpose, so 45 records take 3 calls.
    const raw = await show(dir, store, "alpaca.raw");
    expect(raw.records).toBe(45);
    expect(raw.counts["requests: sent"]).toBe(3);
    expect(raw.counts).toMatchObject({ "dropped: blocklisted word": 3, "dropped: too few words": 3, "dropped: ROUGE-L above max": 3, "dropped: malformed task block": 3 });
    const alpaca = jsonl(join(dir, "out/alpaca.jsonl"));
    expect(alpaca).toHaveLength(45);
    expect(new Set(alpaca.map((r) => r["instruction"])).size).toBe(45);
    for (const r of alpaca) {
      expect(Object.keys(r)).toEqual(["instruction", "input", "output"]);
      expect(String(r["instruction"])).toMatch(/^[A-Z][a-z]+ [a-z]+ /);
    }
    // Every third task has an input; "<noinput>" becomes "".
    expect(alpaca.filter((r) => r["input"] !== "").length).toBeGreaterThan(10);
    expect(alpaca.some((r) => r["input"] === "<noinput>")).toBe(false);
    expect((await show(dir, store, "alpaca")).records).toBe(45);

    // Evol-Instruct: 4 rounds over the 20 seeds (WizardLM's), failed evolutions eliminated, then 24 sampled.
    const evolvedAll = await show(dir, store, "evolved.evolved");
    const reasons = Object.keys(evolvedAll.counts).filter((k) => k.startsWith("dropped: "));
    expect(reasons.length).toBeGreaterThan(0);
    for (const k of reasons) expect(["dropped: copies words of the evolving prompt", "dropped: no information gain", "dropped: answer says sorry in under 80 words", "dropped: answer of only punctuation and stop words"]).toContain(k);
    const dropped = reasons.reduce((a, k) => a + evolvedAll.counts[k]!, 0);
    expect(evolvedAll.records + dropped).toBe(80);
    expect([1, 2, 3, 4].reduce((n, k) => n + evolvedAll.counts[`round ${k}: evolved`]!, 0)).toBe(evolvedAll.records);
    expect(evolvedAll.records).toBeGreaterThanOrEqual(24);
    for (const r of evolvedAll.sample) {
      expect(eliminationReason(String(r["instruction"]), String(r["output"]))).toBeUndefined();
      expect(String(r["output"])).toMatch(/^Here is an answer: /);
    }
    const evolved = jsonl(join(dir, "out/evolved.jsonl"));
    expect(evolved).toHaveLength(24);
    // The operations: 4 x 20 rewrites drawn from the six (in depth and in breadth). A successful evolution takes its
    // instruction's place in the pool; a failed one puts the instruction back: round 2 rewrites the round-1
    // evolution, or the seed itself (input included) when round 1 failed.
    const rewrites = seen.filter((c) => /^(Rewrite the instruction below|Take the instruction below)/.test(c));
    expect(rewrites).toHaveLength(80);
    const ops = new Set(rewrites.map((c) => c.split(/[:.]/)[0]));
    expect(ops.size).toBe(6);
    const rewritten = rewrites.map((c) => /\nInstruction:\n([\s\S]*)$/.exec(c)![1]!);
    const seedTexts = SEED_TASKS.map(([i, input]) => (input ? `${i}\n\n${input}` : i));
    expect(rewritten.slice(0, 20).sort()).toEqual([...seedTexts].sort());
    const round2 = rewritten.slice(20, 40);
    const round1Kept = evolvedAll.counts["round 1: evolved"]!;
    expect(round2.filter((t) => seedTexts.includes(t))).toHaveLength(20 - round1Kept);
    const evolvedSet = new Set(evolvedAll.sample.map((r) => r["instruction"]));
    expect(round2.filter((t) => evolvedSet.has(t))).toHaveLength(round1Kept);
    // Rule 1's judge is asked only about rewrites that pass rule 4.
    const judged = seen.filter((c) => c.includes("Answer with one word: Equal or Different.")).length;
    expect(judged).toBe(80 - (evolvedAll.counts["dropped: copies words of the evolving prompt"] ?? 0));

    const alpacaBytes = readFileSync(join(dir, "out/alpaca.jsonl"));
    const evolvedBytes = readFileSync(join(dir, "out/evolved.jsonl"));
    // A rerun: everything cached, no request.
    server.reset();
    await run(dir, store);
    expect(server.stats.received).toBe(0);
    // Forced: the generating stages run again, every answer from the request cache, the same bytes out.
    await run(dir, store, "--force", "alpaca.raw", "--force", "evolved.evolved");
    expect(server.stats.received).toBe(0);
    const raw2 = await show(dir, store, "alpaca.raw");
    expect(raw2.digest).toBe(raw.digest);
    expect(raw2.counts["requests: cached"]).toBe(3);
    expect(raw2.counts["requests: sent"]).toBeUndefined();
    expect((await show(dir, store, "evolved.evolved")).digest).toBe(evolvedAll.digest);
    expect(readFileSync(join(dir, "out/alpaca.jsonl")).equals(alpacaBytes)).toBe(true);
    expect(readFileSync(join(dir, "out/evolved.jsonl")).equals(evolvedBytes)).toBe(true);
    expect(sent).toBeGreaterThan(40);

    // With a fifth of the requests failing (rate limits, server errors, dropped connections), retries give the same
    // data, and the same exact counts.
    server.reset();
    server.setFaults(faultRate(0.2, [fault.tooMany("0"), fault.status(500), fault.drop], 11));
    try {
      const faulty = join(dir, "store-faults");
      await run(dir, faulty, "--only", "alpaca", "--only", "evolved");
      const raw3 = await show(dir, faulty, "alpaca.raw");
      const evolved3 = await show(dir, faulty, "evolved.evolved");
      const retries = Object.entries({ ...raw3.counts }).concat(Object.entries(evolved3.counts)).filter(([k]) => k.startsWith("retries: "));
      expect(retries.reduce((a, [, n]) => a + n, 0)).toBeGreaterThan(0);
      expect(server.stats.outcomes["ok"]).toBe(sent);
      expect(raw3.digest).toBe(raw.digest);
      expect(evolved3.digest).toBe(evolvedAll.digest);
      expect((await show(dir, faulty, "evolved")).records).toBe(24);
    } finally {
      server.setFaults(undefined);
    }
  });
});

describe("the shipped pipelines, pointed at the server with --set", () => {
  it("pipelines/alpaca.itp and pipelines/self_instruct.itp generate their (overridden) targets; forced reruns ask nothing", async () => {
    const dir = tempTree({ "seeds.jsonl": SEED_TASK_FILE });
    const store = join(dir, "store");
    const pipelineEnv = { OPENAI_BASE_URL: server.url, OPENAI_API_KEY: KEY };
    const cases = [
      { file: "pipelines/alpaca.itp", gen: "alpaca_data.raw", out: "alpaca_data_json", sets: ["alpaca_data.raw.target=45"], records: 45 },
      { file: "pipelines/self_instruct.itp", gen: "self_instruct_52k", out: "self_instruct_jsonl", sets: ["self_instruct_52k.target=6"], records: 10 },
    ];
    for (const c of cases) {
      const args = [join(repoRoot, c.file), "--store", store, "--set", `seeds.path=${JSON.stringify(join(dir, "seeds.jsonl"))}`, "--set", `${c.out}.path=${JSON.stringify(join(dir, `${c.out}.jsonl`))}`, ...c.sets.flatMap((x) => ["--set", x])];
      server.reset();
      const r = await itpAsync(["run", ...args, "--only", c.out], { cwd: dir, env: pipelineEnv });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(server.stats.received).toBeGreaterThan(0);
      const bytes = readFileSync(join(dir, `${c.out}.jsonl`));
      expect(jsonl(join(dir, `${c.out}.jsonl`))).toHaveLength(c.records);
      server.reset();
      const again = await itpAsync(["run", ...args, "--only", c.out, "--force", c.gen], { cwd: dir, env: pipelineEnv });
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(server.stats.received).toBe(0);
      expect(readFileSync(join(dir, `${c.out}.jsonl`)).equals(bytes)).toBe(true);
    }
  });
});

describe("the other methods end to end", () => {
  it("self_instruct: 6 + 2 examples per prompt, the filters in the loop, output-first and input-first instances", async () => {
    const dir = tempTree({
      "r.itp": `import std/self_instruct { self_instruct_data }

${MODEL}
dataset seeds: SeedTask = jsonl("seeds.jsonl")

generate tasks = self_instruct_data(seeds, teacher: teacher, target: 9)
`,
      "seeds.jsonl": SEED_TASK_FILE,
    });
    const store = join(dir, "store");
    const seen: string[] = [];
    server.reset();
    const plain = startCapture(seen);
    try {
      await run(dir, store);
    } finally {
      plain();
    }
    const s = await show(dir, store, "tasks");
    expect(s.counts["instructions"]).toBe(9);
    expect(s.counts["classification tasks"]).toBe(3);
    // 3 classification tasks x 2 instances + 3 tasks x 3 clean instances; the 3 conflicting tasks are dropped whole.
    expect(s.records).toBe(15);
    expect(s.counts).toMatchObject({
      "dropped: blocked prefix": 3,
      "dropped: starts with punctuation": 3,
      "dropped: task: same input with different outputs": 3,
      "dropped: instance: duplicate": 3,
      "dropped: instance: ends with a colon": 3,
    });
    const clf = s.sample.filter((r) => String(r["instruction"]).startsWith("Classify"));
    expect(clf).toHaveLength(6);
    expect(clf.map((r) => r["output"])).toEqual(["Positive", "Negative", "Positive", "Negative", "Positive", "Negative"]);
    expect(s.sample.some((r) => String(r["instruction"]).startsWith("Compare"))).toBe(false);
    // The instruction prompts: 8 examples each; the first call shows seeds only, later ones 2 generated instructions.
    const prompts = seen.filter((c) => c.startsWith("Here is a numbered list of tasks"));
    expect(prompts).toHaveLength(3);
    const seedSet = new Set(SEED_TASKS.map((t) => t[0]));
    for (const [k, p] of prompts.entries()) {
      const examples = [...p.matchAll(/^\d+\. (.*)$/gm)].map((x) => x[1]!);
      expect(examples).toHaveLength(8);
      expect(examples.filter((e) => seedSet.has(e))).toHaveLength(k === 0 ? 8 : 6);
    }
    // A forced rerun asks nothing.
    server.reset();
    await run(dir, store, "--force", "tasks");
    expect(server.stats.received).toBe(0);
    expect((await show(dir, store, "tasks")).digest).toBe(s.digest);
  });

  it("self_chat: alternating turns from the assistant and the user simulator, ended early or dropped when empty", async () => {
    const dir = tempTree({
      "r.itp": `${MODEL}
dataset topics: Instruction = jsonl("topics.jsonl")

model simulator = openai_compatible() {
  model = "sim-model"
  base_url = env("ITP_TEST_BASE_URL")
  api_key = secret("ITP_TEST_KEY")
}

generate chats = self_chat(topics, model: teacher) {
  user_model = simulator
  turns = 3
  system = "Be concise."
}
`,
      "topics.jsonl": [
        { instruction: "Plan a three-day trip to Lisbon.", output: "" },
        { instruction: "Give a brief definition of entropy.", output: "" },
        { instruction: "SILENT topic", output: "" },
      ]
        .map((r) => JSON.stringify(r))
        .join("\n"),
    });
    const store = join(dir, "store");
    const seen: string[] = [];
    const stop = startCapture(seen, true);
    try {
      await run(dir, store);
    } finally {
      stop();
    }
    const s = await show(dir, store, "chats");
    // The user simulator's turns go to user_model, the assistant's to model: 2 + 1 simulator turns, 3 + 1 + 1 answers.
    expect(seen.filter((c) => c.startsWith("sim-model ")).every((c) => c.startsWith("sim-model You are playing a curious person"))).toBe(true);
    expect(seen.filter((c) => c.startsWith("sim-model "))).toHaveLength(3);
    expect(seen.filter((c) => c.startsWith("test-model "))).toHaveLength(5);
    expect(s.counts).toMatchObject({ "requests: sent": 5, "user_model requests: sent": 3 });
    expect(s.records).toBe(2);
    const [trip, brief] = s.sample as { messages: { role: string; content: string }[] }[];
    expect(trip!.messages.map((m) => m.role)).toEqual(["system", "user", "assistant", "user", "assistant", "user", "assistant"]);
    expect(trip!.messages[1]!.content).toBe("Plan a three-day trip to Lisbon.");
    expect(trip!.messages[3]!.content).toMatch(/^Tell me more about [a-z]+\?$/);
    expect(trip!.messages[2]!.content).toMatch(/^Here is an answer: /);
    expect(brief!.messages.map((m) => m.role)).toEqual(["system", "user", "assistant"]);
    expect(s.counts).toMatchObject({ chats: 2, exchanges: 4, "chats ended by the user simulator": 1, "dropped: empty assistant answer": 1 });
  });

  it("backtranslate then quality_filter: instructions written for segments, kept at score 5, the rest listed with their scores", async () => {
    const dir = tempTree({
      "r.itp": `${MODEL}
dataset segments: Text = jsonl("segments.jsonl")

generate candidates = backtranslate(segments, model: teacher) {
  max_tokens = 20
}

filter curated = quality_filter(candidates, model: teacher) {
  min_score = 5
}
`,
      "segments.jsonl": [
        { id: "a", text: "An excellent guide to brewing tea: heat water to 80 degrees." },
        { id: "b", text: "A mediocre forum post about tea, mostly off topic." },
        { id: "c", text: "Some garbled text about tea and cups." },
        { id: "d", text: "NOTHING to see here." },
        { id: "e", text: "LONG segment that gets a long instruction." },
        { id: "f", text: "Another excellent answer: steep green tea for two minutes." },
      ]
        .map((r) => JSON.stringify(r))
        .join("\n"),
    });
    const store = join(dir, "store");
    await run(dir, store);
    const cand = await show(dir, store, "candidates");
    expect(cand.records).toBe(4);
    expect(cand.counts).toMatchObject({ "dropped: empty instruction": 1, "dropped: instruction cut by length": 1 });
    const first = "An excellent guide to brewing tea: heat water to 80 degrees.";
    expect(cand.sample[0]).toEqual({ instruction: `What does "${first.slice(0, 24)}" say?`, output: first, id: "a" });
    const cur = await show(dir, store, "curated");
    expect(cur.sample.map((r) => r["id"])).toEqual(["a", "f"]);
    expect(cur.sample[0]).toEqual(cand.sample[0]);
    expect(cur.counts).toMatchObject({ kept: 2, "rated 5": 2, "rated 3": 1, "dropped: score below min_score": 1, "dropped: unreadable score": 1 });
    const dropped = await itpAsync(["show", "r.itp", "curated", "--dropped", "--records", "10", "--store", store], { cwd: dir, env: env() });
    expect(dropped.stdout).toContain("[score below min_score, record 2: score 3 of 5]");
    expect(dropped.stdout).toContain('"score":3,"rationale":"Reads like a web page.\\nScore: 3"');
    expect(dropped.stdout).toContain('"rationale":"I would rather not say."');
  });

  it("judge: pointwise scores with rationale and min_score; pairwise in both orders, position bias made a tie", async () => {
    const dir = tempTree({
      "r.itp": `${MODEL}
dataset answers: Instruction = jsonl("answers.jsonl")

dataset pairs: Preference = jsonl("pairs.jsonl")

generate scored = judge(answers, model: teacher) {
  scale = 10
  min_score = 5
}

generate preferred = judge(pairs, model: teacher) {
  mode = "pairwise"
  candidates = [chosen, rejected]
  score_field = "preference"
}
`,
      "answers.jsonl": [
        { instruction: "Add the numbers.", input: "2 3", output: "A good answer: 5." },
        { instruction: "Name a prime.", output: "A bad answer: 9." },
        { instruction: "Say something.", output: "Mumble." },
      ]
        .map((r) => JSON.stringify(r))
        .join("\n"),
      "pairs.jsonl": [
        { prompt: "P1", chosen: "A long and thorough reply.", rejected: "Short." },
        { prompt: "P2", chosen: "Short.", rejected: "A long and thorough reply." },
        { prompt: "P3", chosen: "Reply one.", rejected: "Reply two." },
        { prompt: "P4", chosen: "The same idea.", rejected: "The same thing, longer." },
      ]
        .map((r) => JSON.stringify(r))
        .join("\n"),
    });
    const store = join(dir, "store");
    server.reset();
    await run(dir, store);
    const scored = await show(dir, store, "scored");
    expect(scored.sample).toEqual([{ instruction: "Add the numbers.", input: "2 3", output: "A good answer: 5.", score: 9, rationale: "Clear and correct.\nRating: [[9]]" }]);
    expect(scored.counts).toMatchObject({ "dropped: score below min_score": 1, "dropped: unreadable score": 1 });
    const pref = await show(dir, store, "preferred");
    expect(pref.sample.map((r) => [r["prompt"], r["preference"]])).toEqual([
      ["P1", 1],
      ["P2", 2],
      ["P3", 1.5],
      ["P4", 1.5],
    ]);
    expect(pref.sample[0]!["rationale"]).toEqual(["A covers more.\nVerdict: A", "B covers more.\nVerdict: B"]);
    expect(pref.counts).toMatchObject({ "preferred: chosen": 1, "preferred: rejected": 1, "preferred: tie": 2, "ties by inconsistent order": 1, "requests: sent": 8 });
    expect(server.stats.received).toBe(11);
  });

  it("a rubric placeholder the records cannot fill is a clear error, exit 1, no stack trace", async () => {
    const dir = tempTree({
      "r.itp": `${MODEL}
dataset answers: Instruction = jsonl("answers.jsonl")

generate scored = judge(answers, model: teacher) {
  rubric = "Rate {instruction} against {reference}. Score: N"
}
`,
      "answers.jsonl": JSON.stringify({ instruction: "Add.", output: "3" }) + "\n",
    });
    const r = await itpAsync(["run", "r.itp", "--store", join(dir, "store")], { cwd: dir, env: env() });
    expectUserError(r, "stage `scored`: record 1 cannot fill the rubric's {reference} (it has instruction, output)");
  });
});

describe("bad method input is a clear error", () => {
  it("an Evol-Instruct prompts file with an unknown operation or a stray placeholder", async () => {
    const recipe = `${MODEL}
dataset seeds: Instruction = jsonl("seeds.jsonl")

generate evolved = evol_instruct(seeds, model: teacher) {
  rounds = 1
  prompts = "prompts.json"
}
`;
    for (const [prompts, message] of [
      ['{"widen": "Make {instruction} wider."}', 'prompts.json: unknown prompt "widen"'],
      ['{"deepen": "Deepen {instruction} for {audience}."}', 'prompts.json: prompt "deepen": {audience} is not filled (it fills {instruction}, {max_added_words})'],
      ["not json", "cannot read the prompts file prompts.json"],
    ] as const) {
      const dir = tempTree({ "r.itp": recipe, "seeds.jsonl": SEEDS, "prompts.json": prompts });
      server.reset();
      const r = await itpAsync(["run", "r.itp", "--store", join(dir, "store")], { cwd: dir, env: env() });
      expectUserError(r, `stage \`evolved\`: ${message}`);
      expect(server.stats.received).toBe(0);
    }
  });

  it("a model whose answers never hold a task stops the loop after 50 answers, showing the last one", async () => {
    const dir = tempTree({
      "r.itp": `${MODEL}
dataset seeds: Instruction = jsonl("seeds.jsonl")

generate tasks = generate_alpaca(seeds, model: teacher) {
  target = 10
  prompt = "Tell me about these: {examples} ({count})"
}
`,
      "seeds.jsonl": SEEDS,
    });
    server.reset();
    const r = await itpAsync(["run", "r.itp", "--store", join(dir, "store")], { cwd: dir, env: env() });
    expectUserError(r, 'stage `tasks`: 50 answers in a row gave no new instructions (0 of 10 so far); the last one began: "Here is an answer: ');
    // Launched a few at a time while nothing is yielded: not many more than the 50 it gave up after.
    expect(server.stats.received).toBeLessThanOrEqual(58);
  });

  it("too few seed tasks for the examples of one prompt", async () => {
    const dir = tempTree({
      "r.itp": `${MODEL}
dataset seeds: Instruction = jsonl("seeds.jsonl")

generate tasks = self_instruct(seeds, model: teacher) {
  target = 5
}
`,
      "seeds.jsonl": SEEDS.split("\n").slice(0, 5).join("\n"),
    });
    const r = await itpAsync(["run", "r.itp", "--store", join(dir, "store")], { cwd: dir, env: env() });
    expectUserError(r, "self_instruct shows 8 instructions per prompt, all of them seeds until instructions are generated, but has 5 seeds", "lower human_per_prompt and machine_per_prompt");
  });
});

describe("the Alpaca and Self-Instruct filter chains offline, on local files", () => {
  it("run with no model and no network, dropping by each rule in order", async () => {
    const rows = [
      "Give three tips for staying healthy.", // kept
      "Give three tips for staying healthy!", // ROUGE-L 1.0 with the first
      "Sort these.", // too few words
      "Describe the image in three sentences.", // blocklisted (both)
      "Compose a short song about your favourite music.", // blocklisted for Alpaca only
      "Write a program to reverse a string.", // blocked prefix
      "(Optional) explain recursion to a child.", // punctuation start
      "Élaborez une recette de crêpes facile.", // non-ASCII start
      "Explain how a bicycle stays upright while moving.", // kept
    ];
    const dir = tempTree({
      "r.itp": `import std/alpaca { alpaca_filters }
import std/self_instruct { self_instruct_filters }

dataset raw: Instruction = jsonl("data/raw.jsonl")

filter alpaca_clean = alpaca_filters(raw)

filter self_instruct_clean = self_instruct_filters(raw)
`,
      "fixture.jsonl": rows.map((instruction) => JSON.stringify({ instruction, input: "", output: "x" })).join("\n") + "\n",
    });
    const store = join(dir, "store");
    // The source is overridden to the local fixture; nothing may be fetched.
    const offline = { ITP_OFFLINE: "1", HF_HUB_OFFLINE: "1" };
    const r = await itpAsync(["run", "r.itp", "--store", store, "--set", 'raw.path="fixture.jsonl"'], { cwd: dir, env: offline });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const shown = async (stage: string) => {
      const s = await itpAsync(["show", "r.itp", stage, "--store", store, "--json", "--records", "100", "--set", 'raw.path="fixture.jsonl"'], { cwd: dir, env: offline });
      expect(s.code, s.stdout + s.stderr).toBe(0);
      return JSON.parse(s.stdout) as Shown;
    };
    const alpaca = await shown("alpaca_clean");
    expect(alpaca.sample.map((x) => x["instruction"])).toEqual([rows[0], rows[8]]);
    const si = await shown("self_instruct_clean");
    expect(si.sample.map((x) => x["instruction"])).toEqual([rows[0], rows[4], rows[8]]);
    const rules = await shown("alpaca_clean.rules");
    expect(rules.counts).toMatchObject({ "dropped: too few words": 1, "dropped: blocklisted word": 2, "dropped: blocked prefix": 1, "dropped: starts with punctuation": 1, "dropped: starts with a non-ASCII character": 1 });
    expect((await shown("alpaca_clean")).counts["dropped: ROUGE-L above max"]).toBe(1);
  });
});

/** Record the content of every request the server answers while the capture is on; returns the stop function. */
function startCapture(into: string[], withModel = false): () => void {
  const plan = (r: ServerRequest) => {
    into.push(withModel ? `${String(r.body["model"])} ${r.content}` : r.content);
    return undefined;
  };
  server.setFaults(plan);
  return () => server.setFaults(undefined);
}
