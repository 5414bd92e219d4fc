import picomatch from "picomatch";
import { literalGlob, PLAIN } from "../formats/glob.js";

/**
 * Glob patterns over repository paths, as the `datasets` library resolves data files (fsspec >= 2023.12, which
 * follows Python's glob): `*` and `?` stay inside one path segment, `[...]` is a character class (`[!...]`
 * negated), and `**` as a whole segment matches any number of segments, none included. A `**` glued to other
 * characters (`**.csv`) acts as `*`. Hidden names are matched here (`dot: true`); {@link requested} applies the
 * `datasets` rule for them.
 */
export function globToRegExp(pattern: string): RegExp {
  return picomatch.makeRe(literalGlob(pattern, true), { dot: true, ...PLAIN });
}

export const hasMagic = (p: string) => /[*?[]/.test(p);

/**
 * Hidden parts (`.x`) and special folders (`__x`) are skipped unless the pattern names as many of them as the path
 * holds (the `datasets` rule: `**` does not reach into `.git/` or `__pycache__/`, `.hidden/*` does).
 */
export function requested(path: string, pattern: string): boolean {
  const hidden = (parts: string[]) => parts.filter((p) => p.startsWith(".") && !/^\.+$/.test(p)).length;
  const special = (parts: string[]) => parts.slice(0, -1).filter((p) => p.startsWith("__")).length;
  const a = path.split("/");
  const b = pattern.split("/");
  return hidden(a) === hidden(b) && special(a) === special(b);
}

/** Paths matching the pattern, in the order given (callers pass sorted paths). */
export function matchGlob(paths: readonly string[], pattern: string): string[] {
  const re = globToRegExp(pattern);
  return paths.filter((p) => re.test(p) && requested(p, pattern));
}
