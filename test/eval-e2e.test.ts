import { spawn, spawnSync } from "node:child_process";
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loglikTokens } from "../src/models/loglik-tokens.js";
import { loadTokenizer } from "../src/models/onnx-tokenizer.js";
import { RequestCache } from "../src/runtime/request-cache.js";
import type { EvalExample, Metric, TaskReport } from "../src/stages/eval/report.js";
import { itpAsync, itpBin, repoRoot, stackTrace, tempTree } from "./support/cli.js";
import { fault, startOpenAIServer, type OpenAIServer, type ServerRequest } from "./support/openai-server.js";
import { torchPython } from "./support/python.js";

// Evaluation end to end, through the CLI: a recipe trains the tiny model the examples ship (pipelines/models/tiny-llama)
// on the CPU and evaluates it on small fixture sets of the five benchmarks, in their datasets' native shapes; the judge
// of AlpacaEval and MT-Bench is the loopback OpenAI-compatible server, whose answers follow rules this test knows. The
// report's numbers are computed again here from what the report keeps (log-likelihoods again by torch, one sequence
// at a time; GSM8K's extraction, four IFEval checkers, the win rate and the ratings by our own code). A rerun is
// cached whole; a run killed (SIGKILL) while the judge is being asked resumes without asking any answered request
// again, and ends with the same report.

const py = torchPython();
const TINY = join(repoRoot, "pipelines/models/tiny-llama");
const TRAINER = join(repoRoot, "src/trainer");
const dirs: string[] = [];
let server: OpenAIServer | undefined;
afterAll(async () => {
  await server?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const jsonl = (rows: readonly unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

// MMLU (cais/mmlu rows). The first question is also in the training data (planted): the contamination count is 1.
const PLANTED = "Which of the following rivers flows through the most countries on its long way before it reaches the sea?";
const MMLU_TEST = [
  { question: PLANTED, subject: "high_school_geography", choices: ["The Danube", "The Nile", "The Amazon", "The Mississippi"], answer: 0 },
  { question: "What is the largest desert in Asia?", subject: "high_school_geography", choices: ["Thar", "Gobi", "Karakum", "Taklamakan"], answer: 1 },
  { question: "Which line divides the Earth into northern and southern halves?", subject: "high_school_geography", choices: ["Prime meridian", "Tropic of Cancer", "Equator", "Arctic Circle"], answer: 2 },
  { question: "Which organelle makes most of a cell's ATP?", subject: "college_biology", choices: ["Ribosome", "Golgi apparatus", "Lysosome", "Mitochondrion"], answer: 3 },
  { question: "DNA is copied during which phase of the cell cycle?", subject: "college_biology", choices: ["S phase", "G1 phase", "M phase", "G2 phase"], answer: 0 },
  { question: "Which molecule carries amino acids to the ribosome?", subject: "college_biology", choices: ["mRNA", "tRNA", "rRNA", "DNA"], answer: 1 },
];
const MMLU_DEV = [
  { question: "What is the capital of Canada?", subject: "high_school_geography", choices: ["Toronto", "Ottawa", "Montreal", "Vancouver"], answer: 1 },
  { question: "Which gas do plants release?", subject: "college_biology", choices: ["Oxygen", "Nitrogen", "Helium", "Argon"], answer: 0 },
];
// GSM8K (openai/gsm8k rows).
const GSM8K_TEST = [
  { question: "Tom has 3 apples and buys 2 more. How many apples does he have?", answer: "Tom has 3 + 2 = <<3+2=5>>5 apples.\n#### 5" },
  { question: "A box holds 12 eggs. How many eggs are in 3 boxes?", answer: "3 boxes hold 3 * 12 = <<3*12=36>>36 eggs.\n#### 36" },
  { question: "Sara had 10 dollars and spent 4. How much is left?", answer: "She has 10 - 4 = <<10-4=6>>6 dollars left.\n#### 6" },
];
const GSM8K_TRAIN = [
  { question: "Ann has 2 cats and gets 1 more. How many cats?", answer: "2 + 1 = <<2+1=3>>3 cats.\n#### 3" },
  { question: "A pen costs 2 dollars. How much do 4 pens cost?", answer: "4 * 2 = <<4*2=8>>8 dollars.\n#### 8" },
  { question: "Bob walks 5 km a day. How far in 2 days?", answer: "5 * 2 = <<5*2=10>>10 km.\n#### 10" },
];
// IFEval (google/IFEval rows: every kwargs dict has all the keys, null where unused).
const NULLS = Object.fromEntries(
  ["num_highlights", "relation", "num_words", "num_placeholders", "prompt_to_repeat", "num_bullets", "section_spliter", "num_sections", "capital_relation", "capital_frequency", "keywords", "num_paragraphs", "language", "let_relation", "letter", "let_frequency", "end_phrase", "forbidden_words", "keyword", "frequency", "num_sentences", "postscript_marker", "first_word", "nth_paragraph"].map((k) => [k, null]),
);
const IFEVAL = [
  { key: 1000, prompt: "Write a short note about rivers without using any commas.", instruction_id_list: ["punctuation:no_comma"], kwargs: [NULLS] },
  { key: 1001, prompt: "Describe the sea using the letter e at least twice, and wrap your whole answer in double quotation marks.", instruction_id_list: ["keywords:letter_frequency", "startend:quotation"], kwargs: [{ ...NULLS, letter: "e", let_frequency: 2, let_relation: "at least" }, NULLS] },
  { key: 1002, prompt: "Write a poem about the moon with a title in double angular brackets, such as <<poem of joy>>.", instruction_id_list: ["detectable_format:title"], kwargs: [NULLS] },
  { key: 1003, prompt: "List two colours, with no commas at all, using the letter o less than 3 times.", instruction_id_list: ["punctuation:no_comma", "keywords:letter_frequency"], kwargs: [NULLS, { ...NULLS, letter: "o", let_frequency: 3, let_relation: "less than" }] },
];
// AlpacaEval (tatsu-lab/alpaca_eval rows). The tiny model's answers are short: one baseline output is one character,
// so there is a draw as well as losses.
const ALPACA = [
  { instruction: "Name a fruit that is yellow.", output: "A banana is yellow.", generator: "text_davinci_003", dataset: "helpful_base" },
  { instruction: "Give one tip for better sleep.", output: "Go to bed at the same time every night, keep the room dark and cool, and put screens away an hour before sleeping.", generator: "text_davinci_003", dataset: "helpful_base" },
  { instruction: "What is two plus two?", output: "4", generator: "text_davinci_003", dataset: "oasst" },
];
// MT-Bench (FastChat's question.jsonl rows). Each turn carries the rating the judge gives it (`T<turn>R<rating>`;
// 0: the judge answers without a rating).
const MT_BENCH = [
  { question_id: 81, category: "writing", turns: ["Write a short travel note about a lake. T1R7", "Rewrite it as a haiku. T2R5"] },
  { question_id: 111, category: "math", turns: ["What is 12 times 3? T1R3", "Now divide that by 4. T2R0"], reference: ["36", "9"] },
  { question_id: 91, category: "roleplay", turns: ["Pretend to be a pirate and greet me. T1R9", "Now say goodbye. T2R8"] },
];
const JUDGE_REQUESTS = 2 * ALPACA.length + 2 * MT_BENCH.length;
// What the model under evaluation is asked: 4 letters per MMLU question, one generation per GSM8K, IFEval and
// AlpacaEval item, two per MT-Bench question.
const MODEL_REQUESTS_BEFORE_JUDGING = 4 * MMLU_TEST.length + GSM8K_TEST.length + IFEVAL.length + ALPACA.length;
const MODEL_REQUESTS = MODEL_REQUESTS_BEFORE_JUDGING + 2 * MT_BENCH.length;

/** AlpacaEval's judge prompt shows the two outputs as "m" and "M"; this judge prefers the longer one ("m" on a tie). */
function alpacaOutputs(content: string): [string, string] | undefined {
  const m = /"model_identifier": "m",\n\s*"output": """([\s\S]*?)"""\n\s*\},\n\s*\{\n\s*"model_identifier": "M",\n\s*"output": """([\s\S]*?)"""\n/.exec(content);
  return m ? [m[1]!, m[2]!] : undefined;
}

function judgeAnswer(r: ServerRequest): string {
  const pair = alpacaOutputs(r.content);
  if (pair) return pair[0].length >= pair[1].length ? "m" : "M";
  // MT-Bench: the second turn's judge prompt holds both turns; its marker decides.
  const m = /T2R(\d)/.exec(r.content) ?? /T1R(\d)/.exec(r.content);
  if (!m) return "I do not know this request.";
  return m[1] === "0" ? "A fine answer, but I will not give it a number." : `The answer is adequate.\n\nRating: [[${m[1]}]]`;
}

const recipe = (url: string) => `dataset data: Instruction = jsonl("data.jsonl")

dataset few = take(data, n: 16)

train tuned = sft(few, base: "tiny") {
  gpus = 0
  epochs = 1
  batch_size = 4
  max_length = 96
  precision = "fp32"
  seed = 7
  lr = 3e-3
}

model judge = openai_compatible() {
  model = "test-model"
  base_url = "${url}"
  concurrency = 8
  max_retries = 0
}

dataset mmlu_test: McqExample = jsonl("mmlu_test.jsonl")

dataset mmlu_dev: McqExample = jsonl("mmlu_dev.jsonl")

dataset gsm8k_test: MathExample = jsonl("gsm8k_test.jsonl")

dataset gsm8k_train: MathExample = jsonl("gsm8k_train.jsonl")

dataset ifeval_prompts: IfevalPrompt = jsonl("ifeval.jsonl")

dataset alpaca_set: AlpacaEvalExample = jsonl("alpaca_eval.jsonl")

dataset mt_questions: MtBenchQuestion = jsonl("mt_bench.jsonl")

eval scores = evaluate(tuned) {
  tasks = [
    mmlu(mmlu_test, dev: mmlu_dev, shots: 1),
    gsm8k(gsm8k_test, train: gsm8k_train, shots: 2),
    ifeval(ifeval_prompts),
    alpaca_eval(alpaca_set, judge: judge),
    mt_bench(mt_questions, judge: judge),
  ]
  max_tokens = 24
}
`;

function project(url: string): string {
  const alpaca = readFileSync(join(repoRoot, "pipelines/data/quickstart/alpaca_sample.jsonl"), "utf8").trim().split("\n").slice(0, 15);
  const dir = tempTree({
    "r.itp": recipe(url),
    "data.jsonl": jsonl([{ instruction: PLANTED, input: "", output: "The Danube." }]) + alpaca.join("\n") + "\n",
    "mmlu_test.jsonl": jsonl(MMLU_TEST),
    "mmlu_dev.jsonl": jsonl(MMLU_DEV),
    "gsm8k_test.jsonl": jsonl(GSM8K_TEST),
    "gsm8k_train.jsonl": jsonl(GSM8K_TRAIN),
    "ifeval.jsonl": jsonl(IFEVAL),
    "alpaca_eval.jsonl": jsonl(ALPACA),
    "mt_bench.jsonl": jsonl(MT_BENCH),
  });
  cpSync(TINY, join(dir, "tiny"), { recursive: true });
  dirs.push(dir);
  return dir;
}

const env = () => ({ ITP_PYTHON: py! });

interface RunJson {
  ran: number;
  cached: number;
  failed: number;
  stages: { id: string; status: string; error?: string }[];
}

async function run(dir: string, store: string, extra: string[] = []): Promise<RunJson> {
  const r = await itpAsync(["run", "r.itp", "--store", store, "--json", ...extra], { cwd: dir, env: env() });
  expect(r.stdout + r.stderr).not.toMatch(stackTrace);
  let j: RunJson;
  try {
    j = JSON.parse(r.stdout) as RunJson;
  } catch {
    throw new Error(`no JSON from itp run (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  expect(r.code, `${JSON.stringify(j.stages.filter((s) => s.error))}\n${r.stderr.slice(-3000)}`).toBe(0);
  return j;
}

interface ShowJson {
  stage: string;
  model: string;
  template: string;
  tasks: TaskReport[];
  counts: Record<string, number>;
}

async function show(dir: string, store: string, extra: string[] = []): Promise<string> {
  const r = await itpAsync(["show", "r.itp", "scores", "--store", store, ...extra], { cwd: dir, env: env() });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout + r.stderr).not.toMatch(stackTrace);
  return r.stdout;
}

/** The whole Report: every task's examples through `show --examples --json`, the tasks through `show --json`. */
async function report(dir: string, store: string): Promise<{ shown: ShowJson; examples: Record<string, EvalExample[]> }> {
  const shown = JSON.parse(await show(dir, store, ["--json"])) as ShowJson;
  const examples: Record<string, EvalExample[]> = {};
  for (const t of shown.tasks) {
    const e = JSON.parse(await show(dir, store, ["--examples", "--task", t.name, "--json", "--records", "100"])) as { matching: number; examples: { task: string; example: EvalExample }[] };
    expect(e.matching).toBe(t.items);
    examples[t.name] = e.examples.map((x) => x.example);
  }
  return { shown, examples };
}

const metric = (t: TaskReport, name: string): Metric => {
  const m = t.metrics[name];
  if (!m) throw new Error(`task ${t.name} has no metric ${name} (it has ${Object.keys(t.metrics).join(", ")})`);
  return m;
};
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sem = (xs: readonly number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1)) / Math.sqrt(xs.length);
};

// ---- independent scoring ------------------------------------------------------------------------------------------

/** GSM8K's answer extraction as lm-evaluation-harness's filters define it, with its normalization. */
function gsm8kExtract(text: string): { strict: string | null; flexible: string | null } {
  const strict = /#### (-?[0-9.,]+)/.exec(text)?.[1] ?? null;
  const all = [...text.matchAll(/(-?[$0-9.,]{2,})|(-?[0-9]+)/g)].map((m) => m[1] ?? m[2]!);
  return { strict, flexible: all.at(-1) ?? null };
}
const gsm8kNorm = (s: string) => s.replace(/[,$]/g, "").replace(/\.$/, "").trim();

/** The four IFEval checks of the fixture, as the reference's check_following (kwargs of the item's instruction). */
type Kwargs = Record<string, unknown>;
const CHECKS: Record<string, (r: string, kw: Kwargs) => boolean> = {
  "punctuation:no_comma": (r) => !r.includes(","),
  "keywords:letter_frequency": (r, kw) => {
    const n = [...r.toLowerCase()].filter((c) => c === kw["letter"]).length;
    return kw["let_relation"] === "less than" ? n < Number(kw["let_frequency"]) : n >= Number(kw["let_frequency"]);
  },
  "startend:quotation": (r) => {
    const v = r.trim();
    return v.length > 1 && v[0] === '"' && v.at(-1) === '"';
  },
  "detectable_format:title": (r) => [...r.matchAll(/<<[^\n]+>>/g)].some((m) => m[0].replace(/^<+|>+$/g, "").trim().length > 0),
};
/** The loose variants of a response (the reference's: first or last line removed, asterisks removed). */
function variants(r: string): string[] {
  const lines = r.split("\n");
  const first = lines.slice(1).join("\n").trim();
  const last = lines.slice(0, -1).join("\n").trim();
  const both = lines.slice(1, -1).join("\n").trim();
  const star = (s: string) => s.replaceAll("*", "");
  return [r, star(r), first, last, both, star(first), star(last), star(both)];
}
const strictPass = (id: string, kw: Kwargs, r: string) => r.trim().length > 0 && CHECKS[id]!(r, kw);
const loosePass = (id: string, kw: Kwargs, r: string) => variants(r).some((v) => v.trim().length > 0 && CHECKS[id]!(v, kw));

/** Log-likelihoods of the MMLU requests by torch, one sequence at a time, on the ids lm-evaluation-harness's rules give. */
async function torchLoglik(modelDir: string, pairs: readonly { context: string; continuation: string }[]): Promise<number[]> {
  const tok = await loadTokenizer(modelDir);
  const max = (JSON.parse(readFileSync(join(modelDir, "config.json"), "utf8")) as { max_position_embeddings: number }).max_position_embeddings;
  const reqs = pairs.map((p, i) => {
    const t = loglikTokens(tok, p.context, p.continuation, max, `pair ${i}`, "test");
    expect(t.truncated, `pair ${i} fits the context`).toBe(false);
    return [t.ids, t.context];
  });
  const file = join(modelDir, "..", `loglik-${process.pid}.json`);
  writeFileSync(file, JSON.stringify(reqs));
  const r = spawnSync(py!, [join(repoRoot, "test/support/loglik_ids.py"), TRAINER, modelDir, file], { encoding: "utf8", timeout: 300_000 });
  rmSync(file, { force: true });
  if (r.status !== 0) throw new Error(`loglik_ids.py failed:\n${r.stderr}`);
  return (JSON.parse(r.stdout) as { logprobs: number[] }).logprobs;
}

/** Evaluation workers still running on this test's folder. */
function workers(dir: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
      if (cmd.includes("itp_trainer") && cmd.includes("evaluate") && cmd.includes(dir)) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

async function until(what: string, ok: () => boolean, ms = 300_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!py)("evaluation end to end: train on the CPU, evaluate on the five benchmarks", () => {
  let dir = "";
  let first: { shown: ShowJson; examples: Record<string, EvalExample[]> };

  beforeAll(async () => {
    server = await startOpenAIServer({ answer: (r) => judgeAnswer(r) });
    dir = project(server.url);
  });

  it("trains, evaluates every task, and the report's numbers agree with an independent computation", async () => {
    const j = await run(dir, "s");
    expect(j.failed).toBe(0);
    expect(j.stages.find((s) => s.id === "scores")?.status).toBe("ran");
    // The judge was asked each AlpacaEval item in both orders and each MT-Bench turn once, on the chat endpoint.
    expect(server!.stats.received).toBe(JUDGE_REQUESTS);
    expect(server!.stats.outcomes).toEqual({ ok: JUDGE_REQUESTS });
    first = await report(dir, "s");
    const { shown, examples } = first;
    expect(shown.model).toBe("tuned");
    // The trained folder's chat template (tiny-llama's tokenizer_config.json) wraps the generation prompts.
    expect(shown.template).toMatch(/^the chat template of `tuned` \(hf chat template/);
    expect(shown.tasks.map((t) => [t.name, t.task, t.primary, t.items, t.limited])).toEqual([
      ["mmlu", "mmlu", "acc", MMLU_TEST.length, false],
      ["gsm8k", "gsm8k", "exact_match_strict", GSM8K_TEST.length, false],
      ["ifeval", "ifeval", "prompt_level_strict_acc", IFEVAL.length, false],
      ["alpaca_eval", "alpaca_eval", "win_rate", ALPACA.length, false],
      ["mt_bench", "mt_bench", "score", MT_BENCH.length, false],
    ]);
    // Every answer of the model went through the request cache: all sent, none cached, on a first run.
    expect(shown.counts).toMatchObject({ "requests: sent": MODEL_REQUESTS, "mmlu: items": MMLU_TEST.length });
    expect(shown.counts["requests: cached"]).toBeUndefined();
    // Contamination: the planted MMLU question is in the training data (`few`); nothing else is.
    const [mmlu, gsm8k, ifeval, alpaca, mt] = shown.tasks as [TaskReport, TaskReport, TaskReport, TaskReport, TaskReport];
    expect(mmlu.contamination).toEqual({ ngram: 13, items: MMLU_TEST.length, contaminated: 1, training_data: ["few"] });
    for (const t of [gsm8k, ifeval, alpaca, mt]) expect(t.contamination).toMatchObject({ contaminated: 0, training_data: ["few"] });

    // MMLU: the log-likelihoods of " A".." D" after each prompt, by torch one sequence at a time, to 1e-4; the
    // prediction is their argmax; accuracy micro and macro over the two subjects, and per subject.
    const show1 = JSON.parse(await show(dir, "s", ["--json"])) as ShowJson;
    expect(show1.tasks).toEqual(shown.tasks);
    const modelDir = join(dir, (JSON.parse((await itpAsync(["show", "r.itp", "tuned", "--store", "s", "--json"], { cwd: dir, env: env() })).stdout) as { path: string }).path);
    const mmluEx = examples["mmlu"]!;
    expect(mmluEx.map((e) => e.id)).toEqual(["high_school_geography/0", "high_school_geography/1", "high_school_geography/2", "college_biology/0", "college_biology/1", "college_biology/2"]);
    const letters = ["A", "B", "C", "D"];
    const pairs = mmluEx.flatMap((e) => letters.map((l) => ({ context: e.prompt as string, continuation: ` ${l}` })));
    // The prompt: hendrycks/test's header (two spaces after "about"), the subject's first dev row as the shot.
    expect(mmluEx[1]!.prompt).toBe(
      "The following are multiple choice questions (with answers) about  high school geography.\n\nWhat is the capital of Canada?\nA. Toronto\nB. Ottawa\nC. Montreal\nD. Vancouver\nAnswer: B\n\nWhat is the largest desert in Asia?\nA. Thar\nB. Gobi\nC. Karakum\nD. Taklamakan\nAnswer:",
    );
    const lls = await torchLoglik(modelDir, pairs);
    const correct: boolean[] = [];
    mmluEx.forEach((e, i) => {
      const mine = lls.slice(4 * i, 4 * i + 4);
      const theirs = letters.map((l) => (e.output as Record<string, number>)[l]!);
      theirs.forEach((x, k) => expect(Math.abs(x - mine[k]!), `${e.id} ${letters[k]}: ${x} vs ${mine[k]}`).toBeLessThan(1e-4));
      const pred = letters[mine.indexOf(Math.max(...mine))]!;
      expect(e.extracted).toBe(pred);
      expect(e.gold).toBe(letters[MMLU_TEST[i]!.answer]);
      correct.push(pred === e.gold);
      expect(e.passed).toBe(pred === e.gold);
    });
    const geo = correct.slice(0, 3).map(Number);
    const bio = correct.slice(3).map(Number);
    expect(metric(mmlu, "acc").value).toBeCloseTo(mean([...geo, ...bio]), 12);
    expect(metric(mmlu, "acc").n).toBe(6);
    expect(metric(mmlu, "acc_macro").value).toBeCloseTo((mean(geo) + mean(bio)) / 2, 12);
    expect(metric(mmlu, "acc:high_school_geography")).toMatchObject({ n: 3 });
    expect(metric(mmlu, "acc:high_school_geography").value).toBeCloseTo(mean(geo), 12);
    expect(metric(mmlu, "acc:college_biology").value).toBeCloseTo(mean(bio), 12);
    // Categories: geography is a social science, biology STEM.
    expect(metric(mmlu, "acc:social_sciences").value).toBeCloseTo(mean(geo), 12);
    expect(metric(mmlu, "acc:stem").value).toBeCloseTo(mean(bio), 12);

    // GSM8K: extraction again from each raw answer, against the gold after "#### ".
    const gsmEx = examples["gsm8k"]!;
    expect(gsmEx).toHaveLength(3);
    const strict: number[] = [];
    const flexible: number[] = [];
    gsmEx.forEach((e, i) => {
      const gold = GSM8K_TEST[i]!.answer.split("#### ")[1]!;
      expect(e.gold).toBe(gold);
      const x = gsm8kExtract(e.output as string);
      strict.push(Number(x.strict !== null && gsm8kNorm(x.strict) === gold));
      flexible.push(Number(x.flexible !== null && gsm8kNorm(x.flexible) === gold));
      expect(e.passed).toBe(strict[i] === 1);
    });
    expect(metric(gsm8k, "exact_match_strict")).toMatchObject({ n: 3 });
    expect(metric(gsm8k, "exact_match_strict").value).toBeCloseTo(mean(strict), 12);
    expect(metric(gsm8k, "exact_match_flexible").value).toBeCloseTo(mean(flexible), 12);
    // The prompt: the two shots drawn from train, then the question; the chat template around it.
    expect(gsmEx[0]!.prompt as string).toContain("Question: Tom has 3 apples and buys 2 more. How many apples does he have?\nAnswer:");

    // IFEval: every instruction's strict and loose verdict by the checks here, and the four accuracies.
    const ifEx = examples["ifeval"]!;
    const promptStrict: number[] = [];
    const promptLoose: number[] = [];
    const instStrict: number[] = [];
    const instLoose: number[] = [];
    const perId = new Map<string, { strict: number[]; loose: number[] }>();
    ifEx.forEach((e, i) => {
      const item = IFEVAL[i]!;
      expect(e.id).toBe(String(item.key));
      const out = e.output as string;
      const s = item.instruction_id_list.map((id, k) => strictPass(id, item.kwargs[k]!, out));
      const l = item.instruction_id_list.map((id, k) => loosePass(id, item.kwargs[k]!, out));
      item.instruction_id_list.forEach((id, k) => {
        expect(e.verdict![`${k}:${id}`], `${item.key} ${id} on ${JSON.stringify(out)}`).toMatchObject({ strict: s[k], loose: l[k] });
        const a = perId.get(id) ?? { strict: [], loose: [] };
        a.strict.push(Number(s[k]));
        a.loose.push(Number(l[k]));
        perId.set(id, a);
      });
      promptStrict.push(Number(s.every(Boolean)));
      promptLoose.push(Number(l.every(Boolean)));
      instStrict.push(...s.map(Number));
      instLoose.push(...l.map(Number));
    });
    expect(metric(ifeval, "prompt_level_strict_acc")).toMatchObject({ n: 4 });
    expect(metric(ifeval, "prompt_level_strict_acc").value).toBeCloseTo(mean(promptStrict), 12);
    expect(metric(ifeval, "prompt_level_loose_acc").value).toBeCloseTo(mean(promptLoose), 12);
    expect(metric(ifeval, "inst_level_strict_acc")).toMatchObject({ n: 6 });
    expect(metric(ifeval, "inst_level_strict_acc").value).toBeCloseTo(mean(instStrict), 12);
    expect(metric(ifeval, "inst_level_loose_acc").value).toBeCloseTo(mean(instLoose), 12);
    for (const [id, a] of perId) {
      expect(metric(ifeval, `strict:${id}`)).toMatchObject({ n: a.strict.length });
      expect(metric(ifeval, `strict:${id}`).value).toBeCloseTo(mean(a.strict), 12);
      expect(metric(ifeval, `loose:${id}`).value).toBeCloseTo(mean(a.loose), 12);
    }

    // AlpacaEval: the judge prefers the longer output in either position, so the model wins where its answer is
    // longer than the baseline's, loses where shorter, draws on a tie; win rate = mean of (preference - 1) x 100.
    const alpEx = examples["alpaca_eval"]!;
    const prefs = alpEx.map((e, i) => {
      const out = e.output as string;
      const base = ALPACA[i]!.output;
      expect(e.gold).toBe(base);
      expect(e.verdict).toMatchObject({ baseline_first: base.length >= out.length ? "m" : "M", model_first: out.length >= base.length ? "m" : "M" });
      return out.length > base.length ? 2 : out.length < base.length ? 1 : 1.5;
    });
    const wins = prefs.map((p) => (p - 1) * 100);
    expect(metric(alpaca, "win_rate")).toMatchObject({ n: 3 });
    expect(metric(alpaca, "win_rate").value).toBeCloseTo(mean(wins), 10);
    if (new Set(wins).size > 1) expect(metric(alpaca, "win_rate").stderr!).toBeCloseTo(sem(wins), 10);
    expect(metric(alpaca, "length_controlled_win_rate").value).toBeGreaterThanOrEqual(0);
    expect(metric(alpaca, "length_controlled_win_rate").value).toBeLessThanOrEqual(100);
    expect(alpaca.notes).toMatchObject({ wins: prefs.filter((p) => p === 2).length, losses: prefs.filter((p) => p === 1).length, draws: prefs.filter((p) => p === 1.5).length });

    // MT-Bench: the ratings the markers ask for; the unrated turn is left out of every mean.
    const mtEx = examples["mt_bench"]!;
    expect(mtEx.map((e) => e.id)).toEqual(["81", "111", "91"]);
    expect(mtEx.map((e) => (e.verdict!["turns"] as { rating: number | null }[]).map((t) => t.rating))).toEqual([
      [7, 5],
      [3, null],
      [9, 8],
    ]);
    // The math question is judged against its reference.
    expect(JSON.stringify((mtEx[1]!.verdict!["turns"] as { judge: unknown }[])[0]!.judge)).toContain("math");
    expect(metric(mt, "score")).toMatchObject({ n: 5 });
    expect(metric(mt, "score").value).toBeCloseTo(mean([7, 5, 3, 9, 8]), 12);
    expect(metric(mt, "score:turn1").value).toBeCloseTo(mean([7, 3, 9]), 12);
    expect(metric(mt, "score:turn2").value).toBeCloseTo(mean([5, 8]), 12);
    expect(metric(mt, "score:writing").value).toBeCloseTo(6, 12);
    expect(metric(mt, "score:math")).toMatchObject({ value: 3, n: 1 });
    expect(metric(mt, "score:roleplay").value).toBeCloseTo(8.5, 12);
    expect(mt.notes).toEqual({ "unreadable ratings": 1 });
    // Both turns' answers are kept; the second turn's prompt holds the first exchange.
    expect((mtEx[0]!.output as string[]).length).toBe(2);
    expect((mtEx[0]!.prompt as string[])[1]).toContain((mtEx[0]!.output as string[])[0]!);

    // The human table, and the failed examples of a task.
    const table = await show(dir, "s");
    expect(table).toContain("scores: evaluation report\nmodel     tuned\n");
    expect(table).toMatch(/^mmlu\s+acc\s+\d\.\d{4}\s+\d\.\d{4}\s+6$/m);
    expect(table).toMatch(/^mt_bench\s+score\s+6\.4000\s+\d\.\d{4}\s+5$/m);
    expect(table).toContain("  mmlu: 6 items; 1/6 items share a 13-gram with few");
    const failed = await show(dir, "s", ["--examples", "--failed", "--task", "mmlu"]);
    const nFailed = correct.filter((c) => !c).length;
    expect(failed.split("\n")[0]).toBe(`scores: ${nFailed} failed example${nFailed === 1 ? "" : "s"} of mmlu`);
    expect(failed.match(/^--- mmlu #/gm)?.length ?? 0).toBe(nFailed);
  }, 600_000);

  it("a rerun is cached whole: nothing runs and nothing is asked", async () => {
    expect(first, "the first test ran").toBeDefined();
    server!.reset();
    const j = await run(dir, "s");
    expect(j.ran).toBe(0);
    expect(j.failed).toBe(0);
    expect(j.stages.every((s) => s.status === "cached"), JSON.stringify(j.stages)).toBe(true);
    expect(server!.stats.received).toBe(0);
    expect(workers(dir)).toEqual([]);
  }, 300_000);

  it("killed (SIGKILL) while the judge is asked, the next run resumes without asking any answered request again", async () => {
    expect(first, "the first test ran").toBeDefined();
    // A project of its own (it trains again: the same weights, training being deterministic on the CPU).
    const kdir = project(server!.url);
    server!.reset();
    // The judge answers its first 4 requests, and never the later ones: the kill comes while those hang.
    const answered = 4;
    const bodies: string[] = [];
    server!.setFaults((r) => {
      if (r.seq < answered) {
        bodies.push(JSON.stringify(r.body));
        return undefined;
      }
      return fault.hang;
    });
    const child = spawn(process.execPath, [itpBin, "run", "r.itp", "--store", "k"], { cwd: kdir, env: { ...process.env, ...env(), NO_COLOR: "1" }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const closed = new Promise<string>((res) => child.on("close", (c, sig) => res(`exit ${c} ${sig}`)));
    let ended: string | undefined;
    void closed.then((how) => (ended = how));
    await until("the judge's answers", () => ended !== undefined || (server!.stats.outcomes["ok"] === answered && (server!.stats.outcomes["hang"] ?? 0) > 0));
    expect(ended, stderr).toBeUndefined();
    // Every model answer so far and the judge's 4 answers are in the request log before the kill.
    await until("the answers in the request log", () => RequestCache.open(join(kdir, "k")).size >= MODEL_REQUESTS_BEFORE_JUDGING + answered, 60_000);
    expect(workers(kdir), "the evaluation worker runs while the judge is asked").toHaveLength(1);
    child.kill("SIGKILL");
    expect(await closed).toBe("exit null SIGKILL");
    // The worker the killed itp started notices its client is gone, and ends.
    await until("the killed run's worker to end", () => workers(kdir).length === 0, 60_000);

    server!.setFaults(undefined);
    server!.reset();
    const asked: string[] = [];
    server!.setFaults((r) => {
      asked.push(JSON.stringify(r.body));
      return undefined;
    });
    const j = await run(kdir, "k");
    server!.setFaults(undefined);
    expect(j.stages.find((s) => s.id === "scores")?.status).toBe("ran");
    expect(j.stages.find((s) => s.id === "tuned")?.status).toBe("cached");
    // Only the unanswered judge requests were sent, none of the answered ones.
    expect(asked).toHaveLength(JUDGE_REQUESTS - answered);
    for (const b of asked) expect(bodies, "an answered request was asked again").not.toContain(b);
    // The model under evaluation: everything it had answered came from the cache, only MT-Bench's turns were asked.
    const resumed = await report(kdir, "k");
    expect(resumed.shown.counts).toMatchObject({ "requests: cached": MODEL_REQUESTS_BEFORE_JUDGING, "requests: sent": MODEL_REQUESTS - MODEL_REQUESTS_BEFORE_JUDGING });
    // And the report is the uninterrupted run's.
    expect(resumed.shown.tasks).toEqual(first.shown.tasks);
    expect(resumed.examples).toEqual(first.examples);
    await until("the worker to end", () => workers(kdir).length === 0, 60_000);
  }, 600_000);
});

describe("the model folder's tokenizer", () => {
  it("decodes an answer that was only the end token (no ids) to nothing", async () => {
    const tok = await loadTokenizer(TINY);
    expect(tok.decode([])).toBe("");
    expect(tok.decode(tok.encode("a river"))).toBe("a river");
  });
});
