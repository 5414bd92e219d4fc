import { spawn, spawnSync } from "node:child_process";
import { cpSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { itp, itpBin, repoRoot, stackTrace, tempTree } from "./support/cli.js";
import { torchPython } from "./support/python.js";

// The iterative recipes of stdlib end to end, offline, on the CPU, with the tiny model the examples ship: the model
// a round trains is the one that generates in the next (the Python worker answers the data stages). SPIN (3
// iterations: spin_pairs + dpo) and Humpback (the backward model, back-translation, 2 rounds of self-curation):
// the unrolled stages by name, each run once; a rerun is fully cached; SPIN killed in its second iteration resumes
// without redoing the first.

const py = torchPython();
const TINY = join(repoRoot, "pipelines/models/tiny-llama");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const lines = readFileSync(join(repoRoot, "pipelines/data/quickstart/alpaca_sample.jsonl"), "utf8").trim().split("\n");
const records = lines.map((l) => JSON.parse(l) as { instruction: string; input?: string; output: string });

/** What every training stage of these tests is given: small, exact and fast on a CPU. */
const TRAIN = `gpus = 0
    epochs = 1
    batch_size = 4
    max_length = 96
    precision = "fp32"
    lr = 3e-3`;

const SPIN = `import std/spin { spin }

dataset data: Instruction = jsonl("data.jsonl")

dataset sft_data = take(data, n: 8)

train sft_model = sft(sft_data, base: "tiny") {
  ${TRAIN.replaceAll("\n    ", "\n  ")}
  seed = 7
}

train spun = spin(sft_data, sft_model, iterations: 3, max_tokens: 8, gpus: 0, seed: 7) {
  model.epochs = 1
  model.batch_size = 4
  model.max_length = 96
  model.precision = "fp32"
  model.lr = 1e-3
}
`;

const HUMPBACK = `import std/humpback { humpback_data }

dataset data: Instruction = jsonl("data.jsonl")

dataset seed_data = take(data, n: 8)

dataset segments: Text = jsonl("segments.jsonl")

model tiny = hf_model() {
  repo = "tiny"
}

dataset curated_data = humpback_data(seed_data, unlabelled: segments, base: tiny, min_score: 1, gpus: 0, seed: 7) {
  backward.epochs = 1
  backward.batch_size = 4
  backward.max_length = 96
  backward.precision = "fp32"
  backward.lr = 3e-3
  model.epochs = 1
  model.batch_size = 4
  model.max_length = 96
  model.precision = "fp32"
  model.lr = 3e-3
  candidates.max_tokens = 8
  curated.max_tokens = 4
}
`;

interface RunJson {
  ran: number;
  cached: number;
  failed: number;
  stages: { id: string; status: string; error?: string }[];
}

function project(recipe: string): string {
  const segments = records.slice(20, 26).map((r) => JSON.stringify({ text: r.output })).join("\n") + "\n";
  const dir = tempTree({ "data.jsonl": lines.join("\n") + "\n", "segments.jsonl": segments, "r.itp": recipe });
  cpSync(TINY, join(dir, "tiny"), { recursive: true });
  dirs.push(dir);
  return dir;
}

function run(dir: string): RunJson {
  // Several trainings and workers: longer than the CLI helper's minute on a loaded machine.
  const r = spawnSync(process.execPath, [itpBin, "run", "r.itp", "--store", "s", "--json"], { cwd: dir, env: { ...process.env, NO_COLOR: "1", ITP_PYTHON: py! }, encoding: "utf8", timeout: 800_000 });
  expect(r.stdout + r.stderr).not.toMatch(stackTrace);
  try {
    return JSON.parse(r.stdout) as RunJson;
  } catch {
    throw new Error(`no JSON from itp run (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
}

const statuses = (j: RunJson) => Object.fromEntries(j.stages.map((s) => [s.id, s.status]));

/** A stage's counts, with `records`: the records of its output. */
function counts(dir: string, stage: string): Record<string, number> {
  const r = itp(["show", "r.itp", stage, "--store", "s", "--json"], { cwd: dir, env: { ITP_PYTHON: py! } });
  expect(r.code, r.stderr).toBe(0);
  const j = JSON.parse(r.stdout) as { counts: Record<string, number>; records: number | null };
  return { ...j.counts, records: j.records ?? 0 };
}

describe.skipIf(!py)("iterative recipes run end to end", () => {
  it("SPIN, 3 iterations: each round's pairs come from the previous round's model; a rerun is cached; a kill in round 2 keeps round 1", async () => {
    const ref = project(SPIN);
    const first = run(ref);
    expect(first.failed, JSON.stringify(first.stages.filter((s) => s.error))).toBe(0);
    const rounds = [1, 2, 3].flatMap((k) => [`spun.iteration[${k}].pairs`, `spun.iteration[${k}].model`]);
    expect(statuses(first)).toMatchObject(Object.fromEntries(["data", "sft_data", "sft_model", ...rounds].map((id) => [id, "ran"])));
    for (const k of [1, 2, 3]) {
      const c = counts(ref, `spun.iteration[${k}].pairs`);
      // Every SFT instruction is asked once; each answer is a pair, or dropped with its reason.
      expect(c["requests: sent"], `iteration ${k}`).toBe(8);
      expect((c["records"] ?? 0) + (c["dropped: empty answer"] ?? 0) + (c["dropped: answer equals the SFT output"] ?? 0)).toBe(8);
    }
    const again = run(ref);
    expect([again.ran, again.failed]).toEqual([0, 0]);

    // Killed (kill -9 of itp) once the first iteration is done: the rerun finds it in the store.
    const dir = project(SPIN);
    const child = spawn(process.execPath, [itpBin, "run", "r.itp", "--store", "s"], { cwd: dir, env: { ...process.env, ITP_PYTHON: py!, NO_COLOR: "1" }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    const killed = new Promise<void>((resolve) => {
      child.stderr!.setEncoding("utf8").on("data", (d: string) => {
        stderr += d;
        if (/ran\s+spun\.iteration\[1\]\.model/.test(stderr) && child.exitCode === null) {
          child.kill("SIGKILL");
          resolve();
        }
      });
      child.on("close", () => resolve());
    });
    await killed;
    expect(stderr).toMatch(/ran\s+spun\.iteration\[1\]\.model/);
    expect(stderr).not.toMatch(/ran\s+spun\.iteration\[2\]\.model/);
    const resumed = run(dir);
    expect(resumed.failed, JSON.stringify(resumed.stages.filter((s) => s.error))).toBe(0);
    const st = statuses(resumed);
    for (const id of ["sft_model", "spun.iteration[1].pairs", "spun.iteration[1].model"]) expect(st[id], id).toBe("cached");
    for (const id of ["spun.iteration[2].model", "spun.iteration[3].model"]) expect(st[id], id).toBe("ran");
    // The same models as the uninterrupted run: the same recipe, the same seeds, the CPU.
    const weights = (d: string) => readFileSync(join(d, (JSON.parse(itp(["show", "r.itp", "spun.iteration[3].model", "--store", "s", "--json"], { cwd: d, env: { ITP_PYTHON: py! } }).stdout) as { path: string }).path, "model.safetensors"));
    expect(weights(dir).equals(weights(ref))).toBe(true);
  }, 900_000);

  it("Humpback, 2 rounds: backward model, back-translation, self-curation by each round's model; a rerun is cached", () => {
    const dir = project(HUMPBACK);
    const first = run(dir);
    expect(first.failed, JSON.stringify(first.stages.filter((s) => s.error))).toBe(0);
    const ids = ["curated_data.backward", "curated_data.candidates", ...[1, 2].flatMap((k) => ["model", "curated", "data"].map((s) => `curated_data.round[${k}].${s}`))];
    // Round 2's model is cached when round 1 kept no pair (the tiny model rarely writes a score): the same data makes
    // the same model, and the store knows it by its content.
    const st = statuses(first);
    for (const id of ids) expect(["ran", "cached"], id).toContain(st[id]);
    expect(st["curated_data.round[1].model"]).toBe("ran");
    // The backward model is asked for an instruction for each of the 6 segments; each one is kept or dropped with
    // its reason. Each round's model rates every candidate kept.
    const cand = counts(dir, "curated_data.candidates");
    expect(cand["requests: sent"]).toBe(6);
    const kept = cand["records"] ?? 0;
    expect(kept + Object.entries(cand).filter(([k]) => k.startsWith("dropped: ")).reduce((n, [, v]) => n + v, 0)).toBe(6);
    const c = counts(dir, "curated_data.round[1].curated");
    const rated = Object.entries(c).filter(([key]) => key.startsWith("rated ")).reduce((n, [, v]) => n + v, 0);
    expect(rated + (c["dropped: unreadable score"] ?? 0)).toBe(kept);
    expect(c["requests: sent"] ?? 0).toBe(kept);
    const again = run(dir);
    expect([again.ran, again.failed]).toEqual([0, 0]);
  }, 900_000);
});
