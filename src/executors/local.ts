import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync } from "node:fs";
import { delimiter, dirname } from "node:path";
import { Effect } from "effect";
import { machineGpus } from "./gpus.js";
import type { ProcessExecutor, ProcessHandle, ProcessResources, ProcessSpec, ProcessStatus } from "./process.js";

export interface LocalProcessOptions {
  /** GPU device ids jobs may use (default: the machine's, see `machineGpus`). */
  readonly gpus?: readonly string[];
  /** How long a cancelled job gets between SIGTERM and SIGKILL (default 10 s). */
  readonly graceMs?: number;
}

interface LocalJob {
  readonly child: ChildProcess;
  readonly pgid: number;
  readonly devices: readonly string[];
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  cancelled: boolean;
  readonly exited: Promise<void>;
}

/**
 * Runs programs as processes of this machine. Each job is `python -m module args`, or, with more than one process
 * (several GPUs, or several CPU processes with gloo), `python -m torch.distributed.run --standalone` (torchrun)
 * around it. A job is a process group of its own with its output appended to its log file; it gets the GPUs it
 * asks for as `CUDA_VISIBLE_DEVICES`, taken from this executor's devices, so two 1-GPU jobs run side by side on a
 * 2-GPU machine. A job dies with the itp that started it (the parent-death signal), and a job left by an itp that
 * could not stop it (kill -9) is found by its handle and cancelled.
 */
export class LocalProcessExecutor implements ProcessExecutor {
  readonly name = "local";
  private readonly free: string[];
  private readonly all: readonly string[];
  private readonly waiting: { need: number; grant: () => void }[] = [];
  private readonly jobs = new Map<string, LocalJob>();
  private readonly graceMs: number;

  constructor(opts: LocalProcessOptions = {}) {
    this.all = opts.gpus ?? machineGpus().ids;
    this.free = [...this.all];
    this.graceMs = opts.graceMs ?? 10_000;
  }

  describe(spec: Pick<ProcessSpec, "stage" | "resources">): readonly string[] {
    const r = spec.resources;
    const problem = this.refuse(r);
    if (problem) return [`local: cannot run: ${problem}`];
    if (r.gpus > 0) return [`local: ${r.gpus} GPU${r.gpus === 1 ? "" : "s"} of ${this.all.length} (devices ${this.all.join(",")})${r.gpus > 1 ? `, ${r.gpus} processes (torchrun)` : ""}`];
    const procs = r.procsPerNode ?? 1;
    return [`local: CPU, ${procs === 1 ? "1 process" : `${procs} processes (torchrun, gloo)`}`];
  }

  /** Why this machine cannot run a job with these resources, or undefined. */
  private refuse(r: ProcessResources): string | undefined {
    if (r.nodes > 1) return `${r.nodes} nodes requested; the local executor runs on this machine only (send it to a cluster with executor = "slurm")`;
    if (r.gpus > this.all.length) return `${r.gpus} GPU${r.gpus === 1 ? "" : "s"} requested; this machine has ${this.all.length}${this.all.length > 0 ? ` (${this.all.join(",")})` : ""}`;
    return undefined;
  }

  submit(spec: ProcessSpec): Effect.Effect<ProcessHandle, Error> {
    return Effect.tryPromise({
      try: async (signal) => {
        const problem = this.refuse(spec.resources);
        if (problem) throw new Error(`stage ${spec.stage}: ${problem}`);
        const devices = await this.take(spec.resources.gpus, signal);
        try {
          return this.start(spec, devices);
        } catch (e) {
          this.give(devices);
          throw e;
        }
      },
      catch: (e) => (e instanceof Error ? e : new Error(String(e))),
    });
  }

  private start(spec: ProcessSpec, devices: readonly string[]): ProcessHandle {
    const r = spec.resources;
    const procs = r.gpus > 0 ? r.gpus : (r.procsPerNode ?? 1);
    const program = procs > 1 ? ["-m", "torch.distributed.run", "--standalone", "--nnodes=1", `--nproc_per_node=${procs}`, "-m", spec.module, ...spec.args] : ["-m", spec.module, ...spec.args];
    const token = randomBytes(8).toString("hex");
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...spec.env,
      PYTHONPATH: [...spec.pythonPath, ...(process.env["PYTHONPATH"] ? [process.env["PYTHONPATH"]] : [])].join(delimiter),
      PYTHONUNBUFFERED: "1",
      // A CPU job sees no GPU, so it never takes memory on a device another job was given.
      CUDA_VISIBLE_DEVICES: devices.join(","),
      ITP_JOB: token,
    };
    mkdirSync(dirname(spec.logFile), { recursive: true });
    const fd = openSync(spec.logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(spec.python, ["-c", BOOTSTRAP, String(process.pid), ...program], { cwd: spec.cwd, env, detached: true, stdio: ["ignore", fd, fd] });
    } finally {
      closeSync(fd);
    }
    const pid = child.pid;
    if (pid === undefined) {
      // spawn reports ENOENT and the like asynchronously; the pid is missing at once.
      throw new Error(`cannot start ${spec.python} for stage ${spec.stage} (set ITP_PYTHON to a Python with PyTorch)`);
    }
    const id = `${pid}:${token}`;
    let resolveExit!: () => void;
    const job: LocalJob = { child, pgid: pid, devices, cancelled: false, exited: new Promise<void>((res) => (resolveExit = res)) };
    child.on("error", () => undefined);
    child.on("exit", (code, signal) => {
      job.exit = { code, signal };
      // Whatever the leader left in its group (torchrun's workers after a crash) goes with it.
      killGroup(pid, "SIGKILL");
      this.give(devices);
      resolveExit();
    });
    this.jobs.set(id, job);
    const where = devices.length > 0 ? `, GPU ${devices.join(",")}` : "";
    return { id, stage: spec.stage, describe: `pid ${pid}${procs > 1 ? ` (torchrun, ${procs} processes)` : ""}${where}`, logFile: spec.logFile };
  }

  poll(handle: ProcessHandle): Effect.Effect<ProcessStatus, Error> {
    return Effect.tryPromise({
      try: async () => {
        const job = this.jobs.get(handle.id);
        if (!job) throw new Error(`unknown job ${handle.id} (${handle.describe}): not started by this itp`);
        if (!job.exit) await within(job.exited, 250);
        if (!job.exit) return { state: "running" } as const;
        this.jobs.delete(handle.id);
        return statusOf(job);
      },
      catch: (e) => (e instanceof Error ? e : new Error(String(e))),
    });
  }

  cancel(handle: ProcessHandle): Effect.Effect<void> {
    return Effect.promise(async () => {
      const job = this.jobs.get(handle.id);
      if (job) {
        job.cancelled = true;
        if (!job.exit) {
          killGroup(job.pgid, "SIGTERM");
          await within(job.exited, this.graceMs);
          if (!job.exit) killGroup(job.pgid, "SIGKILL");
          await job.exited;
        }
        await groupGone(job.pgid, 5_000);
        return;
      }
      // A job of an earlier itp (its handle kept in a file): its processes are found by group and token.
      const [pgidText, token] = handle.id.split(":");
      const pgid = Number(pgidText);
      if (!Number.isInteger(pgid) || pgid <= 1 || !token) return;
      const members = () => groupMembers(pgid, token);
      if (members().length === 0) return;
      for (const p of members()) signalPid(p, "SIGTERM");
      const deadline = Date.now() + this.graceMs;
      while (members().length > 0 && Date.now() < deadline) await sleep(100);
      for (const p of members()) signalPid(p, "SIGKILL");
      const end = Date.now() + 5_000;
      while (members().length > 0 && Date.now() < end) await sleep(50);
    });
  }

  /** Take `n` devices, waiting (in order of arrival) until they are free. */
  private take(n: number, signal: AbortSignal): Promise<string[]> {
    if (n === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const waiter = {
        need: n,
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          resolve(this.free.splice(0, n));
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new Error("interrupted"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
      this.wake();
    });
  }

  private give(devices: readonly string[]): void {
    if (devices.length === 0) return;
    this.free.push(...devices);
    this.free.sort((a, b) => this.all.indexOf(a) - this.all.indexOf(b));
    this.wake();
  }

  private wake(): void {
    while (this.waiting.length > 0 && this.waiting[0]!.need <= this.free.length) this.waiting.shift()!.grant();
  }
}

/**
 * Run in the job's Python before the program: ask Linux to send SIGTERM when the parent (this itp) dies (a kill -9
 * of itp then stops the job, and torchrun passes the signal to its workers), then become the program. torchrun is
 * run in this process, after a fix for PyTorch < 2 on Python 3.11 (its `Std.from_str` iterates an IntFlag, which
 * no longer yields 0, so every torchrun failed before starting a worker).
 */
const BOOTSTRAP = [
  "import os, sys, signal",
  "try:",
  "    import ctypes",
  "    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)",
  "except Exception:",
  "    pass",
  "if os.getppid() != int(sys.argv[1]):",
  "    sys.exit('itp exited before the job started')",
  "if sys.argv[2:4] != ['-m', 'torch.distributed.run']:",
  "    os.execv(sys.executable, [sys.executable] + sys.argv[2:])",
  "import re, runpy",
  "from torch.distributed.elastic.multiprocessing.api import Std",
  "if Std.from_str('0') is None:",
  "    def from_str(cls, vm):",
  "        if re.fullmatch(r'[0-3]', vm):",
  "            return cls(int(vm))",
  "        return {int(i): cls(int(v)) for i, v in (m.split(':') for m in vm.split(','))}",
  "    Std.from_str = classmethod(from_str)",
  "sys.argv = ['torchrun'] + sys.argv[4:]",
  "runpy.run_module('torch.distributed.run', run_name='__main__', alter_sys=True)",
].join("\n");

function statusOf(job: LocalJob): ProcessStatus {
  const { code, signal } = job.exit!;
  if (job.cancelled) return { state: "failed", reason: "CANCELLED", ...(code !== null ? { exitCode: code } : {}), message: "cancelled" };
  if (code === 0) return { state: "done" };
  if (signal === "SIGKILL") return { state: "failed", reason: "FAILED", message: "killed by SIGKILL (out of memory, or killed by hand)" };
  if (signal) return { state: "failed", reason: "FAILED", message: `killed by ${signal}` };
  return { state: "failed", reason: "FAILED", ...(code !== null ? { exitCode: code } : {}), message: `exit code ${code}` };
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // already gone
  }
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Wait until no process is left in the group (the workers of a killed torchrun are reaped by init). */
async function groupGone(pgid: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    if (Date.now() > end) return;
    await sleep(50);
  }
}

/**
 * Processes of a job of an earlier itp: in its process group and carrying its token (`ITP_JOB`), so a recycled
 * group id is never mistaken for it. Read from /proc (Linux); elsewhere, the group as it is.
 */
function groupMembers(pgid: number, token: string): number[] {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    try {
      process.kill(-pgid, 0);
      return [-pgid];
    } catch {
      return [];
    }
  }
  const out: number[] = [];
  for (const p of pids) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      // Fields after the command name (which may hold spaces), in parentheses: state, ppid, pgrp.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(rest[2]) !== pgid || rest[0] === "Z") continue;
      if (readFileSync(`/proc/${p}/environ`, "utf8").split("\0").includes(`ITP_JOB=${token}`)) out.push(Number(p));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Wait for `p`, at most `ms`; the timer does not outlive the wait (it would hold the process open). */
async function within(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
