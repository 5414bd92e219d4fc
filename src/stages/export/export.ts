import { Effect } from "effect";
import { chmod, copyFile, mkdir, open, rename, rm, stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { fileDigest } from "../../core/digest.js";
import type { StageContext, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import { asyncImpl, checkAbort, dataInput } from "../support/records.js";

/**
 * `export`: the dataset as JSON Lines or Parquet at `path` (relative to the recipe's folder), written to a
 * temporary file beside it and renamed into place, so a reader never sees half a file. The stage's own output is
 * the same records, byte for byte the same JSON Lines; when the artifact comes from the cache, `onCached` rewrites
 * the file if it is missing or differs from the artifact: a JSON Lines file compared by sha256, a Parquet file by
 * the digest of the records it was written from, which it keeps in its footer.
 */

function target(ctx: StageContext): string {
  const p = String(ctx.params["path"]);
  return isAbsolute(p) ? p : resolve(ctx.baseDir, p);
}

const isParquet = (ctx: StageContext) => ctx.params["format"] === "parquet";

/** Footer key of an exported Parquet file: the sha256 of the records it holds, as JSON Lines (the artifact's digest). */
const RECORDS_DIGEST = "itp.records_sha256";

const tmpName = (dest: string) => join(dirname(dest), `.${basename(dest)}.${process.pid}.${Date.now().toString(36)}.tmp`);

async function digestIfExists(path: string): Promise<string | undefined> {
  try {
    await stat(path);
  } catch {
    return undefined;
  }
  return (await fileDigest(path)).digest;
}

/** Move a finished temporary file into place, honouring `overwrite` (an identical existing file is fine). */
async function install(ctx: StageContext, tmp: string, dest: string, digest: string): Promise<void> {
  if (ctx.params["overwrite"] === false) {
    const existing = await digestIfExists(dest);
    if (existing !== undefined && existing !== digest) {
      await rm(tmp, { force: true });
      throw new UserError(`${ctx.stage.id}: ${String(ctx.params["path"])} exists and differs from this export`, "set overwrite = true, or remove the file");
    }
  }
  await rename(tmp, dest);
}

/**
 * Write a copy of an artifact's bytes to `dest` (atomically, synced); `digest` is theirs. A stream copy, not
 * copyFile: the file gets the usual mode, not the store object's.
 */
async function writeCopy(ctx: StageContext, bytes: Readable, digest: string, dest: string, onChunk?: (chunk: Buffer) => Promise<void>): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = tmpName(dest);
  const fh = await open(tmp, "w");
  try {
    for await (const chunk of bytes as AsyncIterable<Buffer>) {
      for (let done = 0; done < chunk.length; ) done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
      await onChunk?.(chunk);
    }
    await fh.sync();
    await fh.close();
    await install(ctx, tmp, dest, digest);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * `writeCopy` of a file of the store: copied by the file system (not read into memory and written back), then given
 * the mode a new file gets (copyFile gives it the store object's).
 */
async function fileCopy(ctx: StageContext, src: string, digest: string, dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = tmpName(dest);
  try {
    const fresh = await open(tmp, "w");
    const { mode } = await fresh.stat();
    await fresh.close();
    await copyFile(src, tmp);
    await chmod(tmp, mode & 0o7777);
    const fh = await open(tmp, "r+");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    checkAbort(ctx);
    await install(ctx, tmp, dest, digest);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Write the records as Parquet to `dest` (atomically). Two passes over the records, both streamed: the first
 * learns the columns, the second writes row groups. `digest` is that of the records as JSON Lines: the input
 * artifact's, which is also the output's, since re-serializing records read from an artifact gives its bytes.
 */
async function writeParquetExport(ctx: StageContext, dest: string, records: () => AsyncIterable<RecordValue>, digest: string, onEach?: (r: RecordValue) => Promise<void>): Promise<number> {
  // Loaded here: the Parquet libraries are large and only Parquet exports need them.
  const { ParquetSchemaBuilder, writeParquetColumns } = await import("../../formats/parquet.js");
  const schema = new ParquetSchemaBuilder();
  for await (const r of records()) schema.add(r);
  await mkdir(dirname(dest), { recursive: true });
  const tmp = tmpName(dest);
  try {
    async function* second(): AsyncGenerator<RecordValue> {
      let n = 0;
      for await (const r of records()) {
        await onEach?.(r);
        yield r;
        if (++n % 4096 === 0) checkAbort(ctx);
      }
    }
    const written = await writeParquetColumns(tmp, schema.columns(), second(), { metadata: () => ({ [RECORDS_DIGEST]: digest }) });
    await install(ctx, tmp, dest, written.digest);
    return written.rows;
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** The records digest an exported Parquet file carries, if it is a whole Parquet file. */
async function parquetRecordsDigest(path: string): Promise<string | undefined> {
  try {
    const { parquetFooter } = await import("../../formats/parquet.js");
    return (await parquetFooter(path, path)).key_value_metadata?.find((kv) => kv.key === RECORDS_DIGEST)?.value;
  } catch {
    return undefined;
  }
}

export const exportImpls: Record<string, StageImpl> = {
  export: asyncImpl(
    async (ctx, out) => {
      if (isParquet(ctx)) {
        const input = dataInput(ctx);
        let n = 0;
        const rows = await writeParquetExport(ctx, target(ctx), () => input.read(), input.digest, async (r) => {
          await out.write(r);
          if (++n % 4096 === 0) ctx.progress(n, input.records ?? undefined);
        });
        ctx.count("written", rows);
        ctx.progress(rows, rows);
        return;
      }
      // The file and the stage's output are both the input artifact's bytes (JSON Lines of these very records), so
      // they are copied in one pass rather than read and encoded again; the output is the input's stored object
      // itself where the store has one.
      const input = dataInput(ctx);
      if (input.records !== null && (await out.sameAs?.(input))) {
        await fileCopy(ctx, input.path, input.digest, target(ctx));
        ctx.count("written", input.records);
        ctx.progress(input.records, input.records);
        return;
      }
      let n = 0;
      await writeCopy(ctx, input.bytes(), input.digest, target(ctx), async (chunk) => {
        checkAbort(ctx);
        let lines = 0;
        for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
        await out.writeBytes(chunk, lines);
        ctx.progress((n += lines), input.records ?? undefined);
      });
      ctx.count("written", n);
      ctx.progress(n, n);
    },
    {
      onCached: (ctx, artifact) =>
        Effect.tryPromise({
          try: async () => {
            const dest = target(ctx);
            if (isParquet(ctx)) {
              if ((await parquetRecordsDigest(dest)) !== artifact.digest) await writeParquetExport(ctx, dest, () => artifact.read(), artifact.digest);
              return;
            }
            if ((await digestIfExists(dest)) === artifact.digest) return;
            await writeCopy(ctx, artifact.bytes(), artifact.digest, dest);
          },
          catch: (e) => (e instanceof Error ? e : new Error(String(e))),
        }),
    },
  ),
};
