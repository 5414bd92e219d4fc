import { readdirSync, realpathSync, statSync, type Dirent } from "node:fs";
import { join } from "node:path";
import { UserError } from "../core/errors.js";

/**
 * File name patterns for sharded datasets (`train-*.parquet`, `**\/*.jsonl`), over `/`-separated paths relative to
 * a folder: `*` matches any characters within one path segment, `?` one character, and a `**` segment any number
 * of whole segments, none included (a `**` glued to other characters acts as `*`). Names starting with `.` (temporary
 * and hidden files, such as an export's `.x.jsonl.tmp`) match only a pattern segment that starts with `.` too.
 * Node 20 has no fs.glob, and this is all that shards need.
 */

function segmentRegExp(seg: string): RegExp {
  let re = seg.startsWith(".") ? "" : "(?!\\.)";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === "*") {
      while (seg[i + 1] === "*") i++;
      re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** A matcher for a pattern: a function of a relative path (`a/b/c.jsonl`). */
export function globMatcher(pattern: string): (path: string) => boolean {
  const segs = pattern.split("/").map((s) => (s === "**" ? ("**" as const) : segmentRegExp(s)));
  const match = (p: number, parts: readonly string[], i: number): boolean => {
    if (p === segs.length) return i === parts.length;
    const seg = segs[p]!;
    if (seg === "**") {
      // Zero segments, or one more (not a hidden folder) and try again.
      return match(p + 1, parts, i) || (i < parts.length && !parts[i]!.startsWith(".") && match(p, parts, i + 1));
    }
    return i < parts.length && seg.test(parts[i]!) && match(p + 1, parts, i + 1);
  };
  return (path) => match(0, path.split("/"), 0);
}

/**
 * The files under `dir` that match `pattern`, as relative `/`-separated paths in code-unit order (the same on every
 * machine, unlike locale order), so that the shards of a dataset are always read in the same order. Symbolic links
 * to files count as files; folders are entered once each (a link cycle is not followed twice). Synchronous: cache
 * keys are computed from this list before anything runs.
 */
export function globFiles(dir: string, pattern: string, shown = dir): string[] {
  if (pattern.startsWith("/") || pattern.split("/").some((s) => s === ".." || s === "")) {
    throw new UserError(`shard pattern \`${pattern}\` must be a relative path inside the folder`, "write it as `*.jsonl` or `sub/**/*.parquet`; put the folder in `dir`");
  }
  const matches = globMatcher(pattern);
  const parts = pattern.split("/");
  const recursive = parts.includes("**");
  // A folder at `level` is entered when the pattern has a segment below it: any folder for `**` but a hidden one
  // (.git, an .itp store: `**` does not enter those, so the walk need not either) unless a segment names it.
  const enter = (name: string, level: number) => (recursive ? !name.startsWith(".") || level < parts.indexOf("**") : level + 1 < parts.length);
  const found: string[] = [];
  const seen = new Set<string>();
  const walk = (abs: string, rel: string, level: number) => {
    let real: string;
    let entries: Dirent[];
    try {
      real = realpathSync(abs);
      entries = readdirSync(abs, { withFileTypes: true });
    } catch (e) {
      if (level > 0) return; // a folder that went away or cannot be listed: not ours to judge
      throw new UserError(`cannot list ${shown} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, "`dir` is relative to the recipe's folder");
    }
    if (seen.has(real)) return;
    seen.add(real);
    for (const e of entries) {
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      const full = join(abs, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        try {
          const st = statSync(full);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch {
          continue; // a dangling link
        }
      }
      if (isFile && matches(relPath)) found.push(relPath);
      else if (isDir && enter(e.name, level)) walk(full, relPath, level + 1);
    }
  };
  walk(dir, "", 0);
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
