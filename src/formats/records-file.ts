import type { RecordValue } from "../core/records.js";
import type { RecordReadOptions } from "./bad-record.js";
import { readJsonRecords } from "./json.js";
import { readJsonlRecords } from "./jsonl.js";

/** The file formats records are read from. */
export const RECORD_FORMATS = ["jsonl", "json", "csv", "tsv", "parquet"] as const;
export type RecordFormat = (typeof RECORD_FORMATS)[number];

export interface RecordsFileOptions extends RecordReadOptions {
  /** Parquet: the columns to read. */
  readonly columns?: readonly string[];
  /** JSON: the member of the top-level object that holds the array. */
  readonly key?: string;
  /** CSV and TSV: whether the first row names the columns (default true). */
  readonly header?: boolean;
  /** CSV: one character each (defaults `,` and `"`). */
  readonly delimiter?: string;
  readonly quote?: string;
}

/**
 * The records of a file in any of the formats, streamed where the format allows (all but JSON). `shown` is the
 * name errors use (a path relative to the recipe, a hub file name). Bad records throw a `UserError` naming the
 * line or row, unless `onBad` takes them.
 */
export function readRecordsFile(path: string, shown: string, format: RecordFormat, opts: RecordsFileOptions = {}): AsyncIterable<RecordValue> {
  switch (format) {
    case "jsonl":
      return readJsonlRecords(path, shown, opts);
    case "json":
      return readJsonRecords(path, shown, opts);
    case "csv":
      return later(async () => (await import("./csv.js")).readCsvRecords(path, shown, opts));
    case "tsv":
      return later(async () => (await import("./csv.js")).readCsvRecords(path, shown, { ...opts, delimiter: "\t" }));
    case "parquet":
      return later(async () => (await import("./parquet.js")).readParquet(path, shown, opts));
  }
}

/** Records of a reader whose module is loaded on first use: the CSV and Parquet libraries are large, and most runs never read either. */
async function* later(open: () => Promise<AsyncIterable<RecordValue>>): AsyncGenerator<RecordValue> {
  yield* await open();
}

/** The format a file name implies (`x.jsonl`, `train-00000-of-00002.parquet`, `x.json.gz` is not read), if any. */
export function formatOfPath(path: string): RecordFormat | undefined {
  const m = /\.(jsonl|ndjson|json|csv|tsv|parquet)$/i.exec(path);
  if (!m) return undefined;
  const ext = m[1]!.toLowerCase();
  return ext === "ndjson" ? "jsonl" : (ext as RecordFormat);
}
