import type * as A from "./ast.js";
import { stageKeywords, type StageKeyword } from "../core/ir.js";
import { decodeDuration, decodeNumber, decodeRawString, decodeString } from "./literals.js";

/**
 * The fast path for well-formed files: a scanner and recursive-descent parser for exactly the grammar of the
 * Chevrotain parser (parser.ts), producing the same tree. It gives up (returns undefined) at the first thing it
 * does not expect, and the Chevrotain parser takes over: it is the reference, reports the errors and recovers.
 * A recipe at Flan scale is parsed several times faster this way; the fuzz tests hold the two to the same trees.
 */

// Token kinds of the scanner (a subset of lexer.ts's token types, plus the names' split into keywords).
const enum K {
  Ident,
  StageKw,
  Import,
  As,
  Type,
  Recipe,
  Repeat,
  From,
  Output,
  True,
  False,
  Null,
  Str,
  Raw,
  Num,
  Dur,
  Pipe,
  Arrow,
  LBrace,
  RBrace,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LAngle,
  RAngle,
  Comma,
  Colon,
  Equals,
  Dot,
  Slash,
  Question,
  EOF,
}

const keywords = new Map<string, K>([
  ["import", K.Import],
  ["as", K.As],
  ["type", K.Type],
  ["recipe", K.Recipe],
  ["repeat", K.Repeat],
  ["from", K.From],
  ["output", K.Output],
  ["true", K.True],
  ["false", K.False],
  ["null", K.Null],
  ...stageKeywords.map((w) => [w, K.StageKw] as [string, K]),
]);

/** Kinds that serve as names (the lexer's `Name` category). */
const isName = (k: K) => k <= K.Output;

class GiveUp extends Error {}
const giveUp = (): never => {
  throw new GiveUp();
};

interface Scanned {
  kinds: Uint8Array;
  starts: Int32Array;
  ends: Int32Array;
  comments: A.Comment[];
}

/** Token storage: typed arrays, sized for the worst case (a token per character), filled by the scanner. */
class Tokens {
  readonly kinds: Uint8Array;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  n = 0;
  constructor(size: number) {
    this.kinds = new Uint8Array(size);
    this.starts = new Int32Array(size);
    this.ends = new Int32Array(size);
  }
  push(k: K, s: number, e: number): void {
    this.kinds[this.n] = k;
    this.starts[this.n] = s;
    this.ends[this.n++] = e;
  }
}

const isIdStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
const isIdPart = (c: number) => isIdStart(c) || (c >= 48 && c <= 57);
const isDigit = (c: number) => c >= 48 && c <= 57;
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11 || c === 0xa0 || c === 0xfeff;

function scan(text: string): Scanned {
  const comments: A.Comment[] = [];
  const n = text.length;
  const toks = new Tokens(n + 1);
  const push = (k: K, s: number, e: number) => toks.push(k, s, e);
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const s = i;
    if (isIdStart(c)) {
      while (i < n && isIdPart(text.charCodeAt(i))) i++;
      // Keywords are 2 to 8 letters: longer words need no lookup.
      push(i - s <= 8 ? (keywords.get(text.slice(s, i)) ?? K.Ident) : K.Ident, s, i);
      continue;
    }
    if (isDigit(c) || (c === 45 && isDigit(text.charCodeAt(i + 1)))) {
      i = number(text, i, push);
      continue;
    }
    switch (c) {
      case 47: // '/'
        if (text.charCodeAt(i + 1) === 47) {
          while (i < n && text.charCodeAt(i) !== 10 && text.charCodeAt(i) !== 13) i++;
          comments.push({ text: text.slice(s, i), doc: text.startsWith("///", s), start: s, end: i });
        } else push(K.Slash, s, ++i);
        continue;
      case 34: // '"'
        i = string(text, i, push);
        continue;
      case 124: // '|'
        if (text.charCodeAt(i + 1) !== 62) giveUp();
        push(K.Pipe, s, (i += 2));
        continue;
      case 45: // '-'
        if (text.charCodeAt(i + 1) !== 62) giveUp();
        push(K.Arrow, s, (i += 2));
        continue;
    }
    const single = punct[c];
    if (single === undefined) giveUp();
    push(single!, s, ++i);
  }
  push(K.EOF, n, n);
  return { kinds: toks.kinds, starts: toks.starts, ends: toks.ends, comments };
}

const punct: Partial<Record<number, K>> = {
  123: K.LBrace,
  125: K.RBrace,
  40: K.LParen,
  41: K.RParen,
  91: K.LBracket,
  93: K.RBracket,
  60: K.LAngle,
  62: K.RAngle,
  44: K.Comma,
  58: K.Colon,
  61: K.Equals,
  46: K.Dot,
  63: K.Question,
};

/** `-?[0-9][0-9_]*(\.[0-9][0-9_]*)?` then a duration unit, or an exponent; never followed by a name character. */
function number(text: string, i: number, push: (k: K, s: number, e: number) => void): number {
  const s = i;
  if (text.charCodeAt(i) === 45) i++;
  const digits = () => {
    i++;
    while (isDigit(text.charCodeAt(i)) || text.charCodeAt(i) === 95) i++;
  };
  digits();
  if (text.charCodeAt(i) === 46 && isDigit(text.charCodeAt(i + 1))) {
    i++;
    digits();
  }
  const unit = /^(ms|s|m|h|d)(?![A-Za-z0-9_])/.exec(text.slice(i, i + 3));
  if (unit) {
    push(K.Dur, s, i + unit[1]!.length);
    return i + unit[1]!.length;
  }
  const c = text.charCodeAt(i);
  if (c === 101 || c === 69) {
    let j = i + 1;
    if (text.charCodeAt(j) === 43 || text.charCodeAt(j) === 45) j++;
    if (!isDigit(text.charCodeAt(j))) giveUp();
    i = j;
    digits();
  }
  const after = text.charCodeAt(i);
  if (isIdStart(after)) giveUp();
  push(K.Num, s, i);
  return i;
}

function string(text: string, i: number, push: (k: K, s: number, e: number) => void): number {
  const s = i;
  if (text.startsWith('"""', i)) {
    const close = text.indexOf('"""', i + 3);
    if (close < 0) giveUp();
    push(K.Raw, s, close + 3);
    return close + 3;
  }
  i++;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 34) break;
    if (Number.isNaN(c) || c === 10 || c === 13) giveUp();
    if (c === 92) {
      const e = text.charCodeAt(i + 1);
      if (e === 117) {
        const m = /^u(?:\{[0-9A-Fa-f]{1,6}\}|[0-9A-Fa-f]{4})/.exec(text.slice(i + 1, i + 10));
        if (!m) giveUp();
        i += 1 + m![0].length;
        continue;
      }
      // " \ / b f n r t
      if (e !== 34 && e !== 92 && e !== 47 && e !== 98 && e !== 102 && e !== 110 && e !== 114 && e !== 116) giveUp();
      i += 2;
      continue;
    }
    i++;
  }
  push(K.Str, s, i + 1);
  return i + 1;
}

class Parser {
  private p = 0;
  private readonly kinds: Uint8Array;
  private readonly starts: Int32Array;
  private readonly ends: Int32Array;

  constructor(
    private readonly text: string,
    t: Scanned,
  ) {
    this.kinds = t.kinds;
    this.starts = t.starts;
    this.ends = t.ends;
  }

  /** The kind k tokens ahead. Past the end the arrays hold zeros, but the parser never looks past EOF's successor. */
  private la(k = 1): K {
    return this.kinds[this.p + k - 1]! as K;
  }

  private expect(k: K): number {
    if (this.kinds[this.p] !== k) giveUp();
    return this.p++;
  }

  private name(): A.Name {
    if (!isName(this.kinds[this.p]!)) giveUp();
    const i = this.p++;
    return { text: this.text.slice(this.starts[i], this.ends[i]), start: this.starts[i]!, end: this.ends[i]! };
  }

  program(): { imports: A.Import[]; decls: A.Decl[] } {
    const imports: A.Import[] = [];
    const decls: A.Decl[] = [];
    for (;;) {
      switch (this.la()) {
        case K.EOF:
          return { imports, decls };
        case K.Import:
          imports.push(this.importDecl());
          break;
        case K.Type:
          decls.push(this.typeDecl());
          break;
        case K.Recipe:
          decls.push(this.recipeDecl());
          break;
        case K.StageKw:
          decls.push(this.stageDecl());
          break;
        case K.Repeat:
          decls.push(this.repeatDecl());
          break;
        default:
          giveUp();
      }
    }
  }

  private importDecl(): A.Import {
    const kw = this.expect(K.Import);
    let path: string;
    let std = false;
    let pathStart: number;
    let pathEnd: number;
    if (this.la() === K.Str) {
      const s = this.p++;
      path = decodeString(this.text.slice(this.starts[s], this.ends[s]));
      pathStart = this.starts[s]!;
      pathEnd = this.ends[s]!;
    } else {
      const parts = [this.name()];
      while (this.la() === K.Slash) {
        this.p++;
        parts.push(this.name());
      }
      std = true;
      path = parts.map((x) => x.text).join("/");
      pathStart = parts[0]!.start;
      pathEnd = parts[parts.length - 1]!.end;
    }
    const names: { name: A.Name; alias?: A.Name }[] = [];
    this.expect(K.LBrace);
    if (isName(this.la())) {
      const one = () => {
        const name = this.name();
        if (this.la() === K.As) {
          this.p++;
          names.push({ name, alias: this.name() });
        } else names.push({ name });
      };
      one();
      while (this.la() === K.Comma && this.la(2) !== K.RBrace) {
        this.p++;
        one();
      }
      if (this.la() === K.Comma) this.p++;
    }
    const close = this.expect(K.RBrace);
    return { type: "Import", path, std, pathSpan: { start: pathStart, end: pathEnd }, names, start: this.starts[kw]!, end: this.ends[close]! };
  }

  private typeExpr(): A.TypeExpr {
    const name = this.name();
    const args: A.TypeExpr[] = [];
    let end = name.end;
    if (this.la() === K.LAngle) {
      this.p++;
      args.push(this.typeExpr());
      while (this.la() === K.Comma) {
        this.p++;
        args.push(this.typeExpr());
      }
      end = this.ends[this.expect(K.RAngle)]!;
    }
    return { name, args, start: name.start, end };
  }

  private typeDecl(): A.TypeDecl {
    const kw = this.expect(K.Type);
    const name = this.name();
    this.expect(K.Equals);
    this.expect(K.LBrace);
    const fields: A.FieldDecl[] = [];
    while (isName(this.la())) {
      const f = this.name();
      let optional = false;
      if (this.la() === K.Question) {
        this.p++;
        optional = true;
      }
      this.expect(K.Colon);
      const t = this.typeExpr();
      if (this.la() === K.Comma) this.p++;
      fields.push({ name: f, optional, fieldType: t, start: f.start, end: t.end });
    }
    const close = this.expect(K.RBrace);
    return { type: "TypeDecl", name, fields, start: this.starts[kw]!, end: this.ends[close]! };
  }

  private recipeDecl(): A.RecipeDecl {
    const kw = this.expect(K.Recipe);
    const name = this.name();
    const params: A.RecipeParam[] = [];
    this.expect(K.LParen);
    if (isName(this.la())) {
      params.push(this.recipeParam());
      while (this.la() === K.Comma && this.la(2) !== K.RParen) {
        this.p++;
        params.push(this.recipeParam());
      }
      if (this.la() === K.Comma) this.p++;
    }
    const rparen = this.expect(K.RParen);
    let returns: A.TypeExpr | undefined;
    if (this.la() === K.Arrow) {
      this.p++;
      returns = this.typeExpr();
    }
    this.expect(K.LBrace);
    const stages: A.StageDecl[] = [];
    const repeats: A.RepeatDecl[] = [];
    for (;;) {
      if (this.la() === K.StageKw) stages.push(this.stageDecl());
      else if (this.la() === K.Repeat) repeats.push(this.repeatDecl());
      else break;
    }
    let output: A.Name | undefined;
    if (this.la() === K.Output) {
      this.p++;
      output = this.name();
    }
    const close = this.expect(K.RBrace);
    return {
      type: "RecipeDecl",
      name,
      params,
      paramsEnd: this.ends[rparen]!,
      ...(returns ? { returns } : {}),
      stages,
      ...(repeats.length > 0 ? { repeats } : {}),
      ...(output ? { output } : {}),
      start: this.starts[kw]!,
      end: this.ends[close]!,
    };
  }

  private repeatDecl(): A.RepeatDecl {
    const kw = this.expect(K.Repeat);
    const name = this.name();
    this.expect(K.LParen);
    const count = this.expr();
    this.expect(K.RParen);
    let init: A.Block | undefined;
    if (this.la() === K.From) {
      this.p++;
      init = this.block();
    }
    this.expect(K.LBrace);
    const stages: A.StageDecl[] = [];
    while (this.la() === K.StageKw) stages.push(this.stageDecl());
    const close = this.expect(K.RBrace);
    return { type: "RepeatDecl", name, count, ...(init ? { init } : {}), stages, start: this.starts[kw]!, end: this.ends[close]! };
  }

  private recipeParam(): A.RecipeParam {
    const name = this.name();
    this.expect(K.Colon);
    const paramType = this.typeExpr();
    let def: A.Expr | undefined;
    if (this.la() === K.Equals) {
      this.p++;
      def = this.expr();
    }
    return { name, paramType, ...(def ? { default: def } : {}), start: name.start, end: def?.end ?? paramType.end };
  }

  private stageDecl(): A.StageDecl {
    const kw = this.expect(K.StageKw);
    const name = this.name();
    let annotation: A.TypeExpr | undefined;
    if (this.la() === K.Colon) {
      this.p++;
      annotation = this.typeExpr();
    }
    this.expect(K.Equals);
    const value = this.expr();
    return {
      type: "StageDecl",
      keyword: this.text.slice(this.starts[kw], this.ends[kw]) as StageKeyword,
      keywordSpan: { start: this.starts[kw]!, end: this.ends[kw]! },
      name,
      ...(annotation ? { annotation } : {}),
      value,
      start: this.starts[kw]!,
      end: value.end,
    };
  }

  expr(): A.Expr {
    const head = this.primary();
    if (this.la() !== K.Pipe) return head;
    const steps: A.Call[] = [];
    while (this.la() === K.Pipe) {
      this.p++;
      steps.push(this.call());
    }
    return { type: "Pipeline", head, steps, start: head.start, end: steps[steps.length - 1]!.end };
  }

  private primary(): A.Expr {
    const k = this.la();
    if (isName(k)) {
      const k2 = this.la(2);
      return k2 === K.LParen || k2 === K.LBrace ? this.call() : this.reference();
    }
    switch (k) {
      case K.Str:
      case K.Raw:
      case K.Num:
      case K.Dur:
      case K.True:
      case K.False:
      case K.Null:
        return this.literal();
      case K.LBracket:
        return this.list();
      case K.LBrace: {
        const block = this.block();
        return { type: "Record", block, start: block.start, end: block.end };
      }
      default:
        return giveUp();
    }
  }

  private call(): A.Call {
    const callee = this.name();
    const args: A.Arg[] = [];
    let parens = false;
    let block: A.Block | undefined;
    let end: number;
    if (this.la() === K.LParen) {
      this.p++;
      parens = true;
      if (this.la() !== K.RParen) {
        args.push(this.arg());
        while (this.la() === K.Comma && this.la(2) !== K.RParen) {
          this.p++;
          args.push(this.arg());
        }
        if (this.la() === K.Comma) this.p++;
      }
      end = this.ends[this.expect(K.RParen)]!;
      if (this.la() === K.LBrace) {
        block = this.block();
        end = block.end;
      }
    } else {
      block = this.block();
      end = block.end;
    }
    return { type: "Call", callee, parens, args, ...(block ? { block } : {}), start: callee.start, end };
  }

  private arg(): A.Arg {
    let name: A.Name | undefined;
    if (isName(this.la()) && this.la(2) === K.Colon) {
      name = this.name();
      this.p++;
    }
    const value = this.expr();
    return { ...(name ? { name } : {}), value, start: name?.start ?? value.start, end: value.end };
  }

  private block(): A.Block {
    const open = this.expect(K.LBrace);
    const entries: A.Entry[] = [];
    while (this.la() === K.Str || isName(this.la())) {
      entries.push(this.entry());
      if (this.la() === K.Comma) this.p++;
    }
    const close = this.expect(K.RBrace);
    return { entries, start: this.starts[open]!, end: this.ends[close]! };
  }

  private entry(): A.Entry {
    const key: A.Name[] = [];
    let quoted = false;
    let start: number;
    if (this.la() === K.Str) {
      const s = this.p++;
      quoted = true;
      start = this.starts[s]!;
      key.push({ text: decodeString(this.text.slice(this.starts[s], this.ends[s])), start, end: this.ends[s]! });
    } else {
      const first = this.name();
      start = first.start;
      key.push(first);
      while (this.la() === K.Dot) {
        this.p++;
        key.push(this.name());
      }
    }
    const opK = this.la();
    if (opK !== K.Equals && opK !== K.Colon) giveUp();
    this.p++;
    const value = this.expr();
    return { key, quoted, op: opK === K.Equals ? "=" : ":", value, start, end: value.end };
  }

  private reference(): A.Reference {
    const path = [this.name()];
    let index: A.Reference["index"];
    if (this.la() === K.LBracket) {
      const open = this.p++;
      const k = this.expect(K.Num);
      const close = this.expect(K.RBracket);
      index = { value: decodeNumber(this.text.slice(this.starts[k], this.ends[k])), start: this.starts[open]!, end: this.ends[close]! };
    }
    while (this.la() === K.Dot) {
      this.p++;
      path.push(this.name());
    }
    const end = path.length > 1 ? path[path.length - 1]!.end : (index?.end ?? path[0]!.end);
    return { type: "Reference", path, ...(index ? { index } : {}), start: path[0]!.start, end };
  }

  private literal(): A.Literal {
    const i = this.p++;
    const raw = this.text.slice(this.starts[i], this.ends[i]);
    const lit = (kind: A.Literal["kind"], value: A.LiteralValue): A.Literal => ({ type: "Literal", kind, value, raw, start: this.starts[i]!, end: this.ends[i]! });
    switch (this.kinds[i]) {
      case K.Str:
        return lit("string", decodeString(raw));
      case K.Raw:
        return lit("raw", decodeRawString(raw));
      case K.Num:
        return lit("number", decodeNumber(raw));
      case K.Dur:
        return lit("duration", { duration_ms: decodeDuration(raw) });
      case K.True:
        return lit("bool", true);
      case K.False:
        return lit("bool", false);
      default:
        return lit("null", null);
    }
  }

  private list(): A.ListExpr {
    const open = this.expect(K.LBracket);
    const items: A.Expr[] = [];
    if (this.la() !== K.RBracket) {
      items.push(this.expr());
      while (this.la() === K.Comma && this.la(2) !== K.RBracket) {
        this.p++;
        items.push(this.expr());
      }
      if (this.la() === K.Comma) this.p++;
    }
    const close = this.expect(K.RBracket);
    return { type: "List", items, start: this.starts[open]!, end: this.ends[close]! };
  }
}

/** The tree of a well-formed file, or undefined when anything is off (then the Chevrotain parser decides). */
export function fastParse(text: string): { imports: A.Import[]; decls: A.Decl[]; comments: A.Comment[] } | undefined {
  try {
    const scanned = scan(text);
    const r = new Parser(text, scanned).program();
    return { ...r, comments: scanned.comments };
  } catch (e) {
    if (e instanceof GiveUp) return undefined;
    throw e;
  }
}
