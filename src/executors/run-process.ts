import { Effect, Exit } from "effect";
import { open, stat } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";
import { TransientError, UserError } from "../core/errors.js";
import type { ProcessExecutor, ProcessHandle, ProcessSpec, ProcessStatus } from "./process.js";

/** A JSON object the program printed on a line of its own (a metrics line). */
export type ProgramEvent = Readonly<Record<string, unknown>>;

export interface FollowOptions {
  /** Each JSON-object line of the program's output, in order. */
  readonly onEvent?: (e: ProgramEvent) => void;
  /** Each other line (log text). */
  readonly onText?: (line: string) => void;
  /** Called once the job is submitted (to record its handle, so a later itp can find it). */
  readonly onSubmitted?: (h: ProcessHandle) => void;
}

/**
 * Run a program through any executor and follow its log file: the lines it appends after submission are read as
 * they come (a cluster job writes the same file on shared storage, so this works whatever the executor), JSON
 * objects passed to `onEvent`, other text to `onText`. Interrupting the returned effect cancels the job, and
 * waits until it is gone. A failure becomes an error that says why: the program's own `{"event": "error"}` line
 * (a user error, with its hint), or the reason and the last lines of its log; a node failure or a preemption is
 * transient (a retry policy retries it, and the job resumes from its checkpoint).
 */
export function runProcess(ex: ProcessExecutor, spec: ProcessSpec, o: FollowOptions = {}): Effect.Effect<void, Error> {
  return Effect.gen(function* () {
    // The log is appended to: what an earlier attempt wrote is not read again.
    const start = yield* Effect.promise(() => stat(spec.logFile).then((s) => s.size, () => 0));
    const reader = new LogFollower(spec.logFile, start, o);
    return yield* Effect.acquireUseRelease(
      ex.submit(spec).pipe(Effect.tap((h) => Effect.sync(() => o.onSubmitted?.(h)))),
      (h) =>
        Effect.gen(function* () {
          for (;;) {
            const s: ProcessStatus = yield* ex.poll(h);
            yield* Effect.promise(() => reader.drain());
            if (s.state === "done") return;
            if (s.state === "failed") {
              yield* Effect.promise(() => reader.drain(true));
              return yield* Effect.fail(failure(spec, h, s, reader));
            }
          }
        }),
      (h, exit) => (Exit.isFailure(exit) && Exit.hasInterrupts(exit) ? ex.cancel(h) : Effect.void),
    );
  });
}

function failure(spec: ProcessSpec, h: ProcessHandle, s: ProcessStatus & { state: "failed" }, r: LogFollower): Error {
  if (r.error) return new UserError(`stage ${spec.stage}: ${r.error.message}`, r.error.hint);
  const tail = r.lastLines.length > 0 ? `; the last lines of ${spec.logFile}:\n  ${r.lastLines.join("\n  ")}` : ` (log: ${spec.logFile})`;
  const what = `stage ${spec.stage}: the job (${h.describe}) ${s.reason === "FAILED" ? "failed" : `ended: ${s.reason}`}, ${s.message}${tail}`;
  if (s.reason === "NODE_FAIL" || s.reason === "PREEMPTED" || s.reason === "BOOT_FAIL") return new TransientError(what);
  if (s.reason === "OUT_OF_MEMORY") return new UserError(what, "lower micro_batch_size, turn on gradient_checkpointing, or ask for more memory (memory = ...)");
  return new Error(what);
}

/** Reads what a program appends to its log file, line by line. */
class LogFollower {
  private offset: number;
  private partial = "";
  /** A character split between two reads is decoded whole. */
  private readonly decoder = new StringDecoder("utf8");
  /** The program's own error report, when it printed one. */
  error: { message: string; hint?: string } | undefined;
  readonly lastLines: string[] = [];

  constructor(
    private readonly path: string,
    start: number,
    private readonly o: FollowOptions,
  ) {
    this.offset = start;
  }

  /** Read what is new; at the end (`final`), a last line without its line break counts too. */
  async drain(final = false): Promise<void> {
    let fh;
    try {
      fh = await open(this.path, "r");
    } catch {
      return; // not created yet
    }
    try {
      const buf = Buffer.allocUnsafe(1 << 16);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        const text = this.partial + this.decoder.write(buf.subarray(0, bytesRead));
        const lines = text.split("\n");
        this.partial = lines.pop()!;
        for (const l of lines) this.line(l);
      }
    } finally {
      await fh.close();
    }
    if (final && this.partial !== "") {
      this.line(this.partial);
      this.partial = "";
    }
  }

  private line(raw: string): void {
    const l = raw.replace(/\r$/, "");
    if (l.startsWith("{")) {
      let e: unknown;
      try {
        e = JSON.parse(l);
      } catch {
        e = undefined;
      }
      if (e && typeof e === "object" && !Array.isArray(e)) {
        const ev = e as ProgramEvent;
        if (ev["event"] === "error" && typeof ev["message"] === "string") this.error = { message: ev["message"], ...(typeof ev["hint"] === "string" ? { hint: ev["hint"] } : {}) };
        this.o.onEvent?.(ev);
        return;
      }
    }
    if (l.trim() === "") return;
    this.lastLines.push(l);
    if (this.lastLines.length > 20) this.lastLines.shift();
    this.o.onText?.(l);
  }
}
