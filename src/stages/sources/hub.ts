import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { OnBadRecord, RecordReadOptions } from "../../formats/bad-record.js";
import { droppedRecord, passes } from "../../formats/bad-record.js";
import { recordCheck } from "../../formats/record-type.js";
import { readRecordsFile } from "../../formats/records-file.js";
import type { DataFormat } from "../../hub/data-files.js";
import { hubSettings } from "../../hub/settings.js";
import type { OutputSink, StageContext, StageImpl } from "../../core/stage.js";
import type { RecordValue } from "../../core/records.js";
import { asyncImpl, checkAbort } from "../support/records.js";

/**
 * `hf_dataset`: the records of a configuration's split at a pinned revision of a Hugging Face Hub dataset, file by
 * file in the order the hub client resolves them (pattern by pattern, paths sorted), each file read in its own
 * format. Files are downloaded into the hub cache as they are reached, so a `limit` met in the first file never
 * downloads the others. The cache key needs no file digests: the revision parameter pins the content, and the
 * client checks every file against the revision's listing.
 */

/** `hf://datasets/owner/name@revision/path`, the notation of huggingface_hub, as records' location in errors. */
const shownPath = (repo: string, revision: string, path: string) => `hf://datasets/${repo}@${revision}/${path}`;

/** `.json` on the hub is an array of records or, as often, JSON Lines under another name; the first byte tells. */
async function firstChar(path: string): Promise<string | undefined> {
  for await (const chunk of createReadStream(path, { start: 0, end: 65535, encoding: "utf8" }) as AsyncIterable<string>) {
    const m = /[^\s\uFEFF]/.exec(chunk);
    if (m) return m[0];
  }
  return undefined;
}

/** Lines of a text file as `{ text }` records, as the `datasets` text builder reads them. */
async function* readTextLines(path: string, shown: string, opts: RecordReadOptions): AsyncGenerator<RecordValue> {
  const lines = createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) if (passes({ text }, shown, { line: ++line }, opts)) yield { text };
}

/** A downloaded file's records: `.json` read as an array or as JSON Lines (by its first byte), `.txt` by lines. */
async function* readHubFile(path: string, shown: string, format: DataFormat, opts: RecordReadOptions): AsyncGenerator<RecordValue> {
  if (format === "txt") return yield* readTextLines(path, shown, opts);
  yield* readRecordsFile(path, shown, format === "json" && (await firstChar(path)) !== "[" ? "jsonl" : format, opts);
}

async function run(ctx: StageContext, out: OutputSink): Promise<void> {
  const p = ctx.params;
  const repo = String(p["repo"]);
  // Absent when the recipe neither pins nor locks it (`itp check` warned): the main branch as it is now.
  const revision = typeof p["revision"] === "string" ? p["revision"] : "main";
  const limit = p["limit"] as number | undefined;
  const token = typeof p["token"] === "string" ? p["token"] : undefined;
  // The hub client (and undici with it) is loaded by the runs that read the hub.
  const { openHubDataset } = await import("../../hub/client.js");
  const ds = await openHubDataset({
    repo,
    revision,
    split: String(p["split"] ?? "train"),
    config: p["config"] as string | undefined,
    files: p["files"] as string[] | undefined,
    settings: hubSettings(process.env, token),
    signal: ctx.signal,
  });
  // Bad records fail the stage unless the recipe asks to skip them (`on_error`, where the declaration has it).
  const onBad: OnBadRecord | undefined = p["on_error"] === "skip" ? (b) => ctx.drop(droppedRecord(b), b.reason) : undefined;
  const check = ctx.stage.type ? recordCheck(ctx.stage.type) : undefined;
  const opts: RecordReadOptions = { ...(onBad ? { onBad } : {}), ...(check ? { check } : {}) };
  let n = 0;
  for (const f of ds.files) {
    if (limit !== undefined && n >= limit) break;
    checkAbort(ctx);
    const path = await ds.local(f);
    for await (const r of readHubFile(path, shownPath(repo, revision, f.entry.path), f.format, opts)) {
      if (limit !== undefined && n >= limit) break;
      await out.write(r);
      if (++n % 4096 === 0) {
        checkAbort(ctx);
        ctx.progress(n);
      }
    }
    ctx.count("files read");
  }
  ctx.progress(n, n);
}

export const hubImpls: Record<string, StageImpl> = {
  hf_dataset: asyncImpl(run),
};
