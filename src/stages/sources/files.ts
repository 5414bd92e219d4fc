import { statSync } from "node:fs";
import { open } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import type { Json } from "../../core/ir.js";
import { droppedRecord, location, reportBad, type RecordReadOptions } from "../../formats/bad-record.js";
import { globFiles } from "../../formats/glob.js";
import { recordCheck } from "../../formats/record-type.js";
import { JsonlFileRecords } from "../../formats/jsonl.js";
import { leaveVerdicts } from "../../formats/line-verdicts.js";
import { BAD, ChunkLines, classifiedChunks, KEEP, MAX_ALSO, readerThreads, readsInParallel, REENCODE } from "../../formats/parallel-lines.js";
import { readRecordsFile, type RecordFormat, type RecordsFileOptions } from "../../formats/records-file.js";
import type { OutputSink, StageContext, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import { asyncImpl, checkAbort } from "../support/records.js";

const at = (baseDir: string, p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));

/**
 * How a file source reads: records checked against the type the declaration annotates (`dataset d: Instruction =
 * jsonl(...)`), and with `on_error: "skip"` bad records dropped (counted by reason, located in the detail)
 * instead of failing the stage. Shared with the other sources of files (the hub's).
 */
export function recordReadOptions(ctx: StageContext): RecordReadOptions {
  const check = recordCheck(ctx.stage.type);
  return {
    ...(check ? { check } : {}),
    ...(ctx.params["on_error"] === "skip" ? { onBad: (b) => ctx.drop(droppedRecord(b), b.reason, `${location(b)}: ${b.problem}`) } : {}),
  };
}

/**
 * Write records to the output up to the `limit` parameter (not reading past it), with progress: by bytes when the
 * records come from a JSON Lines file of known `size`.
 */
export async function writeRecords(ctx: StageContext, out: OutputSink, records: AsyncIterable<RecordValue>, total?: number, size?: number): Promise<number> {
  const limit = ctx.params["limit"] as number | undefined;
  let n = 0;
  if (limit === 0) return 0;
  // JSON Lines records are stored as the bytes they were read from (parsing them gives the record): no second
  // serialization.
  const lined = records instanceof JsonlFileRecords ? records : undefined;
  for await (const r of records) {
    const line = lined?.rawLine();
    if (line) await out.writeLine(line);
    else await out.write(r);
    if (++n === limit) break;
    if (n % 4096 === 0) {
      checkAbort(ctx);
      ctx.progress(n, total, lined && size ? { done: lined.bytesRead, total: size } : undefined);
    }
  }
  return n;
}

/** The size of a file for progress by bytes; undefined when it cannot be known (the reader reports why). */
function fileSize(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

/** The reader options a single-file source's parameters give. */
function fileOptions(kind: RecordFormat, p: Readonly<Record<string, Json>>): RecordsFileOptions {
  const o: { -readonly [K in keyof RecordsFileOptions]: RecordsFileOptions[K] } = {};
  if (kind === "json" && typeof p["key"] === "string") o.key = p["key"];
  if (kind === "csv" || kind === "tsv") o.header = p["header"] !== false;
  if (kind === "csv") {
    if (typeof p["delimiter"] === "string") o.delimiter = p["delimiter"];
    if (typeof p["quote"] === "string") o.quote = p["quote"];
  }
  if (kind === "parquet" && Array.isArray(p["columns"])) o.columns = p["columns"] as string[];
  return o;
}

function fileSource(kind: RecordFormat): StageImpl {
  return asyncImpl(
    async (ctx, out) => {
      const path = String(ctx.params["path"]);
      if (kind === "jsonl" && ctx.params["limit"] === undefined && readsInParallel(at(ctx.baseDir, path))) {
        const n = await parallelJsonl(ctx, out, at(ctx.baseDir, path), path, recordReadOptions(ctx));
        ctx.progress(n, n);
        return;
      }
      const n = await writeRecords(ctx, out, readRecordsFile(at(ctx.baseDir, path), path, kind, { ...fileOptions(kind, ctx.params), ...recordReadOptions(ctx) }), undefined, fileSize(at(ctx.baseDir, path)));
      ctx.progress(n, n);
    },
    { files: (p) => [String(p["path"])] },
  );
}

/**
 * A large JSON Lines file read by worker threads: the same records, errors and drops as the serial reader, the
 * lines stored as their own bytes. The number of records written.
 *
 * When every line is a record kept as it is (LF endings, a final line break, no byte order mark), the artifact is
 * the file's own bytes: nothing is written while the workers check it, and the file is then copied by the file
 * system under the digest its cache key already has (not hashed again). The first line that is not so writes
 * what came before it, and the rest is written line by line.
 *
 * The workers also evaluate the predicates of the `where` stages that read this output, and the verdicts are left
 * for them (src/formats/line-verdicts.ts), when the artifact is the file's own bytes (its digest is known here).
 */
async function parallelJsonl(ctx: StageContext, out: OutputSink, file: string, shown: string, opts: RecordReadOptions): Promise<number> {
  const keyDigest = ctx.files?.find((f) => f.path === shown)?.digest;
  let deferring = out.copyFile !== undefined && ctx.sourceDigest !== undefined && keyDigest !== undefined && !(await startsWithBom(file));
  const also = deferring ? downstreamPredicates(ctx) : [];
  // Per line of the artifact, the downstream predicates' bits.
  let bits = new Uint8Array(also.length > 0 ? 1 << 16 : 0);
  let alsoFailed = 0;
  const keepBits = (v: Uint8Array, from: number, to: number, at: number) => {
    if (at + (to - from) > bits.length) {
      const b = new Uint8Array(Math.max(bits.length * 2, at + (to - from)));
      b.set(bits);
      bits = b;
    }
    bits.set(v.subarray(from, to), at);
  };
  let offset = 0;
  let before = 0;
  let n = 0;
  let bytes = 0;
  const size = fileSize(file);
  ctx.note(`${shown} read by ${readerThreads()} worker threads`);
  for await (const { chunk, verdict } of classifiedChunks(file, { ...(ctx.stage.type ? { type: ctx.stage.type } : {}), ...(also.length > 0 ? { also } : {}) })) {
    checkAbort(ctx);
    alsoFailed |= verdict.alsoFailed ?? 0;
    if (deferring && !verdict.clean) {
      await writeFileRange(out, file, offset, n);
      deferring = false;
    }
    if (verdict.clean) {
      if (!deferring) await out.writeBytes(chunk, verdict.lines);
      else if (verdict.also) keepBits(verdict.also, 0, verdict.lines, n);
    } else {
      const lines = new ChunkLines(chunk);
      let p = 0;
      for (let i = 0; lines.advance(); i++) {
        const flag = verdict.flags[i];
        if (flag === KEEP) await out.writeLine(chunk.subarray(lines.start, lines.end));
        else if (flag === REENCODE) await out.write(JSON.parse(chunk.toString("utf8", lines.start, lines.end)) as RecordValue);
        else if (flag === BAD) {
          const q = verdict.problems[p++]!;
          const text = chunk.toString("utf8", lines.start, lines.end);
          reportBad({ file: shown, at: { line: before + i + 1 }, problem: q.problem, reason: q.reason, raw: q.parsed ? (JSON.parse(text) as RecordValue) : text, ...(q.hint ? { hint: q.hint } : {}) }, opts.onBad);
        }
      }
    }
    offset += chunk.length;
    before += verdict.lines;
    n += verdict.kept;
    bytes += chunk.length;
    ctx.progress(n, undefined, size ? { done: bytes, total: size } : undefined);
  }
  if (!deferring) return n;
  // The file must still be what was checked and keyed: its size, and its digest as the store knows it (by size,
  // modification time and inode).
  if (statSync(file).size !== offset || (await ctx.sourceDigest!(file)) !== keyDigest) {
    throw new UserError(`${shown} changed while it was being read`, "run again once nothing writes to it");
  }
  await out.copyFile!(file, keyDigest!, n);
  ctx.note(`${shown} stored as it is (${offset} bytes): copied, not hashed again`);
  for (let k = 0; k < also.length; k++) {
    if (alsoFailed & (1 << k)) continue;
    const keep = new Uint8Array(n);
    for (let i = 0; i < n; i++) keep[i] = (bits[i]! >> k) & 1;
    leaveVerdicts(keyDigest!, also[k]!, keep, n);
  }
  return n;
}

/** The predicates of the `where` stages that read this stage's output (each once, at most MAX_ALSO). */
function downstreamPredicates(ctx: StageContext): string[] {
  const out: string[] = [];
  for (const d of ctx.downstream ?? []) {
    const expr = d.params["expr"];
    if (d.kind !== "where" || typeof expr !== "string" || out.includes(expr)) continue;
    if (d.inputs.some((i) => i.role === "data" && i.from === ctx.stage.id)) out.push(expr);
  }
  return out.slice(0, MAX_ALSO);
}

async function startsWithBom(file: string): Promise<boolean> {
  const fh = await open(file);
  try {
    const b = Buffer.alloc(3);
    const { bytesRead } = await fh.read(b, 0, 3, 0);
    return bytesRead === 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;
  } finally {
    await fh.close();
  }
}

/** Write the file's first `bytes` bytes (whole lines, `records` of them) to the output. */
async function writeFileRange(out: OutputSink, file: string, bytes: number, records: number): Promise<void> {
  if (bytes === 0) return;
  const fh = await open(file);
  try {
    for (let at = 0; at < bytes; ) {
      const buf = Buffer.allocUnsafe(Math.min(1 << 20, bytes - at));
      const { bytesRead } = await fh.read(buf, 0, buf.length, at);
      if (bytesRead === 0) throw new UserError(`${file} became shorter while it was being read`, "run again once nothing writes to it");
      at += bytesRead;
      await out.writeBytes(buf.subarray(0, bytesRead), at === bytes ? records : 0);
    }
  } finally {
    await fh.close();
  }
}

/** The shard files of a `shards` stage, relative to the recipe's folder, in the order they are read. */
function shardFiles(p: Readonly<Record<string, Json>>, baseDir: string): string[] {
  const dir = String(p["dir"]);
  const pattern = String(p["pattern"] ?? "*.jsonl");
  return globFiles(at(baseDir, dir), pattern, dir).map((f) => join(dir, f));
}

export const sourceImpls: Record<string, StageImpl> = {
  jsonl: fileSource("jsonl"),
  json: fileSource("json"),
  csv: fileSource("csv"),
  tsv: fileSource("tsv"),
  parquet: fileSource("parquet"),

  shards: asyncImpl(
    async (ctx, out) => {
      const format = (ctx.params["format"] ?? "jsonl") as RecordFormat;
      const shards = shardFiles(ctx.params, ctx.baseDir);
      if (shards.length === 0) {
        throw new UserError(`no file in ${String(ctx.params["dir"])} matches \`${String(ctx.params["pattern"])}\``, "`*` and `?` stay within a folder, `**/` goes into subfolders; names starting with `.` match only a pattern that starts with `.`");
      }
      const opts = { ...fileOptions(format, ctx.params), ...recordReadOptions(ctx) };
      async function* all(): AsyncGenerator<RecordValue> {
        for (const f of shards) yield* readRecordsFile(at(ctx.baseDir, f), f, format, opts);
      }
      const n = await writeRecords(ctx, out, all());
      ctx.count("shards", shards.length);
      ctx.progress(n, n);
    },
    {
      // Every shard enters the cache key, so adding, removing or editing one reruns the stage. Listing a relative
      // dir needs the recipe's folder: a runtime that passes only the parameters gets no files for it.
      files: (p: Readonly<Record<string, Json>>, baseDir?: string) => {
        if (baseDir === undefined && !isAbsolute(String(p["dir"]))) return [];
        try {
          return shardFiles(p, baseDir ?? "/");
        } catch {
          return []; // the run reports a folder it cannot list
        }
      },
    },
  ),

  records: asyncImpl(async (ctx, out) => {
    const items = ctx.params["items"] as RecordValue[];
    const check = recordCheck(ctx.stage.type);
    for (const [element, r] of items.entries()) {
      const p = check?.(r);
      if (p) throw new UserError(`${ctx.stage.id}: record ${element}: ${p.problem}`, "fix the record in the recipe");
      await out.write(r);
    }
    ctx.progress(items.length, items.length);
  }),
};
