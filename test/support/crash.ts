// Crash safety, shared by test/crash.test.ts (a few trials) and test/bench/crash.ts (many): a run killed with
// SIGKILL at a random moment must leave a store with no corrupt entry, and the next run must redo no committed
// stage and end with every artifact byte-identical to an uninterrupted run's. The moments are drawn inside the run
// itself: from the moment the killed process opens its run log (its start-up, which varies with the machine's
// load, is not counted) to the moment the reference run committed its last stage.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rng } from "./fuzz.js";

export { rng };

/** Nine stages in three branches: two filters of one source with a sample, a shuffle and a concat; a small side branch. */
export const crashRecipe = `dataset src = jsonl("data.jsonl")

dataset en = where(src, expr: "lang == \\"en\\"")

dataset fr = where(src, expr: "lang == \\"fr\\"")

dataset en_sample = sample(en, n: 2000, seed: 1)

dataset fr_shuffled = shuffle(fr, seed: 2)

dataset fr_top = take(fr_shuffled, n: 500)

dataset both = concat(en_sample, fr_top)

dataset side = records(items: [{ i: 1 }, { i: 2 }])

dataset side_one = take(side, n: 1)
`;

export const crashStages = ["src", "en", "fr", "en_sample", "fr_shuffled", "fr_top", "both", "side", "side_one"] as const;

export interface CrashSuite {
  readonly dir: string;
  readonly bin: string;
  /** Per stage, the reference run's cache key and output digest. */
  readonly reference: ReadonlyMap<string, { key: string; digest: string }>;
  /** Wall time of the uninterrupted reference run (process start to exit), in ms. */
  readonly referenceMs: number;
  /** In the reference run's log: from `run_started` to its first and its last commit (`stage_ran`), in ms. */
  readonly firstCommitMs: number;
  readonly lastCommitMs: number;
}

export interface TrialResult {
  /** When the kill was due, in ms after the run log appeared. */
  readonly killAtMs: number;
  /** Entries `itp cache verify` found corrupt after the kill. */
  readonly corrupt: number;
  /** Stages whose resumed artifact differs from the reference (or that the resume did not complete). */
  readonly mismatch: number;
  /** Stages committed before the kill that the resume ran again (or that the killed run logged as ran but lost). */
  readonly redone: number;
  /** Stages committed before the kill. */
  readonly committed: readonly string[];
  readonly problems: readonly string[];
}

const env = () => ({ ...process.env, NO_COLOR: "1" });

function cli(bin: string, cwd: string, args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, env: env(), encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `n` small records (~60 bytes each), a third of them French. */
export function crashData(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(JSON.stringify({ i, lang: i % 3 === 0 ? "fr" : "en", text: `record ${i} of the crash suite` }));
  return lines.join("\n") + "\n";
}

interface Verified {
  ok: boolean;
  corrupt: { key: string; stage: string; reason: string }[];
  /** Intact entries by key: stage and the digest of the bytes verify just re-hashed. */
  intact: Map<string, { stage: string; digest: string }>;
  error?: string;
}

/** `itp cache verify --json`: re-hashes every artifact, whatever the store's layout (loose files or packs). */
function verify(bin: string, cwd: string, store: string): Verified {
  // Killed before it made the store: nothing to verify (`cache verify` refuses a store that is not there).
  if (!existsSync(store)) return { ok: true, corrupt: [], intact: new Map() };
  const v = cli(bin, cwd, ["cache", "verify", "--store", store, "--json"]);
  try {
    const j = JSON.parse(v.stdout) as { corrupt: Verified["corrupt"]; intact: { key: string; stage: string; digest: string }[] };
    return { ok: v.code === 0, corrupt: j.corrupt, intact: new Map(j.intact.map((e) => [e.key, { stage: e.stage, digest: e.digest }])) };
  } catch {
    return { ok: false, corrupt: [], intact: new Map(), error: `cache verify printed no JSON (exit ${v.code}): ${v.stderr.slice(0, 500)}` };
  }
}

/** A folder with the recipe and `records` records, and a reference run into its own store. */
export function prepareCrashSuite(records: number, bin: string): CrashSuite {
  const dir = mkdtempSync(join(tmpdir(), "itp-crash-"));
  writeFileSync(join(dir, "r.itp"), crashRecipe);
  writeFileSync(join(dir, "data.jsonl"), crashData(records));
  const store = join(dir, "reference");
  const t0 = performance.now();
  const r = cli(bin, dir, ["run", "r.itp", "--store", store, "--json"]);
  const referenceMs = performance.now() - t0;
  if (r.code !== 0) throw new Error(`the reference run failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  const v = verify(bin, dir, store);
  if (!v.ok) throw new Error(`the reference store does not verify: ${v.error ?? JSON.stringify(v.corrupt)}`);
  const reference = new Map<string, { key: string; digest: string }>();
  for (const s of (JSON.parse(r.stdout) as { stages: { id: string; key: string }[] }).stages) {
    const e = v.intact.get(s.key);
    if (!e) throw new Error(`the reference store has no entry for ${s.id}`);
    reference.set(s.id, { key: s.key, digest: e.digest });
  }
  if (reference.size !== crashStages.length) throw new Error(`the reference run has ${reference.size} stages, expected ${crashStages.length}`);
  const events = runEvents(store);
  const time = (e: { t: string }) => Date.parse(e.t);
  const started = events.find((e) => e.type === "run_started");
  const commits = events.filter((e) => e.type === "stage_ran").map(time);
  if (!started || commits.length !== crashStages.length) throw new Error(`the reference run's log has no run_started or not ${crashStages.length} stage_ran events`);
  return { dir, bin, reference, referenceMs, firstCommitMs: Math.min(...commits) - time(started), lastCommitMs: Math.max(...commits) - time(started) };
}

/** The events of a store's run logs (a line cut by a kill is left out). */
function runEvents(store: string): { t: string; type: string; stage?: string }[] {
  const runs = join(store, "runs");
  const out: { t: string; type: string; stage?: string }[] = [];
  for (const f of existsSync(runs) ? readdirSync(runs) : []) {
    for (const line of readFileSync(join(runs, f), "utf8").split("\n")) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as (typeof out)[number]);
      } catch {
        // a line cut by the kill
      }
    }
  }
  return out;
}

/**
 * One trial: a fresh store, a run killed `killAtMs` after its run log appears (watched every 2 ms), a verify, a
 * resume, and the comparison.
 */
export async function crashTrial(suite: CrashSuite, killAtMs: number, name: string): Promise<TrialResult> {
  const store = join(suite.dir, `trial-${name}`);
  const problems: string[] = [];
  const child = spawn(process.execPath, [suite.bin, "run", "r.itp", "--store", store, "--json"], { cwd: suite.dir, env: env(), stdio: "ignore" });
  let done = false;
  const exited = new Promise<void>((resolve) =>
    child.on("exit", () => {
      done = true;
      resolve();
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const runs = join(store, "runs");
  const watch = setInterval(() => {
    if (done || !existsSync(runs) || readdirSync(runs).length === 0) return;
    clearInterval(watch);
    timer = setTimeout(() => child.kill("SIGKILL"), killAtMs);
  }, 2);
  await exited;
  clearInterval(watch);
  clearTimeout(timer);

  // 1. Nothing corrupt.
  const after = verify(suite.bin, suite.dir, store);
  let corrupt = after.corrupt.length + (after.error ? 1 : 0);
  for (const c of after.corrupt) problems.push(`corrupt after the kill: ${c.stage}: ${c.reason}`);
  if (after.error) problems.push(after.error);

  // 2. What the killed run committed: intact entries for the reference keys (the inputs are the same, so the keys
  //    are), and what its log says it ran (an event may be lost at SIGKILL, never one for an uncommitted stage).
  const committed = [...suite.reference].filter(([, r]) => after.intact.has(r.key)).map(([id]) => id);
  let redone = 0;
  for (const e of runEvents(store)) {
    if (e.type === "stage_ran" && e.stage && !committed.includes(e.stage)) {
      redone++;
      problems.push(`${e.stage} was logged as ran but has no intact entry`);
    }
  }

  // 3. The resume: exit 0, nothing committed redone, every artifact identical to the reference (same digest in
  //    its manifest, and the bytes re-hashed by verify match it).
  let mismatch = 0;
  const r = cli(suite.bin, suite.dir, ["run", "r.itp", "--store", store, "--json"]);
  if (r.code !== 0) problems.push(`resume exited ${r.code}: ${r.stderr.slice(0, 500)}`);
  let stages: { id: string; status: string; key?: string }[] = [];
  try {
    stages = (JSON.parse(r.stdout) as { stages: typeof stages }).stages;
  } catch {
    problems.push("resume printed no JSON");
  }
  const final = verify(suite.bin, suite.dir, store);
  corrupt += final.corrupt.length + (final.error ? 1 : 0);
  for (const c of final.corrupt) problems.push(`corrupt after the resume: ${c.stage}: ${c.reason}`);
  if (final.error) problems.push(final.error);
  for (const [id, ref] of suite.reference) {
    const s = stages.find((x) => x.id === id);
    if (!s || (s.status !== "ran" && s.status !== "cached")) {
      mismatch++;
      problems.push(`${id}: ${s ? s.status : "missing"} after resume`);
      continue;
    }
    if (committed.includes(id) && s.status !== "cached") {
      redone++;
      problems.push(`${id} was committed before the kill but the resume ran it again`);
    }
    const e = s.key === ref.key ? final.intact.get(ref.key) : undefined;
    if (!e || e.digest !== ref.digest) {
      mismatch++;
      problems.push(`${id}: artifact differs from the reference (${s.key === ref.key ? "digest" : "key"})`);
    }
  }
  if (problems.length === 0) rmSync(store, { recursive: true, force: true });
  return { killAtMs, corrupt, mismatch, redone, committed, problems };
}

export interface CrashTotals {
  trials: number;
  corrupt: number;
  mismatch: number;
  redone: number;
  /** Trials by how many stages had committed before the kill (0 .. all): how well the kills spread over the run. */
  committedHistogram: number[];
  /** The same in three: nothing committed, some stages, every stage (the kill came after the work or never). */
  spread: { before_first_commit: number; mid_run: number; after_end: number };
  problems: string[];
}

/** `trials` trials, kill moments uniform (seeded) from the run log's appearance to the reference's last commit. */
export async function crashTrials(suite: CrashSuite, trials: number, seed: number, onTrial?: (i: number, r: TrialResult) => void): Promise<CrashTotals> {
  const next = rng(seed);
  const totals: CrashTotals = {
    trials,
    corrupt: 0,
    mismatch: 0,
    redone: 0,
    committedHistogram: Array(crashStages.length + 1).fill(0),
    spread: { before_first_commit: 0, mid_run: 0, after_end: 0 },
    problems: [],
  };
  for (let i = 0; i < trials; i++) {
    const killAt = Math.round(next() * suite.lastCommitMs);
    const r = await crashTrial(suite, killAt, String(i));
    totals.corrupt += r.corrupt;
    totals.mismatch += r.mismatch;
    totals.redone += r.redone;
    totals.committedHistogram[r.committed.length]!++;
    totals.spread[r.committed.length === 0 ? "before_first_commit" : r.committed.length === crashStages.length ? "after_end" : "mid_run"]++;
    for (const p of r.problems) totals.problems.push(`trial ${i} (kill at ${killAt} ms): ${p}`);
    onTrial?.(i, r);
  }
  return totals;
}
