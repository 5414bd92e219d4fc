import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Effect } from "effect";
import { UserError } from "../core/errors.js";
import type { ProcessExecutor, ProcessFailure, ProcessHandle, ProcessSpec, ProcessStatus } from "./process.js";

/** What a profile says about the cluster (see profile.ts); every field optional: Slurm's defaults apply. */
export interface SlurmSettings {
  readonly partition?: string;
  readonly account?: string;
  readonly qos?: string;
  readonly constraint?: string;
  /** Extra sbatch options, each written as an `#SBATCH` line. */
  readonly sbatch?: readonly string[];
  /** Shell lines run before the program (module load, activating an environment). */
  readonly setup?: readonly string[];
  readonly python?: string;
  readonly cpusPerGpu?: number;
  readonly rendezvousPort?: number;
  /** How long a poll waits before asking Slurm again (default 2 s). */
  readonly pollMs?: number;
  /** Environment of the Slurm commands (default this process's: SLURM_CONF and PATH reach them). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Runs programs as Slurm batch jobs: an sbatch script generated from the job's resources (nodes, GPUs per node,
 * memory, time) and the profile (partition, account, QOS, constraint, extra lines, setup), submitted with `sbatch`,
 * its state read from `squeue` (and `sacct` once the controller has forgotten the job), cancelled with `scancel`.
 * The job's output goes to the stage's log file on shared storage, which the caller follows as it does a local
 * job's. One process: the program itself; several on one node: torchrun standalone; several nodes: `srun` starts
 * one torchrun per node, which meet at a c10d rendezvous on the job's first node.
 */
export class SlurmExecutor implements ProcessExecutor {
  readonly name = "slurm";
  readonly python: string;
  private readonly pollMs: number;
  private readonly polled = new Set<string>();
  private readonly cancelled = new Set<string>();

  constructor(private readonly o: SlurmSettings = {}) {
    this.python = o.python ?? (o.env ?? process.env)["ITP_PYTHON"] ?? "python3";
    this.pollMs = o.pollMs ?? 2000;
  }

  describe(spec: Pick<ProcessSpec, "stage" | "resources" | "partition">): readonly string[] {
    const d = directives(spec, this.o).filter((l) => !/^--(job-name|output|open-mode|requeue)/.test(l));
    const r = spec.resources;
    const procs = r.gpus > 0 ? r.gpus : (r.procsPerNode ?? 1);
    const launch = r.nodes > 1 ? `srun + torchrun, ${r.nodes} x ${procs} processes, c10d rendezvous` : procs > 1 ? `torchrun, ${procs} processes` : "1 process";
    return [`slurm: sbatch ${d.join(" ")} (${launch})`];
  }

  submit(spec: ProcessSpec): Effect.Effect<ProcessHandle, Error> {
    return Effect.tryPromise({
      try: async () => {
        const script = join(dirname(spec.logFile), "job.sbatch");
        mkdirSync(dirname(script), { recursive: true });
        writeFileSync(script, sbatchScript(spec, this.o), { mode: 0o755 });
        const r = await this.cmd("sbatch", ["--parsable", script], spec.cwd);
        if (r.missing) throw new UserError(`stage ${spec.stage}: cannot submit to Slurm: \`sbatch\` is not installed here`, "run itp on a login node of the cluster, or choose a profile whose executor is local");
        if (r.code !== 0) {
          const why = r.stderr.split("\n").map((l) => l.replace(/^sbatch: error: (Batch job submission failed: )?/, "").trim()).filter(Boolean);
          const partition = spec.partition ?? this.o.partition;
          const hint = /partition/i.test(r.stderr) ? `the partition is ${partition ? `\`${partition}\`` : "the cluster's default"} (the profile's \`partition\`, or the stage's); \`sinfo -s\` lists the partitions` : `the script is ${script}`;
          throw new UserError(`stage ${spec.stage}: sbatch refused the job: ${why.join("; ") || `exit code ${r.code}`}`, hint);
        }
        const id = r.stdout.trim().split(";")[0]!.trim();
        if (!/^\d+(_\d+)?$/.test(id)) throw new Error(`stage ${spec.stage}: sbatch answered \`${r.stdout.trim()}\`, not a job id`);
        return { id, stage: spec.stage, describe: `slurm job ${id}`, logFile: spec.logFile };
      },
      catch: (e) => (e instanceof Error ? e : new Error(String(e))),
    });
  }

  poll(handle: ProcessHandle): Effect.Effect<ProcessStatus, Error> {
    return Effect.tryPromise({
      try: async () => {
        if (this.polled.has(handle.id)) await sleep(this.pollMs);
        this.polled.add(handle.id);
        const s = await this.state(handle.id);
        if (s.state === "done" || s.state === "failed") {
          this.polled.delete(handle.id);
          if (s.state === "failed" && s.reason === "CANCELLED" && !this.cancelled.has(handle.id)) {
            return { ...s, message: "cancelled outside itp (scancel, or by an administrator); run again to resume from its last checkpoint" };
          }
          this.cancelled.delete(handle.id);
        }
        return s;
      },
      catch: (e) => (e instanceof Error ? e : new Error(String(e))),
    });
  }

  cancel(handle: ProcessHandle): Effect.Effect<void> {
    return Effect.promise(async () => {
      this.cancelled.add(handle.id);
      await this.cmd("scancel", [handle.id]);
      // Done when Slurm says the job ended (no step of it left running), or has forgotten it.
      const end = Date.now() + 120_000;
      while (Date.now() < end) {
        const s = await this.state(handle.id).catch(() => undefined);
        if (!s || s.state === "done" || s.state === "failed") return;
        await sleep(500);
      }
    });
  }

  /** The job's state: from squeue while the controller knows the job, else from sacct. */
  private async state(id: string): Promise<ProcessStatus> {
    const q = await this.cmd("squeue", ["-h", "-j", id, "--states=all", "-o", "%T"]);
    if (q.missing) throw new Error("`squeue` is not installed here: cannot follow the Slurm job");
    const fromQueue = q.code === 0 ? q.stdout.trim().split("\n")[0]?.trim() : undefined;
    if (fromQueue) return this.status(id, fromQueue, undefined);
    const a = await this.cmd("sacct", ["-X", "-n", "-P", "-j", id, "-o", "State,ExitCode"]);
    const line = a.code === 0 ? a.stdout.trim().split("\n")[0]?.trim() : undefined;
    if (line) {
      const [st, exit] = line.split("|");
      return this.status(id, st!.split(/\s/)[0]!, exit);
    }
    // Not yet visible right after submission on a busy controller: ask again on the next poll.
    if (/Invalid job id/i.test(q.stderr) && !this.polled.has(id)) return { state: "pending" };
    throw new Error(`Slurm no longer knows job ${id} (squeue: ${q.stderr.trim() || "nothing"}; sacct: ${a.stderr.trim() || "nothing"})`);
  }

  private async status(id: string, slurmState: string, exit: string | undefined): Promise<ProcessStatus> {
    const st = slurmState.toUpperCase();
    if (["PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "RESIZING"].includes(st)) return { state: "pending" };
    if (["RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"].includes(st)) return { state: "running" };
    if (st === "COMPLETED") return { state: "done" };
    const reasons: Record<string, ProcessFailure> = { FAILED: "FAILED", TIMEOUT: "TIMEOUT", DEADLINE: "TIMEOUT", CANCELLED: "CANCELLED", REVOKED: "CANCELLED", NODE_FAIL: "NODE_FAIL", OUT_OF_MEMORY: "OUT_OF_MEMORY", PREEMPTED: "PREEMPTED", BOOT_FAIL: "BOOT_FAIL" };
    const reason = reasons[st] ?? "FAILED";
    const code = exitCode(exit ?? (await this.cmd("scontrol", ["show", "job", "-o", id])).stdout);
    const message =
      reason === "TIMEOUT"
        ? "over its time limit; raise the stage's `time`, and run again to resume from its last checkpoint"
        : reason === "OUT_OF_MEMORY"
          ? "out of memory (Slurm's limit)"
          : reason === "PREEMPTED"
            ? "preempted; run again to resume from its last checkpoint"
            : reason === "NODE_FAIL"
              ? "a node failed; run again to resume from its last checkpoint"
              : reason === "CANCELLED"
                ? "cancelled"
                : code !== undefined
                  ? `exit code ${code}`
                  : st;
    return { state: "failed", reason, ...(code !== undefined ? { exitCode: code } : {}), message: reason === "FAILED" && st !== "FAILED" ? `${st}, ${message}` : message };
  }

  private cmd(program: string, args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string; missing?: boolean }> {
    return new Promise((resolve) => {
      execFile(program, args, { encoding: "utf8", env: this.o.env ?? process.env, timeout: 60_000, ...(cwd ? { cwd } : {}) }, (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
        if (e && e.code === "ENOENT") return resolve({ code: 127, stdout: "", stderr: "", missing: true });
        resolve({ code: e ? (typeof e.code === "number" ? e.code : 1) : 0, stdout, stderr });
      });
    });
  }
}

/** `ExitCode=2:0` (scontrol) or `2:0` (sacct): the program's exit code, when it has one. */
function exitCode(text: string): number | undefined {
  const m = /(?:^|ExitCode=)(\d+):(\d+)/m.exec(text.trim());
  if (!m) return undefined;
  const code = Number(m[1]);
  return code > 0 ? code : undefined;
}

/** The `#SBATCH` options of a job, in a fixed order (the script test reads them line by line). */
function directives(spec: Pick<ProcessSpec, "stage" | "resources" | "partition"> & { logFile?: string }, o: SlurmSettings): string[] {
  const r = spec.resources;
  const procs = r.gpus > 0 ? r.gpus : (r.procsPerNode ?? 1);
  // GPU jobs: the profile's CPUs per GPU, else the cluster's default (DefCpuPerGPU); CPU jobs: one per process.
  const cpus = r.cpus ?? (r.gpus > 0 ? (o.cpusPerGpu ? r.gpus * o.cpusPerGpu : undefined) : procs > 1 ? procs : undefined);
  const partition = spec.partition ?? o.partition;
  return [
    `--job-name=itp-${spec.stage}`,
    ...(spec.logFile ? [`--output=${spec.logFile}`, "--open-mode=append"] : []),
    `--nodes=${r.nodes}`,
    "--ntasks-per-node=1",
    ...(r.gpus > 0 ? [`--gpus-per-node=${r.gpus}`] : []),
    ...(cpus !== undefined ? [`--cpus-per-task=${cpus}`] : []),
    ...(r.memoryMb !== undefined ? [`--mem=${Math.ceil(r.memoryMb)}M`] : []),
    ...(r.timeMs !== undefined ? [`--time=${slurmTime(r.timeMs)}`] : []),
    ...(partition ? [`--partition=${partition}`] : []),
    ...(o.account ? [`--account=${o.account}`] : []),
    ...(o.qos ? [`--qos=${o.qos}`] : []),
    ...(o.constraint ? [`--constraint=${o.constraint}`] : []),
    // A preempted job comes back by itself; the trainer resumes from its last checkpoint.
    "--requeue",
  ];
}

/** A time limit as sbatch takes it: `D-HH:MM:SS`, rounded up to the minute (Slurm's unit). */
export function slurmTime(ms: number): string {
  const minutes = Math.max(1, Math.ceil(ms / 60_000));
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  return `${d}-${two(h)}:${two(m)}:00`;
}

/** The batch script of a job. */
export function sbatchScript(spec: ProcessSpec, o: SlurmSettings): string {
  const r = spec.resources;
  const python = o.python ?? (o.env ?? process.env)["ITP_PYTHON"] ?? "python3";
  const procs = r.gpus > 0 ? r.gpus : (r.procsPerNode ?? 1);
  const lines = ["#!/bin/bash", `# itp: stage ${spec.stage}`];
  for (const d of directives(spec, o)) lines.push(`#SBATCH ${d}`);
  for (const extra of o.sbatch ?? []) lines.push(`#SBATCH ${extra.replace(/^#SBATCH\s+/, "")}`);
  lines.push("set -e");
  for (const s of o.setup ?? []) lines.push(s);
  lines.push(`export PYTHONPATH=${spec.pythonPath.map(quote).join(":")}\${PYTHONPATH:+:$PYTHONPATH}`);
  lines.push("export PYTHONUNBUFFERED=1");
  for (const [k, v] of Object.entries(spec.env)) lines.push(`export ${k}=${quote(v)}`);
  lines.push(`cd ${quote(spec.cwd)}`);
  const program = ["-m", spec.module, ...spec.args].map(quote).join(" ");
  // torchrun through itp_trainer.torchrun: the same launcher, with a fix for PyTorch < 2 on Python 3.11.
  if (r.nodes > 1) {
    lines.push('head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)');
    lines.push(
      `srun --nodes=${r.nodes} --ntasks-per-node=1 --kill-on-bad-exit=1 ${quote(python)} -m itp_trainer.torchrun --nnodes=$SLURM_NNODES --nproc_per_node=${procs} --rdzv_backend=c10d --rdzv_endpoint=$head:${o.rendezvousPort ?? 29500} --rdzv_id=$SLURM_JOB_ID ${program}`,
    );
  } else if (procs > 1) lines.push(`exec ${quote(python)} -m itp_trainer.torchrun --standalone --nnodes=1 --nproc_per_node=${procs} ${program}`);
  else lines.push(`exec ${quote(python)} ${program}`);
  return lines.join("\n") + "\n";
}

/** A word for the shell: as is when plain, else single-quoted. */
function quote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
