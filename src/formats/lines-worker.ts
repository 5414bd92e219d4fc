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
const check = recordCheck(settings.type);

port.on("message", (job: LinesJob) => port.postMessage({ chunk: job.chunk, verdict: classify(job) } satisfies LinesReply, [job.chunk.buffer as ArrayBuffer]));

function classify(job: LinesJob): LinesVerdict {
  const buf = Buffer.from(job.chunk.buffer, job.chunk.byteOffset, job.chunk.byteLength);
  const flags: number[] = [];
  const problems: LineProblem[] = [];
  let kept = 0;
  let cr = false;
  for (let next = 0; next < buf.length; ) {
    const start = next;
    let end = buf.indexOf(10, start);
    if (end < 0) end = buf.length;
    next = end + 1;
    if (end > start && buf[end - 1] === 13) end--, (cr = true);
    const i = flags.length;
    const v = parseLine(buf.toString("utf8", start, end));
    if (v === undefined) {
      flags.push(BLANK);
      continue;
    }
    if (v instanceof LineFault) {
      flags.push(BAD);
      problems.push({ i, problem: v.problem, reason: v.reason, ...(v.hint ? { hint: v.hint } : {}) });
      continue;
    }
    const p = check?.(v);
    if (p) {
      flags.push(BAD);
      problems.push({ i, problem: p.problem, reason: p.reason, parsed: true, ...(p.hint ? { hint: p.hint } : {}) });
      continue;
    }
    if (predicate) {
      let keep: boolean;
      try {
        keep = predicate(v);
      } catch (e) {
        return { lines: i + 1, flags: new Uint8Array(0), problems: [], kept, cr, clean: false, fatal: { i, message: (e as Error).message, ...((e as { hint?: string }).hint ? { hint: (e as { hint?: string }).hint } : {}) } };
      }
      if (!keep) {
        flags.push(DROP);
        continue;
      }
    }
    kept++;
    // Bytes that are not valid UTF-8 read as U+FFFD: such a record is serialized again, not copied.
    flags.push(isUtf8(buf.subarray(start, end)) ? KEEP : REENCODE);
  }
  return { lines: flags.length, flags: Uint8Array.from(flags), problems, kept, cr, clean: !cr && kept === flags.length && !flags.includes(REENCODE) && buf[buf.length - 1] === 10 };
}
