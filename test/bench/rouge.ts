// npm run bench -- rouge: Self-Instruct's ROUGE-L filter (a record is dropped when its ROUGE-L F1 against any kept
// record is above 0.7) on 50,000 generated instructions, through the rouge_dedup implementation. The instructions
// come from a few dozen task templates with slots filled from a Zipf-distributed vocabulary, and a third of them are
// light edits (a word or two replaced, inserted or removed) of an earlier one, so that many pairs sit near the
// threshold, as in Self-Instruct's generations. The peer, side by side: the textbook all-pairs filter (a full LCS
// table for every pair of token lists, every kept text scored, as Self-Instruct's script does), timed on the first
// 5,000 and extrapolated quadratically to 50,000; on those 5,000 both must keep exactly the same records.
// Target: 50,000 in under 120 s.
import { dedupImpls, rougeDedup } from "../../src/stages/dedup/dedup.js";
import { rougeTokens } from "../../src/stages/support/text.js";
import { rng } from "../support/fuzz.js";
import { runImpl } from "../support/stage-ctx.js";

const N = 50_000;
const NAIVE_N = 5_000;
const MAX = 0.7;
const r = rng(7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

// Slot words: a few hundred real ones, and a long tail of pseudo-words drawn by Zipf's law.
const REAL = `health diet sleep exercise budget travel career interview garden recipe coffee climate energy ocean forest
city history music painting poetry novel movie science physics chemistry biology math statistics economics market
startup product customer email meeting project team leader software code database network security password phone
computer robot engine car bicycle train airport hotel school student teacher exam library museum river mountain
desert island weather storm winter summer holiday birthday wedding friendship family parent child pet dog cat bird
language grammar vocabulary translation speech essay letter report review poem story joke riddle song game sport
football tennis chess puzzle art design fashion color shape animal plant tree flower fruit vegetable bread cheese
water fire earth air light sound time money price tax loan bank investment stock insurance law court vote election`.split(/\s+/);
const SYLL = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "dan", "el", "or", "qu", "is", "ber", "tor"];
const tail = Array.from({ length: 20_000 }, (_, i) => {
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
const noun = () => (r() < 0.6 ? pick(REAL) : rare());
const topic = () => (r() < 0.5 ? noun() : `${noun()} ${noun()}`);
const n = () => pick(["two", "three", "four", "five", "ten"]);
const ADJ = ["short", "funny", "formal", "persuasive", "simple", "detailed", "creative", "polite", "concise", "friendly"];
const FORM = ["story", "poem", "email", "essay", "tweet", "speech", "dialogue", "summary", "review", "letter"];
const LANG = ["French", "German", "Spanish", "Italian", "Japanese", "Chinese", "Portuguese", "Korean"];

const TEMPLATES: (() => string)[] = [
  () => `Write a ${pick(ADJ)} ${pick(FORM)} about ${topic()}.`,
  () => `Explain how ${topic()} works in ${n()} sentences.`,
  () => `Give ${n()} tips for improving your ${topic()}.`,
  () => `Summarize the following article about ${topic()} in one paragraph.`,
  () => `Translate the sentence about ${noun()} into ${pick(LANG)}.`,
  () => `Classify the following ${noun()} as either ${noun()} or ${noun()}.`,
  () => `Generate a list of ${n()} ${noun()} ideas related to ${topic()}.`,
  () => `Describe the difference between ${topic()} and ${topic()}.`,
  () => `Suggest a name for a small business that sells ${topic()}.`,
  () => `Rewrite this ${pick(FORM)} so that it sounds more ${pick(ADJ)}.`,
  () => `What are the main causes of ${topic()} and how can we prevent them?`,
  () => `Create a ${pick(ADJ)} ${pick(FORM)} for ${noun()} lovers that mentions ${topic()} and ${topic()}.`,
  () => `Find the odd one out: ${noun()}, ${noun()}, ${noun()}, ${noun()}.`,
  () => `Is the following statement about ${topic()} true or false? Explain your answer.`,
  () => `Plan a ${n()} day trip to a ${noun()} with a budget for ${topic()}.`,
  () => `Compose a ${pick(FORM)} in the style of a ${noun()} expert describing ${topic()}.`,
  () => `Identify the ${noun()} in the given text and explain why it matters for ${topic()}.`,
  () => `How would you teach a child about ${topic()}? Give ${n()} examples.`,
  () => `List the pros and cons of ${topic()} compared with ${topic()}.`,
  () => `You are a ${noun()} consultant. Advise a client who wants to invest in ${topic()}, in ${n()} bullet points.`,
];

/** A light edit of an earlier instruction: one or two words replaced, inserted or removed. */
function edit(text: string): string {
  const w = text.split(" ");
  for (let k = 1 + Math.floor(r() * 2); k > 0; k--) {
    const at = Math.floor(r() * w.length);
    const op = r();
    if (op < 0.5) w[at] = noun();
    else if (op < 0.8) w.splice(at, 0, pick(ADJ));
    else if (w.length > 4) w.splice(at, 1);
  }
  return w.join(" ");
}

const texts: string[] = [];
for (let i = 0; i < N; i++) texts.push(i > 0 && r() < 0.33 ? edit(texts[Math.floor(r() * i)]!) : pick(TEMPLATES)());

/** The textbook filter: for each text, the ROUGE-L F1 against every kept text with a full LCS table; kept if none is above max. */
function naiveFilter(all: readonly string[], max: number): number[] {
  const toks = all.map(rougeTokens);
  const pool: string[][] = [];
  const kept: number[] = [];
  toks.forEach((x, i) => {
    let best = 0;
    for (const y of pool) {
      if (x.length === 0 || y.length === 0) continue;
      const t: number[][] = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
      for (let a = 1; a <= x.length; a++) for (let b = 1; b <= y.length; b++) t[a]![b] = x[a - 1] === y[b - 1] ? t[a - 1]![b - 1]! + 1 : Math.max(t[a - 1]![b]!, t[a]![b - 1]!);
      const lcs = t[x.length]![y.length]!;
      if (lcs === 0) continue;
      const p = lcs / y.length;
      const rc = lcs / x.length;
      best = Math.max(best, (2 * p * rc) / (p + rc));
    }
    if (best <= max) {
      kept.push(i);
      pool.push(x);
    }
  });
  return kept;
}

const records = texts.map((instruction) => ({ instruction }));
let t0 = performance.now();
const fast = await runImpl(dedupImpls["rouge_dedup"]!, { field: "instruction", max: MAX }, { data: records });
const seconds = (performance.now() - t0) / 1000;
const kept = fast.records.length;

const head = texts.slice(0, NAIVE_N);
t0 = performance.now();
const fastHead = rougeDedup(head, MAX);
const fastHeadSeconds = (performance.now() - t0) / 1000;
t0 = performance.now();
const naiveHead = naiveFilter(head, MAX);
const naiveSeconds = (performance.now() - t0) / 1000;
const agree = fastHead.length === naiveHead.length && fastHead.every((k, i) => k === naiveHead[i]);
const extrapolated = naiveSeconds * (N / NAIVE_N) ** 2;

const words = texts.reduce((s, t) => s + t.split(" ").length, 0) / N;
console.log(`${N.toLocaleString("en-US")} instructions (${words.toFixed(1)} words on average), max ROUGE-L F1 ${MAX}`);
console.log(`rouge_dedup: ${seconds.toFixed(2)} s, kept ${kept.toLocaleString("en-US")}; counts ${JSON.stringify(fast.counts)}`);
console.log(`first ${NAIVE_N.toLocaleString("en-US")}: rouge_dedup ${fastHeadSeconds.toFixed(2)} s, all-pairs ${naiveSeconds.toFixed(2)} s (kept ${fastHead.length} and ${naiveHead.length}, same records: ${agree})`);
console.log(`all-pairs extrapolated to ${N.toLocaleString("en-US")}: ${extrapolated.toFixed(0)} s (${(extrapolated / seconds).toFixed(0)}x rouge_dedup)`);
console.log(`bench rouge: seconds=${seconds.toFixed(2)} naive_extrapolated_s=${extrapolated.toFixed(0)} speedup=${(extrapolated / seconds).toFixed(0)} kept=${kept} agree=${agree}`);
if (!agree) process.exitCode = 1;
