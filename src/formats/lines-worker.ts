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
// Each predicate twice: for lines decoded as UTF-8, and for lines read as latin1 (see below and PredicateInput).
const predicates = settings.predicate === undefined ? undefined : { utf8: compilePredicate(settings.predicate), latin1: compilePredicate(settings.predicate, "latin1") };
// Downstream predicates that do not compile are left out (bit set in every chunk's alsoFailed): their stage will
// report the error itself.
const alsoBoth = (settings.also ?? []).map((e) => {
  try {
    return { utf8: compilePredicate(e), latin1: compilePredicate(e, "latin1") };
  } catch {
    return undefined;
  }
});
const alsoBroken = alsoBoth.reduce((m, f, k) => (f ? m : m | (1 << k)), 0);
const check = recordCheck(settings.type);
/**
 * Lines are read as latin1 where that gives the same verdicts: no declared type to check (its checks read the
 * strings), valid UTF-8, no `\u` escape on the line (its code point would not be a byte). JSON.parse reads a one-byte
 * string about twice as fast as the same text decoded from mixed UTF-8; a line that does not parse is read again as
 * UTF-8, so its problem is told as the serial reader tells it.
 */
const latin1Lines = check === undefined;
const ESCAPE = Buffer.from("\\u");

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
  const line = (start: number, end: number, latin1: boolean, utf8: () => boolean): boolean => {
    const i = flags.length;
    alsoBits.push(0);
    let v = parseLine(latin1 ? buf.toString("latin1", start, end) : buf.toString("utf8", start, end));
    if (latin1 && (v === undefined || v instanceof LineFault)) {
      latin1 = false;
      v = parseLine(buf.toString("utf8", start, end));
    }
    const mode = latin1 ? "latin1" : "utf8";
    const predicate = predicates?.[mode];
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
    for (let k = 0; k < alsoBoth.length; k++) {
      if (alsoFailed & (1 << k)) continue;
      try {
        if (alsoBoth[k]![mode](v)) alsoBits[i] = alsoBits[i]! | (1 << k);
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
  // Where the next `\u` is (none: the chunk's length).
  let escape = -1;
  for (let next = 0; next < buf.length; ) {
    const start = next;
    let end = buf.indexOf(10, start);
    if (end < 0) end = buf.length;
    next = end + 1;
    if (end > start && buf[end - 1] === 13) end--, (cr = true);
    if (escape < start && latin1Lines && valid) {
      escape = buf.indexOf(ESCAPE, start);
      if (escape < 0) escape = buf.length;
    }
    if (!line(start, end, latin1Lines && valid && escape >= end, valid ? yes : () => isUtf8(buf.subarray(start, end)))) break;
  }
  if (fatal) return { lines: fatal.i + 1, flags: new Uint8Array(0), problems: [], kept, cr, clean: false, fatal };
  return {
    lines: flags.length,
    flags: Uint8Array.from(flags),
    problems,
    kept,
    cr,
    clean: !cr && kept === flags.length && !flags.includes(REENCODE) && buf[buf.length - 1] === 10,
    ...(alsoBoth.length > 0 ? { also: Uint8Array.from(alsoBits), alsoFailed } : {}),
  };
}
