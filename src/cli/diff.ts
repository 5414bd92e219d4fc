import { createTwoFilesPatch, FILE_HEADERS_ONLY } from "diff";
import { readFileSync } from "node:fs";
import { check, type CheckResult } from "../compile/check.js";
import { lockPath, parseLock, type LockFile } from "../compile/lock.js";
import { hasErrors } from "../diagnostics/diagnostic.js";
import { diffImports, diffPrograms, renderDiff, renderImportChanges, type ImportVersion } from "../graph/diff.js";
import { defaultRegistry } from "../stages/index.js";
import { diagnosticsJson, printDiagnostics } from "./compile.js";
import { diskHost, InputError, UsageError } from "./host.js";
import { GitImports } from "./git-imports.js";
import { parseVerbArgs } from "./args.js";
import { diffEffects, programEffects } from "../compile/effects.js";
import { renderEffectsDiff } from "./effects-render.js";
import { effectContext } from "./permissions.js";

const help = `
usage: itp diff <old.itp> <new.itp> [--json]
       itp diff PATH OLD-FILE OLD-HEX OLD-MODE NEW-FILE NEW-HEX NEW-MODE   (as git's external diff driver)

Explain a change semantically: first the changes in the recipe's effects (a new host contacted, a new path
written or read outside the recipe's folder, new environment variables or secrets read), then stages added and removed, each changed parameter with its old and new value
(mixture components and weights included), type changes, and the downstream stages the change invalidates. An
import whose version changed (a package's version, the old one from the old lock file; a git import's commit) is
listed with the stages declared in it and the stages downstream of those.

When either version does not parse or check, its errors are printed with a warning, followed by a plain text
diff (exit 1 for two files; exit 0 as a git driver, so \`git diff\` always shows the change).

As a git diff driver (put \`itp\` on your PATH first: \`npm ci && npm install -g .\` in a checkout):
  echo '*.itp diff=itp' >> .gitattributes
  git config diff.itp.command 'itp diff'`;

export async function diffVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { json: { type: "boolean" } }, help);
  if (!p) return 0;
  const pos = p.positionals;
  let label: string;
  let oldText: string;
  let newText: string;
  // Both versions are checked as if they lived at the same path, so relative imports resolve from the repository.
  let at: string;
  const asDriver = pos.length === 7;
  if (asDriver) {
    label = pos[0]!;
    at = pos[0]!;
    oldText = readSide(pos[1]!);
    newText = readSide(pos[4]!);
  } else if (pos.length === 2) {
    label = `${pos[0]} -> ${pos[1]}`;
    at = pos[1]!;
    oldText = readSide(pos[0]!);
    newText = readSide(pos[1]!);
  } else throw new UsageError("give two recipe files: itp diff old.itp new.itp");
  const registry = defaultRegistry();
  const host = diskHost();
  // Two files: each is checked with its own lock file, so a lock change shows as the revisions it changes.
  const oldLock = asDriver ? undefined : readLock(pos[0]!);
  const oldSources = new Map([[at, oldText], ...(oldLock !== undefined ? [[lockPath(at), oldLock] as [string, string]] : [])]);
  // Each version's git imports are fetched first (the old one may import an older commit).
  const git = GitImports.fromEnv();
  const checkSide = (sources: Map<string, string>) => {
    const r = git.resolve([at], host, { sources, useLocks: true });
    return check([at], r.host, registry, { sources, runnable: false, modules: r.graph, allowMovedImports: true });
  };
  const oldR = checkSide(oldSources);
  const newR = checkSide(new Map([[at, newText]]));
  const diags = [...oldR.diagnostics.map((d) => tag(d, "old")), ...newR.diagnostics.map((d) => tag(d, "new"))].filter((d) => d.severity === "error");
  const oldP = oldR.files[0]?.program;
  const newP = newR.files[0]?.program;
  if (hasErrors(diags) || !oldP || !newP) {
    // No semantic diff without two checked programs, but a diff must never be lost: show the text change.
    const text = textDiff(asDriver ? pos[0]! : at, oldText, newText);
    if (p.values.json) process.stdout.write(JSON.stringify({ diagnostics: diagnosticsJson(diags), textDiff: text }) + "\n");
    else {
      printDiagnostics(diags, false);
      process.stderr.write(`itp diff: warning: ${sidesBroken(oldR, newR)} not check, so this is a plain text diff\n`);
      process.stdout.write(`itp diff ${label} (text)\n${text}`);
    }
    return asDriver ? 0 : 1;
  }
  const d = diffPrograms(oldP, newP);
  // Both versions' effects as if they lived at the new path (relative paths resolve from the same folder).
  const ctx = effectContext(at, ".itp");
  const effects = diffEffects(programEffects(oldP, registry, ctx), programEffects(newP, registry, ctx));
  // A package's old version is the one the old lock records: both versions resolve through today's node_modules.
  const imports = diffImports(importVersions(oldR, oldLock === undefined ? undefined : parseLock(oldLock, lockPath(at)).lock), importVersions(newR, undefined), newP);
  if (p.values.json) process.stdout.write(JSON.stringify({ ...d, effects, imports }) + "\n");
  else {
    const e = [...renderEffectsDiff(effects), ...renderImportChanges(imports)];
    const rest = renderDiff(d);
    process.stdout.write(`itp diff ${label}\n${e.length > 0 ? e.join("\n") + "\n" : ""}${e.length > 0 && rest === "no semantic changes\n" ? "" : rest}`);
  }
  return 0;
}

/** The imports from outside the checkout that a checked version reads, with their versions. */
function importVersions(r: CheckResult, lock: LockFile | undefined): ImportVersion[] {
  const byName = new Map<string, { versions: Set<string>; roots: Set<string> }>();
  for (const mod of r.modules.modules.values()) {
    for (const o of mod.importOrigins) {
      if (!o) continue;
      const name = o.k === "package" ? o.name : `git+${o.url}`;
      const locked = o.k === "package" ? lock?.imports?.find((i) => i.kind === "package" && i.name === o.name) : undefined;
      const version = locked?.kind === "package" ? locked.version : o.k === "package" ? o.version : o.sha;
      const e = byName.get(name) ?? byName.set(name, { versions: new Set(), roots: new Set() }).get(name)!;
      e.versions.add(version);
      e.roots.add(o.root);
    }
  }
  return [...byName].map(([name, e]) => ({ name, version: [...e.versions].sort().join(", "), roots: [...e.roots] }));
}

function readLock(recipe: string): string | undefined {
  try {
    return readFileSync(lockPath(recipe), "utf8");
  } catch {
    return undefined;
  }
}

function readSide(path: string): string {
  if (path === "/dev/null") return "";
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new InputError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function tag<D extends { message: string }>(d: D, side: string): D {
  return { ...d, message: `(${side} version) ${d.message}` };
}

function sidesBroken(oldR: CheckResult, newR: CheckResult): string {
  const o = hasErrors(oldR.diagnostics) || !oldR.files[0]?.program;
  const n = hasErrors(newR.diagnostics) || !newR.files[0]?.program;
  return o && n ? "neither version does" : o ? "the old version does" : "the new version does";
}

function textDiff(path: string, before: string, after: string): string {
  if (before === after) return "";
  return createTwoFilesPatch(`a/${path}`, `b/${path}`, before, after, undefined, undefined, { context: 3, headerOptions: FILE_HEADERS_ONLY });
}
