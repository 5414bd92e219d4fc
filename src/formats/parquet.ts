import { createHash } from "node:crypto";
import { mkdir, open, rename, rm, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type FileMetaData } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { ByteWriter, ParquetWriter, type SchemaElement } from "hyparquet-writer";
import { UserError } from "../core/errors.js";
import { JsonlWriter, readJsonl, type RecordValue } from "../core/records.js";
import { passes, reportBad, type RecordReadOptions } from "./bad-record.js";

/**
 * Apache Parquet in and out, one row group at a time (memory holds one row group, not the file).
 *
 * Writing infers one column per field (in first-seen order) with the narrowest type that holds every value:
 * strings as STRING, numbers as INT64 when all are safe integers (else DOUBLE), booleans as BOOLEAN, and lists and
 * objects (chat `messages`) as JSON text in a column annotated with Parquet's JSON logical type. Nested values go
 * as JSON rather than as Parquet LIST/STRUCT groups because records are open: fields differ between records and
 * list elements need not share a shape, which nested Parquet types cannot hold. The JSON annotation is what makes
 * reading them back unambiguous: the reader parses exactly the columns so annotated (ours or any other writer's),
 * and leaves plain strings alone even when they look like JSON. A column whose values mix kinds (strings and
 * numbers) is JSON too, so every value comes back as it went in. A missing field is a Parquet null, read back as
 * missing where that is unambiguous (see ABSENT_FIELDS).
 */

export interface ParquetReadOptions extends RecordReadOptions {
  /** Read only these top-level columns. */
  readonly columns?: readonly string[];
}

const CORRUPT_HINT = "the file is truncated or not Parquet: download or export it again";

/** The text of a JSON-annotated value that does not parse, kept so the row can be reported with its field. */
class InvalidJson {
  constructor(
    readonly text: string,
    readonly error: string,
  ) {}
}

const decoder = new TextDecoder();
const parsers = {
  jsonFromBytes(bytes: Uint8Array): unknown {
    if (!bytes) return bytes;
    const text = decoder.decode(bytes);
    try {
      return JSON.parse(text);
    } catch (e) {
      return new InvalidJson(text, (e as Error).message);
    }
  },
};

async function openParquet(path: string, shown: string): Promise<FileHandle> {
  try {
    return await open(path, "r");
  } catch (e) {
    throw new UserError(`cannot read ${shown} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, "paths are relative to the recipe's folder");
  }
}

/** The file as hyparquet reads it: byte ranges read on demand through one file handle. */
function fileBuffer(fh: FileHandle, size: number): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end = size) {
      const bytes = new Uint8Array(Math.max(0, end - start));
      let done = 0;
      while (done < bytes.length) {
        const { bytesRead } = await fh.read(bytes, done, bytes.length - done, start + done);
        if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${start + done}`);
        done += bytesRead;
      }
      return bytes.buffer;
    },
  };
}

/** The footer: schema, row groups and key-value metadata. A file that is not (whole) Parquet is a `UserError`. */
export async function parquetFooter(path: string, shown: string): Promise<FileMetaData> {
  const fh = await openParquet(path, shown);
  try {
    return await readFooter(fileBuffer(fh, (await fh.stat()).size), shown);
  } finally {
    await fh.close();
  }
}

async function readFooter(file: AsyncBuffer, shown: string): Promise<FileMetaData> {
  try {
    return await parquetMetadataAsync(file, { parsers });
  } catch (e) {
    throw new UserError(`${shown} is not a readable Parquet file (${(e as Error).message.replace(/^parquet /, "")})`, CORRUPT_HINT);
  }
}

/**
 * Footer key: the columns (a JSON list) whose nulls stand for a field the record did not have. Parquet has one
 * null for both; the writer lists a column here only when none of its records held an explicit null, so the
 * reader can drop exactly those nulls. Where a column holds both, nulls stay nulls.
 */
const ABSENT_FIELDS = "itp.absent_fields";

function absentFields(metadata: FileMetaData): Set<string> {
  const kv = metadata.key_value_metadata?.find((e) => e.key === ABSENT_FIELDS)?.value;
  try {
    const names: unknown = kv ? JSON.parse(kv) : [];
    return new Set(Array.isArray(names) ? names.filter((n): n is string => typeof n === "string") : []);
  } catch {
    return new Set();
  }
}

/** A decoded value as JSON: bigint to number (or string when a number would lose digits), Date to ISO text. */
function jsonValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case "string":
    case "boolean":
      return v;
    case "number":
      return Number.isFinite(v) ? v : null;
    case "bigint":
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    case "object":
      break;
    default:
      return null;
  }
  if (Array.isArray(v)) return v.map(jsonValue);
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<unknown>, jsonValue);
  const out: RecordValue = {};
  for (const [k, x] of Object.entries(v)) out[k] = jsonValue(x);
  return out;
}

/**
 * Records of a Parquet file, row group by row group: bigint values become numbers (decimal strings beyond 2^53,
 * where a number would lose digits), timestamps ISO 8601 strings, binary values base64 strings. A file whose footer cannot be read fails whatever `onBad`
 * says (there are no records to skip to); a row group that cannot be decoded, or a JSON column value that does not
 * parse, is a bad record (each row of the group, when skipping).
 */
export async function* readParquet(path: string, shown: string, opts: ParquetReadOptions = {}): AsyncGenerator<RecordValue> {
  const fh = await openParquet(path, shown);
  try {
    const file = fileBuffer(fh, (await fh.stat()).size);
    const metadata = await readFooter(file, shown);
    const names = parquetSchema(metadata).children.map((c) => c.element.name);
    const absent = absentFields(metadata);
    const columns = opts.columns ? [...opts.columns] : undefined;
    for (const c of columns ?? []) {
      if (!names.includes(c)) throw new UserError(`${shown} has no column \`${c}\``, `its columns: ${names.join(", ")}`);
    }
    let groupStart = 0;
    for (const [g, group] of metadata.row_groups.entries()) {
      const groupEnd = groupStart + Number(group.num_rows);
      let rows: Record<string, unknown>[];
      try {
        rows = await parquetReadObjects({ file, metadata, rowStart: groupStart, rowEnd: groupEnd, ...(columns ? { columns } : {}), compressors, parsers });
      } catch (e) {
        const problem = `row group ${g} (rows ${groupStart} to ${groupEnd - 1}) cannot be decoded (${(e as Error).message.replace(/^parquet /, "")})`;
        if (!opts.onBad) throw new UserError(`${shown} row ${groupStart}: ${problem}`, CORRUPT_HINT);
        for (let row = groupStart; row < groupEnd; row++) opts.onBad({ file: shown, at: { row }, problem, reason: "unreadable Parquet row group", raw: "" });
        groupStart = groupEnd;
        continue;
      }
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!;
        const record: RecordValue = {};
        let bad: { field: string; json: InvalidJson } | undefined;
        for (const [k, v] of Object.entries(row)) {
          if ((v === null || v === undefined) && absent.has(k)) continue;
          if (v instanceof InvalidJson) {
            bad ??= { field: k, json: v };
            record[k] = v.text;
          } else record[k] = jsonValue(v);
        }
        if (bad) {
          reportBad({ file: shown, at: { row: groupStart + i }, problem: `field \`${bad.field}\` is annotated JSON but does not parse (${bad.json.error})`, reason: "invalid JSON in a Parquet column", raw: record }, opts.onBad);
          continue;
        }
        if (passes(record, shown, { row: groupStart + i }, opts)) yield record;
      }
      groupStart = groupEnd;
    }
  } finally {
    await fh.close();
  }
}

// ---- writing ----

type ColumnKind = "string" | "int" | "double" | "bool" | "json";

/** A column of a Parquet file being written: its name and the kind every one of its values fits. */
export interface ParquetColumn {
  readonly name: string;
  readonly kind: ColumnKind;
  /** Some records lack the field and none holds null in it: its nulls are written as "absent" (see ABSENT_FIELDS). */
  readonly nullMeansAbsent: boolean;
}

type ValueKind = ColumnKind | "null";

function kindOf(v: unknown): ValueKind {
  if (v === null || v === undefined) return "null";
  switch (typeof v) {
    case "string":
      return "string";
    case "boolean":
      return "bool";
    case "number":
      return Number.isSafeInteger(v) ? "int" : "double";
    default:
      return "json";
  }
}

function widen(a: ValueKind | undefined, b: ValueKind): ValueKind {
  if (a === undefined || a === b || a === "null") return b;
  if (b === "null") return a;
  if ((a === "int" && b === "double") || (a === "double" && b === "int")) return "double";
  return "json";
}

/** Learns the columns of a dataset from its records: first-seen order, the narrowest kind that holds every value. */
export class ParquetSchemaBuilder {
  private readonly seen = new Map<string, { kind: ValueKind; present: number; nulls: number }>();
  private rows = 0;

  add(r: RecordValue): void {
    this.rows++;
    for (const k of Object.keys(r)) {
      const v = r[k];
      if (v === undefined) continue;
      const c = this.seen.get(k);
      if (c) {
        c.kind = widen(c.kind, kindOf(v));
        c.present++;
        if (v === null) c.nulls++;
      } else this.seen.set(k, { kind: kindOf(v), present: 1, nulls: v === null ? 1 : 0 });
    }
  }

  /** A column of nulls only is a string column. */
  columns(): ParquetColumn[] {
    return [...this.seen].map(([name, c]) => ({ name, kind: c.kind === "null" ? "string" : c.kind, nullMeansAbsent: c.present < this.rows && c.nulls === 0 }));
  }
}

function schemaElement(c: ParquetColumn): SchemaElement {
  const e = { name: c.name, repetition_type: "OPTIONAL" as const };
  switch (c.kind) {
    case "string":
      return { ...e, type: "BYTE_ARRAY", converted_type: "UTF8" };
    case "json":
      return { ...e, type: "BYTE_ARRAY", converted_type: "JSON" };
    case "int":
      return { ...e, type: "INT64" };
    case "double":
      return { ...e, type: "DOUBLE" };
    case "bool":
      return { ...e, type: "BOOLEAN" };
  }
}

/** hyparquet-writer's byte sink, flushed to a file after each row group and hashed on the way. */
class FileSink extends ByteWriter {
  private readonly hash = createHash("sha256");

  constructor(private readonly fh: FileHandle) {
    super(1 << 20);
  }

  async flush(): Promise<void> {
    if (this.index === 0) return;
    const bytes = new Uint8Array(this.buffer, 0, this.index);
    this.hash.update(bytes);
    let done = 0;
    while (done < bytes.length) done += (await this.fh.write(bytes, done, bytes.length - done)).bytesWritten;
    this.index = 0;
  }

  override async finish(): Promise<void> {
    await this.flush();
  }

  digest(): string {
    return this.hash.digest("hex");
  }
}

/** Row groups close at this many rows or (roughly) bytes of values, whichever comes first. */
const GROUP_ROWS = 100_000;
const GROUP_BYTES = 64 << 20;

function approxBytes(v: unknown): number {
  if (typeof v === "string") return v.length;
  if (v === null || typeof v !== "object") return 8;
  let n = 2;
  if (Array.isArray(v)) for (const x of v) n += approxBytes(x) + 1;
  else for (const [k, x] of Object.entries(v)) n += k.length + approxBytes(x) + 2;
  return n;
}

export interface ParquetWriteResult {
  readonly rows: number;
  /** sha256 of the file's bytes. */
  readonly digest: string;
}

export interface ParquetWriteOptions {
  /** Called when the last record is written: its entries go into the footer's key-value metadata. */
  readonly metadata?: () => Record<string, string>;
  /** Rows per row group at most (default 100,000; a group also closes at about 64 MB of values). */
  readonly groupRows?: number;
}

/** Write records with the given columns (from `ParquetSchemaBuilder`) to `path`, which must not exist. */
export async function writeParquetColumns(
  path: string,
  columns: readonly ParquetColumn[],
  records: AsyncIterable<RecordValue> | Iterable<RecordValue>,
  opts: ParquetWriteOptions = {},
): Promise<ParquetWriteResult> {
  const groupRows = opts.groupRows ?? GROUP_ROWS;
  const absent = columns.filter((c) => c.nullMeansAbsent).map((c) => c.name);
  const fh = await open(path, "wx");
  try {
    const sink = new FileSink(fh);
    const writer = new ParquetWriter({ writer: sink, schema: [{ name: "root", num_children: columns.length }, ...columns.map(schemaElement)], createdBy: "itp" });
    let group: RecordValue[] = [];
    let groupBytes = 0;
    let rows = 0;
    const flushGroup = async () => {
      if (group.length === 0) return;
      const columnData = columns.map((c) => ({
        name: c.name,
        data: group.map((r) => {
          const v = r[c.name];
          if (v === undefined || v === null) return null;
          return c.kind === "int" ? BigInt(v as number) : v;
        }),
      }));
      group = [];
      groupBytes = 0;
      await writer.write({ columnData, rowGroupSize: Number.MAX_SAFE_INTEGER });
    };
    for await (const r of records) {
      group.push(r);
      for (const c of columns) groupBytes += approxBytes(r[c.name]);
      rows++;
      if (group.length >= groupRows || groupBytes >= GROUP_BYTES) await flushGroup();
    }
    await flushGroup();
    const kv = Object.entries({ ...(absent.length > 0 ? { [ABSENT_FIELDS]: JSON.stringify(absent) } : {}), ...opts.metadata?.() });
    if (kv.length > 0) writer.kvMetadata = kv.map(([key, value]) => ({ key, value }));
    await writer.finish();
    await fh.sync();
    return { rows, digest: sink.digest() };
  } finally {
    await fh.close();
  }
}

/**
 * Write records to a Parquet file at `path` (its folder made if need be), atomically: a temporary file beside it,
 * then a rename. The columns
 * must be known before the first row group, so records that can only be iterated once (anything but an array) are
 * spooled to a JSON Lines file beside `path` first.
 */
export async function writeParquet(path: string, records: AsyncIterable<RecordValue> | Iterable<RecordValue>): Promise<void> {
  const schema = new ParquetSchemaBuilder();
  const tmp = `${path}.${process.pid}.tmp`;
  const spool = `${path}.${process.pid}.spool.jsonl`;
  await mkdir(dirname(path), { recursive: true });
  try {
    await rm(tmp, { force: true });
    if (Array.isArray(records)) {
      for (const r of records as RecordValue[]) schema.add(r);
      await writeParquetColumns(tmp, schema.columns(), records);
    } else {
      const w = new JsonlWriter(spool);
      try {
        for await (const r of records) {
          schema.add(r);
          await w.write(r);
        }
        await w.finish();
      } catch (e) {
        await w.abort();
        throw e;
      }
      await writeParquetColumns(tmp, schema.columns(), readJsonl(spool));
    }
    await rename(tmp, path);
  } finally {
    await rm(spool, { force: true });
    await rm(tmp, { force: true });
  }
}
