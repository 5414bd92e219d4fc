import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { hasErrors } from "../diagnostics/diagnostic.js";
import { diskHost } from "./host.js";
import { hubReads, importLockKey, lockKey, lockPath, parseLock, serializeLock, type ImportLockEntry, type LockEntry, type LockFile } from "../compile/lock.js";
import { hubSettings } from "../hub/settings.js";
import { resolveRevision } from "../hub/revision.js";
import { parseVerbArgs } from "./args.js";
import { compileFiles, diagnosticsJson, printDiagnostics } from "./compile.js";
import { InputError, UsageError } from "./host.js";
import { UserError } from "../core/errors.js";
import type { ModuleGraph } from "../compile/modules.js";

const help = `
usage: itp lock <recipe.itp>... [--update] [--json]

Resolve every Hugging Face hub dataset and model the recipe (and what it imports) reads at a branch, a tag or no
revision to the commit that revision names now, and write them to <recipe>.itp.lock next to the recipe. Every later
check, plan and run reads those commits (the cache keys follow them), until the lock changes. Reads pinned to a
commit sha in the recipe need no entry. Commit the lock file with the recipe; \`itp diff\` shows what a new lock
changes.

Its \`imports\` section records the imports from outside the checkout: each git import's commit (a branch or tag
is resolved now; a moved one is refused by \`itp check\` until \`--update\`) and each package's installed version.

  --update   resolve every entry again (branches that moved get their new commit); without it, entries already
             in the lock are kept and only new reads and imports are resolved
  --json     print the entries as JSON

The hub is HF_ENDPOINT (default https://huggingface.co), with HF_TOKEN for private or gated repositories.`;

export async function lockVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { update: { type: "boolean" }, json: { type: "boolean" } }, help);
  if (!p) return 0;
  if (p.positionals.length === 0) throw new UsageError("give the recipe to lock: itp lock pipelines/tulu2.itp");
  const settings = hubSettings();
  const report: { recipe: string; lock: string; entries: (LockEntry & { status: string })[]; imports: (ImportLockEntry & { status: string })[] }[] = [];
  for (const recipe of p.positionals) {
    // Without --update, git imports load at the commits the lock has; with it, at the ones their refs name now.
    const r = compileFiles([recipe], [], { runnable: false, applyLock: false, lockImports: !p.values.update });
    const program = r.files[0]?.program;
    if (hasErrors(r.diagnostics) || !program) {
      if (p.values.json) process.stdout.write(JSON.stringify({ diagnostics: diagnosticsJson(r.diagnostics) }) + "\n");
      else printDiagnostics(r.diagnostics, false);
      return 1;
    }
    const file = lockPath(recipe);
    const old = existsSync(file) ? parseLock(readFileSync(file, "utf8"), file) : { diagnostics: [] };
    // A broken lock file is only replaced when asked to: it may be a merge conflict worth reading first.
    if (old.diagnostics.length > 0 && !p.values.update) {
      printDiagnostics(old.diagnostics, false);
      return 1;
    }
    const sameHub = old.lock?.endpoint === settings.endpoint;
    const kept = new Map(sameHub && !p.values.update ? (old.lock?.entries ?? []).map((e) => [lockKey(e), e]) : []);
    const before = new Map((old.lock?.entries ?? []).map((e) => [lockKey(e), e]));
    const entries = new Map<string, LockEntry & { status: string }>();
    for (const read of hubReads(program, diskHost())) {
      if (read.pinned) continue;
      const key = lockKey(read);
      if (entries.has(key)) continue;
      const k = kept.get(key);
      if (k) {
        entries.set(key, { ...k, status: "kept" });
        continue;
      }
      const sha = await resolveRevision(settings, read.kind, read.repo, read.ref).catch((e: unknown) => {
        // Nothing is written when a read cannot be resolved: the old lock stays as it was.
        if (e instanceof UserError) throw new InputError(`\`${read.stage.id}\`: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ""}`);
        throw e;
      });
      const prev = before.get(key);
      entries.set(key, { kind: read.kind, repo: read.repo, ref: read.ref, sha, status: !prev ? "new" : prev.sha === sha ? "unchanged" : `updated from ${prev.sha.slice(0, 12)}` });
    }
    const imports = lockedImports(r.modules, old.lock);
    const lock: LockFile = { version: 1, endpoint: settings.endpoint, entries: [...entries.values()].map(({ status: _, ...e }) => e), imports: imports.map(({ status: _, ...e }) => e) };
    if (entries.size === 0 && imports.length === 0) {
      if (existsSync(file)) rmSync(file);
    } else {
      const text = serializeLock(lock);
      if (!existsSync(file) || readFileSync(file, "utf8") !== text) {
        const tmp = `${file}.${process.pid}.tmp`;
        writeFileSync(tmp, text);
        renameSync(tmp, file);
      }
    }
    const dropped = [...before.keys()].filter((k) => !entries.has(k));
    const droppedImports = (old.lock?.imports ?? []).filter((o) => !imports.some((i) => importLockKey(i) === importLockKey(o)));
    report.push({ recipe, lock: file, entries: [...entries.values()].sort((a, b) => lockKey(a).localeCompare(lockKey(b))), imports });
    if (!p.values.json) {
      for (const e of report[report.length - 1]!.entries) process.stdout.write(`${e.kind} ${e.repo}@${e.ref} -> ${e.sha} (${e.status})\n`);
      for (const k of dropped) process.stdout.write(`${k.replace(":", " ")} dropped (no longer read)\n`);
      for (const i of imports) process.stdout.write(i.kind === "git" ? `import ${i.url}#${i.ref} -> ${i.sha} (${i.status})\n` : `import ${i.name} -> ${i.version} (${i.status})\n`);
      for (const i of droppedImports) process.stdout.write(`import ${i.kind === "git" ? `${i.url}#${i.ref}` : i.name} dropped (no longer imported)\n`);
      const n = entries.size + imports.length;
      process.stdout.write(n === 0 ? `${recipe}: every hub read is pinned to a commit; no lock file needed\n` : `wrote ${file} (${n} entr${n === 1 ? "y" : "ies"})\n`);
    }
  }
  if (p.values.json) process.stdout.write(JSON.stringify(report) + "\n");
  return 0;
}

/**
 * The imports from outside the checkout, as the lock records them: each git import at the commit it was loaded at
 * (the lock's, or with --update the one its ref names now) and each package at its installed version.
 */
function lockedImports(graph: ModuleGraph, old: LockFile | undefined): (ImportLockEntry & { status: string })[] {
  const before = new Map((old?.imports ?? []).map((e) => [importLockKey(e), e]));
  const out = new Map<string, ImportLockEntry & { status: string }>();
  for (const mod of graph.modules.values()) {
    for (const o of mod.importOrigins) {
      if (!o) continue;
      const e: ImportLockEntry = o.k === "git" ? { kind: "git", url: o.url, ref: o.ref, sha: o.sha } : { kind: "package", name: o.name, version: o.version };
      const key = importLockKey(e);
      if (out.has(key)) continue;
      const prev = before.get(key);
      const value = (x: ImportLockEntry) => (x.kind === "git" ? x.sha : x.version);
      const status = !prev ? "new" : value(prev) === value(e) ? (o.k === "git" && o.ref !== o.sha && o.now !== undefined && o.now !== o.sha ? `kept; it names ${o.now.slice(0, 12)} now` : "unchanged") : `updated from ${value(prev).slice(0, 12)}`;
      out.set(key, { ...e, status });
    }
  }
  return [...out.values()].sort((a, b) => importLockKey(a).localeCompare(importLockKey(b)));
}
