// npm run bench -- jsonl [MB]: the JSON Lines path end to end. Generates Alpaca-like records (instruction, input,
// output; default 200 MB, or the first argument, or ITP_BENCH_JSONL_MB), then times, each as a fresh process on the
// same file: (a) `itp run` of `jsonl -> where -> export(jsonl)` into a fresh store, (b) jq's `select` (Debian's jq),
// and (c) a bare Node loop (readline, JSON.parse, the predicate, JSON.stringify to a write stream). The three
// outputs must have the same number of lines. Also reported: CPU seconds of each side (/usr/bin/time), itp's stage
// times and whether the source copied the file and the where used the source's verdicts (its run log). Targets:
// vs_jq = jq_s / itp_s >= 2 (issue 10; 3 before), vs_bare = bare_s / itp_s >= 0.5.
// Needs `npm run build`.
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mulberry32 as rng } from "../../src/core/random.js";

const mb = Number(process.argv[2] ?? process.env["ITP_BENCH_JSONL_MB"] ?? 200);
if (!(mb > 0)) {
  console.error("usage: npm run bench -- jsonl [MB]  (size of the generated file, default 200)");
  process.exit(2);
}
const bin = join(process.cwd(), "bin/itp.js");
const dir = mkdtempSync(join(tmpdir(), "itp-bench-jsonl-"));

// The same predicate three times: records without an input whose output has at least 200 characters (about a
// third of them). Only BMP characters are generated, so jq's length (code points) equals JavaScript's (UTF-16 units).
const ITP_EXPR = 'input == "" and len(output) >= 200';
const JQ_FILTER = 'select(.input == "" and (.output | length) >= 200)';
const BARE_PREDICATE = 'r.input === "" && typeof r.output === "string" && r.output.length >= 200';

const WORDS = "the a of to and in is for that with as on be by this are from or an it can which your more use one these other such how make list write give explain describe three example sentence following words café naïve été über data model".split(" ");

async function generate(path: string, bytes: number): Promise<number> {
  const rand = rng(42);
  const text = (n: number) => Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(" ");
  const out = createWriteStream(path);
  let written = 0;
  let n = 0;
  while (written < bytes) {
    const r = { instruction: `${text(6 + Math.floor(rand() * 14))}.`, input: rand() < 0.6 ? "" : text(5 + Math.floor(rand() * 40)), output: `${text(10 + Math.floor(rand() * 90))}.` };
    const line = JSON.stringify(r) + "\n";
    written += Buffer.byteLength(line);
    n++;
    if (!out.write(line)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  return n;
}

const useTime = existsSync("/usr/bin/time");

/**
 * Run a command, fail the bench if it fails; its wall time and its CPU time (user + system, of it and its children,
 * from /usr/bin/time where it exists, else NaN) in seconds.
 */
function timed(what: string, cmd: string, args: string[], opts: { stdoutTo?: string } = {}): { s: number; cpu: number } {
  const t0 = performance.now();
  const cpuFile = join(dir, "cpu.txt");
  const line = opts.stdoutTo ? ["sh", "-c", `"$0" "$@" > '${opts.stdoutTo}'`, cmd, ...args] : [cmd, ...args];
  const full = useTime ? ["/usr/bin/time", "-f", "%U %S", "-o", cpuFile, ...line] : line;
  const r = spawnSync(full[0]!, full.slice(1), { cwd: dir, encoding: "utf8", maxBuffer: 1 << 26 });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) {
    console.error(`${what} failed (exit ${r.status}):\n${(r.stderr ?? "").slice(-2000)}`);
    process.exit(1);
  }
  const cpu = useTime ? readFileSync(cpuFile, "utf8").trim().split(/\s+/).map(Number).reduce((a, b) => a + b, 0) : NaN;
  return { s, cpu };
}

const lines = (path: string) => {
  const b = readFileSync(path);
  let n = 0;
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) n++;
  return n;
};

const records = await generate(join(dir, "data.jsonl"), mb * 1e6);
// Flush the generated file now: itp syncs its store's file system when it commits, which must not be charged
// with writing out the input.
spawnSync("sync");
const size = statSync(join(dir, "data.jsonl")).size;
console.log(`data.jsonl: ${records.toLocaleString("en-US")} records, ${(size / 1e6).toFixed(0)} MB`);

writeFileSync(join(dir, "r.itp"), `dataset src = jsonl("data.jsonl")\n\ndataset long = where(src, expr: ${JSON.stringify(ITP_EXPR)})\n\ndataset out = export(long, path: "itp.jsonl")\n`);
writeFileSync(
  join(dir, "bare.mjs"),
  `import { createReadStream, createWriteStream } from "node:fs";
import { createInterface } from "node:readline";
const out = createWriteStream("bare.jsonl");
for await (const line of createInterface({ input: createReadStream("data.jsonl"), crlfDelay: Infinity })) {
  if (line === "") continue;
  const r = JSON.parse(line);
  if (${BARE_PREDICATE}) {
    if (!out.write(JSON.stringify(r) + "\\n")) await new Promise((ok) => out.once("drain", ok));
  }
}
out.end();
await new Promise((ok) => out.once("finish", ok));
`,
);

const itp = timed("itp run", process.execPath, [bin, "run", "r.itp", "--store", join(dir, "store")]);
const jq = timed("jq", "jq", ["-c", JQ_FILTER, "data.jsonl"], { stdoutTo: join(dir, "jq.jsonl") });
const bare = timed("bare node", process.execPath, ["bare.mjs"]);
const [itpS, jqS, bareS] = [itp.s, jq.s, bare.s];

// Where itp's time went: each stage's time and the paths taken (the run's event log in the store).
const events = readdirSync(join(dir, "store", "runs")).flatMap((f) => readFileSync(join(dir, "store", "runs", f), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { type: string; stage?: string; ms?: number; note?: string }));
const stageS = (id: string) => ((events.find((e) => e.type === "stage_ran" && e.stage === id)?.ms ?? NaN) / 1000).toFixed(2);
const noted = (stage: string, re: RegExp) => events.some((e) => e.type === "stage_note" && e.stage === stage && re.test(e.note ?? ""));
const fused = noted("src", /stored as it is/) && noted("long", /verdicts came from/);

const counts = { itp: lines(join(dir, "itp.jsonl")), jq: lines(join(dir, "jq.jsonl")), bare: lines(join(dir, "bare.jsonl")) };
console.log(`kept: itp ${counts.itp}, jq ${counts.jq}, bare ${counts.bare}`);
rmSync(dir, { recursive: true, force: true });
if (counts.itp !== counts.jq || counts.itp !== counts.bare || counts.itp === 0) {
  console.error("the three outputs differ in length");
  process.exit(1);
}
console.log(`itp stages: source ${stageS("src")} s, where ${stageS("long")} s, export ${stageS("out")} s; the source copied and the where used the reader's verdicts: ${fused ? "yes" : "no"}`);
console.log(`CPU seconds (user + system, all threads): itp ${itp.cpu.toFixed(2)}, jq ${jq.cpu.toFixed(2)}, bare ${bare.cpu.toFixed(2)}`);
console.log(
  `bench jsonl: itp_s=${itpS.toFixed(2)} jq_s=${jqS.toFixed(2)} bare_s=${bareS.toFixed(2)} vs_jq=${(jqS / itpS).toFixed(2)} vs_bare=${(bareS / itpS).toFixed(2)} records=${records} itp_cpu_s=${itp.cpu.toFixed(2)} jq_cpu_s=${jq.cpu.toFixed(2)} source_s=${stageS("src")} where_s=${stageS("long")} export_s=${stageS("out")} fused=${fused ? 1 : 0}`,
);
