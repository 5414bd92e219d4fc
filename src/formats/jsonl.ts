import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { LineSplitter, type RecordValue } from "../runtime/records.js";
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
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        if (/^\s*$/.test(text)) return undefined; // blank lines are rare: tested for only when parsing fails
        reportBad({ file: shown, at: { line }, problem: `not valid JSON (${(e as Error).message.replace(/^JSON\.parse: /, "")})`, reason: "not valid JSON", raw: text, hint: "each line must hold one whole JSON object" }, opts.onBad);
        return undefined;
      }
      if (v === null || typeof v !== "object" || Array.isArray(v)) {
        reportBad({ file: shown, at: { line }, problem: "a line must hold one JSON object (a record)", reason: "not a JSON object", raw: text }, opts.onBad);
        return undefined;
      }
      return passes(v as RecordValue, shown, { line }, opts) ? (v as RecordValue) : undefined;
    };
    const stream = createReadStream(this.path, { highWaterMark: 1 << 20 });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
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
