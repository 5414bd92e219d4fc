import { access, readFile } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import type { StageImpl } from "../../runtime/impl.js";
import { UserError } from "../../runtime/impl.js";
import { readJsonl } from "../../runtime/records.js";
import { asyncImpl, checkAbort } from "./support.js";

const at = (baseDir: string, p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));

async function readOrExplain(path: string, shown: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new UserError(`cannot read ${shown} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, "paths are relative to the recipe's folder");
  }
}

export const sourceImpls: Record<string, StageImpl> = {
  jsonl: asyncImpl(
    async (ctx, out) => {
      const path = String(ctx.params["path"]);
      const limit = ctx.params["limit"] as number | undefined;
      let n = 0;
      await access(at(ctx.baseDir, path)).catch((e: NodeJS.ErrnoException) => {
        throw new UserError(`cannot read ${path} (${e.code ?? e.message})`, "paths are relative to the recipe's folder");
      });
      for await (const r of readJsonl(at(ctx.baseDir, path), path)) {
        if (limit !== undefined && n >= limit) break;
        await out.write(r);
        if (++n % 4096 === 0) {
          checkAbort(ctx);
          ctx.progress(n);
        }
      }
      ctx.progress(n, n);
    },
    { files: (p) => [String(p["path"])] },
  ),

  json: asyncImpl(
    async (ctx, out) => {
      const path = String(ctx.params["path"]);
      const key = ctx.params["key"] as string | undefined;
      let v: unknown;
      try {
        v = JSON.parse(await readOrExplain(at(ctx.baseDir, path), path));
      } catch (e) {
        if (e instanceof UserError) throw e;
        throw new UserError(`${path} is not valid JSON: ${(e as Error).message}`);
      }
      const arr = key !== undefined && v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : v;
      if (!Array.isArray(arr)) throw new UserError(`${path}: expected an array of records${key ? ` under \`${key}\`` : ""}`, key ? undefined : "set `key` to the member that holds the array");
      const limit = ctx.params["limit"] as number | undefined;
      let n = 0;
      for (const r of arr) {
        if (limit !== undefined && n >= limit) break;
        if (r === null || typeof r !== "object" || Array.isArray(r)) throw new UserError(`${path}: element ${n} is not a record (a JSON object)`);
        await out.write(r as Record<string, unknown>);
        n++;
      }
      ctx.progress(n, n);
    },
    { files: (p) => [String(p["path"])] },
  ),

  records: asyncImpl(async (ctx, out) => {
    const items = ctx.params["items"] as Record<string, unknown>[];
    for (const r of items) await out.write(r);
    ctx.progress(items.length, items.length);
  }),
};
