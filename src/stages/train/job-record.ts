import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { Effect } from "effect";
import { hostname } from "node:os";
import { join } from "node:path";
import type { ProcessExecutor, ProcessHandle } from "../../executors/process.js";
import { UserError } from "../../core/errors.js";
import { processExecutor } from "../../executors/index.js";
import { HostLock } from "../support/host-lock.js";

interface Recorded {
  readonly itp_pid: number;
  readonly host?: string;
  readonly executor: string;
  readonly handle: ProcessHandle;
}

/**
 * The job a stage's work folder belongs to. While an itp trains the stage it holds the folder's lock (`lock/`, a
 * HostLock: safe across hosts on shared storage, so two itps on two login nodes never train the same checkpoints)
 * and records the job's handle in `job.json`. A job left by an itp that is gone (kill -9, a lost login node) may
 * still run, or wait in a cluster's queue: before another job uses the same checkpoints, it is stopped through its
 * handle. A lock held by a live itp is an error, not a takeover.
 */
export function jobRecord(work: string) {
  const file = join(work, "job.json");
  const lock = new HostLock(join(work, "lock"), { alive: itpAlive });
  return {
    async takeOver(current: ProcessExecutor, stage: string): Promise<void> {
      const held = lock.acquire();
      if (held) {
        const who = held.host === hostname() ? `pid ${held.pid}` : `pid ${held.pid} on ${held.host}`;
        const job = readRecord(file);
        throw new UserError(`stage ${stage} is being trained by another itp (${who}${job ? `, job ${job.handle.describe}` : ""})`, "wait for it to finish, or stop it; two runs must not write the same checkpoints");
      }
      const r = readRecord(file);
      if (!r) {
        rmSync(file, { force: true });
        return;
      }
      const ex = r.executor === current.name ? current : processExecutor(r.executor);
      await Effect.runPromise(ex.cancel(r.handle));
      rmSync(file, { force: true });
    },
    write(executor: string, handle: ProcessHandle): void {
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ itp_pid: process.pid, host: hostname(), executor, handle } satisfies Recorded) + "\n");
      renameSync(tmp, file);
    },
    async clear(): Promise<void> {
      rmSync(file, { force: true });
      lock.release();
    },
  };
}

function readRecord(file: string): Recorded | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Recorded;
  } catch {
    return undefined;
  }
}

/** Is an itp of that pid running here? (On Linux its command line is read, so a recycled pid is not taken for one.) */
function itpAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("itp");
  } catch {
    return true;
  }
}
