// npm run bench -- scheduler: the runtime's overhead per stage, through the CLI, in fresh stores. Two recipes of
// 10,000 trivial stages, wide (100 inline sources, each feeding 99 `take`s) and deep (10 chains of 1,000 stages
// declared in order): a first run, a fully cached re-run and a plan. Every stage has its own cache key: each `take`
// gets a different n (all keep the one record). With `n: 1` everywhere, the takes of one source (or of one chain)
// would share one key, and the store would rightly compute each once. Then the same 1,000-job DAG (10 chains
// of 100) run by itp and by Snakemake (Debian's package, installed if missing), side by side. Needs `npm run build`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bin = join(process.cwd(), "bin/itp.js");
const work = mkdtempSync(join(tmpdir(), "itp-bench-scheduler-"));

function wide(sources: number, per: number): string {
  const out: string[] = [];
  for (let s = 0; s < sources; s++) {
    out.push(`dataset s${s} = records(items: [{ i: ${s} }])`);
    for (let t = 0; t < per; t++) out.push(`dataset s${s}_t${t} = take(s${s}, n: ${t + 1})`);
  }
  return out.join("\n\n") + "\n";
}

function deep(chains: number, length: number): string {
  const out: string[] = [];
  for (let c = 0; c < chains; c++) {
    out.push(`dataset c${c}_0 = records(items: [{ i: ${c} }])`);
    for (let k = 1; k < length; k++) out.push(`dataset c${c}_${k} = take(c${c}_${k - 1}, n: ${k})`);
  }
  return out.join("\n\n") + "\n";
}

/** Seconds a command takes; its output must say `expect`. */
function timed(cmd: string, args: string[], cwd: string, what: string, expect?: RegExp): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 1 << 28, env: { ...process.env, NO_COLOR: "1" } });
  const s = (performance.now() - t0) / 1000;
  const out = `${r.stdout}\n${r.stderr}`;
  if (r.status !== 0 || (expect && !expect.test(out))) {
    console.error(`${what} failed (exit ${r.status}${r.error ? `, ${r.error.message}` : ""}):\n${out.slice(-2000)}`);
    process.exit(1);
  }
  return s;
}

const itpTimed = (args: string[], cwd: string, what: string, expect?: RegExp) => timed(process.execPath, [bin, ...args], cwd, what, expect);

interface Shape {
  run_s: number;
  cached_s: number;
  plan_s: number;
}

function measure(name: string, text: string, stages: number): Shape {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  spawnSync("mkdir", ["-p", dir]);
  writeFileSync(join(dir, "r.itp"), text);
  const store = join(dir, "store");
  const run_s = itpTimed(["run", "r.itp", "--store", store], dir, `${name}: run`, new RegExp(`ran ${stages}, cached 0, failed 0`));
  const cached_s = itpTimed(["run", "r.itp", "--store", store], dir, `${name}: cached run`, new RegExp(`ran 0, cached ${stages}, failed 0`));
  const plan_s = itpTimed(["plan", "r.itp", "--store", store], dir, `${name}: plan`, new RegExp(`0 to run, ${stages} cached`));
  console.log(`${name.padEnd(6)} ${stages} stages: run ${run_s.toFixed(2)} s, cached ${cached_s.toFixed(2)} s, plan ${plan_s.toFixed(2)} s`);
  return { run_s, cached_s, plan_s };
}

const w = measure("wide", wide(100, 99), 10_000);
const d = measure("deep", deep(10, 1000), 10_000);

// --- Side by side with Snakemake: 10 chains of 100 jobs, each job writing its input's first line. ---
function snakemakeAvailable(): string | undefined {
  const have = () => spawnSync("snakemake", ["--version"], { encoding: "utf8" });
  let v = have();
  if (v.status === 0) return undefined;
  if (process.getuid?.() !== 0) return "snakemake is not installed and installing it needs root";
  console.log("installing snakemake (apt-get install snakemake) ...");
  const u = spawnSync("sh", ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq snakemake"], { encoding: "utf8" });
  if (u.status !== 0) return `apt-get install snakemake failed: ${(u.stderr || u.stdout).trim().split("\n").slice(-3).join(" / ")}`;
  v = have();
  return v.status === 0 ? undefined : `snakemake does not start after the install: ${v.stderr.trim().split("\n").pop()}`;
}

const chains = 10;
const length = 100;
const smkDir = join(work, "snakemake");
spawnSync("mkdir", ["-p", smkDir]);
writeFileSync(
  join(smkDir, "Snakefile"),
  `CHAINS = ${chains}
LENGTH = ${length}

rule all:
    input: [f"out/c{c}_{LENGTH - 1}.jsonl" for c in range(CHAINS)]

rule source:
    output: "out/c{c}_0.jsonl"
    wildcard_constraints: c="[0-9]+"
    shell: "echo '{{\\"i\\": {wildcards.c}}}' > {output}"

rule take:
    input: lambda w: f"out/c{w.c}_{int(w.k) - 1}.jsonl"
    output: "out/c{c}_{k}.jsonl"
    wildcard_constraints: c="[0-9]+", k="[1-9][0-9]*"
    shell: "head -n 1 {input} > {output}"
`,
);
const itpSmall = join(work, "itp1000");
spawnSync("mkdir", ["-p", itpSmall]);
writeFileSync(join(itpSmall, "r.itp"), deep(chains, length));
const itp_1000_s = itpTimed(["run", "r.itp", "--store", join(itpSmall, "store"), "--concurrency", "2"], itpSmall, "itp: 1,000 stages", /ran 1000, cached 0, failed 0/);
console.log(`itp    ${chains * length} stages (${chains} chains of ${length}), --concurrency 2: ${itp_1000_s.toFixed(2)} s`);

let snakemake_s: number | undefined;
let why = snakemakeAvailable();
if (!why) {
  snakemake_s = timed("snakemake", ["--cores", "2", "--quiet"], smkDir, "snakemake");
  const made = readdirSync(join(smkDir, "out")).length;
  if (made !== chains * length) why = `snakemake made ${made} files, expected ${chains * length}`;
  else console.log(`snakemake ${made} jobs, --cores 2: ${snakemake_s.toFixed(2)} s`);
} else console.log(`no Snakemake: ${why}`);
const ratio = !why && snakemake_s !== undefined ? (snakemake_s / itp_1000_s).toFixed(1) : "NA";

rmSync(work, { recursive: true, force: true });
const f = (x: number) => x.toFixed(2);
console.log(
  `bench scheduler: run_s=${f(Math.max(w.run_s, d.run_s))} cached_s=${f(Math.max(w.cached_s, d.cached_s))} plan_s=${f(Math.max(w.plan_s, d.plan_s))} vs_snakemake=${ratio} wide_run_s=${f(w.run_s)} deep_run_s=${f(d.run_s)} snakemake_s=${snakemake_s !== undefined ? f(snakemake_s) : "NA"} itp_1000_s=${f(itp_1000_s)}`,
);
