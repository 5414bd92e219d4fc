import type { Diagnostic } from "../diagnostics/diagnostic.js";
import { hasErrors } from "../diagnostics/diagnostic.js";
import type { Registry } from "../stages/registry.js";
import { Elaborator } from "./elaborate.js";
import type { IrProgram } from "../core/ir.js";
import { missingLocalInputs } from "./local-inputs.js";
import { applyLock, importLocks, lockPath, parseLock, type LockFile } from "./lock.js";
import { error, warning } from "../diagnostics/diagnostic.js";
import { loadModules, type Host, type ModuleGraph } from "./modules.js";
import type { Override } from "./overrides.js";
import { reportUnmatchedOverrides, reportUnused } from "./reports.js";
import { checkRunnable } from "./runnable.js";
import { fileEffects, type EffectContext, type Permissions } from "./effects.js";
import { permissionDiagnostics } from "./permissions.js";
import { AVAILABLE_EXECUTORS } from "../core/available-executors.js";

export interface CheckedFile {
  readonly path: string;
  /** Present when the file has no errors. */
  readonly program?: IrProgram;
}

export interface CheckResult {
  readonly files: CheckedFile[];
  readonly diagnostics: Diagnostic[];
  readonly modules: ModuleGraph;
}

export interface CheckOptions {
  readonly overrides?: readonly Override[];
  /** In-memory sources that take precedence over the host's files (tests, editors). */
  readonly sources?: ReadonlyMap<string, string>;
  /**
   * Also check that the program can run (E075, E076: kinds with an implementation, executors that exist); default
   * true. `graph` and `diff` look at recipes without running them; `run` checks only the stages it will run.
   */
  readonly runnable?: boolean;
  /** Executors a stage may name (default: those this version of itp has). */
  readonly executors?: ReadonlySet<string>;
  /**
   * The hub this process talks to (`HF_ENDPOINT`): each entry's lock file (`<recipe>.lock`) is applied to its hub
   * reads, and must have been made against this hub. Undefined: the lock is applied without that check.
   */
  readonly hubEndpoint?: string;
  /** Apply the lock file (default true); `itp lock` reads the revisions as written. */
  readonly applyLock?: boolean;
  /**
   * The modules, loaded already by the CLI's resolve step (which fetches git imports first); absent: loaded here,
   * git imports at the commits the lock files name.
   */
  readonly modules?: ModuleGraph;
  /** Accept a git import whose ref moved since the lock (default false: E015); `itp diff` compares versions. */
  readonly allowMovedImports?: boolean;
  /**
   * Enforce the safe default on each entry's effects (E080-E082): what is allowed, and the machine's side of the
   * effects (the entry's folder, the store, symlinks). Absent: effects are not checked (graph, diff, lock).
   */
  readonly permissions?: { readonly allow: Permissions; readonly context: (entry: string) => EffectContext };
}

/**
 * Parse, resolve and type-check each entry file (with everything it imports) into a stage program.
 * Each entry is elaborated on its own; modules shared between entries are parsed once.
 */
export function check(entries: readonly string[], host: Host, registry: Registry, opts: CheckOptions = {}): CheckResult {
  const modules = opts.modules ?? loadModules(entries, host, opts.sources, { lockedRefs: opts.applyLock === false ? new Map() : importLocks(entries, host, opts.sources) });
  const diagnostics: Diagnostic[] = [...modules.diagnostics];
  const files: CheckedFile[] = [];
  for (const entry of modules.modules.values()) {
    if (!entries.some((e) => normalizeEq(e, entry.path))) continue;
    const ds: Diagnostic[] = [];
    const el = new Elaborator(modules, registry, ds, opts.overrides ?? []);
    el.entryPath = entry.path;
    el.elaborateModule(entry, "");
    el.checkUninstantiatedRecipes(entry);
    reportUnused(el, entry, ds);
    reportUnmatchedOverrides(el, registry, ds);
    let fileHasErrors = hasErrors(ds) || hasErrors(modules.diagnostics.filter((d) => d.range?.file.path === entry.path));
    // Whether it can run is asked only of a program that is otherwise correct, imports included (no follow-on errors).
    const imported = reachable(modules, entry.path);
    if (!fileHasErrors && opts.runnable !== false && !hasErrors(modules.diagnostics.filter((d) => d.range && imported.has(d.range.file.path)))) {
      const runnable = checkRunnable({ entry: entry.path, stages: el.stages }, registry, opts.executors ?? AVAILABLE_EXECUTORS);
      ds.push(...runnable);
      fileHasErrors = runnable.length > 0;
    }
    diagnostics.push(...ds);
    if (fileHasErrors) files.push({ path: entry.path });
    else {
      const program = { entry: entry.path, stages: el.stages };
      const lockFile = lockPath(entry.path);
      const lockText = opts.applyLock === false ? undefined : (opts.sources?.get(lockFile) ?? host.readFile(lockFile));
      const parsed = lockText === undefined ? { diagnostics: [] } : parseLock(lockText, lockFile);
      const lockDiagnostics =
        opts.applyLock === false
          ? []
          : [...parsed.diagnostics, ...(parsed.diagnostics.length > 0 ? [] : [...applyLock(program, host, parsed.lock, lockFile, opts.hubEndpoint), ...importDiagnostics(modules, imported, entry.path, parsed.lock, opts.allowMovedImports === true)])];
      diagnostics.push(...lockDiagnostics, ...missingLocalInputs(program, registry, host));
      const permission = opts.permissions && !hasErrors(lockDiagnostics) ? enforce(program, registry, opts.permissions) : [];
      diagnostics.push(...permission);
      if (hasErrors(lockDiagnostics) || hasErrors(permission)) files.push({ path: entry.path });
      else files.push({ path: entry.path, program });
    }
  }
  return { files, diagnostics: dedupe(diagnostics), modules };
}

/**
 * The entry's imports from outside its checkout against its lock: a git import that is neither pinned nor locked
 * (W004), one whose ref moved since the lock (E015: refused until `itp lock --update`), and a package whose
 * installed version is not the one the lock records (W005).
 */
function importDiagnostics(modules: ModuleGraph, imported: ReadonlySet<string>, entry: string, lock: LockFile | undefined, allowMoved: boolean): Diagnostic[] {
  const out: Diagnostic[] = [];
  const locked = lock?.imports ?? [];
  for (const path of imported) {
    const mod = modules.modules.get(path);
    if (!mod) continue;
    mod.importOrigins.forEach((o, i) => {
      const imp = mod.ast.imports[i]!;
      const range = { file: mod.ast.file, start: imp.pathSpan.start, end: imp.pathSpan.end };
      if (o?.k === "git" && o.ref !== o.sha) {
        const l = locked.find((e) => e.kind === "git" && e.url === o.url && e.ref === o.ref);
        if (!l) {
          const what = /^[0-9a-f]{4,39}$/.test(o.ref) ? `names \`${o.ref}\` of ${o.url}, an abbreviated commit,` : `follows \`${o.ref}\` of ${o.url}, not a commit,`;
          out.push(warning("W004", `this import ${what} and the lock does not record it`, range, `\`${o.ref}\` names ${o.sha} now: pin the import with #${o.sha}, or \`itp lock ${entry}\` records it`));
        } else if (o.now !== undefined && o.now !== o.sha && !allowMoved) {
          out.push(error("E015", `\`${o.ref}\` of ${o.url} moved: the lock has ${o.sha.slice(0, 12)}, it names ${o.now.slice(0, 12)} now`, range, `\`itp lock --update ${entry}\` accepts ${o.now} (\`itp diff\` on the two versions shows what it changes); or pin the import with #${o.sha}`));
        }
      } else if (o?.k === "package") {
        const l = locked.find((e) => e.kind === "package" && e.name === o.name);
        if (l && l.kind === "package" && l.version !== o.version)
          out.push(warning("W005", `package \`${o.name}\` is ${o.version} here, but the lock records ${l.version}`, range, `\`itp lock ${entry}\` records ${o.version}; or \`npm install ${o.name}@${l.version}\` for the locked one`));
      }
    });
  }
  return out;
}

function enforce(program: IrProgram, registry: Registry, p: NonNullable<CheckOptions["permissions"]>): Diagnostic[] {
  const ctx = p.context(program.entry);
  return permissionDiagnostics(program, fileEffects(program, registry, ctx, { reads: p.allow.denyReadOutside }), ctx, p.allow);
}

/** The modules an entry loads, itself included. */
function reachable(modules: ModuleGraph, entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    for (const p of modules.modules.get(path)?.importPaths ?? []) if (p) visit(p);
  };
  visit(entry);
  return seen;
}

function normalizeEq(a: string, b: string): boolean {
  return a === b || a.replace(/^\.\//, "") === b;
}

/** The same problem in a shared module, reached from several entries, is reported once. */
function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.range?.file.path}\0${d.range?.start}\0${d.range?.end}\0${d.code}\0${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
