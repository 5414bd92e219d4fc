import { readdirSync, realpathSync, statSync, type Dirent } from "node:fs";
import { join } from "node:path";
import picomatch from "picomatch";
import { UserError } from "../core/errors.js";

/**
 * File name patterns for sharded datasets (`train-*.parquet`, `**\/*.jsonl`), over `/`-separated paths relative to
 * a folder: `*` matches any characters within one path segment, `?` one character, and a `**` segment any number
 * of whole segments, none included; every other character is itself. Names starting with `.` (temporary and hidden
 * files, such as an export's `.x.jsonl.tmp`) match only a pattern segment that starts with `.` too: picomatch's
 * `dot: false`. Node 20 has no fs.glob.
 */
export function globMatcher(pattern: string): (path: string) => boolean {
  return picomatch(literalGlob(pattern, false), { dot: false, ...PLAIN });
}

/**
 * picomatch without the syntax that Python's glob lacks (braces, extglobs, a leading `!`), `[...]` always a class,
 * no trailing `/` matched, and no fast path (it reads some escapes differently from the full parser).
 */
export const PLAIN = { nobrace: true, noextglob: true, nonegate: true, literalBrackets: false, strictSlashes: true, fastpaths: false } as const;

/**
 * A glob of ours as a picomatch pattern. Besides `*`, `?`, `**` and (with `classes`) Python's `[...]`/`[!...]`,
 * picomatch gives meaning to characters that are plain in file names (`(`, `+`, `$`, quotes...): those are
 * escaped, and a backslash becomes the class `[\\]` (picomatch merges runs of escaped backslashes). A `**` glued to
 * other characters is a `*` (picomatch would let a leading `**.csv` cross folders).
 */
export function literalGlob(pattern: string, classes: boolean): string {
  return pattern
    .split("/")
    .map((seg) => {
      if (seg === "**") return seg;
      let out = "";
      for (let i = 0; i < seg.length; i++) {
        const c = seg[i]!;
        const end = classes && c === "[" ? classEnd(seg, i) : -1;
        if (end > 0) {
          let body = seg.slice(i + 1, end);
          const negated = body.startsWith("!");
          if (negated) body = body.slice(1);
          // Python's `[!...]` is picomatch's `[^...]`; Python's `^` and backslash are plain members (one backslash is enough).
          out += `[${negated ? "^" : ""}${body.replace(/\\/g, "").replace(/^\^/, "\\^")}${body.includes("\\") ? "\\\\" : ""}]`;
          i = end;
        } else if (c === "*") {
          while (seg[i + 1] === "*") i++;
          out += c;
        } else out += c === "?" ? c : c === "\\" ? "[\\\\]" : /[()[\]{}+@!|$^"']/.test(c) ? `\\${c}` : c;
      }
      return out;
    })
    .join("/");
}

/** Index of the `]` closing the class opened at `i` (a `]` right after `[` or `[!` is literal), or -1. */
function classEnd(s: string, i: number): number {
  let j = i + 1;
  if (s[j] === "!") j++;
  if (s[j] === "]") j++;
  return s.indexOf("]", j);
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
