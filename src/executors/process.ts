import type { Effect } from "effect";

/**
 * A program that a stage sends somewhere to run: the Python trainer, an evaluation worker, a model server.
 *
 * Stage implementations run in this process (the scheduler's `Executor`); what they hand to a `ProcessExecutor` is
 * a program with resource requests. The local process executor spawns it on this machine (GPU slots from
 * `CUDA_VISIBLE_DEVICES`); the Slurm executor writes an sbatch script for it. Adding Kubernetes is adding another
 * implementation of this interface, chosen by name.
 *
 * The program's output (stdout and stderr, merged) goes to `logFile`; the caller follows that file for JSON lines
 * (metrics), the same way whatever the executor, since a cluster job writes it on shared storage.
 */
export interface ProcessSpec {
  /** The stage's id (job names, messages). */
  readonly stage: string;
  /** Python interpreter (ITP_PYTHON, or the profile's `python`). */
  readonly python: string;
  /** Run as `python -m module ...args`; with more than one process per job, through torchrun. */
  readonly module: string;
  readonly args: readonly string[];
  /** Folders put in front of PYTHONPATH (where our Python package lives). */
  readonly pythonPath: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly resources: ProcessResources;
  /** Where the merged stdout and stderr are written (appended: a resumed job keeps the earlier attempt's lines). */
  readonly logFile: string;
  /** The stage's own Slurm partition (its `partition` parameter); else the profile's. */
  readonly partition?: string;
}

export interface ProcessResources {
  /** GPUs per node (0: CPU). */
  readonly gpus: number;
  readonly nodes: number;
  /** Processes per node when there are no GPUs (CPU training with gloo); default 1. */
  readonly procsPerNode?: number;
  readonly cpus?: number;
  readonly memoryMb?: number;
  readonly timeMs?: number;
}

export interface ProcessHandle {
  readonly id: string;
  readonly stage: string;
  /** What a user reads to find the job: `pid 1234`, `slurm job 5678`. */
  readonly describe: string;
  readonly logFile: string;
}

/** Why a job ended without success, in Slurm's words where it has them. */
export type ProcessFailure = "FAILED" | "TIMEOUT" | "CANCELLED" | "NODE_FAIL" | "OUT_OF_MEMORY" | "PREEMPTED" | "BOOT_FAIL";

export type ProcessStatus =
  | { readonly state: "pending" | "running" }
  | { readonly state: "done" }
  | { readonly state: "failed"; readonly reason: ProcessFailure; readonly exitCode?: number; readonly message: string };

export interface ProcessExecutor {
  readonly name: string;
  /**
   * The Python a job runs when the executor names one (a cluster's, from the profile: it lives on the compute
   * nodes, so it is not probed here); undefined: the local one, checked before the job starts.
   */
  readonly python?: string;
  submit(spec: ProcessSpec): Effect.Effect<ProcessHandle, Error>;
  /** The job's state; may wait a short while for a change rather than answer at once. */
  poll(handle: ProcessHandle): Effect.Effect<ProcessStatus, Error>;
  /** Stop the job (SIGTERM then SIGKILL to its process group; `scancel`); resolves when it is gone. */
  cancel(handle: ProcessHandle): Effect.Effect<void>;
  /** Lines for `itp plan`: where the job would run and with what (`local: 2 GPUs (0,1)`, sbatch resources). */
  describe(spec: Pick<ProcessSpec, "stage" | "resources" | "partition">): readonly string[];
}
