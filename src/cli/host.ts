import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Host } from "../compile/modules.js";

/** The package root: the folder above `dist/` (bundled) or `src/cli/` (run from source in tests). */
export function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.endsWith(`${sep}cli`) ? resolve(here, "../..") : resolve(here, "..");
}

/** Paths are shown relative to the working directory when they are inside it. */
export function displayPath(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return rel === "" ? "." : rel.startsWith("..") && rel.split(sep).filter((p) => p === "..").length > 2 ? abs : rel.split(sep).join("/");
}

export function diskHost(): Host {
  return {
    readFile(path) {
      try {
        return readFileSync(path, "utf8");
      } catch {
        return undefined;
      }
    },
    exists: (path) => existsSync(path),
    cwd: process.cwd(),
    stdRoot: displayPath(join(packageRoot(), "stdlib")),
    listStd() {
      const root = join(packageRoot(), "stdlib");
      try {
        return readdirSync(root, { recursive: true })
          .map(String)
          .filter((f) => f.endsWith(".itp"))
          .map((f) => f.slice(0, -4).split(sep).join("/"))
          .sort();
      } catch {
        return [];
      }
    },
  };
}

/** Wrong use of the command line: exit 2. */
export class UsageError extends Error {}

/** Bad input that is not a recipe diagnostic (an unreadable file): exit 1 with the message. */
export class InputError extends Error {}

/** Expand folders into the `.itp` files below them (sorted, so output is stable). */
export function expandPaths(paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    let st;
    try {
      st = statSync(p);
    } catch {
      out.push(p); // reported as unreadable by the checker, with the path the user gave
      return;
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) {
        if (name.startsWith(".") || name === "node_modules") continue;
        const child = join(p, name);
        if (name.endsWith(".itp") || statSync(child).isDirectory()) walk(child);
      }
    } else out.push(p);
  };
  for (const p of paths) walk(p);
  return out.map((p) => p.split(sep).join("/"));
}
