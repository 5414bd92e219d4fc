// npm run bench -- mix: a 1,000,000-record Tulu-shaped mixture through `itp run`. The components are sized like
// Tulu 2's (counts of open-instruct's mixture, as chats of about 200 bytes), upsampled three times with repeat(3)
// (hard-coded 14 x 30), WizardLM sampled from a pool of 143,000 to make exactly 1,000,000, then shuffled: the real
// `mix` implementation, the real store. A first run imports the JSONL inputs; the timed run is `--force mixture`, so
// it reads the stored components, mixes and writes the 1M records. Its peer, side by side: the same mixture done by a
// bare Node script (read, JSON.parse, sample, shuffle, JSON.stringify, write), the floor for doing it in JavaScript.
// Peak RSS from /usr/bin/time -v where it exists, else by polling /proc/<pid>/status (VmHWM). Target: under 10 s.
// Needs `npm run build`.
import { once } from "node:events";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { measured } from "../support/measured.js";
import { rng } from "../support/fuzz.js";

const bin = join(process.cwd(), "bin/itp.js");
const dir = mkdtempSync(join(tmpdir(), "itp-bench-mix-"));

// Tulu 2's components (count of the file, rule). 3 x 901,470 of the others + 98,530 of WizardLM = 1,000,000.
const components: { name: string; size: number; rule: string; count: number }[] = [
  { name: "flan_v2", size: 50_000, rule: "repeat(3)", count: 150_000 },
  { name: "cot_zero_shot", size: 25_000, rule: "repeat(3)", count: 75_000 },
  { name: "cot_few_shot", size: 25_000, rule: "repeat(3)", count: 75_000 },
  { name: "oasst1", size: 7_708, rule: "repeat(3)", count: 23_124 },
  { name: "sharegpt", size: 114_046, rule: "repeat(3)", count: 342_138 },
  { name: "gpt4_alpaca", size: 20_000, rule: "repeat(3)", count: 60_000 },
  { name: "code_alpaca", size: 20_022, rule: "repeat(3)", count: 60_066 },
  { name: "lima", size: 1_030, rule: "repeat(3)", count: 3_090 },
  { name: "wizardlm", size: 143_000, rule: "take(98_530)", count: 98_530 },
  { name: "open_orca", size: 30_000, rule: "repeat(3)", count: 90_000 },
  { name: "science", size: 7_544, rule: "repeat(3)", count: 22_632 },
  { name: "hard_coded", size: 14, rule: "repeat(30)", count: 420 },
];
const TOTAL = components.reduce((s, c) => s + c.count, 0);
if (TOTAL !== 1_000_000) throw new Error(`the components add to ${TOTAL}`);

const WORDS = "the a of to and in is for on with as by that this it be are from at or an was can which use your you how what why when where explain write list give describe summarize answer question code data model story poem step reason".split(" ");

/** `n` chats of the component, about 200 bytes each. */
async function generate(name: string, n: number, r: () => number): Promise<void> {
  const out = createWriteStream(join(dir, `${name}.jsonl`));
  const text = (k: number) => Array.from({ length: k }, () => WORDS[Math.floor(r() * WORDS.length)]).join(" ");
  for (let i = 0; i < n; i++) {
    const line = JSON.stringify({ dataset: name, id: `${name}_${i}`, messages: [{ role: "user", content: text(8 + Math.floor(r() * 8)) }, { role: "assistant", content: text(12 + Math.floor(r() * 12)) }] }) + "\n";
    if (!out.write(line)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}


const r = rng(42);
for (const c of components) await generate(c.name, c.size, r);
const recipe = [
  `type TuluChat = {\n  dataset: string\n  id: string\n  messages: list<Message>\n}`,
  ...components.map((c) => `dataset ${c.name}: TuluChat = jsonl("${c.name}.jsonl")`),
  `mix mixture = mix(seed: 42) {\n${components.map((c) => `  ${c.name}: ${c.rule}`).join("\n")}\n}`,
].join("\n\n");
writeFileSync(join(dir, "tulu.itp"), recipe + "\n");

const itpArgs = (extra: string[]) => [process.execPath, bin, "run", "tulu.itp", "--store", "store", "--json", ...extra];
const first = await measured(itpArgs([]), dir);
const timed = await measured(itpArgs(["--force", "mixture"]), dir);
const summary = JSON.parse(timed.stdout) as { ran: number; stages: { id: string; status: string; records?: number }[] };
const mixed = summary.stages.find((s) => s.id === "mixture");
if (summary.ran !== 1 || mixed?.status !== "ran" || mixed.records !== TOTAL) {
  console.error(`the timed run should run the mixture alone, giving ${TOTAL} records:\n${timed.stdout.slice(0, 2000)}`);
  process.exit(1);
}

// The peer: the same mixture in a bare script (the same shape of work, none of itp's checks, store or manifests).
const peer = `
import { readFileSync, writeFileSync } from "node:fs";
const comps = ${JSON.stringify(components.map((c) => ({ name: c.name, rule: c.rule })))};
let a = 42 >>> 0;
const rand = () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const shuffle = (xs) => { for (let i = xs.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [xs[i], xs[j]] = [xs[j], xs[i]]; } return xs; };
const out = [];
for (const c of comps) {
  const recs = readFileSync(c.name + ".jsonl", "utf8").split("\\n").filter(Boolean).map((l) => JSON.parse(l));
  const m = /^(repeat|take)\\(([\\d_]+)\\)$/.exec(c.rule);
  const k = Number(m[2].replace(/_/g, ""));
  if (m[1] === "repeat") for (let t = 0; t < k; t++) out.push(...recs);
  else out.push(...shuffle(recs).slice(0, k));
}
shuffle(out);
const parts = [];
for (let i = 0; i < out.length; i += 65536) parts.push(out.slice(i, i + 65536).map((x) => JSON.stringify(x)).join("\\n") + "\\n");
writeFileSync("peer.jsonl", parts.join(""));
`;
writeFileSync(join(dir, "peer.mjs"), peer);
const base = await measured([process.execPath, "peer.mjs"], dir);
const peerLines = readFileSync(join(dir, "peer.jsonl"), "utf8").split("\n").length - 1;
if (peerLines !== TOTAL) throw new Error(`the peer wrote ${peerLines} records`);
rmSync(dir, { recursive: true, force: true });

const inputs = components.reduce((s, c) => s + c.size, 0);
console.log(`inputs: ${components.length} components, ${inputs.toLocaleString("en-US")} records; first run (imports them too): ${first.seconds.toFixed(2)} s, peak ${first.mb.toFixed(0)} MB`);
console.log(`itp run --force mixture (1,000,000 records): ${timed.seconds.toFixed(2)} s, peak RSS ${timed.mb.toFixed(0)} MB`);
console.log(`bare Node script, same mixture:            ${base.seconds.toFixed(2)} s, peak RSS ${base.mb.toFixed(0)} MB (itp / bare: ${(timed.seconds / base.seconds).toFixed(2)}x)`);
console.log(`bench mix: seconds=${timed.seconds.toFixed(2)} peak_mb=${timed.mb.toFixed(0)} records=${TOTAL} bare_s=${base.seconds.toFixed(2)} ratio=${(timed.seconds / base.seconds).toFixed(2)}`);
