// A worker thread of the parallel JSON Lines reader (see parallel-lines.ts): it parses the lines of one chunk,
// checks each record against the declared type, evaluates the predicate, and answers with one verdict per line.
// Records never cross the thread boundary: the main thread writes the lines' own bytes.
import { isUtf8 } from "node:buffer";
import { parentPort, workerData } from "node:worker_threads";
import { compilePredicate } from "./predicate.js";
import { LineFault, parseLine } from "../core/records.js";
import { recordCheck } from "./record-type.js";
import { BAD, BLANK, DROP, KEEP, REENCODE, type LinesJob, type LinesReply, type LinesSettings, type LinesVerdict, type LineProblem } from "./parallel-lines.js";

const port = parentPort;
if (!port) throw new Error("lines-worker runs as a worker thread");
const settings = workerData as LinesSettings;
const predicate = settings.predicate === undefined ? undefined : compilePredicate(settings.predicate);
// Downstream predicates that do not compile are left out (bit set in every chunk's alsoFailed): their stage will
// report the error itself.
const also = (settings.also ?? []).map((e) => {
  try {
    return compilePredicate(e);
  } catch {
    return undefined;
  }
});
const alsoBroken = also.reduce((m, f, k) => (f ? m : m | (1 << k)), 0);
const check = recordCheck(settings.type);

port.on("message", (job: LinesJob) => port.postMessage({ chunk: job.chunk, verdict: classify(job) } satisfies LinesReply, [job.chunk.buffer as ArrayBuffer]));

const yes = () => true;

function classify(job: LinesJob): LinesVerdict {
  const buf = Buffer.from(job.chunk.buffer, job.chunk.byteOffset, job.chunk.byteLength);
  const flags: number[] = [];
  const alsoBits: number[] = [];
  let alsoFailed = alsoBroken;
  const problems: LineProblem[] = [];
  let kept = 0;
  let cr = false;
  let fatal: LinesVerdict["fatal"];
  /** One line's verdict; false when the stage must stop (the predicate failed). */
  const line = (text: string, utf8: () => boolean): boolean => {
    const i = flags.length;
    alsoBits.push(0);
    const v = parseLine(text);
    if (v === undefined) {
      flags.push(BLANK);
      return true;
    }
    if (v instanceof LineFault) {
      flags.push(BAD);
      problems.push({ i, problem: v.problem, reason: v.reason, ...(v.hint ? { hint: v.hint } : {}) });
      return true;
    }
    const p = check?.(v);
    if (p) {
      flags.push(BAD);
      problems.push({ i, problem: p.problem, reason: p.reason, parsed: true, ...(p.hint ? { hint: p.hint } : {}) });
      return true;
    }
    if (predicate) {
      let keep: boolean;
      try {
        keep = predicate(v);
      } catch (e) {
        fatal = { i, message: (e as Error).message, ...((e as { hint?: string }).hint ? { hint: (e as { hint?: string }).hint } : {}) };
        return false;
      }
      if (!keep) {
        flags.push(DROP);
        return true;
      }
    }
    kept++;
    for (let k = 0; k < also.length; k++) {
      if (alsoFailed & (1 << k)) continue;
      try {
        if (also[k]!(v)) alsoBits[i] = alsoBits[i]! | (1 << k);
      } catch {
        alsoFailed |= 1 << k;
      }
    }
    // Bytes that are not valid UTF-8 read as U+FFFD: such a record is serialized again, not copied.
    flags.push(utf8() ? KEEP : REENCODE);
    return true;
  };
  // Each line decoded on its own (as the serial reader does): JSON.parse reads a line's own string faster than a
  // slice of the whole chunk decoded at once, an ASCII line most of all (a one-byte string). Bytes that are not valid
  // UTF-8 are told per line, and only in a chunk that has some.
  const valid = isUtf8(buf);
  for (let next = 0; next < buf.length; ) {
    const start = next;
    let end = buf.indexOf(10, start);
    if (end < 0) end = buf.length;
    next = end + 1;
    if (end > start && buf[end - 1] === 13) end--, (cr = true);
    if (!line(buf.toString("utf8", start, end), valid ? yes : () => isUtf8(buf.subarray(start, end)))) break;
  }
  if (fatal) return { lines: fatal.i + 1, flags: new Uint8Array(0), problems: [], kept, cr, clean: false, fatal };
  return {
    lines: flags.length,
    flags: Uint8Array.from(flags),
    problems,
    kept,
    cr,
    clean: !cr && kept === flags.length && !flags.includes(REENCODE) && buf[buf.length - 1] === 10,
    ...(also.length > 0 ? { also: Uint8Array.from(alsoBits), alsoFailed } : {}),
  };
}
