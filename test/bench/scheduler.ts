// npm run bench -- scheduler: the runtime's overhead per stage, through the CLI, in fresh stores.
// 1. itp alone: two recipes of 10,000 trivial stages, wide (100 inline sources, each feeding 99 `take`s) and deep
//    (10 chains of 1,000 stages declared in order): a first run, a fully cached re-run and a plan, the last two with
//    the compiled-program cache (`compiled/` in the store: an unchanged recipe is not parsed and checked again) and
//    without it (the folder removed first). Every stage has its own cache key: each `take` gets a different n (all
//    keep the one record). With `n: 1` everywhere, the takes of one source (or of one chain) would share one key,
//    and the store would rightly compute each once.
// 2. Side by side, the same 1,000-job DAG (10 chains of 100), two at a time. itp: `itp run --concurrency 2` in a
//    fresh store, each stage a `take` of its input (read the input artifact, write one record, commit it to the
//    content-addressed store). Snakemake (Debian's package, installed with apt if missing): `snakemake --cores 2
//    --quiet` in a fresh folder, each job a shell rule (`head -n 1 input > output`, one bash process per job), once
//    with its default ILP job scheduler and once with `--scheduler greedy` (the ILP scheduler dominates its time on
//    1,000 independent-looking jobs). Each of the three 3 times; medians reported, and `vs_snakemake` is the faster
//    Snakemake mode's median over itp's. Needs `npm run build`.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
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

/** Seconds a command takes, and its output; the output must say `expect`. */
function timedOut(cmd: string, args: string[], cwd: string, what: string, expect?: RegExp): { s: number; out: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 1 << 28, env: { ...process.env, NO_COLOR: "1" } });
  const s = (performance.now() - t0) / 1000;
  const out = `${r.stdout}\n${r.stderr}`;
  if (r.status !== 0 || (expect && !expect.test(out))) {
    console.error(`${what} failed (exit ${r.status}${r.error ? `, ${r.error.message}` : ""}):\n${out.slice(-2000)}`);
    process.exit(1);
  }
  return { s, out };
}
const timed = (cmd: string, args: string[], cwd: string, what: string, expect?: RegExp) => timedOut(cmd, args, cwd, what, expect).s;

const itpTimed = (args: string[], cwd: string, what: string, expect?: RegExp) => timed(process.execPath, [bin, ...args], cwd, what, expect);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const REPEAT = 3;

interface Shape {
  run_s: number;
  cached_s: number;
  plan_s: number;
  /** The same without the compiled-program cache. */
  cached_nc_s: number;
  plan_nc_s: number;
}

function measure(name: string, text: string, stages: number): Shape {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "r.itp"), text);
  const store = join(dir, "store");
  const dropCompiled = () => rmSync(join(store, "compiled"), { recursive: true, force: true });
  const cachedRun = () => itpTimed(["run", "r.itp", "--store", store], dir, `${name}: cached run`, new RegExp(`ran 0, cached ${stages}, failed 0`));
  const plan = () => itpTimed(["plan", "r.itp", "--store", store], dir, `${name}: plan`, new RegExp(`0 to run, ${stages} cached`));
  const run_s = itpTimed(["run", "r.itp", "--store", store], dir, `${name}: run`, new RegExp(`ran ${stages}, cached 0, failed 0`));
  const cached_s = cachedRun();
  const plan_s = plan();
  dropCompiled();
  const cached_nc_s = cachedRun();
  dropCompiled();
  const plan_nc_s = plan();
  const f = (x: number) => `${x.toFixed(2)} s`;
  console.log(`${name.padEnd(6)} ${stages} stages: run ${f(run_s)}; cached ${f(cached_s)}, plan ${f(plan_s)}; without the compiled program: cached ${f(cached_nc_s)}, plan ${f(plan_nc_s)}`);
  return { run_s, cached_s, plan_s, cached_nc_s, plan_nc_s };
}

const w = measure("wide", wide(100, 99), 10_000);
const d = measure("deep", deep(10, 1000), 10_000);

// --- Side by side with Snakemake: 10 chains of 100 jobs, each job writing its input's first line. ---
function snakemakeAvailable(): string | undefined {
  const have = () => spawnSync("snakemake", ["--version"], { encoding: "utf8" });
  let v = have();
  if (v.status === 0) return undefined;
  if (process.getuid?.() !== 0) return "snakemake is not installed and installing it needs root";
  console.log("installing snakemake (apt-get install --no-install-recommends snakemake) ...");
  const u = spawnSync("sh", ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends snakemake"], { encoding: "utf8" });
  if (u.status !== 0) return `apt-get install snakemake failed: ${(u.stderr || u.stdout).trim().split("\n").slice(-3).join(" / ")}`;
  v = have();
  return v.status === 0 ? undefined : `snakemake does not start after the install: ${v.stderr.trim().split("\n").pop()}`;
}

const chains = 10;
const length = 100;
const jobs = chains * length;
const snakefile = `CHAINS = ${chains}
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
`;

const itpRuns: number[] = [];
for (let i = 0; i < REPEAT; i++) {
  const dir = join(work, `itp1000-${i}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "r.itp"), deep(chains, length));
  itpRuns.push(itpTimed(["run", "r.itp", "--store", join(dir, "store"), "--concurrency", "2"], dir, "itp: 1,000 stages", /ran 1000, cached 0, failed 0/));
}
const itp_1000_s = median(itpRuns);
console.log(`itp       ${jobs} stages (${chains} chains of ${length}), --concurrency 2: ${itpRuns.map((x) => x.toFixed(2)).join(", ")} s; median ${itp_1000_s.toFixed(2)} s`);

/** Medians of `REPEAT` Snakemake runs in fresh folders, or why there are none. */
function snakemakeMedian(mode: "ilp" | "greedy"): { s: number } | { why: string } {
  const times: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    const dir = join(work, `snakemake-${mode}-${i}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "Snakefile"), snakefile);
    const { s, out } = timedOut("snakemake", ["--cores", "2", "--quiet", "--scheduler", mode], dir, `snakemake --scheduler ${mode}`);
    // Without an ILP solver Snakemake says so and schedules greedily: that run would not measure the ILP mode.
    if (mode === "ilp" && /falling back to greedy/i.test(out)) return { why: `snakemake fell back to the greedy scheduler: ${out.trim().split("\n").find((l) => /falling back/i.test(l))}` };
    const made = readdirSync(join(dir, "out")).length;
    if (made !== jobs) return { why: `snakemake made ${made} files, expected ${jobs}` };
    times.push(s);
  }
  const s = median(times);
  console.log(`snakemake ${jobs} jobs, --cores 2, --scheduler ${mode}: ${times.map((x) => x.toFixed(2)).join(", ")} s; median ${s.toFixed(2)} s`);
  return { s };
}

const why = snakemakeAvailable();
const ilp = why ? { why } : snakemakeMedian("ilp");
const greedy = why ? { why } : snakemakeMedian("greedy");
for (const m of [ilp, greedy]) if ("why" in m) console.log(`no Snakemake figure: ${m.why}`);
const smk = [ilp, greedy].flatMap((m) => ("s" in m ? [m.s] : []));
const ratio = smk.length > 0 ? (Math.min(...smk) / itp_1000_s).toFixed(1) : "NA";

rmSync(work, { recursive: true, force: true });
const f = (x: number) => x.toFixed(2);
const opt = (m: { s: number } | { why: string }) => ("s" in m ? f(m.s) : "NA");
console.log(
  `bench scheduler: run_s=${f(Math.max(w.run_s, d.run_s))} cached_s=${f(Math.max(w.cached_s, d.cached_s))} plan_s=${f(Math.max(w.plan_s, d.plan_s))} cached_no_compiled_s=${f(Math.max(w.cached_nc_s, d.cached_nc_s))} plan_no_compiled_s=${f(Math.max(w.plan_nc_s, d.plan_nc_s))} vs_snakemake=${ratio} snakemake_greedy_s=${opt(greedy)} snakemake_ilp_s=${opt(ilp)} itp_1000_s=${f(itp_1000_s)} wide_run_s=${f(w.run_s)} deep_run_s=${f(d.run_s)}`,
);
