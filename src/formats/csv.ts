import { createReadStream } from "node:fs";
import { CsvError, parse } from "csv-parse";
import { UserError } from "../core/errors.js";
import type { RecordValue } from "../core/records.js";
import { passes, reportBad, skipHint, type RecordReadOptions } from "./bad-record.js";

export interface CsvReadOptions extends RecordReadOptions {
  /** One character; default `,` (`\t` for TSV). */
  readonly delimiter?: string;
  /** Whether the first row names the columns (default true); without one they are col0, col1, ... */
  readonly header?: boolean;
  /** One character; default `"`. */
  readonly quote?: string;
}

const QUOTE_HINT = 'put a field holding the delimiter, a quote or a line break in quotes, doubling the quotes inside it ("say ""hi""")';

/** Line breaks as a reader counts them: CRLF is one. */
const breaks = (s: string) => s.match(/\r\n|\r|\n/g)?.length ?? 0;

/**
 * A csv-parse error in words, and its line: where the record starts (`consumed + 1`) for a quote that is never
 * closed (csv-parse names the last line), csv-parse's own line otherwise.
 */
function quotingError(e: CsvError, consumed: number): { line: number; problem: string } {
  const line = typeof e["lines"] === "number" ? e["lines"] : consumed + 1;
  switch (e.code) {
    case "CSV_QUOTE_NOT_CLOSED":
      return { line: consumed + 1, problem: "a quoted field is never closed (it runs to the end of the file)" };
    case "CSV_INVALID_CLOSING_QUOTE": {
      const got = /got "(.*?)"/.exec(e.message)?.[1];
      return { line, problem: `a closing quote is followed by ${got ? `\`${got}\`` : "text"} instead of the delimiter or the end of the line` };
    }
    case "INVALID_OPENING_QUOTE":
      return { line, problem: "a quote inside a field that does not start with one" };
    default:
      return { line, problem: e.message.replace(/\s*(at|on) line \d+/, "") };
  }
}

/**
 * Records of a delimited text file (RFC 4180: quoted fields may hold the delimiter, doubled quotes and line breaks;
 * CRLF, LF or CR line ends; a UTF-8 byte order mark is ignored), streamed. Every value is a string. Line numbers
 * are those of the line a record starts on. Blank lines are skipped. A row with a different number of fields than
 * the header is a bad record; so is a quoting error, after which the parser resumes where it can (with `onBad`,
 * what it skips to get there is one bad record).
 */
export async function* readCsvRecords(path: string, shown: string, opts: CsvReadOptions = {}): AsyncGenerator<RecordValue> {
  const header = opts.header ?? true;
  // Line breaks consumed before the current record, counted from the raw text (csv-parse's own line count takes a
  // CRLF inside a quoted field for two lines).
  let consumed = 0;
  const parser = parse({
    delimiter: opts.delimiter ?? ",",
    quote: opts.quote ?? '"',
    // RFC 4180 escapes a quote by doubling it, whatever the quote character (csv-parse's default escape is `"`).
    escape: opts.quote ?? '"',
    record_delimiter: ["\r\n", "\n", "\r"],
    bom: true,
    raw: true,
    info: true,
    skip_empty_lines: true,
    // Column counts are checked here, so that a bad row is reported (or skipped) like any other bad record.
    relax_column_count: true,
    ...(opts.onBad
      ? {
          skip_records_with_error: true,
          on_skip: (e: CsvError | undefined, raw: string | undefined) => {
            if (!e) return undefined;
            const { line, problem } = quotingError(e, consumed);
            opts.onBad!({ file: shown, at: { line }, problem, reason: "bad CSV quoting", raw: raw ?? "", hint: QUOTE_HINT });
            // The parser resumes after the line it stopped on: count from there.
            consumed = Math.max(consumed, line);
            return undefined;
          },
        }
      : {}),
  });
  const input = createReadStream(path);
  input.on("error", (e) => parser.destroy(e));
  input.pipe(parser);
  let names: string[] | undefined;
  try {
    for await (const { record, raw } of parser as AsyncIterable<{ record: string[]; raw: string }>) {
      const leading = breaks(/^[\r\n]*/.exec(raw)![0]);
      const line = consumed + leading + 1;
      consumed += breaks(raw);
      // A line of spaces only is blank too (csv-parse skips only empty ones).
      if (record.length === 1 && record[0]!.trim() === "") continue;
      if (!names) {
        if (header) {
          names = record.map((n, i) => n.trim() || `col${i}`);
          const dup = names.find((n, i) => names!.indexOf(n) !== i);
          if (dup !== undefined) throw new UserError(`${shown}:${line}: column \`${dup}\` appears twice in the header`, "rename one of them");
          continue;
        }
        names = record.map((_, i) => `col${i}`);
      }
      if (record.length !== names.length) {
        const what = header ? `the header has ${names.length} (${names.join(", ")})` : `the first row has ${names.length}`;
        reportBad({ file: shown, at: { line }, problem: `${record.length} field${record.length === 1 ? "" : "s"}, but ${what}`, reason: "wrong number of columns", raw, hint: QUOTE_HINT }, opts.onBad);
        continue;
      }
      const r: RecordValue = {};
      for (let i = 0; i < names.length; i++) r[names[i]!] = record[i]!;
      if (passes(r, shown, { line }, opts)) yield r;
    }
  } catch (e) {
    if (e instanceof CsvError) {
      const { line, problem } = quotingError(e, consumed);
      throw new UserError(`${shown}:${line}: ${problem}`, skipHint(QUOTE_HINT));
    }
    const code = (e as NodeJS.ErrnoException).code;
    if ((e as NodeJS.ErrnoException).syscall) throw new UserError(`cannot read ${shown} (${code})`, "paths are relative to the recipe's folder");
    throw e;
  } finally {
    input.destroy();
  }
}
