import { error, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Range } from "../diagnostics/source.js";
import type * as A from "../syntax/ast.js";
import { parse } from "../syntax/parser.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";
import { gitKey, normalize, parseImportSpec, resolvePackage, type ImportOrigin } from "./imports.js";

/** How the front end reads files: injected, so the compiler stays pure and testable without a disk. */
export interface Host {
  /** The text of a file, or undefined if it does not exist. */
  readFile(path: string): string | undefined;
  /** Folder holding the standard library (`std/alpaca` is `<stdRoot>/alpaca.itp`). */
  readonly stdRoot: string;
  /** The standard library's module names (`alpaca`, `flan`), for suggestions. */
  listStd?(): string[];
  /** Whether a file or folder exists (for warnings about a recipe's local inputs); absent: not checked. */
  exists?(path: string): boolean;
  /** The absolute working directory (package imports walk up from the importing file's folder to the root). */
  readonly cwd?: string;
  /** The commit a git ref names now, as the CLI resolved it before checking; undefined when it could not. */
  gitRef?(url: string, ref: string): string | undefined;
  /** The folder holding the repository checked out at `sha` (fetched by the CLI), or undefined when it is not. */
  gitCheckout?(url: string, sha: string): string | undefined;
  /** Why the CLI could not fetch or resolve a git import (shown in its error), if it tried. */
  gitError?(url: string, ref: string): string | undefined;
}

export interface LoadOptions {
  /** The commits lock files name for git imports at a branch or tag, by `gitKey(url, ref)`. */
  readonly lockedRefs?: ReadonlyMap<string, string>;
}

export interface LoadedModule {
  readonly path: string;
  readonly ast: A.Module;
  /** Whether it belongs to the standard library (libraries export everything; no unused-stage warnings). */
  readonly std: boolean;
  /** Resolved import paths, in the order of `ast.imports` (undefined where it failed). */
  readonly importPaths: (string | undefined)[];
  /** Where each import's package or repository came from, in the order of `ast.imports` (undefined: a file or std). */
  readonly importOrigins: (ImportOrigin | undefined)[];
}

export interface ModuleGraph {
  readonly modules: ReadonlyMap<string, LoadedModule>;
  readonly diagnostics: Diagnostic[];
}

export function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}

export function joinPath(dir: string, rel: string): string {
  if (rel.startsWith("/")) return normalize(rel);
  return normalize(`${dir}/${rel}`);
}

/** Load the entry files and, transitively, every module they import. Import cycles are reported, not followed. */
export function loadModules(entries: readonly string[], host: Host, sources?: ReadonlyMap<string, string>, opts: LoadOptions = {}): ModuleGraph {
  const modules = new Map<string, LoadedModule>();
  const diagnostics: Diagnostic[] = [];
  const stdRoot = normalize(host.stdRoot);

  const load = (path: string, stack: string[], via?: Range): void => {
    if (modules.has(path)) return;
    const text = sources?.get(path) ?? host.readFile(path);
    if (text === undefined) {
      diagnostics.push(error("E010", `cannot read ${path}`, via, "check the path; relative imports are resolved from the importing file's folder"));
      return;
    }
    const parsed = parse(text, path);
    diagnostics.push(...parsed.diagnostics);
    const importPaths: (string | undefined)[] = [];
    const importOrigins: (ImportOrigin | undefined)[] = [];
    const mod: LoadedModule = { path, ast: parsed.module, std: path.startsWith(stdRoot + "/"), importPaths, importOrigins };
    modules.set(path, mod);
    for (const imp of parsed.module.imports) {
      importOrigins.push(undefined);
      if (imp.broken) {
        importPaths.push(undefined); // its syntax error is reported; its names stay quietly declared
        continue;
      }
      const range = { file: parsed.module.file, start: imp.pathSpan.start, end: imp.pathSpan.end };
      let target: string | undefined;
      if (imp.std) target = imp.path.startsWith("std/") ? `${stdRoot}/${imp.path.slice(4)}.itp` : undefined;
      else {
        const r = resolveQuoted(imp.path, path, host, opts);
        if ("error" in r) {
          importPaths.push(undefined);
          diagnostics.push(error(r.code, r.error, range, r.hint));
          continue;
        }
        target = r.path;
        importOrigins[importOrigins.length - 1] = r.origin;
      }
      if (target === undefined) {
        importPaths.push(undefined);
        diagnostics.push(
          error("E010", `unknown module \`${imp.path}\``, range, 'import the standard library as `std/NAME`, another file by its relative path in quotes (`import "./common.itp" { ... }`), or a package by its name (`import "@org/recipes/tulu" { ... }`)'),
        );
        continue;
      }
      const cycleAt = stack.indexOf(target);
      if (cycleAt >= 0 || target === path) {
        importPaths.push(undefined);
        const chain = [...stack.slice(cycleAt >= 0 ? cycleAt : stack.length), path, target].map(shortName);
        diagnostics.push(error("E011", `import cycle: ${chain.join(" -> ")}`, range, "move the shared declarations into a third module that both import"));
        continue;
      }
      importPaths.push(target);
      if (!modules.has(target)) {
        const before = diagnostics.length;
        load(target, [...stack, path], range);
        // A missing std module: say which ones exist rather than only "cannot read".
        if (imp.std && diagnostics.length > before && diagnostics[before]!.code === "E010" && !modules.has(target)) {
          const known = host.listStd?.() ?? [];
          const guess = hintDidYouMean(imp.path, known.map((m) => `std/${m}`));
          diagnostics[before] = error("E010", `no standard library module \`${imp.path}\``, range, guess ?? (known.length > 0 ? `it has: ${known.map((m) => `std/${m}`).join(", ")}` : `the standard library lives in ${stdRoot}`));
          importPaths[importPaths.length - 1] = undefined;
        }
        // A file missing from a package or a repository: say whose, and what to look at.
        const origin = importOrigins[importOrigins.length - 1];
        if (origin && diagnostics.length > before && diagnostics[before]!.code === "E010" && !modules.has(target)) {
          diagnostics[before] =
            origin.k === "package"
              ? error("E013", `package \`${origin.name}\` (${origin.version}) has no file ${target.slice(origin.root.length + 1)}`, range, `the import names a path inside the package, without .itp: its files are in ${origin.root}`)
              : error("E014", `${origin.url} has no file ${target.slice(origin.root.length + 1)} at ${origin.sha.slice(0, 12)}`, range, "the path after `//` is the file's path inside the repository");
          importPaths[importPaths.length - 1] = undefined;
        }
      }
    }
  };

  for (const e of entries) load(normalize(e), []);
  return { modules, diagnostics };
}

/** A quoted import: a file relative to the importer, a package through node_modules, or a fetched git commit. */
function resolveQuoted(spec: string, from: string, host: Host, opts: LoadOptions): { path: string; origin?: ImportOrigin } | { error: string; hint: string; code: "E010" | "E013" | "E014" } {
  const s = parseImportSpec(spec);
  switch (s.k) {
    case "file":
      return { path: joinPath(dirname(from), spec.endsWith(".itp") ? spec : `${spec}.itp`) };
    case "invalid":
      return { error: s.message, hint: s.hint, code: spec.startsWith("git+") ? "E014" : "E013" };
    case "package": {
      const r = resolvePackage(s, dirname(from), host);
      if ("error" in r) {
        // `"common.itp"` meant as a file next to this one: say how to write that.
        const sibling = joinPath(dirname(from), spec.endsWith(".itp") ? spec : `${spec}.itp`);
        const hint = host.readFile(sibling) !== undefined ? `a file next to this one is imported as "./${spec.endsWith(".itp") ? spec : `${spec}.itp`}"` : r.hint;
        return { error: r.error, hint, code: "E013" };
      }
      return { path: r.path, origin: { k: "package", name: r.name, version: r.version, root: r.root } };
    }
    case "git": {
      const now = s.pinned ? undefined : host.gitRef?.(s.url, s.ref);
      const sha = s.pinned ? s.ref : (opts.lockedRefs?.get(gitKey(s.url, s.ref)) ?? now);
      if (sha === undefined) {
        const why = host.gitError?.(s.url, s.ref);
        return { error: `cannot resolve \`${s.ref}\` in ${s.url}${why ? `: ${why}` : ""}`, hint: "check the repository URL and the ref; pin the import to a commit with #<40-hex sha>", code: "E014" };
      }
      const dir = host.gitCheckout?.(s.url, sha);
      const why = host.gitError?.(s.url, sha);
      if (dir === undefined)
        return { error: `cannot fetch ${s.url} at ${sha}${why ? `: ${why}` : ""}`, hint: "`itp check`, `itp lock` and `itp run` fetch it into the import cache (ITP_IMPORT_CACHE); check the URL and that the commit exists", code: "E014" };
      return { path: joinPath(dir, s.path), origin: { k: "git", url: s.url, ref: s.ref, sha, now, root: normalize(dir) } };
    }
  }
}

function shortName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}
