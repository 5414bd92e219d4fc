/**
 * Glob patterns over repository paths, as the `datasets` library resolves data files (fsspec >= 2023.12, which
 * follows Python's glob): `*` and `?` stay inside one path segment, `[...]` is a character class (`[!...]`
 * negated), and `**` as a whole segment matches any number of segments, none included. A `**` glued to other
 * characters (`**.csv`) acts as `*`.
 */
export function globToRegExp(pattern: string): RegExp {
  const segs = pattern.split("/");
  let re = "";
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (s === "**") {
      // `a/**/b`: zero or more whole segments between; a trailing `a/**`: anything below a.
      re += last ? ".*" : "(?:[^/]*/)*";
      continue;
    }
    re += segment(s) + (last ? "" : "/");
  }
  return new RegExp(`^${re}$`);
}

function segment(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "*") {
      while (s[i + 1] === "*") i++;
      out += "[^/]*";
    } else if (c === "?") out += "[^/]";
    else if (c === "[") {
      const end = classEnd(s, i);
      if (end < 0) out += "\\[";
      else {
        let body = s.slice(i + 1, end);
        const negate = body.startsWith("!");
        if (negate) body = body.slice(1);
        out += `[${negate ? "^/" : ""}${body.replace(/[\\\]^]/g, (m) => `\\${m}`)}]`;
        i = end;
      }
    } else out += /[.+^${}()|\\]/.test(c) ? `\\${c}` : c;
  }
  return out;
}

/** Index of the `]` closing the class opened at `i` (a `]` right after `[` or `[!` is literal), or -1. */
function classEnd(s: string, i: number): number {
  let j = i + 1;
  if (s[j] === "!") j++;
  if (s[j] === "]") j++;
  return s.indexOf("]", j);
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
