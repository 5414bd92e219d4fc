import { existsSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Ty } from "../types/types.js";

/**
 * The parallel JSON Lines reader: a large file is cut into chunks of whole lines, worker threads parse the lines
 * of each chunk (type check and predicate included) and answer with a verdict per line, and the main thread takes
 * the chunks back in file order and writes the lines' own bytes. Records never cross threads, so the work that
 * is spread is the parsing itself. Used by the `jsonl` source and by `where`; smaller files, and runs from the
 * TypeScript sources (tests), read serially with the same results.
 */

/** A line's verdict. */
export const KEEP = 0;
/** The predicate is false. */
export const DROP = 1;
/** Only white space: skipped. */
export const BLANK = 2;
/** Not JSON, not an object, or not of the declared type: see the chunk's problems. */
export const BAD = 3;
/** Kept, but its bytes are not valid UTF-8: the record is serialized again rather than copied. */
export const REENCODE = 4;

export interface LineProblem {
  /** The line's index in its chunk. */
  readonly i: number;
  readonly problem: string;
  readonly reason: string;
  readonly hint?: string;
  /** The line is a JSON object, of the wrong type. */
  readonly parsed?: boolean;
}

export interface LinesVerdict {
  readonly lines: number;
  readonly flags: Uint8Array;
  readonly problems: readonly LineProblem[];
  readonly kept: number;
  /** Some line ends in CR LF. */
  readonly cr: boolean;
  /** Every line kept as is, with LF endings only: the chunk's bytes are the output's. */
  readonly clean: boolean;
  /** The predicate failed on line `i`: the stage fails with this. */
  readonly fatal?: { readonly i: number; readonly message: string; readonly hint?: string };
  /**
   * With `LinesSettings.also`: per line, bit k set when `also[k]` holds for the line's record (lines kept only; 0
   * for the others).
   */
  readonly also?: Uint8Array;
  /** Bit k set when `also[k]` failed on some record of the chunk: its bits mean nothing. */
  readonly alsoFailed?: number;
}

/** How many downstream predicates one reading evaluates at most (bits of a byte). */
export const MAX_ALSO = 8;

export interface LinesSettings {
  readonly predicate?: string;
  readonly type?: Ty;
  /**
   * Predicates of downstream `where` stages, evaluated on every kept record while it is parsed anyway (see
   * line-verdicts.ts); they drop nothing here. At most MAX_ALSO.
   */
  readonly also?: readonly string[];
}

/** A chunk sent to a worker, and back with its verdict: its memory is moved between threads, not copied. */
export interface LinesJob {
  readonly chunk: Uint8Array;
}

export interface LinesReply {
  readonly chunk: Uint8Array;
  readonly verdict: LinesVerdict;
}

/** Bytes per chunk: 1 MiB (more would hold more memory in flight, for no speed) (smaller in tests, through ITP_PARALLEL_CHUNK_BYTES, to get many chunks from a small file). */
const CHUNK = Number(process.env["ITP_PARALLEL_CHUNK_BYTES"] ?? 1 << 20);
const workerUrl = new URL("./lines-worker.js", import.meta.url);
let workerBuilt: boolean | undefined;

/**
 * Whether a file is read in parallel: a file (not a packed artifact) of at least 16 MiB, on a machine with two cores
 * or more. `ITP_PARALLEL=0` never, `ITP_PARALLEL=1` whatever the cores (tests on a one-core machine).
 */
export function readsInParallel(path: string): boolean {
  const forced = process.env["ITP_PARALLEL"] === "1";
  if (process.env["ITP_PARALLEL"] === "0" || (!forced && availableParallelism() < 2)) return false;
  // Running from the TypeScript sources there is no worker script: the serial reader does the work.
  workerBuilt ??= existsSync(fileURLToPath(workerUrl));
  if (!workerBuilt) return false;
  const min = Number(process.env["ITP_PARALLEL_MIN_BYTES"] ?? 16 << 20);
  try {
    const st = statSync(path);
    return st.isFile() && st.size >= min;
  } catch {
    return false;
  }
}

/** The lines of a chunk, one after the other, without allocating: `start` and `end` (CR excluded) of the current one. */
export class ChunkLines {
  start = 0;
  end = 0;
  /** Where the next line starts (after this one's line break). */
  next = 0;
  constructor(private readonly chunk: Buffer) {}
  advance(): boolean {
    if (this.next >= this.chunk.length) return false;
    this.start = this.next;
    let nl = this.chunk.indexOf(10, this.start);
    if (nl < 0) nl = this.chunk.length;
    this.next = nl + 1;
    this.end = nl > this.start && this.chunk[nl - 1] === 13 ? nl - 1 : nl;
    return true;
  }
}

/** A file in chunks that end at a line break (or at the end of the file); a UTF-8 byte order mark at the start is left out. */
export async function* lineChunks(path: string): AsyncGenerator<Buffer> {
  const fh = await open(path);
  try {
    let carry = Buffer.alloc(0);
    let first = true;
    for (;;) {
      // Never from the shared pool: the chunk's memory may be moved to a worker.
      const buf = Buffer.allocUnsafeSlow(CHUNK + carry.length);
      carry.copy(buf);
      const { bytesRead } = await fh.read(buf, carry.length, CHUNK, null);
      let filled = carry.length + bytesRead;
      let from = 0;
      if (first) {
        first = false;
        if (filled >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) from = 3;
      }
      if (bytesRead === 0) {
        if (filled > from) yield buf.subarray(from, filled);
        return;
      }
      const nl = buf.lastIndexOf(10, filled - 1);
      if (nl < from) {
        // A line longer than a chunk: read on.
        carry = Buffer.from(buf.subarray(from, filled));
        continue;
      }
      carry = Buffer.from(buf.subarray(nl + 1, filled));
      filled = nl + 1;
      yield buf.subarray(from, filled);
    }
  } finally {
    await fh.close();
  }
}

/** Worker threads of the parallel reader: one per core, 2 to 8 (2 when forced on one core, so chunks interleave). */
export function readerThreads(): number {
  return Math.max(2, Math.min(availableParallelism(), 8));
}

/**
 * The chunks of a file with their verdicts, in file order. Workers (one per core) get chunks in turn; at most two
 * per worker are in flight, so memory holds a few chunks whatever the file's size.
 */
export async function* classifiedChunks(path: string, settings: LinesSettings): AsyncGenerator<{ chunk: Buffer; verdict: LinesVerdict }> {
  const n = readerThreads();
  const workers = Array.from({ length: n }, () => new Worker(workerUrl, { workerData: settings }));
  const waiting = workers.map(() => [] as { resolve: (v: LinesReply) => void; reject: (e: Error) => void }[]);
  workers.forEach((w, k) => {
    w.on("message", (v: LinesReply) => waiting[k]!.shift()?.resolve(v));
    w.on("error", (e: Error) => {
      for (const q of waiting[k]!.splice(0)) q.reject(e);
    });
    // A worker that stops without an error event (killed, out of memory) must not leave its chunks waiting forever.
    w.on("exit", (code) => {
      for (const q of waiting[k]!.splice(0)) q.reject(new Error(`a JSON Lines worker thread stopped (exit code ${code})`));
    });
  });
  const inFlight: Promise<{ chunk: Buffer; verdict: LinesVerdict }>[] = [];
  let turn = 0;
  try {
    for await (const chunk of lineChunks(path)) {
      const k = turn++ % n;
      const reply = new Promise<LinesReply>((resolve, reject) => waiting[k]!.push({ resolve, reject }));
      // The chunk owns its memory (lineChunks allocates each one): moved to the worker and back.
      workers[k]!.postMessage({ chunk } satisfies LinesJob, [chunk.buffer as ArrayBuffer]);
      const done = reply.then(({ chunk: c, verdict }) => ({ chunk: Buffer.from(c.buffer, c.byteOffset, c.byteLength), verdict }));
      done.catch(() => undefined); // awaited in order below; a failure meanwhile is not "unhandled"
      inFlight.push(done);
      if (inFlight.length >= 2 * n) yield await inFlight.shift()!;
    }
    while (inFlight.length > 0) yield await inFlight.shift()!;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
