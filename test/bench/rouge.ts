// npm run bench -- rouge [n] [head]: Self-Instruct's ROUGE-L filter (a record is dropped when its ROUGE-L F1 against
// any kept record is above 0.7) on n = 50,000 generated instructions (head = 5,000 for the peer).
// itp's side: the rouge_dedup implementation, timed in process (`seconds`), and the whole `itp run` process on a JSON
// Lines file of the same instructions (`itp_run_s`: start-up, read, filter, write the artifact and the dropped
// records). It finds candidates by prefix filtering (kept texts indexed under their rarest tokens), skips a candidate
// whose shared tokens (bounded by PPJoin's positional filter, and LCS <= shared tokens) or lengths cannot give an F1
// above max, and computes the LCS of the rest bit-parallel (32-bit words of per-token position masks).
// The peer: the lean all-pairs filter, as Self-Instruct's and Alpaca's scripts decide (each new instruction scored
// against every kept one, dropped if any F1 is above 0.7), with ROUGE-L computed lean: tokens interned to integers
// once, one rolling row of the LCS table. It runs on the first 5,000 instructions, where both sides must keep exactly
// the same records, and is extrapolated to 50,000 by the comparisons it would make there: the sum over instructions
// of the kept pool's size when each arrives (rouge_dedup's kept records give the pool), times its measured time per
// comparison on the first 5,000. `naive_extrapolated_s` is that; the same by LCS cells (sum of |a| x |b|) is printed
// as a check.
// The data: instructions shaped like Self-Instruct's seed tasks (175 written by people: 13.0 words on average,
// median 11, 10% at most 7, 10% 22 or more), generated from a small grammar: imperatives, questions, a lead-in
// ("Given ...", "You are a ..."), noun phrases with adjectives and prepositional phrases, modifiers until a length
// drawn from a log-normal fitted to those figures, sometimes a second sentence; words from a vocabulary of about a
// thousand English words and a Zipf-distributed tail of 60,000 made-up terms (names, jargon: 40% of nouns, 30% of
// adjectives), so that distinct words grow as in real text (Heaps' law from the seed tasks' 727 distinct words in
// 175 instructions: about 4,000 in 4,000 instructions and 17,000 in 50,000; here 3,496 and 17,894). A quarter are edits
// of an earlier instruction (1 to 4 words replaced, inserted, removed or swapped), so that pairs spread over the
// F1 range around the threshold, as the near-duplicates of a model's generations do. Needs `npm run build`.
// Target: 50,000 in under 120 s.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dedupImpls, rougeDedup } from "../../src/stages/dedup/dedup.js";
import { rougeTokens } from "../../src/stages/support/text.js";
import { rng } from "../support/fuzz.js";
import { measured } from "../support/measured.js";
import { runImpl } from "../support/stage-ctx.js";

const N = Number(process.argv[2] ?? 50_000);
const NAIVE_N = Math.min(N, Number(process.argv[3] ?? 5_000));
const MAX = 0.7;
const r = rng(7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const words = (s: string) => s.trim().split(/\s+/);

// ---- The vocabulary ----
const VERBS = words(`write explain generate create describe give list suggest find identify classify make tell recommend compose
summarize rewrite translate convert compare design plan brainstorm predict evaluate analyze calculate determine name
provide outline edit correct paraphrase extract sort rank rate estimate draft propose invent imagine construct build
develop prepare organize categorize detect solve answer complete fill simplify expand shorten improve revise critique
review justify argue defend illustrate demonstrate define interpret decode encode format schedule budget choose select
match pair group label tag verify check test measure count convert summarise generate produce craft devise recount`);
const VERB3 = words(`helps affects causes improves reduces explains describes contains requires supports prevents changes
influences shows uses creates follows includes matches predicts replaces connects limits protects increases`);
const NOUNS = words(`story poem email essay letter report review summary list plan recipe menu speech dialogue
conversation tweet headline title slogan advertisement description paragraph sentence question answer quiz riddle
joke song lyric haiku limerick outline agenda schedule itinerary budget proposal pitch resume cover profile bio
article blog post newsletter memo note message reply invitation apology complaint request reminder announcement
argument opinion analysis comparison explanation definition example instruction tutorial guide checklist
strategy policy rule law theory hypothesis experiment study survey result conclusion fact myth idea concept
problem solution equation formula function algorithm program code script query database table chart graph
number sequence pattern word phrase idiom proverb metaphor synonym antonym acronym abbreviation name character
hero villain plot scene setting chapter book novel movie film show series episode game sport team player coach
match season tournament score goal company business startup product service customer client user employee manager
leader team meeting project deadline task job interview career skill habit goal routine hobby
health diet meal breakfast lunch dinner snack fruit vegetable protein vitamin exercise workout sleep stress anxiety
doctor patient disease symptom medicine treatment hospital nurse therapy vaccine virus bacteria cell gene brain
heart lung body muscle bone skin water air fire earth energy electricity battery engine machine robot computer
phone laptop tablet software app website browser internet network server password account email security privacy
data model system process method tool device sensor camera screen keyboard printer car bicycle train plane ship
road bridge city town village country nation state government election vote citizen president minister court
judge lawyer crime police army war peace history culture tradition festival holiday birthday wedding party gift
family parent mother father child baby friend neighbor teacher student school class lesson exam grade homework
university college library museum park garden tree flower plant forest river lake ocean sea beach mountain island
desert climate weather rain snow storm wind temperature season summer winter spring autumn animal dog cat bird
fish horse cow lion tiger bear elephant insect bee ant planet star moon sun galaxy universe space rocket satellite
money price cost tax loan bank investment stock market economy inflation salary income expense savings insurance
house home apartment room kitchen bedroom office building street shop store market restaurant hotel airport
station ticket trip vacation journey adventure language grammar vocabulary accent dialect letter alphabet
music painting drawing sculpture photograph art design fashion color shape size style font logo brand
time date day week month year century decade hour minute morning evening night weekend
problem risk benefit advantage disadvantage pro con cause effect reason purpose impact trend change growth decline`);
const ADJS = words(`short long funny formal informal persuasive simple detailed creative polite concise friendly serious
professional casual brief clear vivid original catchy memorable positive negative neutral healthy cheap expensive
easy difficult hard simple complex modern ancient traditional popular famous local global national international
personal public private social digital online new old young small large big tiny huge quick slow fast efficient
effective useful important common rare unusual strange interesting boring exciting scary happy sad angry calm
quiet loud bright dark warm cold hot cool fresh green sustainable renewable safe dangerous secure accurate correct
wrong true false fair honest rude kind generous smart clever wise healthy vegetarian vegan spicy sweet sour bitter
weekly daily monthly annual upcoming recent previous next first last final main key basic advanced beginner expert
technical scientific medical legal financial economic political historical cultural educational environmental`);
const DETS = ["the", "a", "the", "a", "the", "this", "that", "your", "my", "some", "each", "every", "one", "an"];
const PREPS = words(`of for about in on with to from by at between among during after before without within into`);
const ROLES = words(`teacher doctor lawyer chef journalist manager engineer scientist programmer designer coach writer
poet historian economist nurse pilot farmer librarian salesperson consultant therapist student tourist detective`);
const NUMS = ["two", "three", "four", "five", "six", "ten", "3", "5", "10", "20", "100"];

// A long tail of made-up terms (names, jargon) drawn by Zipf's law, as rare words are in real instructions.
const SYLL = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "dan", "el", "or", "qu", "is", "ber", "tor"];
const tail = Array.from({ length: 60_000 }, (_, i) => {
  let w = "";
  for (let n = i + 7; n > 0; n = Math.floor(n / SYLL.length)) w += SYLL[n % SYLL.length];
  return w;
});
const cdf = new Float64Array(tail.length);
for (let i = 0, s = 0; i < tail.length; i++) cdf[i] = s += 1 / (i + 1);
const rare = (): string => {
  const x = r() * cdf[cdf.length - 1]!;
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return tail[lo]!;
};

// ---- The grammar ----
const noun = () => (r() < 0.4 ? rare() : pick(NOUNS));
const adj = () => (r() < 0.3 ? rare() : pick(ADJS));
const np = (pps = 0): string => {
  const out: string[] = [];
  if (r() < 0.75) out.push(pick(DETS));
  for (let k = r() < 0.45 ? (r() < 0.3 ? 2 : 1) : 0; k > 0; k--) out.push(adj());
  out.push(noun());
  if (r() < 0.2) out.push(noun());
  for (let k = 0; k < pps; k++) out.push(pick(PREPS), ...(r() < 0.6 ? [pick(DETS)] : []), ...(r() < 0.3 ? [pick(ADJS)] : []), noun());
  return out.join(" ");
};
const pps = () => (r() < 0.5 ? 0 : r() < 0.7 ? 1 : 2);
const LEADS: (() => string)[] = [
  () => `Given ${np(pps())},`,
  () => `Using the ${noun()} below,`,
  () => "In your opinion,",
  () => `You are a ${pick(ROLES)}.`,
  () => `Imagine you are a ${pick(ADJS)} ${pick(ROLES)}.`,
  () => `For the following ${noun()},`,
  () => `Based on ${np()},`,
  () => "Please",
  () => "I want you to",
  () => `As a ${pick(ROLES)},`,
];
const CORES: (() => string)[] = [
  () => `${pick(VERBS)} ${np(pps())}`,
  () => `${pick(VERBS)} ${np(pps())}`,
  () => `${pick(VERBS)} ${np(pps())}`,
  () => `${pick(VERBS)} ${pick(NUMS)} ${noun()}s ${pick(PREPS)} ${np()}`,
  () => `what ${r() < 0.5 ? "is" : "are"} ${np(pps())}?`,
  () => `how ${pick(["do", "can", "should", "would"])} ${pick(["I", "you", "we", "people"])} ${pick(VERBS)} ${np(pps())}?`,
  () => `why is ${np()} ${pick(ADJS)}?`,
  () => `is it true that ${np()} ${pick(VERB3)} ${np()}?`,
  () => `which ${noun()} is the most ${pick(ADJS)}?`,
  () => `what would happen if ${np()} ${pick(VERB3)} ${np()}?`,
  () => `how many ${noun()}s are there in ${np()}?`,
];
const MODS: (() => string)[] = [
  () => `for ${np()}`,
  () => `in ${pick(NUMS)} ${pick(["words", "sentences", "paragraphs", "lines", "bullet points"])}`,
  () => `using ${np()}`,
  () => "and explain why",
  () => `and give ${pick(NUMS)} examples`,
  () => `based on ${np(pps())}`,
  () => `without using ${np()}`,
  () => `that ${pick(VERB3)} ${np(pps())}`,
  () => `in the style of ${np()}`,
  () => `so that ${np()} can ${pick(VERBS)} ${np()}`,
  () => `with each line formatted as ${np()}`,
  () => `for a ${pick(ADJS)} ${pick(ROLES)}`,
  () => `${pick(PREPS)} ${np()}`,
  () => `and ${pick(VERBS)} ${np()}`,
];
const SECONDS: (() => string)[] = [
  () => `Make sure ${np()} ${pick(VERB3)} ${np()}.`,
  () => `Include at least ${pick(NUMS)} ${noun()}s.`,
  () => `Use a ${pick(ADJS)} tone.`,
  () => `The ${noun()} should be ${pick(ADJS)} and ${pick(ADJS)}.`,
  () => `Output ${np()} ${pick(PREPS)} ${np()}.`,
  () => `Write down ${np(pps())} for each ${noun()}.`,
];

/** A length in words from a log-normal (median 11, 10% above 22), 4 to 100. */
const targetLength = () => {
  const z = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return Math.min(100, Math.max(4, Math.round(11 * Math.exp(0.54 * z))));
};
const capital = (s: string) => s[0]!.toUpperCase() + s.slice(1);

function instruction(): string {
  const target = targetLength();
  const parts: string[] = [];
  const lead = r() < 0.3 ? pick(LEADS)() : undefined;
  let core = pick(CORES)();
  const question = core.endsWith("?");
  if (question) core = core.slice(0, -1);
  if (lead) parts.push(lead);
  parts.push(lead && !lead.endsWith(".") ? core : capital(core));
  const count = () => parts.join(" ").split(" ").length;
  while (count() < target - 2) {
    if (r() < 0.12 && count() >= 6) {
      parts[parts.length - 1] += question ? "?" : ".";
      parts.push(pick(SECONDS)());
      return parts.join(" ");
    }
    parts.push(pick(MODS)());
  }
  return parts.join(" ") + (question ? "?" : ".");
}

/** An edit of an earlier instruction: 1 to 4 words replaced, inserted, removed or swapped with the next. */
function edit(text: string): string {
  const w = text.split(" ");
  for (let k = 1 + Math.floor(r() * 4); k > 0; k--) {
    const at = Math.floor(r() * w.length);
    const op = r();
    if (op < 0.4) w[at] = r() < 0.5 ? noun() : pick(ADJS);
    else if (op < 0.65) w.splice(at, 0, r() < 0.5 ? pick(ADJS) : noun());
    else if (op < 0.85 && w.length > 4) w.splice(at, 1);
    else if (at + 1 < w.length) [w[at], w[at + 1]] = [w[at + 1]!, w[at]!];
  }
  return w.join(" ");
}

const texts: string[] = [];
for (let i = 0; i < N; i++) texts.push(i > 0 && r() < 0.25 ? edit(texts[Math.floor(r() * i)]!) : instruction());

// ---- The peer: lean all-pairs ----
function lcs(a: Int32Array, b: Int32Array, row: Int32Array): number {
  row.fill(0, 0, b.length + 1);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    let diag = 0;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = x === b[j - 1] ? diag + 1 : Math.max(up, row[j - 1]!);
      diag = up;
    }
  }
  return row[b.length]!;
}

/** Every text against every kept text (rouge_score's F1, with ROUGE-L's tokens); kept if no F1 is above max. */
function allPairsFilter(all: readonly string[], max: number): { kept: number[]; comparisons: number } {
  const ids = new Map<string, number>();
  const toks = all.map((t) => Int32Array.from(rougeTokens(t), (w) => ids.get(w) ?? (ids.set(w, ids.size), ids.size - 1)));
  const row = new Int32Array(1 + Math.max(1, ...toks.map((t) => t.length)));
  const pool: Int32Array[] = [];
  const kept: number[] = [];
  let comparisons = 0;
  toks.forEach((x, i) => {
    let best = 0;
    for (const y of pool) {
      comparisons++;
      if (x.length === 0 || y.length === 0) continue;
      const l = lcs(x, y, row);
      if (l === 0) continue;
      const p = l / y.length;
      const rc = l / x.length;
      best = Math.max(best, (2 * p * rc) / (p + rc));
    }
    if (best <= max) {
      kept.push(i);
      pool.push(x);
    }
  });
  return { kept, comparisons };
}

/** What the all-pairs filter does on `texts` when `kept` are the records it keeps: comparisons and LCS cells. */
function allPairsWork(lengths: readonly number[], kept: readonly number[]): { comparisons: number; cells: number } {
  const isKept = new Uint8Array(lengths.length);
  for (const k of kept) isKept[k] = 1;
  let pool = 0;
  let poolTokens = 0;
  let comparisons = 0;
  let cells = 0;
  lengths.forEach((n, i) => {
    comparisons += pool;
    cells += n * poolTokens;
    if (isKept[i]) (pool++, (poolTokens += n));
  });
  return { comparisons, cells };
}

// ---- itp's side ----
const records = texts.map((instruction) => ({ instruction }));
let t0 = performance.now();
const fast = await runImpl(dedupImpls["rouge_dedup"]!, { field: "instruction", max: MAX }, { data: records });
const seconds = (performance.now() - t0) / 1000;
const kept = fast.records.length;

const dir = mkdtempSync(join(tmpdir(), "itp-bench-rouge-"));
writeFileSync(join(dir, "instructions.jsonl"), records.map((x) => JSON.stringify(x)).join("\n") + "\n");
writeFileSync(join(dir, "r.itp"), `dataset src = jsonl("instructions.jsonl")\n\nfilter deduped = rouge_dedup(src) {\n  field = instruction\n  max = ${MAX}\n}\n`);
const run = await measured([process.execPath, join(process.cwd(), "bin/itp.js"), "run", "r.itp", "--store", "store", "--json"], dir);
const runKept = (JSON.parse(run.stdout) as { stages: { id: string; records?: number }[] }).stages.find((s) => s.id === "deduped")?.records;
rmSync(dir, { recursive: true, force: true });

// ---- Side by side on the first 5,000, then the extrapolation ----
const head = texts.slice(0, NAIVE_N);
t0 = performance.now();
const fastHead = rougeDedup(head, MAX);
const fastHeadSeconds = (performance.now() - t0) / 1000;
t0 = performance.now();
const naiveHead = allPairsFilter(head, MAX);
const naiveSeconds = (performance.now() - t0) / 1000;
const agree = fastHead.length === naiveHead.kept.length && fastHead.every((k, i) => k === naiveHead.kept[i]) && runKept === kept;
const lengths = texts.map((t) => rougeTokens(t).length);
const headWork = allPairsWork(lengths.slice(0, NAIVE_N), naiveHead.kept);
if (headWork.comparisons !== naiveHead.comparisons) throw new Error(`comparisons counted ${naiveHead.comparisons}, computed ${headWork.comparisons}`);
// The records rouge_dedup kept of all n (the all-pairs filter keeps the same: checked on the head), as indices: a kept
// text is its first occurrence (a repeat has F1 1 against it, or against what dropped it, and is dropped).
const firstIndex = new Map<string, number>();
texts.forEach((t, i) => firstIndex.has(t) || firstIndex.set(t, i));
const keptIdx = fast.records.map((x) => firstIndex.get(x["instruction"] as string)!);
if (keptIdx.some((k, i) => k === undefined || (i > 0 && k <= keptIdx[i - 1]!))) throw new Error("rouge_dedup's kept records are not distinct texts in order");
const allWork = allPairsWork(lengths, keptIdx);
const extrapolated = naiveSeconds * (allWork.comparisons / headWork.comparisons);
const byCells = naiveSeconds * (allWork.cells / headWork.cells);

const sorted = [...lengths].sort((a, b) => a - b);
const q = (p: number) => sorted[Math.floor(p * (sorted.length - 1))]!;
const vocabulary = new Set(texts.flatMap(rougeTokens)).size;
const f = (x: number) => x.toLocaleString("en-US");
console.log(`${f(N)} instructions: ${(lengths.reduce((a, b) => a + b, 0) / N).toFixed(1)} words on average, median ${q(0.5)}, 10% at most ${q(0.1)}, 10% ${q(0.9)} or more, longest ${q(1)}; ${f(vocabulary)} distinct words; max ROUGE-L F1 ${MAX}`);
console.log(`  e.g. ${texts.slice(0, 4).map((t) => JSON.stringify(t)).join("\n       ")}`);
console.log(`rouge_dedup: ${seconds.toFixed(2)} s in process, kept ${f(kept)}; counts ${JSON.stringify(fast.counts)}`);
console.log(`itp run (jsonl -> rouge_dedup, whole process): ${run.seconds.toFixed(2)} s, peak RSS ${run.mb.toFixed(0)} MB, kept ${runKept === undefined ? "?" : f(runKept)}`);
console.log(`first ${f(NAIVE_N)}: rouge_dedup ${fastHeadSeconds.toFixed(2)} s, lean all-pairs ${naiveSeconds.toFixed(2)} s for ${f(naiveHead.comparisons)} comparisons (kept ${fastHead.length} and ${naiveHead.kept.length}, same records: ${agree})`);
console.log(`all-pairs on ${f(N)}: ${f(allWork.comparisons)} comparisons (${(allWork.comparisons / headWork.comparisons).toFixed(1)}x the first ${f(NAIVE_N)}'s) -> ${extrapolated.toFixed(0)} s; by LCS cells (${(allWork.cells / headWork.cells).toFixed(1)}x) -> ${byCells.toFixed(0)} s`);
console.log(
  `bench rouge: seconds=${seconds.toFixed(2)} itp_run_s=${run.seconds.toFixed(2)} naive_extrapolated_s=${extrapolated.toFixed(0)} naive_by_cells_s=${byCells.toFixed(0)} speedup=${(extrapolated / seconds).toFixed(0)} speedup_run=${(extrapolated / run.seconds).toFixed(0)} naive_head_s=${naiveSeconds.toFixed(2)} comparisons=${allWork.comparisons} kept=${kept} agree=${agree}`,
);
if (!agree) process.exitCode = 1;
