import { spawn } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Effect } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SlurmExecutor } from "../src/executors/slurm.js";
import { runProcess } from "../src/executors/run-process.js";
import type { ProcessSpec } from "../src/executors/process.js";
import { itpAsync, itpBin, repoRoot, stackTrace, tempTree } from "./support/cli.js";
import { torchPython } from "./support/python.js";
import { slurmMissing, startSlurm, type SlurmCluster } from "./support/slurm-cluster.js";

// The Slurm executor against a real cluster: slurmctld, slurmd and munged started on localhost by this file (see
// support/slurm-cluster.ts). Jobs are submitted with sbatch, followed through their log file and squeue, and
// cancelled with scancel, as on a lab's cluster; the training stages train the tiny model on the CPU.

const missing = slurmMissing();
const py = torchPython();
const skipReason = missing ?? (py ? undefined : "no Python with torch here (.ci/run installs python3-torch)");
if (skipReason) console.warn(`test/slurm.test.ts skipped: ${skipReason}`);

let cluster: SlurmCluster | undefined;
const dirs: string[] = [];
beforeAll(async () => {
  if (!skipReason) cluster = await startSlurm();
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const TRAINER = join(repoRoot, "src/trainer");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skipReason)(`the Slurm executor, on a real cluster${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
  const executor = () => new SlurmExecutor({ python: py!, pollMs: 300, env: { ...process.env, ...cluster!.env } });
  const job = (name: string, command: string, over: Partial<ProcessSpec> = {}): ProcessSpec => {
    const dir = tempTree({});
    dirs.push(dir);
    return { stage: name, python: py!, module: "itp_trainer.exec_command", args: ["sh", "-c", command], pythonPath: [TRAINER], env: {}, cwd: dir, resources: { gpus: 0, nodes: 1 }, logFile: join(dir, "job.log"), ...over };
  };
  const runJob = (spec: ProcessSpec, ex = executor()) => {
    const lines: string[] = [];
    return Effect.runPromise(Effect.result(runProcess(ex, spec, { onText: (l) => lines.push(l) }))).then((r) => ({ r, lines, error: r._tag === "Failure" ? (r.failure as Error & { hint?: string }) : undefined }));
  };

  describe.concurrent("jobs", () => {
    it("GPU requests are scheduled on the GRES: two processes per node through torchrun, each told the devices", async () => {
      const { error, lines } = await runJob(job("gpus", 'echo "rank=$LOCAL_RANK of $WORLD_SIZE, devices=$CUDA_VISIBLE_DEVICES"', { resources: { gpus: 2, nodes: 1 } }));
      expect(error, lines.join("\n")).toBeUndefined();
      expect(lines.filter((l) => l.startsWith("rank=")).sort()).toEqual(["rank=0 of 2, devices=0,1", "rank=1 of 2, devices=0,1"]);
    }, 120_000);

    it("a job that fails says so, with its exit code and the tail of its log", async () => {
      const { error } = await runJob(job("fails", "echo about to fail; exit 3"));
      expect(error?.message).toMatch(/^stage fails: the job \(slurm job \d+\) failed, exit code 3; the last lines of .*job\.log:\n {2}about to fail$/);
    }, 120_000);

    it("a bad partition is a clear error at submit, in sbatch's words", async () => {
      const { error } = await runJob(job("nowhere", "true", { partition: "nosuch" }));
      expect(error?.message).toBe("stage nowhere: sbatch refused the job: invalid partition specified: nosuch; Invalid partition name specified");
      expect(error?.hint).toContain("the partition is `nosuch`");
    }, 60_000);

    it("a job over its time limit reports TIMEOUT", async () => {
      const { error } = await runJob(job("slow", "echo started; sleep 600", { resources: { gpus: 0, nodes: 1, timeMs: 60_000 } }));
      expect(error?.message).toMatch(/^stage slow: the job \(slurm job \d+\) ended: TIMEOUT, over its time limit/);
    }, 240_000);
  });
});

// Training stages through the CLI, under a profile that sends them to the cluster.
const TINY = join(repoRoot, "pipelines/models/tiny-llama");
const alpaca = readFileSync(join(repoRoot, "pipelines/data/quickstart/alpaca_sample.jsonl"), "utf8");
const settings = `gpus = 0
  epochs = 1
  batch_size = 2
  max_length = 96
  precision = "fp32"
  seed = 7
  checkpoint_every = 2`;

function project(body: string): string {
  const profiles = `cluster:
  executor: slurm
  partition: debug
  python: ${py}
  store: cluster-store
  poll_seconds: 0.3
`;
  const dir = tempTree({ "data.jsonl": alpaca, "itp.profiles.yaml": profiles, "r.itp": `dataset data: Instruction = jsonl("data.jsonl")\n\ndataset few = take(data, n: 16)\n\n${body}\n` });
  cpSync(TINY, join(dir, "tiny"), { recursive: true });
  dirs.push(dir);
  return dir;
}

interface RunJson {
  ran: number;
  failed: number;
  stages: { id: string; status: string; key?: string; error?: string }[];
}

describe.skipIf(skipReason)(`training stages under a Slurm profile${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
  const env = () => ({ ...cluster!.env, ITP_PYTHON: py! });
  const run = async (dir: string, args: string[]) => {
    const r = await itpAsync(["run", "r.itp", "--json", ...args], { cwd: dir, env: env() });
    expect(r.stdout + r.stderr).not.toMatch(stackTrace);
    return { code: r.code, j: JSON.parse(r.stdout) as RunJson, stderr: r.stderr };
  };
  const show = async (dir: string, stage: string, args: string[]) => {
    const r = await itpAsync(["show", "r.itp", stage, "--json", ...args], { cwd: dir, env: env() });
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { digest: string; key: string; summary: { steps: number; resumed_from: number | null; job?: string; executor?: string } };
  };

  it("two stages train as two concurrent jobs; the same recipe without a profile makes the same keys and the same models", async () => {
    const dir = project(`train a = sft(few, base: "tiny") {\n  ${settings}\n  lr = 3e-3\n}\n\ntrain b = sft(few, base: "tiny") {\n  ${settings}\n  lr = 1e-3\n}`);
    let most = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        most = Math.max(most, cluster!.queue().filter((l) => / RUNNING$/.test(l)).length);
        await sleep(150);
      }
    })();
    const onCluster = await run(dir, ["--profile", "cluster"]);
    watching = false;
    await watch;
    expect(onCluster.code, onCluster.stderr).toBe(0);
    expect(most).toBe(2);
    const local = await run(dir, ["--store", "local-store"]);
    expect(local.code, local.stderr).toBe(0);
    const keys = (j: RunJson) => Object.fromEntries(j.stages.map((s) => [s.id, s.key]));
    expect(keys(local.j)).toEqual(keys(onCluster.j));
    for (const stage of ["a", "b"]) {
      const c = await show(dir, stage, ["--profile", "cluster"]);
      const l = await show(dir, stage, ["--store", "local-store"]);
      expect(c.summary.job).toMatch(/^slurm job \d+$/);
      expect(l.summary.job).toMatch(/^pid \d+/);
      expect(c.digest, stage).toBe(l.digest);
    }
    expect(readdirSync(join(dir, "cluster-store"))).toContain("entries");
  }, 600_000);

  /** The work folder of the (only) training stage being trained, and its job's log. */
  const work = (dir: string) => {
    const w = join(dir, "cluster-store/work");
    const k = existsSync(w) ? readdirSync(w).find((d) => existsSync(join(w, d, "train.log"))) : undefined;
    return k ? join(w, k) : undefined;
  };
  const trainLog = (dir: string) => {
    const w = work(dir);
    return w ? readFileSync(join(w, "train.log"), "utf8") : "";
  };
  const startRun = (dir: string) => {
    const child = spawn(process.execPath, [itpBin, "run", "r.itp", "--profile", "cluster"], { cwd: dir, env: { ...process.env, ...env(), NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const closed = new Promise<number | null>((res) => child.on("close", res));
    return { child, closed, stderr: () => stderr };
  };
  const checkpointed = async (dir: string) => {
    for (let i = 0; i < 1200 && !trainLog(dir).includes('"event": "checkpoint"'); i++) await sleep(100);
    expect(trainLog(dir)).toContain('"event": "checkpoint"');
  };
  const recipe = `train tuned = sft(data, base: "tiny") {\n  ${settings}\n  lr = 3e-3\n}`;

  it("Ctrl-C cancels the job (nothing left in squeue) and the next run resumes from its checkpoint", async () => {
    const dir = project(recipe);
    const r = startRun(dir);
    await checkpointed(dir);
    const id = (JSON.parse(readFileSync(join(work(dir)!, "job.json"), "utf8")) as { handle: { id: string } }).handle.id;
    r.child.kill("SIGINT");
    expect(await r.closed).toBe(1);
    expect(r.stderr()).toContain("SIGINT: stopping");
    expect(cluster!.queue().filter((l) => l.startsWith(`${id} `))).toEqual([]);
    expect(cluster!.queue(true).filter((l) => l.startsWith(`${id} `))).toEqual([`${id} CANCELLED`]);
    const resumed = await run(dir, ["--profile", "cluster"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((await show(dir, "tuned", ["--profile", "cluster"])).summary.resumed_from).toBeGreaterThanOrEqual(2);
  }, 600_000);

  it("a job cancelled from outside (scancel) is reported, and the next run resumes it", async () => {
    const dir = project(recipe);
    const r = startRun(dir);
    await checkpointed(dir);
    const id = (JSON.parse(readFileSync(join(work(dir)!, "job.json"), "utf8")) as { handle: { id: string } }).handle.id;
    const { spawnSync } = await import("node:child_process");
    expect(spawnSync("scancel", [id], { env: { ...process.env, ...cluster!.env } }).status).toBe(0);
    expect(await r.closed).toBe(1);
    expect(r.stderr()).toContain(`the job (slurm job ${id}) ended: CANCELLED, cancelled outside itp (scancel, or by an administrator); run again to resume from its last checkpoint`);
    const resumed = await run(dir, ["--profile", "cluster"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((await show(dir, "tuned", ["--profile", "cluster"])).summary.resumed_from).toBeGreaterThanOrEqual(2);
  }, 600_000);
});
