import { UserError } from "../core/errors.js";
import type { RecordValue } from "../core/records.js";

/**
 * The record predicates of `where(expr: ...)`: comparisons `field op literal` (op: == != < <= > >= contains
 * startswith endswith), `len(field)` on the left for lengths, combined with `and`, `or`, `not` and parentheses.
 * Fields may be dotted (`meta.lang`). Literals are JSON: strings in double quotes, numbers, true, false, null.
 */
export type Predicate = (r: RecordValue) => boolean;

/**
 * How the records a predicate gets were read. `utf8`: as usual. `latin1`: a JSON line of valid UTF-8 without `\u`
 * escapes, decoded as latin1 (one character per byte, which JSON.parse reads much faster than the UTF-8 decoding of
 * mixed text), so each string holds the UTF-8 bytes of the real one. The predicate then gives the verdicts it gives on
 * the real record: equality and substrings compare the bytes (UTF-8 is self-synchronizing), `len` counts the UTF-16
 * units the bytes encode, and ordering decodes the value first.
 */
export type PredicateInput = "utf8" | "latin1";

const HIGH = /[\x80-\xff]/;

/** The real value of a value read as latin1 (see PredicateInput). */
function decoded(v: unknown): unknown {
  if (typeof v === "string") return HIGH.test(v) ? Buffer.from(v, "latin1").toString("utf8") : v;
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(decoded);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [decoded(k) as string, decoded(x)]));
}

/** The UTF-16 length of the string whose UTF-8 bytes `s` holds (read as latin1). */
function utf16Length(s: string): number {
  let n = s.length;
  if (!HIGH.test(s)) return n;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A continuation byte adds no unit; a 4-byte sequence's lead stands for a surrogate pair.
    if (c >= 0x80) {
      if (c < 0xc0) n--;
      else if (c >= 0xf0) n++;
    }
  }
  return n;
}

const tokenRe = /\s*(?:(\(|\)|==|!=|<=|>=|<|>)|("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_.]*))/y;

export function compilePredicate(src: string, input: PredicateInput = "utf8"): Predicate {
  const bytes = input === "latin1";
  /** A literal as the predicate's records hold it. */
  const held = (v: unknown): unknown => (bytes && typeof v === "string" ? Buffer.from(v, "utf8").toString("latin1") : v);
  const toks: string[] = [];
  tokenRe.lastIndex = 0;
  let pos = 0;
  while (pos < src.length) {
    if (/^\s*$/.test(src.slice(pos))) break;
    tokenRe.lastIndex = pos;
    const m = tokenRe.exec(src);
    if (!m) throw new UserError(`where: cannot read \`${src}\` at column ${pos + 1}`, 'write conditions like `lang == "en" and len(output) > 10`');
    toks.push(m[1] ?? m[2] ?? m[3] ?? m[4]!);
    pos = tokenRe.lastIndex;
  }
  let i = 0;
  const peek = () => toks[i];
  const next = () => toks[i++];
  const expect = (t: string) => {
    if (next() !== t) throw new UserError(`where: expected \`${t}\` in \`${src}\``);
  };
  const literal = (t: string | undefined): unknown => {
    if (t === undefined) throw new UserError(`where: \`${src}\` ends too early`);
    if (t === "true") return true;
    if (t === "false") return false;
    if (t === "null") return null;
    if (t.startsWith('"') || /^-?\d/.test(t)) return JSON.parse(t);
    throw new UserError(`where: expected a value (a string in quotes, a number, true, false or null), found \`${t}\``);
  };
  // Prepared once per predicate, not per record: the field path split, and one function per operator (a parallel
  // reader evaluates the predicate on every line of a large file).
  const getter = (path: string): ((r: RecordValue) => unknown) => {
    const parts = path.split(".");
    if (parts.length === 1) {
      const k = parts[0]!;
      return (r) => (r !== null && typeof r === "object" ? (r as Record<string, unknown>)[k] : undefined);
    }
    return (r) => {
      let v: unknown = r;
      for (const k of parts) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
      return v;
    };
  };
  const ops = new Set(["==", "!=", "<", "<=", ">", ">=", "contains", "startswith", "endswith"]);
  const comparison = (): Predicate => {
    let left: (r: RecordValue) => unknown;
    const t = next();
    if (t === "len") {
      expect("(");
      const f = next()!;
      expect(")");
      const get = getter(f);
      left = (r) => {
        const v = get(r);
        return typeof v === "string" ? (bytes ? utf16Length(v) : v.length) : Array.isArray(v) ? v.length : 0;
      };
    } else if (t && /^[A-Za-z_]/.test(t)) left = getter(t);
    else throw new UserError(`where: expected a field name, found \`${t ?? "the end"}\` in \`${src}\``);
    // Ordering compares the real value (a string compared with a number is converted first).
    const raw = left;
    const real = bytes && t !== "len" ? (r: RecordValue) => decoded(raw(r)) : raw;
    const op = next();
    if (!op || !ops.has(op)) throw new UserError(`where: expected a comparison (== != < <= > >= contains startswith endswith) after \`${t}\``);
    const lit = literal(next());
    const v = held(lit);
    const sv = String(v);
    const n = lit as number;
    switch (op) {
      case "==":
        return (r) => left(r) === v;
      case "!=":
        return (r) => left(r) !== v;
      case "<":
        return (r) => (real(r) as number) < n;
      case "<=":
        return (r) => (real(r) as number) <= n;
      case ">":
        return (r) => (real(r) as number) > n;
      case ">=":
        return (r) => (real(r) as number) >= n;
      case "contains":
        return (r) => {
          const a = left(r);
          return typeof a === "string" ? a.includes(sv) : Array.isArray(a) && a.includes(v);
        };
      case "startswith":
        return (r) => {
          const a = left(r);
          return typeof a === "string" && a.startsWith(sv);
        };
      default:
        return (r) => {
          const a = left(r);
          return typeof a === "string" && a.endsWith(sv);
        };
    }
  };
  const unary = (): Predicate => {
    if (peek() === "not") {
      next();
      const p = unary();
      return (r) => !p(r);
    }
    if (peek() === "(") {
      next();
      const p = disj();
      expect(")");
      return p;
    }
    return comparison();
  };
  const conj = (): Predicate => {
    let p = unary();
    while (peek() === "and") {
      next();
      const a = p;
      const b = unary();
      p = (r) => a(r) && b(r);
    }
    return p;
  };
  const disj = (): Predicate => {
    let p = conj();
    while (peek() === "or") {
      next();
      const a = p;
      const b = conj();
      p = (r) => a(r) || b(r);
    }
    return p;
  };
  const p = disj();
  if (i < toks.length) throw new UserError(`where: unexpected \`${toks[i]}\` in \`${src}\``);
  return p;
}
