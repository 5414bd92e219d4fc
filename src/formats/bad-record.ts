import { UserError } from "../core/errors.js";
import type { RecordValue } from "../core/records.js";
import type { RecordCheck } from "./record-type.js";

/**
 * A record a reader could not accept: where it is, what is wrong, and the raw text or value (for `ctx.drop`).
 * Lines (JSON Lines, CSV) count from 1, as editors do; rows (Parquet) and elements (a JSON array) count from 0, as
 * pandas and JSON indexes do.
 */
export interface BadRecord {
  /** The file as shown to users (relative to the recipe). */
  readonly file: string;
  readonly at: { readonly line: number } | { readonly row: number } | { readonly element: number };
  /** One sentence: `not valid JSON (...)`, ``field `output` is missing (...)``. */
  readonly problem: string;
  /** A short category for counts (`dropped: <reason>`): the same for every record with the same kind of fault. */
  readonly reason: string;
  /** The record as read, or the raw text when it could not be read. */
  readonly raw: RecordValue | string;
  /** How to fix this kind of fault, when there is more to say than "fix the data". */
  readonly hint?: string;
}

/** Where the caller wants bad records: without a handler a reader throws `badRecordError` at the first one. */
export type OnBadRecord = (bad: BadRecord) => void;

export function location(b: Pick<BadRecord, "file" | "at">): string {
  const at = b.at;
  return "line" in at ? `${b.file}:${at.line}` : "row" in at ? `${b.file} row ${at.row}` : `${b.file} element ${at.element}`;
}

/** The hint of a bad-record error: how to fix this kind of fault, or how to go on without the record. */
export function skipHint(fix = "fix the data"): string {
  return `${fix}; or set on_error = "skip" to drop bad records (they are counted as dropped)`;
}

export function badRecordError(b: BadRecord): UserError {
  return new UserError(`${location(b)}: ${b.problem}`, skipHint(b.hint));
}

/** Hand a bad record to the handler, or fail with it. */
export function reportBad(b: BadRecord, onBad: OnBadRecord | undefined): void {
  if (!onBad) throw badRecordError(b);
  onBad(b);
}

/** The raw value of a bad record as `ctx.drop` takes it: a record as is, text wrapped with its location. */
export function droppedRecord(b: BadRecord): RecordValue {
  return typeof b.raw === "string" ? { ...b.at, text: b.raw } : b.raw;
}

/** What every record reader takes: where bad records go, and the check a record must pass (its declared type). */
export interface RecordReadOptions {
  readonly onBad?: OnBadRecord;
  readonly check?: RecordCheck;
}

/** Whether a record read at `at` passes the check; one that fails is reported (or thrown). */
export function passes(r: RecordValue, file: string, at: BadRecord["at"], opts: RecordReadOptions): boolean {
  const p = opts.check?.(r);
  if (!p) return true;
  reportBad({ file, at, problem: p.problem, reason: p.reason, raw: r, ...(p.hint ? { hint: p.hint } : {}) }, opts.onBad);
  return false;
}
