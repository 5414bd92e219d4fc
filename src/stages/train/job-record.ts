import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { Effect } from "effect";
import { join } from "node:path";
import type { ProcessExecutor, ProcessHandle } from "../../executors/process.js";
import { UserError } from "../../core/errors.js";
import { processExecutor } from "../../executors/index.js";

interface Recorded {
  readonly itp_pid: number;
  readonly executor: string;
  readonly handle: ProcessHandle;
}

/**
 * The job a stage's work folder belongs to, recorded in `job.json` while it runs: the itp that started it and the
 * job's handle. A job whose itp is gone (kill -9) may still run; before another job uses the same checkpoints, it
 * is stopped through its handle. A job whose itp is alive belongs to a run going on now: an error, not a takeover.
 */
export function jobRecord(work: string) {
  const file = join(work, "job.json");
  return {
    async takeOver(current: ProcessExecutor, stage: string): Promise<void> {
      if (!existsSync(file)) return;
      let r: Recorded;
      try {
        r = JSON.parse(readFileSync(file, "utf8")) as Recorded;
      } catch {
        rmSync(file, { force: true });
        return;
      }
      if (r.itp_pid !== process.pid && alive(r.itp_pid)) {
        throw new UserError(`stage ${stage} is being trained by another itp (pid ${r.itp_pid}, job ${r.handle.describe})`, "wait for it to finish, or stop it; two runs must not write the same checkpoints");
      }
      const ex = r.executor === current.name ? current : processExecutor(r.executor);
      await Effect.runPromise(ex.cancel(r.handle));
      rmSync(file, { force: true });
    },
    write(executor: string, handle: ProcessHandle): void {
      const tmp = `${file}.tmp`;
      writeFileSync(tmp, JSON.stringify({ itp_pid: process.pid, executor, handle } satisfies Recorded) + "\n");
      renameSync(tmp, file);
    },
    async clear(): Promise<void> {
      rmSync(file, { force: true });
    },
  };
}

/** Is an itp of that pid running? (On Linux its command line is read, so a recycled pid is not taken for one.) */
function alive(pid: number): boolean {
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
