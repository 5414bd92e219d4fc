// npm run bench -- train-cpu [rounds]: training throughput of the trainer (src/trainer, `python -m itp_trainer
// train`, started as the executor starts it) on CPU, against a minimal plain PyTorch loop (test/bench/train-cpu.py
// `torch`) over the same tokens.
//
// Both sides: a 2-layer Llama-shaped model (hidden 128, 4 heads, 2 KV heads, vocabulary 2048) initialized at random
// from the same config by the same code, fp32, 64 rows of 128 random tokens, micro batch 4, 2 accumulation steps,
// AdamW (foreach), clipping at 1.0, 10 optimizer steps of which the first 2 are warmup and not timed. Small, so the
// trainer's own work per step (batches, metrics) weighs as much as it ever will next to the model's.
// The trainer side does everything it does in a real run (checked config, the token artifact, its data order,
// label shifting, loss normalization, metrics lines, writing the model at the end); its rate is taken from its own
// step lines (tokens of steps 3..10 over the time between step 2's line and step 10's line). The plain loop does only
// the forward, the loss, backward, clipping and the optimizer step, timed over the same steps.
// `startup_s`: from starting the trainer process to its first optimizer step's line (interpreter and torch import,
// config, data, model init, the first step). `itp_first_step_s`: from starting `itp run` on a recipe (the quickstart's
// Alpaca sample, sft of pipelines/models/tiny-llama on the CPU) in a fresh store to the trainer's first step line in
// the job's log: parsing and checking the recipe, reading the data, tokenizing it, starting the trainer, its first
// step. Rounds alternate the two sides; the best round counts for each.
// Python: ITP_PYTHON or /usr/bin/python3 (with torch).
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const PYTHON = process.env["ITP_PYTHON"] ?? "/usr/bin/python3";
const HELPER = join("test", "bench", "train-cpu.py");
const STEPS = 10;
const WARMUP = 2;
const TOKENS_PER_STEP = 4 * 2 * 128;
const rounds = Number(process.argv[2] ?? 2);
const env = { ...process.env, PYTHONPATH: join(process.cwd(), "src", "trainer"), PYTHONDONTWRITEBYTECODE: "1" };

function python(args: string[]): string {
  const r = spawnSync(PYTHON, args, { env, encoding: "utf8" });
  if (r.status !== 0) {
    console.error(`${PYTHON} ${args.join(" ")} failed (exit ${r.status}):\n${r.stderr}`);
    process.exit(1);
  }
  return r.stdout;
}

/** One trainer run: its tokens/s after warmup and the seconds from process start to the first step line. */
function trainer(dir: string): Promise<{ tps: number; startup: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(PYTHON, ["-m", "itp_trainer", "train", "--config", join(dir, "config.json")], { env });
    let startup = NaN;
    let buffer = "";
    let stderr = "";
    const elapsed = new Map<number, number>();
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!line.startsWith("{")) continue;
        const ev = JSON.parse(line) as { event: string; step?: number; elapsed_s?: number };
        if (ev.event === "step") {
          if (Number.isNaN(startup)) startup = (performance.now() - t0) / 1000;
          elapsed.set(ev.step!, ev.elapsed_s!);
        }
      }
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`the trainer failed (exit ${code}):\n${stderr.slice(-3000)}`));
      const seconds = elapsed.get(STEPS)! - elapsed.get(WARMUP)!;
      resolve({ tps: ((STEPS - WARMUP) * TOKENS_PER_STEP) / seconds, startup });
    });
  });
}

const RECIPE = `dataset all: Instruction = jsonl("data.jsonl")

dataset data = take(all, n: 8)

train tuned = sft(data, base: "tiny") {
  gpus = 0
  epochs = 1
  batch_size = 4
  max_length = 128
  precision = "fp32"
}
`;

/**
 * Seconds from starting `itp run` (fresh store) to the trainer's first step, as the run's log has it (the time itp
 * read the step line from the job's log).
 */
async function itpFirstStep(project: string, round: number): Promise<number> {
  const store = join(project, `store-${round}`);
  const t0 = Date.now();
  const child = spawn(process.execPath, [join(process.cwd(), "bin", "itp.js"), "run", "r.itp", "--store", store], { cwd: project, env: { ...process.env, ITP_PYTHON: PYTHON }, stdio: "ignore" });
  const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  const runs = join(store, "runs");
  const log = existsSync(runs) ? readdirSync(runs).map((f) => readFileSync(join(runs, f), "utf8")).join("") : "";
  const step = log.split("\n").find((l) => l.includes('"type":"train_step"'));
  if (code !== 0 || !step) throw new Error(`itp run failed (exit ${code}) or logged no training step in ${project}`);
  return (Date.parse((JSON.parse(step) as { t: string }).t) - t0) / 1000;
}

const project = mkdtempSync(join(tmpdir(), "itp-bench-train-cpu-run-"));
writeFileSync(join(project, "r.itp"), RECIPE);
cpSync(join("pipelines", "data", "quickstart", "alpaca_sample.jsonl"), join(project, "data.jsonl"));
cpSync(join("pipelines", "models", "tiny-llama"), join(project, "tiny"), { recursive: true });
const dir = mkdtempSync(join(tmpdir(), "itp-bench-train-cpu-"));
try {
  python([HELPER, "prepare", dir]);
  let best = { tps: 0, startup: Infinity };
  let bestTorch = 0;
  let firstStep = Infinity;
  for (let r = 0; r < rounds; r++) {
    const f = await itpFirstStep(project, r);
    firstStep = Math.min(firstStep, f);
    const t = await trainer(dir);
    const plain = (JSON.parse(python([HELPER, "torch", dir]).trim().split("\n").pop()!) as { tokens_per_s: number }).tokens_per_s;
    console.log(`round ${r + 1}: trainer ${t.tps.toFixed(0)} tokens/s (first step after ${t.startup.toFixed(2)} s; from itp run ${f.toFixed(2)} s), plain torch ${plain.toFixed(0)} tokens/s`);
    best = { tps: Math.max(best.tps, t.tps), startup: Math.min(best.startup, t.startup) };
    bestTorch = Math.max(bestTorch, plain);
  }
  console.log(
    `bench train-cpu: tokens_per_s=${best.tps.toFixed(0)} ratio_vs_torch=${(best.tps / bestTorch).toFixed(3)} torch_tokens_per_s=${bestTorch.toFixed(0)} startup_s=${best.startup.toFixed(2)} itp_first_step_s=${firstStep.toFixed(2)}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
  rmSync(project, { recursive: true, force: true });
}
