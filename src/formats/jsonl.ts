import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { LineFault, LineSplitter, parseLine, type RecordValue } from "../core/records.js";
import { passes, reportBad, type RecordReadOptions } from "./bad-record.js";

/**
 * Records of a JSON Lines file, streamed (one 1 MiB chunk and the current line in memory), with line numbers for
 * bad records: a line that is not JSON, or not an object, or fails the declared type. Blank lines and a UTF-8 byte
 * order mark are skipped; lines may end in LF or CRLF.
 * The runtime's `readJsonl` reads artifacts, which are never bad; this one reads what users give.
 */
export function readJsonlRecords(path: string, shown: string, opts: RecordReadOptions = {}): JsonlFileRecords {
  return new JsonlFileRecords(path, shown, opts);
}

export class JsonlFileRecords implements AsyncIterable<RecordValue> {
  private readonly lines = new LineSplitter();
  /** Bytes of the file read so far (by chunk: for progress). */
  bytesRead = 0;

  constructor(
    private readonly path: string,
    private readonly shown: string,
    private readonly opts: RecordReadOptions,
  ) {}

  /**
   * The bytes of the current record's line, when a source may store them as they are (valid UTF-8, so they read
   * back as the record); undefined otherwise, and the record is serialized again.
   */
  rawLine(): Buffer | undefined {
    const raw = this.lines.raw;
    return isUtf8(raw) ? raw : undefined;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<RecordValue> {
    const { shown, opts } = this;
    let line = 0;
    const parse = (text: string): RecordValue | undefined => {
      line++;
      const r = parseLine(text);
      if (r instanceof LineFault) {
        reportBad({ file: shown, at: { line }, problem: r.problem, reason: r.reason, raw: text, ...(r.hint ? { hint: r.hint } : {}) }, opts.onBad);
        return undefined;
      }
      return r && passes(r, shown, { line }, opts) ? r : undefined;
    };
    const stream = createReadStream(this.path, { highWaterMark: 1 << 20 });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      this.bytesRead += chunk.length;
      for (const text of this.lines.push(chunk)) {
        const r = parse(text);
        if (r) yield r;
      }
    }
    for (const text of this.lines.end()) {
      const r = parse(text);
      if (r) yield r;
    }
  }
}
