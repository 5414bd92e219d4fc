import { basename, dirname, isAbsolute, join } from "node:path";
import { error, warning, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { IrProgram, IrStage } from "../core/ir.js";
import type { Host } from "./modules.js";
import { gitKey, isCommitSha } from "./imports.js";

// Pinned revisions. A recipe may read the hub at a branch (`main`) or with no revision at all; `itp lock` resolves
// each such read to the commit it names today and keeps it in a lock file next to the recipe (`tulu2.itp.lock`,
// like Cargo.lock), and every later check applies it: the stage reads that commit, and its cache key says so.
// A read pinned to a commit sha in the recipe is left alone. This module is pure: the CLI resolves and writes.

export { isCommitSha };

/** The branch a hub read without a revision follows. */
export const DEFAULT_REF = "main";

export type HubRepoKind = "dataset" | "model";

/** A stage that reads the hub, and the revision it asks for. */
export interface HubRead {
  readonly stage: IrStage;
  readonly kind: HubRepoKind;
  readonly repo: string;
  /** As written (`main`, a tag, a sha), or DEFAULT_REF when absent. */
  readonly ref: string;
  /** Whether the recipe pins it to a commit itself. */
  readonly pinned: boolean;
}

export interface LockEntry {
  readonly kind: HubRepoKind;
  readonly repo: string;
  readonly ref: string;
  readonly sha: string;
}

/**
 * An import the recipe reads from outside its checkout: a git repository at the commit its ref named when locked
 * (a pinned import is recorded too, ref = sha), or an npm package at the version installed when locked.
 */
export type ImportLockEntry = { readonly kind: "git"; readonly url: string; readonly ref: string; readonly sha: string } | { readonly kind: "package"; readonly name: string; readonly version: string };

export interface LockFile {
  readonly version: 1;
  /** The hub the shas come from (`HF_ENDPOINT`): a lock made against another hub is not applied silently. */
  readonly endpoint: string;
  readonly entries: readonly LockEntry[];
  /** Absent in a lock without imports. */
  readonly imports?: readonly ImportLockEntry[];
}

export const importLockKey = (e: ImportLockEntry): string => (e.kind === "git" ? `git:${gitKey(e.url, e.ref)}` : `package:${e.name}`);

/** `pipelines/tulu2.itp` -> `pipelines/tulu2.itp.lock`. */
export function lockPath(recipe: string): string {
  return join(dirname(recipe), `${basename(recipe)}.lock`);
}

export const lockKey = (e: { kind: HubRepoKind; repo: string; ref: string }): string => `${e.kind}:${e.repo}@${e.ref}`;

/**
 * The hub reads of a program: `hf_dataset` stages, and `hf_model` stages whose `repo` is a hub id rather than a
 * local folder (relative to the recipe's folder).
 */
export function hubReads(program: IrProgram, host: Host): HubRead[] {
  const out: HubRead[] = [];
  const baseDir = dirname(program.entry);
  for (const stage of program.stages.values()) {
    const repo = stage.params["repo"];
    if (typeof repo !== "string") continue;
    let kind: HubRepoKind;
    if (stage.kind === "hf_dataset") kind = "dataset";
    else if (stage.kind === "hf_model") {
      if (!/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(repo) || isAbsolute(repo)) continue;
      if (host.exists?.(join(baseDir, repo))) continue;
      kind = "model";
    } else continue;
    const given = stage.params["revision"];
    const ref = typeof given === "string" ? given : DEFAULT_REF;
    out.push({ stage, kind, repo, ref, pinned: isCommitSha(ref) });
  }
  return out;
}

/** The text of a lock file: entries sorted, one per line group, so that a lock change diffs cleanly. */
export function serializeLock(lock: LockFile): string {
  const entries = [...lock.entries].sort((a, b) => lockKey(a).localeCompare(lockKey(b)));
  const imports = [...(lock.imports ?? [])].sort((a, b) => importLockKey(a).localeCompare(importLockKey(b)));
  return `${JSON.stringify({ version: lock.version, endpoint: lock.endpoint, entries, ...(imports.length > 0 ? { imports } : {}) }, null, 2)}\n`;
}

/** A lock file's entries; a file that is not one is an error at the file. */
export function parseLock(text: string, path: string): { lock?: LockFile; diagnostics: Diagnostic[] } {
  const bad = (what: string) => ({ diagnostics: [error("E062", `${path}: ${what}`, undefined, "it is written by `itp lock`: run `itp lock --update` on the recipe to write it again")] });
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    return bad(`not JSON (${(e as Error).message})`);
  }
  if (typeof j !== "object" || j === null || (j as { version?: unknown }).version !== 1) return bad("not a version 1 lock file");
  const o = j as { endpoint?: unknown; entries?: unknown };
  if (typeof o.endpoint !== "string" || !Array.isArray(o.entries)) return bad("it needs `endpoint` and `entries`");
  const entries: LockEntry[] = [];
  for (const [i, e] of o.entries.entries()) {
    const x = e as Partial<LockEntry>;
    if ((x.kind !== "dataset" && x.kind !== "model") || typeof x.repo !== "string" || typeof x.ref !== "string" || typeof x.sha !== "string" || !isCommitSha(x.sha))
      return bad(`entry ${i + 1} is not { kind: "dataset" | "model", repo, ref, sha: <40 hex> }`);
    entries.push({ kind: x.kind, repo: x.repo, ref: x.ref, sha: x.sha });
  }
  const imports: ImportLockEntry[] = [];
  const rawImports = (j as { imports?: unknown }).imports;
  if (rawImports !== undefined && !Array.isArray(rawImports)) return bad("`imports` is not a list");
  for (const [i, e] of (rawImports ?? []).entries()) {
    const x = e as Record<string, unknown>;
    if (x["kind"] === "git" && typeof x["url"] === "string" && typeof x["ref"] === "string" && typeof x["sha"] === "string" && isCommitSha(x["sha"])) imports.push({ kind: "git", url: x["url"], ref: x["ref"], sha: x["sha"] });
    else if (x["kind"] === "package" && typeof x["name"] === "string" && typeof x["version"] === "string") imports.push({ kind: "package", name: x["name"], version: x["version"] });
    else return bad(`import ${i + 1} is not { kind: "git", url, ref, sha: <40 hex> } or { kind: "package", name, version }`);
  }
  return { lock: { version: 1, endpoint: o.endpoint, entries, ...(imports.length > 0 ? { imports } : {}) }, diagnostics: [] };
}

/**
 * The commits the entries' lock files name for git imports at a branch or tag, by `gitKey(url, ref)`: what the
 * module loader reads instead of where the ref points now. A lock that does not parse is reported by `check`.
 */
export function importLocks(entries: readonly string[], host: Host, sources?: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of entries) {
    const file = lockPath(e);
    const text = sources?.get(file) ?? host.readFile(file);
    const lock = text === undefined ? undefined : parseLock(text, file).lock;
    for (const i of lock?.imports ?? []) if (i.kind === "git" && !out.has(gitKey(i.url, i.ref))) out.set(gitKey(i.url, i.ref), i.sha);
  }
  return out;
}

/**
 * The program with its lock applied: each unpinned hub read that the lock knows reads the locked commit (its
 * `revision` parameter is the sha, so the cache key follows the lock); the others are warned about (W003).
 * `endpoint` is the hub this run talks to: a lock made against another one is an error, not silently applied.
 */
export function applyLock(program: { readonly entry: string; readonly stages: Map<string, IrStage> }, host: Host, lock: LockFile | undefined, lockFile: string, endpoint: string | undefined): Diagnostic[] {
  const reads = hubReads(program, host).filter((r) => !r.pinned);
  if (reads.length === 0) return [];
  if (lock && endpoint !== undefined && lock.endpoint !== endpoint)
    return [error("E062", `${lockFile} was made against ${lock.endpoint}, but HF_ENDPOINT is ${endpoint}`, undefined, "run `itp lock --update` to lock this hub's commits, or set HF_ENDPOINT back")];
  const byKey = new Map((lock?.entries ?? []).map((e) => [lockKey(e), e]));
  const out: Diagnostic[] = [];
  for (const r of reads) {
    const e = byKey.get(lockKey(r));
    if (e) {
      const params = { ...r.stage.params, revision: e.sha };
      program.stages.set(r.stage.id, { ...r.stage, params: Object.fromEntries(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) });
      continue;
    }
    const what = r.stage.params["revision"] === undefined ? "has no revision" : `reads \`${r.ref}\`, which is not a commit`;
    out.push(warning("W003", `\`${r.stage.id}\` ${what}: ${r.kind} ${r.repo} is neither pinned nor locked`, r.stage.range, `\`itp lock ${program.entry}\` records the commit it names today in ${basename(lockFile)}; or pin \`revision\` to a commit sha`));
  }
  return out;
}
