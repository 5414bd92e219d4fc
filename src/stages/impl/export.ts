import { Effect } from "effect";
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { fileDigest } from "../../runtime/digest.js";
import type { StageContext, StageImpl } from "../../runtime/impl.js";
import { UserError } from "../../runtime/impl.js";
import { asyncImpl, checkAbort, dataInput } from "./support.js";

/**
 * `export`: the dataset as JSON Lines at `path` (relative to the recipe's folder), written to a temporary file
 * beside it and renamed into place, so a reader never sees half a file. The stage's own output is the same
 * records, byte for byte the same JSON Lines; when the artifact comes from the cache, `onCached` rewrites the
 * file if it is missing or differs from the artifact (compared by sha256).
 */

function target(ctx: StageContext): string {
  const p = String(ctx.params["path"]);
  return isAbsolute(p) ? p : resolve(ctx.baseDir, p);
}

function checkFormat(ctx: StageContext): void {
  const f = ctx.params["format"] ?? "jsonl";
  if (f !== "jsonl") throw new UserError(`${ctx.stage.id}: export format "${String(f)}" comes with a later version of itp`, 'write JSON Lines for now: format = "jsonl"');
}

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

export const exportImpls: Record<string, StageImpl> = {
  export: asyncImpl(
    async (ctx, out) => {
      checkFormat(ctx);
      const dest = target(ctx);
      await mkdir(dirname(dest), { recursive: true });
      const tmp = tmpName(dest);
      const fh = await open(tmp, "w");
      const hash = createHash("sha256");
      let buf: string[] = [];
      let bufLen = 0;
      const flush = async () => {
        if (buf.length === 0) return;
        const data = Buffer.from(buf.join(""), "utf8");
        buf = [];
        bufLen = 0;
        hash.update(data);
        await fh.write(data);
      };
      try {
        const input = dataInput(ctx);
        let n = 0;
        for await (const r of input.read()) {
          const line = JSON.stringify(r) + "\n";
          buf.push(line);
          bufLen += line.length;
          if (bufLen >= 1 << 20) await flush();
          await out.write(r);
          if (++n % 4096 === 0) {
            checkAbort(ctx);
            ctx.progress(n, input.records ?? undefined);
          }
        }
        await flush();
        await fh.sync();
        await fh.close();
        await install(ctx, tmp, dest, hash.digest("hex"));
        ctx.count("written", n);
        ctx.progress(n, n);
      } catch (e) {
        await fh.close().catch(() => undefined);
        await rm(tmp, { force: true });
        throw e;
      }
    },
    {
      onCached: (ctx, artifact) =>
        Effect.tryPromise({
          try: async () => {
            checkFormat(ctx);
            const dest = target(ctx);
            if ((await digestIfExists(dest)) === artifact.digest) return;
            await mkdir(dirname(dest), { recursive: true });
            const tmp = tmpName(dest);
            try {
              // A stream copy, not copyFile: the file gets the usual mode, not the store object's.
              await pipeline(artifact.bytes(), createWriteStream(tmp));
              await install(ctx, tmp, dest, artifact.digest);
            } catch (e) {
              await rm(tmp, { force: true });
              throw e;
            }
          },
          catch: (e) => (e instanceof Error ? e : new Error(String(e))),
        }),
    },
  ),
};
