// Crash safety of generation, shared by test/generate-crash.test.ts (a few trials) and test/bench/generate-crash.ts
// (many): a 2,000-request generation killed with SIGKILL at a random moment must resume to the same dataset, byte for
// byte, and no answer the cache had received may be paid for again. The server runs in this process and counts
// what it receives; the run is a separate process, killed for real.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rng } from "./fuzz.js";
import { startOpenAIServer, type OpenAIServer, type ServerRequest } from "./openai-server.js";

export const GENERATE_CRASH_REQUESTS = 2000;

const recipe = `model teacher = openai_compatible() {
  model = "crash-model"
  base_url = env("ITP_CRASH_BASE_URL")
  concurrency = 16
  retry = backoff(max_retries: 5, initial: 1ms, max: 10ms)
}

dataset questions = jsonl("questions.jsonl")

dataset answered = distill(questions, model: teacher)
`;

/** The server's answer: a function of the question only, as a deterministic model's; a little slow, so kills land mid-run. */
function answer(req: ServerRequest): string {
  return `The answer to "${req.content}" is ${req.content.length * 7}.`;
}

export interface GenerateCrashSuite {
  readonly dir: string;
  readonly bin: string;
  readonly server: OpenAIServer;
  /** Digest of the uninterrupted run's `answered` artifact. */
  readonly reference: string;
  readonly referenceMs: number;
}

export interface GenerateCrashTrial {
  readonly killAtMs: number;
  /** Requests the server received for this trial, over the killed run and its resumes. */
  readonly received: number;
  /** Requests whose answers were lost with the killed process (sent, never cached): those in flight at the kill. */
  readonly lost: number;
  /** Requests sent again although their answer was already in the cache (must be 0). */
  readonly repaid: number;
  readonly mismatch: number;
  readonly problems: readonly string[];
}

function run(bin: string, cwd: string, store: string, env: Record<string, string>, killAtMs?: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, "run", "r.itp", "--store", store], { cwd, env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const timer = killAtMs !== undefined ? setTimeout(() => child.kill("SIGKILL"), killAtMs) : undefined;
    child.on("close", (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function digestOf(bin: string, cwd: string, store: string, env: Record<string, string>): Promise<string | undefined> {
  const r = await new Promise<string>((resolve) => {
    const child = spawn(process.execPath, [bin, "show", "r.itp", "answered", "--store", store, "--json"], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("close", () => resolve(out));
  });
  try {
    return (JSON.parse(r) as { digest: string }).digest;
  } catch {
    return undefined;
  }
}

/** Keys of the answers in a store's request cache, with how many times each was written (more than once: paid twice). */
function cachedKeys(store: string): Map<string, number> {
  const out = new Map<string, number>();
  const dir = join(store, "requests");
  for (const f of existsSync(dir) ? readdirSync(dir) : []) {
    const buf = readFileSync(join(dir, f));
    let pos = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(10, pos);
      if (nl < 0) break;
      const len = Number(buf.toString("ascii", pos, nl));
      const end = nl + 1 + len;
      if (!Number.isInteger(len) || len <= 0 || end >= buf.length + 0 || buf[end] !== 10) break; // a torn tail
      const key = /^\{"k":"([0-9a-f]{64})"/.exec(buf.toString("utf8", nl + 1, nl + 80))?.[1];
      if (key) out.set(key, (out.get(key) ?? 0) + 1);
      pos = end + 1;
    }
  }
  return out;
}

export async function prepareGenerateCrash(bin: string): Promise<GenerateCrashSuite> {
  const dir = mkdtempSync(join(tmpdir(), "itp-gencrash-"));
  writeFileSync(join(dir, "r.itp"), recipe);
  const qs = Array.from({ length: GENERATE_CRASH_REQUESTS }, (_, i) => JSON.stringify({ instruction: `What is item ${i}?`, input: "", output: "" }));
  writeFileSync(join(dir, "questions.jsonl"), qs.join("\n") + "\n");
  // Each answer takes 2 ms: with 16 in flight, the run lasts a few seconds, and kills find requests in flight.
  const server = await startOpenAIServer({ answer, faults: () => ({ kind: "slow", ms: 2 }) });
  const env = { ITP_CRASH_BASE_URL: server.url };
  const store = join(dir, "reference");
  const t0 = performance.now();
  const r = await run(bin, dir, store, env);
  const referenceMs = performance.now() - t0;
  if (r.code !== 0) throw new Error(`the reference run failed (exit ${r.code}):\n${r.out}`);
  if (server.stats.received !== GENERATE_CRASH_REQUESTS) throw new Error(`the reference run sent ${server.stats.received} requests, expected ${GENERATE_CRASH_REQUESTS}`);
  const reference = await digestOf(bin, dir, store, env);
  if (!reference) throw new Error("the reference run has no `answered` artifact");
  rmSync(store, { recursive: true, force: true });
  return { dir, bin, server, reference, referenceMs };
}

/** One trial: a fresh store, a run killed after `killAtMs`, then resumes until it finishes; the counts compared. */
export async function generateCrashTrial(suite: GenerateCrashSuite, killAtMs: number, name: string): Promise<GenerateCrashTrial> {
  const store = join(suite.dir, `trial-${name}`);
  const env = { ITP_CRASH_BASE_URL: suite.server.url };
  const problems: string[] = [];
  suite.server.reset();
  await run(suite.bin, suite.dir, store, env, killAtMs);
  const sentByKilled = suite.server.stats.received;
  const cachedAfterKill = cachedKeys(store);
  const lost = sentByKilled - cachedAfterKill.size;
  const r = await run(suite.bin, suite.dir, store, env);
  if (r.code !== 0) problems.push(`resume exited ${r.code}: ${r.out.slice(-500)}`);
  const received = suite.server.stats.received;
  const final = cachedKeys(store);
  let repaid = 0;
  for (const n of final.values()) repaid += n - 1;
  if (final.size !== GENERATE_CRASH_REQUESTS) problems.push(`the cache holds ${final.size} answers, expected ${GENERATE_CRASH_REQUESTS}`);
  if (received !== GENERATE_CRASH_REQUESTS + lost + repaid) problems.push(`the server received ${received} requests: ${GENERATE_CRASH_REQUESTS} + ${lost} lost at the kill + ${repaid} repaid expected`);
  if (repaid > 0) problems.push(`${repaid} answers already cached were paid for again`);
  const digest = await digestOf(suite.bin, suite.dir, store, env);
  const mismatch = digest === suite.reference ? 0 : 1;
  if (mismatch) problems.push(`the resumed dataset differs from the uninterrupted run's (${digest ?? "no artifact"})`);
  if (problems.length === 0) rmSync(store, { recursive: true, force: true });
  return { killAtMs, received, lost, repaid, mismatch, problems };
}

export interface GenerateCrashTotals {
  trials: number;
  mismatch: number;
  repaid: number;
  /** Most answers lost at one kill (in flight then; bounded by the model's concurrency). */
  maxLost: number;
  /** Trials whose kill found requests in flight (lost > 0) or cached answers: how well the kills spread. */
  midRun: number;
  problems: string[];
}

/** `trials` trials, kill moments uniform over the reference run's duration (seeded). */
export async function generateCrashTrials(suite: GenerateCrashSuite, trials: number, seed: number, onTrial?: (i: number, t: GenerateCrashTrial) => void): Promise<GenerateCrashTotals> {
  const next = rng(seed);
  const totals: GenerateCrashTotals = { trials, mismatch: 0, repaid: 0, maxLost: 0, midRun: 0, problems: [] };
  for (let i = 0; i < trials; i++) {
    const t = await generateCrashTrial(suite, Math.floor(next() * suite.referenceMs), String(i));
    totals.mismatch += t.mismatch;
    totals.repaid += t.repaid;
    totals.maxLost = Math.max(totals.maxLost, t.lost);
    if (t.received > GENERATE_CRASH_REQUESTS || t.lost > 0) totals.midRun++;
    totals.problems.push(...t.problems.map((p) => `trial ${i} (kill at ${t.killAtMs} ms): ${p}`));
    onTrial?.(i, t);
  }
  return totals;
}
