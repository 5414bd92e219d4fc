import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { itp, itpBin, repoRoot, stackTrace, tempTree } from "./support/cli.js";
import { torchPython } from "./support/python.js";

// Training stages end to end through the CLI, on the CPU, with the tiny model the examples ship
// (pipelines/models/tiny-llama: a config and a tokenizer, initialized at random from the seed): sft, lora, qlora and
// dpo train from a recipe, the loss goes down, the saved model is the trained one (the trainer's Python reloads it
// and gives the logits of the ONNX export written from memory), a LoRA adapter on its base gives the merged model's
// logits; Ctrl-C stops the job and the next run resumes it; kill -9 of itp or of the trainer at 10 points ends with
// the weights of an uninterrupted run.

const py = torchPython();
const TINY = join(repoRoot, "pipelines/models/tiny-llama");
const TRAINER = join(repoRoot, "src/trainer");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const alpaca = readFileSync(join(repoRoot, "pipelines/data/quickstart/alpaca_sample.jsonl"), "utf8");
const prefs = Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `Say the number ${i}.`, chosen: `The number is ${i}.`, rejected: `I will not say it, ${i * 7} times.` })).join("\n") + "\n";

/** A recipe over the quickstart data and the tiny model (copied, so its path is the test's own). */
function project(body: string): string {
  const dir = tempTree({ "data.jsonl": alpaca, "prefs.jsonl": prefs, "r.itp": `dataset data: Instruction = jsonl("data.jsonl")\n\ndataset few = take(data, n: 16)\n\n${body}\n` });
  cpSync(TINY, join(dir, "tiny"), { recursive: true });
  dirs.push(dir);
  return dir;
}

const settings = (batch = 4, epochs = 1) => `gpus = 0
  epochs = ${epochs}
  batch_size = ${batch}
  max_length = 96
  precision = "fp32"
  seed = 7`;
const common = settings();

const env = () => ({ ITP_PYTHON: py! });

interface RunJson {
  ran: number;
  cached: number;
  failed: number;
  stages: { id: string; status: string; error?: string }[];
  log: string;
}

function run(dir: string, args: string[] = []): { code: number | null; j: RunJson; stderr: string } {
  const r = itp(["run", "r.itp", "--store", "s", "--json", ...args], { cwd: dir, env: env() });
  expect(r.stdout + r.stderr).not.toMatch(stackTrace);
  let j: RunJson;
  try {
    j = JSON.parse(r.stdout) as RunJson;
  } catch {
    throw new Error(`no JSON from itp run (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, j, stderr: r.stderr };
}

interface ShowJson {
  path: string;
  files: { files: number; bytes: number };
  summary: { steps: number; loss_first: number; loss_last: number; loss_min: number; tokens_per_s: number; resumed_from: number | null; loss_curve: [number, number, number | null][]; reward_accuracy?: number };
  counts: Record<string, number>;
  tokens?: { stats: { examples: number; rows: number; tokens: number; loss_tokens: number; truncated: number }; loss_share: number; max_length: number; sample: { examples: { runs: { loss: boolean; text: string }[] }[] }[] };
}

function show(dir: string, stage: string): ShowJson {
  const r = itp(["show", "r.itp", stage, "--store", "s", "--json"], { cwd: dir, env: env() });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ShowJson;
}

function logits(args: string[]): number[][] {
  const r = spawnSync(py!, [join(repoRoot, "test/support/train_logits.py"), TRAINER, ...args], { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`train_logits.py failed:\n${r.stderr}`);
  return (JSON.parse(r.stdout) as { logits: number[][] }).logits;
}

const maxDiff = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, i) => row.map((x, j) => Math.abs(x - b[i]![j]!))));
const IDS = [0, 17, 42, 99, 7, 256, 300, 11];

describe.skipIf(!py)("training on the CPU", () => {
  it("sft: trains, the loss goes down, the model folder reloads with the logits of its ONNX export; a rerun is cached; a new lr reuses the tokens", async () => {
    const dir = project(`train tuned = sft(few, base: "tiny") {\n  ${common}\n  lr = 3e-3\n  export_onnx = true\n}`);
    const first = run(dir);
    expect(first.code, JSON.stringify(first.j)).toBe(0);
    const s = show(dir, "tuned");
    expect(s.summary.steps).toBe(4);
    expect(s.summary.loss_last).toBeLessThan(s.summary.loss_first);
    expect(s.summary.tokens_per_s).toBeGreaterThan(0);
    // The curve keeps each step's learning rate (what `itp report` plots beside the loss).
    expect(s.summary.loss_curve.map((p) => p[0])).toEqual([1, 2, 3, 4]);
    // lr 3e-3, linear, warmup ceil(4 x 0.03) = 1 step: 0 during warmup, then 3e-3 decaying by a third a step.
    [0, 3e-3, 2e-3, 1e-3].forEach((lr, i) => expect(s.summary.loss_curve[i]![2]).toBeCloseTo(lr, 9));
    // Every record is an example, or counted as one whose answer fell beyond max_length.
    expect(s.counts["tokens: examples"]! + (s.counts["tokens: no_loss"] ?? 0)).toBe(16);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "model.onnx"]) expect(existsSync(join(dir, s.path, f)), f).toBe(true);
    // The chat template used is the one in the output's tokenizer_config.json.
    expect(JSON.parse(readFileSync(join(dir, s.path, "tokenizer_config.json"), "utf8")).chat_template).toBe(JSON.parse(readFileSync(join(TINY, "tokenizer_config.json"), "utf8")).chat_template);
    // The human form: where the model is, and the loss summary.
    const text = itp(["show", "r.itp", "tuned", "--store", "s"], { cwd: dir, env: env() }).stdout;
    expect(text).toMatch(/^artifact {2}s\/trees\/[0-9a-f]{2}\/[0-9a-f]{64}$/m);
    expect(text).toMatch(/^training {2}4 steps, loss \d+\.\d{4} -> \d+\.\d{4} \(lowest \d+\.\d{4}\), [\d,]+ tokens\/s/m);
    // The tokens it trained on: counts, and the first row decoded with the text that carries no loss in brackets.
    const t = s.tokens!;
    expect(t.stats.examples).toBe(s.counts["tokens: examples"]);
    expect(t.stats.truncated).toBe(s.counts["tokens: truncated"]);
    expect(t.loss_share).toBeCloseTo(t.stats.loss_tokens / t.stats.tokens, 10);
    expect(t.loss_share).toBeGreaterThan(0.05);
    expect(t.loss_share).toBeLessThan(0.95);
    expect(t.sample[0]!.examples[0]!.runs.map((r) => r.loss)).toEqual([false, true]);
    expect(text).toContain(`tokens    ${t.stats.examples} examples in ${t.stats.rows} rows of at most 96 tokens (packing off), ${t.stats.tokens.toLocaleString("en-US")} tokens\n`);
    expect(text).toContain(`          ${(t.loss_share * 100).toFixed(1)}% of tokens carry loss; ${t.stats.truncated} examples truncated to max_length`);
    expect(text).toContain("sample    row 0; text without loss in [brackets]\n    [<s><|user|>\n    Give three tips for staying healthy.\n    <|assistant|>\n    ]1. Eat a balanced diet");
    // Reloaded from model.safetensors by the trainer's Python: the logits of the ONNX model written from memory.
    const reloaded = logits(["model", join(dir, s.path), JSON.stringify(IDS)]);
    const session = await ort.InferenceSession.create(join(dir, s.path, "model.onnx"));
    const feeds = { input_ids: new ort.Tensor("int64", BigInt64Array.from(IDS.map(BigInt)), [1, IDS.length]), attention_mask: new ort.Tensor("int64", BigInt64Array.from(IDS.map(() => 1n)), [1, IDS.length]) };
    const outputs = await session.run(feeds);
    const data = outputs[session.outputNames[0]!]!.data as Float32Array;
    const vocab = data.length / IDS.length;
    const onnx = IDS.map((_, i) => Array.from(data.subarray(i * vocab, (i + 1) * vocab)));
    await session.release();
    expect(maxDiff(reloaded, onnx)).toBeLessThan(1e-4);
    // Nothing changed: everything cached. A new lr: the token artifact is reused, only training runs again.
    const again = run(dir);
    expect([again.j.ran, again.j.cached]).toEqual([0, 3]);
    const lr = run(dir, ["--set", "tuned.lr=1e-3"]);
    expect(lr.j.stages.find((x) => x.id === "tuned")?.status).toBe("ran");
    const events = readFileSync(lr.j.log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { type: string; reused?: boolean; stage?: string });
    expect(events.find((e) => e.type === "tokens")).toMatchObject({ stage: "tuned", reused: true });
    expect(events.filter((e) => e.type === "train_step").length).toBe(4);
    // The token artifact removed from the store: show still shows the model, and says the tokens are gone.
    const key = (JSON.parse(itp(["show", "r.itp", "tuned", "--store", "s", "--json", "--set", "tuned.lr=1e-3"], { cwd: dir, env: env() }).stdout) as { summary: { tokens_artifact: string } }).summary.tokens_artifact;
    rmSync(join(dir, "s", "entries", key.slice(0, 2), `${key}.json`));
    const gone = itp(["show", "r.itp", "tuned", "--store", "s"], { cwd: dir, env: env() });
    expect(gone.code).toBe(0);
    expect(gone.stdout).toMatch(new RegExp(`^tokens {4}the token artifact ${key.slice(0, 12)} is not in the store`, "m"));
  }, 300_000);

  it("lora: the adapter on its base gives the merged model's logits; qlora trains on a 4-bit base", () => {
    const dir = project(
      [
        `train adapted = lora(few, base: "tiny") {\n  ${common}\n  lr = 1e-2\n  r = 4\n  alpha = 8\n  dropout = 0\n}`,
        `train quant = qlora(few, base: "tiny") {\n  ${common}\n  lr = 1e-2\n  r = 4\n  alpha = 8\n  dropout = 0\n}`,
      ].join("\n\n"),
    );
    const r = run(dir);
    expect(r.code, JSON.stringify(r.j.stages)).toBe(0);
    const a = show(dir, "adapted");
    expect(a.summary.loss_last).toBeLessThan(a.summary.loss_first);
    for (const f of ["adapter_config.json", "adapter_model.safetensors", "model.safetensors"]) expect(existsSync(join(dir, a.path, f)), f).toBe(true);
    const merged = logits(["model", join(dir, a.path), JSON.stringify(IDS)]);
    const adapter = logits(["adapter", join(dir, "tiny"), join(dir, a.path), "7", JSON.stringify(IDS)]);
    expect(maxDiff(merged, adapter)).toBeLessThan(1e-4);
    const q = show(dir, "quant");
    expect(q.summary.loss_last).toBeLessThan(q.summary.loss_first);
  }, 300_000);

  it("dpo: trains on preference pairs from an earlier model, and reports reward accuracy", () => {
    const dir = project(
      [
        `train adapted = lora(few, base: "tiny") {\n  ${common}\n  lr = 1e-2\n  r = 4\n  alpha = 8\n  dropout = 0\n}`,
        `dataset pairs: Preference = jsonl("prefs.jsonl")`,
        `train preferred = dpo(pairs, base: adapted) {\n  ${common}\n  lr = 1e-3\n  beta = 0.1\n}`,
      ].join("\n\n"),
    );
    const r = run(dir);
    expect(r.code, JSON.stringify(r.j.stages)).toBe(0);
    const d = show(dir, "preferred");
    expect(d.summary.steps).toBe(3);
    expect(typeof d.summary.reward_accuracy).toBe("number");
  }, 300_000);

  it("Ctrl-C stops the trainer (no process left) and the next run resumes from its checkpoint", async () => {
    const dir = project(`train tuned = sft(data, base: "tiny") {\n  ${settings(2)}\n  lr = 3e-3\n  checkpoint_every = 2\n}`);
    const child = spawn(process.execPath, [itpBin, "run", "r.itp", "--store", "s"], { cwd: dir, env: { ...process.env, ...env(), NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const log = () => {
      const work = join(dir, "s/work");
      const k = existsSync(work) ? readdirSync(work)[0] : undefined;
      return k && existsSync(join(work, k, "train.log")) ? readFileSync(join(work, k, "train.log"), "utf8") : "";
    };
    // Interrupted once a checkpoint is written.
    for (let i = 0; i < 1200 && !log().includes('"event": "checkpoint"'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(log(), stderr).toContain('"event": "checkpoint"');
    child.kill("SIGINT");
    const code = await new Promise<number | null>((res) => child.on("close", res));
    expect(code).toBe(1);
    expect(stderr).toContain("SIGINT: stopping");
    expect(trainerProcesses(dir)).toEqual([]);
    const resumed = run(dir);
    expect(resumed.code).toBe(0);
    expect(show(dir, "tuned").summary.resumed_from).toBeGreaterThanOrEqual(2);
  }, 300_000);
});

describe.skipIf(!py)("training survives kill -9", () => {
  it("kill -9 of itp or of the trainer at 10 points, then a rerun: the weights of an uninterrupted run, bit for bit", async () => {
    // 46 records, 2 epochs, batch 2: about 44 steps, enough for 10 kills of at most 2 steps each.
    const body = `train tuned = sft(data, base: "tiny") {\n  ${settings(2, 2)}\n  lr = 3e-3\n  checkpoint_every = 1\n}`;
    const ref = project(body);
    expect(run(ref).code).toBe(0);
    const want = readFileSync(join(ref, show(ref, "tuned").path, "model.safetensors"));
    const dir = project(body);
    const steps = () => {
      const work = join(dir, "s/work");
      const k = existsSync(work) ? readdirSync(work)[0] : undefined;
      const log = k && existsSync(join(work, k, "train.log")) ? readFileSync(join(work, k, "train.log"), "utf8") : "";
      return log.split("\n").filter((l) => l.includes('"event": "step"')).length;
    };
    const kills: string[] = [];
    for (let k = 0; k < 10; k++) {
      const child = spawn(process.execPath, [itpBin, "run", "r.itp", "--store", "s"], { cwd: dir, env: { ...process.env, ...env(), NO_COLOR: "1" }, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      let how = "";
      const closed = new Promise<number | null>((res) => child.on("close", (c, sig) => ((how = `exit ${c} ${sig}`), res(c))));
      let done = false;
      void closed.then(() => (done = true));
      // Kill points: 0 to 1.2 s after the trainer started (it loads torch and the data first, then steps).
      const mine = () => trainerProcesses(dir, child.pid);
      for (let i = 0; i < 1200 && !done && mine().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, (k % 4) * 400));
      if (done) {
        // The run finished before this kill point: it must have succeeded.
        expect(stderr, kills.join("; ") + "\n" + how + "\n" + stderr).toMatch(/ran 1, cached 2, failed 0/);
        break;
      }
      if (k % 2 === 0) {
        child.kill("SIGKILL");
        kills.push(`itp after ${steps()} steps`);
      } else {
        for (const pid of mine()) process.kill(pid, "SIGKILL");
        kills.push(`trainer after ${steps()} steps`);
      }
      await closed;
    }
    expect(kills.length, kills.join("; ")).toBeGreaterThanOrEqual(10);
    const last = run(dir);
    expect(last.code, JSON.stringify(last.j.stages)).toBe(0);
    const got = readFileSync(join(dir, show(dir, "tuned").path, "model.safetensors"));
    expect(got.equals(want), `weights differ after kills: ${kills.join("; ")}`).toBe(true);
    expect(itp(["cache", "verify", "--store", "s"], { cwd: dir }).code).toBe(0);
    // What the killed itp left running is gone.
    expect(trainerProcesses(dir)).toEqual([]);
  }, 900_000);
});

/** Processes still running the trainer on this test's folder (started by the itp of pid `parent`, if given). */
function trainerProcesses(dir: string, parent?: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
      if (!cmd.includes("itp_trainer") || !cmd.includes(dir)) continue;
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parent === undefined || ppid === parent) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}


