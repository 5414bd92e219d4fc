import { UserError } from "../core/errors.js";
import type { RecordValue } from "../core/records.js";

/**
 * The record predicates of `where(expr: ...)`: comparisons `field op literal` (op: == != < <= > >= contains
 * startswith endswith), `len(field)` on the left for lengths, combined with `and`, `or`, `not` and parentheses.
 * Fields may be dotted (`meta.lang`). Literals are JSON: strings in double quotes, numbers, true, false, null.
 */
export type Predicate = (r: RecordValue) => boolean;

const tokenRe = /\s*(?:(\(|\)|==|!=|<=|>=|<|>)|("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_.]*))/y;

export function compilePredicate(src: string): Predicate {
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
        return typeof v === "string" || Array.isArray(v) ? v.length : 0;
      };
    } else if (t && /^[A-Za-z_]/.test(t)) left = getter(t);
    else throw new UserError(`where: expected a field name, found \`${t ?? "the end"}\` in \`${src}\``);
    const op = next();
    if (!op || !ops.has(op)) throw new UserError(`where: expected a comparison (== != < <= > >= contains startswith endswith) after \`${t}\``);
    const v = literal(next());
    const sv = String(v);
    const n = v as number;
    switch (op) {
      case "==":
        return (r) => left(r) === v;
      case "!=":
        return (r) => left(r) !== v;
      case "<":
        return (r) => (left(r) as number) < n;
      case "<=":
        return (r) => (left(r) as number) <= n;
      case ">":
        return (r) => (left(r) as number) > n;
      case ">=":
        return (r) => (left(r) as number) >= n;
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
