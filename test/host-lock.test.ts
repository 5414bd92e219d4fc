import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HostLock } from "../src/stages/support/host-lock.js";
import { itp, repoRoot, stackTrace, tempTree } from "./support/cli.js";
import { torchPython } from "./support/python.js";

// The lock over a training stage's work folder: a folder made with mkdir (atomic on NFS) holding its owner's host,
// pid and heartbeat, so two itps on two hosts sharing a store never train the same checkpoints.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function place(): string {
  const d = tempTree({});
  dirs.push(d);
  return join(d, "lock");
}

const plant = (dir: string, owner: { host: string; pid: number; heartbeat: number }) => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "owner.json"), JSON.stringify(owner));
};

const deadPid = (): number => {
  const r = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
  return Number(r.stdout.trim());
};

describe("HostLock", () => {
  it("is taken once: the holder is written with its heartbeat, which it refreshes; released, it is gone", async () => {
    const dir = place();
    const lock = new HostLock(dir, { heartbeatMs: 30 });
    expect(lock.acquire()).toBeUndefined();
    const first = lock.owner()!;
    expect(first).toMatchObject({ host: hostname(), pid: process.pid });
    await new Promise((r) => setTimeout(r, 120));
    expect(lock.owner()!.heartbeat).toBeGreaterThan(first.heartbeat);
    // The same itp asking again (a retry of the stage) keeps it.
    expect(new HostLock(dir).acquire()).toBeUndefined();
    lock.release();
    expect(existsSync(dir)).toBe(false);
  });

  it("held from another host with a fresh heartbeat: refused, naming the owner; an old heartbeat: broken and taken", () => {
    const dir = place();
    plant(dir, { host: "login2", pid: 4242, heartbeat: Date.now() });
    expect(new HostLock(dir, { staleMs: 60_000 }).acquire()).toMatchObject({ host: "login2", pid: 4242 });
    expect(JSON.parse(readFileSync(join(dir, "owner.json"), "utf8"))).toMatchObject({ host: "login2" });
    plant(dir, { host: "login2", pid: 4242, heartbeat: Date.now() - 120_000 });
    const lock = new HostLock(dir, { staleMs: 60_000 });
    expect(lock.acquire()).toBeUndefined();
    expect(lock.owner()).toMatchObject({ host: hostname(), pid: process.pid });
    lock.release();
  });

  it("held on this host: by a live process refused, whatever its heartbeat; by a dead one taken", async () => {
    const dir = place();
    const sleeper = spawn("sleep", ["30"]);
    try {
      plant(dir, { host: hostname(), pid: sleeper.pid!, heartbeat: 0 });
      expect(new HostLock(dir).acquire()).toMatchObject({ pid: sleeper.pid });
    } finally {
      sleeper.kill("SIGKILL");
    }
    plant(dir, { host: hostname(), pid: deadPid(), heartbeat: Date.now() });
    const lock = new HostLock(dir);
    expect(lock.acquire()).toBeUndefined();
    lock.release();
  });
});

const py = torchPython();
describe.skipIf(!py)("a training stage whose work folder another host's itp holds", () => {
  it("is an error naming that host and pid, before any job starts; once its heartbeat is old, the run goes on", () => {
    const alpaca = readFileSync(join(repoRoot, "pipelines/data/quickstart/alpaca_sample.jsonl"), "utf8");
    const dir = tempTree({
      "data.jsonl": alpaca,
      "r.itp": `dataset data: Instruction = jsonl("data.jsonl")\n\ndataset few = take(data, n: 4)\n\ntrain tuned = sft(few, base: "tiny") {\n  gpus = 0\n  epochs = 1\n  batch_size = 2\n  max_length = 64\n  precision = "fp32"\n  seed = 7\n}\n`,
    });
    dirs.push(dir);
    cpSync(join(repoRoot, "pipelines/models/tiny-llama"), join(dir, "tiny"), { recursive: true });
    const env = { ITP_PYTHON: py! };
    // The stage's key (its work folder's name) is known once its input is computed.
    expect(itp(["run", "r.itp", "--store", "s", "--only", "few"], { cwd: dir, env }).code).toBe(0);
    const plan = itp(["plan", "r.itp", "--store", "s", "--json"], { cwd: dir, env });
    const key = (JSON.parse(plan.stdout) as { stages: { id: string; key: string }[] }).stages.find((s) => s.id === "tuned")!.key;
    const lock = join(dir, "s", "work", key, "lock");
    plant(lock, { host: "login2", pid: 4242, heartbeat: Date.now() + 3_600_000 });
    const r = itp(["run", "r.itp", "--store", "s"], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).not.toMatch(stackTrace);
    expect(r.stderr).toContain("stage tuned is being trained by another itp (pid 4242 on login2)");
    expect(existsSync(join(dir, "s", "work", key, "train.log"))).toBe(false);
    // While it trains there, `itp show` names its job and log (job.json, written by that itp).
    const log = join(dir, "s", "work", key, "train.log");
    writeFileSync(join(dir, "s", "work", key, "job.json"), JSON.stringify({ itp_pid: 4242, host: "login2", executor: "slurm", handle: { id: "77", stage: "tuned", describe: "slurm job 77", logFile: log } }));
    const show = itp(["show", "r.itp", "tuned", "--store", "s"], { cwd: dir, env });
    expect(show.code).toBe(1);
    expect(show.stderr).toContain(`its job: slurm job 77 (submitted from login2), log s/work/${key}/train.log`);
    rmSync(join(dir, "s", "work", key, "job.json"));
    plant(lock, { host: "login2", pid: 4242, heartbeat: Date.now() - 3_600_000 });
    const again = itp(["run", "r.itp", "--store", "s", "--json"], { cwd: dir, env });
    expect(again.code, again.stderr).toBe(0);
  }, 300_000);
});
