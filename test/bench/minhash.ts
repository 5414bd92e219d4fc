// npm run bench -- minhash: near-duplicate removal at scale through `itp run` (jsonl -> minhash_dedup). 100,000
// generated documents of 200 words (a Zipf-distributed vocabulary of 30,000 words, seeded): 95,000 originals and
// 5,000 planted near-duplicates, each a copy of a distinct original with 5-10% of its words replaced, deleted or
// doubled, shuffled in. Parameters for edits of that size: 2-word shingles (a copy keeps Jaccard ~0.7-0.9 with its
// original; unrelated documents ~0.02), 128 permutations in 32 bands of 4 rows, threshold 0.5.
// A first run imports the JSONL; the timed run is `--force dedup` (read the stored records, signatures, LSH,
// union-find, write). Recall: planted pairs whose two documents end in one cluster; precision: dropped documents
// whose kept record (from `itp show --dropped`) is their planted partner. Peak RSS from /usr/bin/time -v, else by
// polling /proc/<pid>/status. The peer, side by side: exact all-pairs Jaccard on the shingle sets (what LSH avoids),
// timed on 2,000 documents and extrapolated quadratically. Targets: under 60 s, recall and precision >= 0.95.
// Needs `npm run build`.
import { once } from "node:events";
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { shingleHashes } from "../../src/stages/dedup/minhash.js";
import { measured } from "../support/measured.js";
import { rng } from "../support/fuzz.js";

const DOCS = 100_000;
const PAIRS = 5_000;
const WORDS = 200;
const VOCAB = 30_000;
const SHINGLE = 2;

const bin = join(process.cwd(), "bin/itp.js");
const dir = mkdtempSync(join(tmpdir(), "itp-bench-minhash-"));
const r = rng(2024);

// Pseudo-words from syllables, drawn by Zipf's law (s = 1) through the inverse of the cumulative distribution.
const SYLL = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "dan", "el", "or", "qu", "is", "ber", "tor", "an", "gle", "mu", "sa"];
const vocab = Array.from({ length: VOCAB }, (_, i) => {
  let w = "";
  for (let n = i + 1; n > 0; n = Math.floor(n / SYLL.length)) w += SYLL[n % SYLL.length];
  return w;
});
const cdf = new Float64Array(VOCAB);
for (let i = 0, s = 0; i < VOCAB; i++) cdf[i] = s += 1 / (i + 1);
const word = (): string => {
  const x = r() * cdf[VOCAB - 1]!;
  let lo = 0;
  let hi = VOCAB - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return vocab[lo]!;
};
const doc = (): string[] => Array.from({ length: WORDS }, word);
/** A copy with 5-10% of the words edited: replaced (70%), deleted (15%) or doubled (15%). */
const nearCopy = (words: string[]): string[] => {
  const rate = 0.05 + 0.05 * r();
  const out: string[] = [];
  for (const w of words) {
    if (r() >= rate) out.push(w);
    else {
      const op = r();
      if (op < 0.7) out.push(word());
      else if (op >= 0.85) out.push(w, w);
    }
  }
  return out;
};

// 95,000 originals; copies of 5,000 distinct ones; all shuffled (Fisher-Yates, seeded). partner[i]: the other document
// of i's planted pair, or -1.
const originals = Array.from({ length: DOCS - PAIRS }, doc);
const slots: { text: string; pair: number }[] = originals.map((w) => ({ text: w.join(" "), pair: -1 }));
const chosen = new Set<number>();
while (chosen.size < PAIRS) chosen.add(Math.floor(r() * originals.length));
let pairNo = 0;
for (const o of chosen) {
  slots[o]!.pair = pairNo;
  slots.push({ text: nearCopy(originals[o]!).join(" "), pair: pairNo++ });
}
for (let i = slots.length - 1; i > 0; i--) {
  const j = Math.floor(r() * (i + 1));
  [slots[i], slots[j]] = [slots[j]!, slots[i]!];
}
const partner = new Int32Array(DOCS).fill(-1);
const firstOfPair = new Int32Array(PAIRS).fill(-1);
slots.forEach((s, i) => {
  if (s.pair < 0) return;
  const f = firstOfPair[s.pair]!;
  if (f < 0) firstOfPair[s.pair] = i;
  else [partner[i], partner[f]] = [f, i];
});

const out = createWriteStream(join(dir, "docs.jsonl"));
for (let i = 0; i < DOCS; i++) if (!out.write(JSON.stringify({ id: i, text: slots[i]!.text }) + "\n")) await once(out, "drain");
out.end();
await once(out, "finish");
writeFileSync(
  join(dir, "r.itp"),
  `type Doc = {\n  id: int\n  text: string\n}\n\ndataset docs: Doc = jsonl("docs.jsonl")\n\nfilter dedup = minhash_dedup(docs) {\n  field = text\n  shingle = ${SHINGLE}\n  permutations = 128\n  bands = 32\n  threshold = 0.5\n  seed = 42\n}\n`,
);


const itp = (...args: string[]) => [process.execPath, bin, ...args, "--store", "store", "--json"];
const first = await measured(itp("run", "r.itp"), dir);
const timed = await measured(itp("run", "r.itp", "--force", "dedup"), dir);
const summary = JSON.parse(timed.stdout) as { ran: number; stages: { id: string; status: string; records?: number }[] };
if (summary.ran !== 1 || summary.stages.find((s) => s.id === "dedup")?.status !== "ran") {
  console.error(`the timed run should run dedup alone:\n${timed.stdout.slice(0, 2000)}`);
  process.exit(1);
}
const shown = await measured(itp("show", "r.itp", "dedup", "--dropped", "--records", String(DOCS)), dir);
const dropped = (JSON.parse(shown.stdout) as { records: { reason: string; detail?: string; record: { id: number } }[] }).records;
const info = await measured(itp("show", "r.itp", "dedup"), dir);
const counts = (JSON.parse(info.stdout) as { counts: Record<string, number> }).counts;
rmSync(dir, { recursive: true, force: true });

// root[i]: the kept record of i's cluster.
const root = Int32Array.from({ length: DOCS }, (_, i) => i);
for (const d of dropped) {
  const m = /^of record (\d+)$/.exec(d.detail ?? "");
  if (d.reason !== "near duplicate" || !m) throw new Error(`unexpected drop: ${JSON.stringify(d).slice(0, 200)}`);
  root[d.record.id] = Number(m[1]) - 1;
}
let found = 0;
for (let i = 0; i < DOCS; i++) if (partner[i]! > i && root[i] === root[partner[i]!]) found++;
let correct = 0;
for (const d of dropped) if (partner[d.record.id] === root[d.record.id]) correct++;
const recall = found / PAIRS;
const precision = dropped.length === 0 ? 1 : correct / dropped.length;

// The peer: exact Jaccard of every pair of shingle sets (sorted arrays, merged), on the first 2,000 documents.
const N = 2000;
const sets = slots.slice(0, N).map((s) => Int32Array.from(new Set(shingleHashes(s.text, SHINGLE))).sort());
const t0 = performance.now();
let similar = 0;
for (let i = 0; i < N; i++) {
  const a = sets[i]!;
  for (let j = 0; j < i; j++) {
    const b = sets[j]!;
    let x = 0;
    let y = 0;
    let inter = 0;
    while (x < a.length && y < b.length) {
      if (a[x]! < b[y]!) x++;
      else if (a[x]! > b[y]!) y++;
      else (inter++, x++, y++);
    }
    if (inter / (a.length + b.length - inter) >= 0.5) similar++;
  }
}
const naive = ((performance.now() - t0) / 1000) * (DOCS / N) ** 2;

console.log(`${DOCS.toLocaleString("en-US")} documents of ${WORDS} words, ${PAIRS.toLocaleString("en-US")} planted near-duplicate pairs; first run (imports the JSONL too): ${first.seconds.toFixed(2)} s`);
console.log(`itp run --force dedup: ${timed.seconds.toFixed(2)} s, peak RSS ${timed.mb.toFixed(0)} MB; counts ${JSON.stringify(counts)}`);
console.log(`recall ${recall.toFixed(4)} (${found} of ${PAIRS} pairs in one cluster), precision ${precision.toFixed(4)} (${correct} of ${dropped.length} dropped are their planted partner's duplicate)`);
console.log(`exact all-pairs Jaccard: ${N.toLocaleString("en-US")} documents (${similar} similar pairs) extrapolated to ${DOCS.toLocaleString("en-US")}: ${naive.toFixed(0)} s (${(naive / timed.seconds).toFixed(0)}x the LSH run)`);
console.log(`bench minhash: seconds=${timed.seconds.toFixed(2)} recall=${recall.toFixed(4)} precision=${precision.toFixed(4)} peak_mb=${timed.mb.toFixed(0)} docs=${DOCS} naive_extrapolated_s=${naive.toFixed(0)} speedup=${(naive / timed.seconds).toFixed(0)}`);
