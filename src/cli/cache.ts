import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { Store, StoreUnavailable } from "../runtime/store.js";
import { displayPath, InputError, UsageError } from "./host.js";
import { parseVerbArgs } from "./args.js";

const help = `
usage: itp cache ls|verify|gc [--store DIR] [--json]

  ls       the store's entries: stage, recipe, records, size, when
  verify   re-hash every artifact; corrupt entries are listed (exit 1) and, with --fix, set aside for recomputation
  gc       remove leftovers of interrupted runs, data no entry refers to, and the quarantine. A stage's work
           folder (a training job's checkpoints, under work/) is kept while its artifact is missing, so an
           interrupted job resumes; it goes once the artifact is committed`;

export async function cacheVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { store: { type: "string" }, json: { type: "boolean" }, fix: { type: "boolean" } }, help);
  if (!p) return 0;
  const sub = p.positionals[0];
  if (!sub || !["ls", "verify", "gc"].includes(sub) || p.positionals.length > 1) throw new UsageError("give one of: ls, verify, gc");
  const root = resolve(p.values.store ?? ".itp");
  // Listing, verifying or collecting a store that is not there is a typo, not an empty store: say so, create nothing.
  if (!existsSync(root)) throw new InputError(`no store at ${root}${p.values.store ? "" : " (the default; give another with --store DIR)"}`);
  let store: Store;
  try {
    store = await Store.open(root);
  } catch (e) {
    if (e instanceof StoreUnavailable) throw new InputError(e.message);
    throw e;
  }
  const json = p.values.json ?? false;
  if (sub === "ls") {
    const rows = [];
    for await (const { key, manifest: m } of store.entries()) {
      rows.push(m === "unreadable" ? { key, stage: "?", unreadable: true } : { key, stage: m.stage, recipe: m.recipe, kind: m.kind, digest: m.output?.digest, records: m.output?.records, bytes: m.output?.bytes, finished_at: m.finished_at });
    }
    if (json) process.stdout.write(JSON.stringify({ entries: rows }) + "\n");
    else {
      for (const r of rows) process.stdout.write(`${r.key.slice(0, 12)}  ${String("recipe" in r ? r.recipe : "?").padEnd(28)} ${r.stage.padEnd(30)} ${"records" in r ? `${r.records ?? "-"} records, ${r.bytes} bytes, ${r.finished_at}` : "UNREADABLE"}\n`);
      process.stdout.write(`${rows.length} entries in ${displayPath(store.root)}\n`);
    }
    return 0;
  }
  if (sub === "verify") {
    let ok = 0;
    const corrupt: { key: string; stage: string; reason: string }[] = [];
    // With --json, the intact entries too (key, stage, digest of the bytes just re-hashed): what scripts compare.
    const intact: { key: string; stage: string; digest: string }[] = [];
    for await (const { key, manifest: m } of store.entries()) {
      const v = m === "unreadable" ? { ok: false as const, reason: "manifest is not valid JSON" } : await store.verifyManifest(m);
      if (v.ok) {
        ok++;
        intact.push({ key, stage: v.manifest.stage, digest: v.manifest.output.digest });
      }
      else {
        corrupt.push({ key, stage: m === "unreadable" ? "?" : m.stage, reason: v.reason });
        if (p.values.fix) await store.quarantine(key, v.reason);
      }
    }
    if (json) process.stdout.write(JSON.stringify({ ok, corrupt, intact }) + "\n");
    else {
      for (const c of corrupt) process.stdout.write(`CORRUPT ${c.key.slice(0, 12)} ${c.stage}: ${c.reason}${p.values.fix ? " (set aside)" : ""}\n`);
      process.stdout.write(`${ok} intact, ${corrupt.length} corrupt\n`);
    }
    return corrupt.length > 0 && !p.values.fix ? 1 : 0;
  }
  // gc
  const tmp = await store.cleanTmp(0);
  const referenced = new Set<string>();
  for await (const { manifest: m } of store.entries()) {
    if (m === "unreadable") continue;
    if (m.output) referenced.add(m.output.digest);
    if (m.dropped) referenced.add(m.dropped.digest);
    // A log of dropped lines by place needs the input they are in.
    if (m.dropped?.lines_of) referenced.add(m.dropped.lines_of);
  }
  let orphans = 0;
  for await (const d of store.objects()) {
    if (referenced.has(d)) continue;
    await rm(store.objectPath(d), { force: true });
    orphans++;
  }
  for await (const d of store.trees()) {
    if (referenced.has(d)) continue;
    await rm(store.treePath(d), { recursive: true, force: true });
    orphans++;
  }
  // Checkpoints of a stage whose artifact exists are not needed again (a commit removes them; a crash between
  // the commit and the removal leaves them).
  let work = 0;
  for (const key of await store.workKeys()) {
    if ((await store.verify(key))?.ok !== true) continue;
    await store.removeWorkDir(key);
    work++;
  }
  await rm(join(store.root, "quarantine"), { recursive: true, force: true });
  if (json) process.stdout.write(JSON.stringify({ tmp, orphans, work }) + "\n");
  else process.stdout.write(`removed ${tmp} temporary file(s), ${orphans} unreferenced object(s) and ${work} finished stage(s)' work folders; emptied the quarantine\n`);
  return 0;
}
