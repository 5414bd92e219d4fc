import { error, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Range } from "../diagnostics/source.js";
import type * as A from "../syntax/ast.js";
import { parse } from "../syntax/parser.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";

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
}

export interface LoadedModule {
  readonly path: string;
  readonly ast: A.Module;
  /** Whether it belongs to the standard library (libraries export everything; no unused-stage warnings). */
  readonly std: boolean;
  /** Resolved import paths, in the order of `ast.imports` (undefined where it failed). */
  readonly importPaths: (string | undefined)[];
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

function normalize(p: string): string {
  const abs = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(part);
  }
  return (abs ? "/" : "") + out.join("/") || ".";
}

/** Load the entry files and, transitively, every module they import. Import cycles are reported, not followed. */
export function loadModules(entries: readonly string[], host: Host, sources?: ReadonlyMap<string, string>): ModuleGraph {
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
    const mod: LoadedModule = { path, ast: parsed.module, std: path.startsWith(stdRoot + "/"), importPaths };
    modules.set(path, mod);
    for (const imp of parsed.module.imports) {
      if (imp.broken) {
        importPaths.push(undefined); // its syntax error is reported; its names stay quietly declared
        continue;
      }
      const target = imp.std
        ? imp.path.startsWith("std/")
          ? `${stdRoot}/${imp.path.slice(4)}.itp`
          : undefined
        : joinPath(dirname(path), imp.path.endsWith(".itp") ? imp.path : `${imp.path}.itp`);
      const range = { file: parsed.module.file, start: imp.pathSpan.start, end: imp.pathSpan.end };
      if (target === undefined) {
        importPaths.push(undefined);
        diagnostics.push(
          error("E010", `unknown module \`${imp.path}\``, range, 'import the standard library as `std/NAME`, or another file by its relative path in quotes: `import "./common.itp" { ... }`'),
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
      }
    }
  };

  for (const e of entries) load(normalize(e), []);
  return { modules, diagnostics };
}

function shortName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}
