import { EmbeddedActionsParser, EOF, tokenMatcher, type IOrAlt, type IToken } from "chevrotain";
import { error, type Diagnostic } from "../diagnostics/diagnostic.js";
import { SourceFile } from "../diagnostics/source.js";
import type * as A from "./ast.js";
import type { StageKeyword } from "../core/ir.js";
import * as T from "./lexer.js";
import { fastParse } from "./fast-parser.js";
import { decodeDuration, decodeNumber, decodeRawString, decodeString } from "./literals.js";

const span = (start: number, end: number): A.Span => ({ start, end });
const tokEnd = (t: IToken): number => t.startOffset + t.image.length;
const nameOf = (t: IToken): A.Name => ({ text: t.image, start: t.startOffset, end: tokEnd(t) });

/**
 * The recipe grammar of grammar/itp.ebnf, building the AST directly (embedded actions are faster than a CST and a
 * visitor, which matters for Flan-scale recipes). Recovery is on: a parse returns a tree and all syntax errors.
 */
export class ItpParser extends EmbeddedActionsParser {
  /**
   * @param validate run Chevrotain's grammar validations (ambiguities, left recursion). They cost tens of
   *   milliseconds at every start-up, so the CLI skips them and a test runs them instead.
   */
  constructor(validate = false) {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3, skipValidations: !validate });
    this.performSelfAnalysis();
  }


  program = this.RULE("program", (): { imports: A.Import[]; decls: A.Decl[] } => {
    const imports: A.Import[] = [];
    const decls: A.Decl[] = [];
    this.MANY(() => {
      this.OR([
        { ALT: () => push(imports, this.SUBRULE(this.importDecl)) },
        { ALT: () => push(decls, this.SUBRULE(this.typeDecl)) },
        { ALT: () => push(decls, this.SUBRULE(this.recipeDecl)) },
        { ALT: () => push(decls, this.SUBRULE(this.stageDecl)) },
        { ALT: () => push(decls, this.SUBRULE(this.repeatDecl)) },
      ]);
    });
    return { imports, decls };
  });

  private importDecl = this.RULE("importDecl", (): A.Import => {
    const kw = this.CONSUME(T.Import);
    let path = "";
    let std = false;
    let pathStart = 0;
    let pathEnd = 0;
    this.OR([
      {
        ALT: () => {
          const s = this.CONSUME(T.StringLit);
          this.ACTION(() => {
            path = decodeString(s.image);
            pathStart = s.startOffset;
            pathEnd = tokEnd(s);
          });
        },
      },
      {
        ALT: () => {
          const first = this.CONSUME(T.Name);
          const parts: IToken[] = [first];
          this.MANY(() => {
            this.CONSUME(T.Slash);
            parts.push(this.CONSUME2(T.Name));
          });
          this.ACTION(() => {
            std = true;
            path = parts.map((p) => p.image).join("/");
            pathStart = first.startOffset;
            pathEnd = tokEnd(parts[parts.length - 1]!);
          });
        },
      },
    ]);
    const names: { name: A.Name; alias?: A.Name }[] = [];
    this.CONSUME(T.LBrace);
    const importName = (n: IToken, alias: IToken | undefined) =>
      this.ACTION(() => names.push({ name: nameOf(n), ...(alias ? { alias: nameOf(alias) } : {}) }));
    this.OPTION(() => {
      const n = this.CONSUME3(T.Name);
      let alias: IToken | undefined;
      this.OPTION2(() => {
        this.CONSUME(T.As);
        alias = this.CONSUME4(T.Name);
      });
      importName(n, alias);
      this.MANY2({
        GATE: () => this.LA(2).tokenType !== T.RBrace,
        DEF: () => {
          this.CONSUME(T.Comma);
          const n2 = this.CONSUME5(T.Name);
          let alias2: IToken | undefined;
          this.OPTION3(() => {
            this.CONSUME2(T.As);
            alias2 = this.CONSUME6(T.Name);
          });
          importName(n2, alias2);
        },
      });
      this.OPTION4(() => this.CONSUME2(T.Comma));
    });
    const close = this.CONSUME(T.RBrace);
    return this.ACTION(() => ({
      type: "Import" as const,
      path,
      std,
      pathSpan: span(pathStart, pathEnd),
      names,
      ...span(kw.startOffset, tokEnd(close)),
    }));
  });

  private typeExpr = this.RULE("typeExpr", (): A.TypeExpr => {
    const n = this.CONSUME(T.Name);
    const args: A.TypeExpr[] = [];
    let end = 0;
    this.OPTION(() => {
      this.CONSUME(T.LAngle);
      this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => push(args, this.SUBRULE(this.typeExpr)) });
      const close = this.CONSUME(T.RAngle);
      this.ACTION(() => (end = tokEnd(close)));
    });
    return this.ACTION(() => ({ name: nameOf(n), args, ...span(n.startOffset, end || tokEnd(n)) }));
  });

  private typeDecl = this.RULE("typeDecl", (): A.TypeDecl => {
    const kw = this.CONSUME(T.Type);
    const n = this.CONSUME(T.Name);
    this.CONSUME(T.Equals);
    this.CONSUME(T.LBrace);
    const fields: A.FieldDecl[] = [];
    this.MANY(() => {
      const f = this.CONSUME2(T.Name);
      let optional = false;
      this.OPTION(() => {
        this.CONSUME(T.Question);
        optional = true;
      });
      this.CONSUME(T.Colon);
      const t = this.SUBRULE(this.typeExpr);
      this.OPTION2(() => this.CONSUME(T.Comma));
      this.ACTION(() => t && fields.push({ name: nameOf(f), optional, fieldType: t, ...span(f.startOffset, t.end) }));
    });
    const close = this.CONSUME(T.RBrace);
    return this.ACTION(() => ({ type: "TypeDecl" as const, name: nameOf(n), fields, ...span(kw.startOffset, tokEnd(close)) }));
  });

  private recipeDecl = this.RULE("recipeDecl", (): A.RecipeDecl => {
    const kw = this.CONSUME(T.Recipe);
    const n = this.CONSUME(T.Name);
    const params: A.RecipeParam[] = [];
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      push(params, this.SUBRULE(this.recipeParam));
      this.MANY({
        GATE: () => this.LA(2).tokenType !== T.RParen,
        DEF: () => {
          this.CONSUME(T.Comma);
          push(params, this.SUBRULE2(this.recipeParam));
        },
      });
      this.OPTION4(() => this.CONSUME2(T.Comma));
    });
    const rparen = this.CONSUME(T.RParen);
    let returns: A.TypeExpr | undefined;
    this.OPTION2(() => {
      this.CONSUME(T.Arrow);
      returns = this.SUBRULE(this.typeExpr);
    });
    this.CONSUME(T.LBrace);
    const stages: A.StageDecl[] = [];
    const repeats: A.RepeatDecl[] = [];
    this.MANY2(() =>
      this.OR2([
        { ALT: () => push(stages, this.SUBRULE(this.stageDecl)) },
        { ALT: () => push(repeats, this.SUBRULE2(this.repeatDecl)) },
      ]),
    );
    let output: A.Name | undefined;
    this.OPTION3(() => {
      this.CONSUME(T.Output);
      const o = this.CONSUME2(T.Name);
      this.ACTION(() => (output = nameOf(o)));
    });
    const close = this.CONSUME(T.RBrace);
    return this.ACTION(() => ({
      type: "RecipeDecl" as const,
      name: nameOf(n),
      params,
      paramsEnd: tokEnd(rparen),
      ...(returns ? { returns } : {}),
      stages,
      ...(repeats.length > 0 ? { repeats } : {}),
      ...(output ? { output } : {}),
      ...span(kw.startOffset, tokEnd(close)),
    }));
  });

  private repeatDecl = this.RULE("repeatDecl", (): A.RepeatDecl => {
    const kw = this.CONSUME(T.Repeat);
    const n = this.CONSUME(T.Name);
    this.CONSUME(T.LParen);
    const count = this.SUBRULE(this.expr);
    this.CONSUME(T.RParen);
    let init: A.Block | undefined;
    this.OPTION(() => {
      this.CONSUME(T.From);
      init = this.SUBRULE(this.block);
    });
    this.CONSUME(T.LBrace);
    const stages: A.StageDecl[] = [];
    this.MANY(() => push(stages, this.SUBRULE(this.stageDecl)));
    const close = this.CONSUME(T.RBrace);
    return this.ACTION(() => ({
      type: "RepeatDecl" as const,
      name: nameOf(n),
      count,
      ...(init ? { init } : {}),
      stages,
      ...span(kw.startOffset, tokEnd(close)),
    }));
  });

  private recipeParam = this.RULE("recipeParam", (): A.RecipeParam => {
    const n = this.CONSUME(T.Name);
    this.CONSUME(T.Colon);
    const t = this.SUBRULE(this.typeExpr);
    let def: A.Expr | undefined;
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      def = this.SUBRULE(this.expr);
    });
    return this.ACTION(() => (t ? { name: nameOf(n), paramType: t, ...(def ? { default: def } : {}), ...span(n.startOffset, def?.end ?? t.end) } : (undefined as unknown as A.RecipeParam)));
  });

  private stageDecl = this.RULE("stageDecl", (): A.StageDecl => {
    const kw = this.CONSUME(T.StageKw);
    const n = this.CONSUME(T.Name);
    let annotation: A.TypeExpr | undefined;
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      annotation = this.SUBRULE(this.typeExpr);
    });
    this.CONSUME(T.Equals);
    const value = this.SUBRULE(this.expr);
    return this.ACTION(() => ({
      type: "StageDecl" as const,
      keyword: kw.image as StageKeyword,
      keywordSpan: span(kw.startOffset, tokEnd(kw)),
      name: nameOf(n),
      ...(annotation ? { annotation } : {}),
      value,
      ...span(kw.startOffset, value?.end ?? tokEnd(n)),
    }));
  });

  expr = this.RULE("expr", (): A.Expr => {
    const head = this.SUBRULE(this.primary);
    const steps: A.Call[] = [];
    this.MANY(() => {
      this.CONSUME(T.Pipe);
      push(steps, this.SUBRULE(this.call));
    });
    return this.ACTION(() =>
      steps.length === 0 || !head ? head : { type: "Pipeline" as const, head, steps, ...span(head.start, steps[steps.length - 1]!.end) },
    );
  });

  // Alternatives that capture no locals are built once: allocating them on every call is a hot path at Flan scale.
  private primaryAlts?: IOrAlt<A.Expr>[];
  private primary = this.RULE("primary", (): A.Expr => {
    return this.OR(
      (this.primaryAlts ??= [
        { GATE: () => this.LA(2).tokenType === T.LParen || this.LA(2).tokenType === T.LBrace, ALT: () => this.SUBRULE(this.call) },
        { ALT: () => this.SUBRULE(this.reference) },
        { ALT: () => this.SUBRULE(this.literal) },
        { ALT: () => this.SUBRULE(this.list) },
        { ALT: () => this.SUBRULE(this.record) },
      ]),
    );
  });

  private call = this.RULE("call", (): A.Call => {
    const n = this.CONSUME(T.Name);
    const args: A.Arg[] = [];
    let parens = false;
    let end = 0;
    let block: A.Block | undefined;
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.OPTION(() => {
            push(args, this.SUBRULE(this.arg));
            this.MANY({
              GATE: () => this.LA(2).tokenType !== T.RParen,
              DEF: () => {
                this.CONSUME(T.Comma);
                push(args, this.SUBRULE2(this.arg));
              },
            });
            this.OPTION3(() => this.CONSUME2(T.Comma));
          });
          const close = this.CONSUME(T.RParen);
          this.OPTION2(() => (block = this.SUBRULE(this.block)));
          this.ACTION(() => {
            parens = true;
            end = block?.end ?? tokEnd(close);
          });
        },
      },
      {
        ALT: () => {
          block = this.SUBRULE2(this.block);
          this.ACTION(() => (end = block?.end ?? tokEnd(n)));
        },
      },
    ]);
    return this.ACTION(() => ({ type: "Call" as const, callee: nameOf(n), parens, args, ...(block ? { block } : {}), ...span(n.startOffset, end || tokEnd(n)) }));
  });

  private arg = this.RULE("arg", (): A.Arg => {
    let name: IToken | undefined;
    this.OPTION({
      GATE: () => this.LA(2).tokenType === T.Colon,
      DEF: () => {
        name = this.CONSUME(T.Name);
        this.CONSUME(T.Colon);
      },
    });
    const value = this.SUBRULE(this.expr);
    return this.ACTION(() => ({ ...(name ? { name: nameOf(name) } : {}), value, ...span(name?.startOffset ?? value?.start ?? 0, value?.end ?? 0) }));
  });

  private block = this.RULE("block", (): A.Block => {
    const open = this.CONSUME(T.LBrace);
    const entries: A.Entry[] = [];
    this.MANY(() => {
      push(entries, this.SUBRULE(this.entry));
      this.OPTION(() => this.CONSUME(T.Comma));
    });
    const close = this.CONSUME(T.RBrace);
    return this.ACTION(() => ({ entries, ...span(open.startOffset, tokEnd(close)) }));
  });

  private entry = this.RULE("entry", (): A.Entry => {
    const key: A.Name[] = [];
    let quoted = false;
    let start = 0;
    this.OR([
      {
        ALT: () => {
          const s = this.CONSUME(T.StringLit);
          this.ACTION(() => {
            quoted = true;
            start = s.startOffset;
            key.push({ text: decodeString(s.image), start: s.startOffset, end: tokEnd(s) });
          });
        },
      },
      {
        ALT: () => {
          const first = this.CONSUME(T.Name);
          this.ACTION(() => {
            start = first.startOffset;
            key.push(nameOf(first));
          });
          this.MANY(() => {
            this.CONSUME(T.Dot);
            const p = this.CONSUME2(T.Name);
            this.ACTION(() => key.push(nameOf(p)));
          });
        },
      },
    ]);
    const op = this.OR2([{ ALT: () => this.CONSUME(T.Equals) }, { ALT: () => this.CONSUME(T.Colon) }]);
    const value = this.SUBRULE(this.expr);
    return this.ACTION(() => ({ key, quoted, op: op.image as "=" | ":", value, ...span(start, value?.end ?? tokEnd(op)) }));
  });

  private reference = this.RULE("reference", (): A.Reference => {
    const path: A.Name[] = [];
    const first = this.CONSUME(T.Name);
    this.ACTION(() => path.push(nameOf(first)));
    let index: A.Reference["index"];
    this.OPTION(() => {
      const open = this.CONSUME(T.LBracket);
      const k = this.CONSUME(T.NumberLit);
      const close = this.CONSUME(T.RBracket);
      this.ACTION(() => (index = { value: decodeNumber(k.image), ...span(open.startOffset, tokEnd(close)) }));
    });
    this.MANY(() => {
      this.CONSUME(T.Dot);
      const p = this.CONSUME2(T.Name);
      this.ACTION(() => path.push(nameOf(p)));
    });
    return this.ACTION(() => ({ type: "Reference" as const, path, ...(index ? { index } : {}), ...span(path[0]?.start ?? 0, path.length > 1 ? path[path.length - 1]!.end : (index?.end ?? path[0]?.end ?? 0)) }));
  });

  private literalAlts?: IOrAlt<A.Literal>[];
  private literal = this.RULE("literal", (): A.Literal => {
    return this.OR(
      (this.literalAlts ??= [
        { ALT: () => lit(this.CONSUME(T.StringLit), "string", decodeString) },
        { ALT: () => lit(this.CONSUME(T.RawString), "raw", decodeRawString) },
        { ALT: () => lit(this.CONSUME(T.NumberLit), "number", decodeNumber) },
        { ALT: () => lit(this.CONSUME(T.Duration), "duration", (r) => ({ duration_ms: decodeDuration(r) })) },
        { ALT: () => lit(this.CONSUME(T.True), "bool", () => true) },
        { ALT: () => lit(this.CONSUME(T.False), "bool", () => false) },
        { ALT: () => lit(this.CONSUME(T.Null), "null", () => null) },
      ]),
    );
  });

  private list = this.RULE("list", (): A.ListExpr => {
    const open = this.CONSUME(T.LBracket);
    const items: A.Expr[] = [];
    this.OPTION(() => {
      push(items, this.SUBRULE(this.expr));
      this.MANY({
        GATE: () => this.LA(2).tokenType !== T.RBracket,
        DEF: () => {
          this.CONSUME(T.Comma);
          push(items, this.SUBRULE2(this.expr));
        },
      });
      this.OPTION2(() => this.CONSUME2(T.Comma));
    });
    const close = this.CONSUME(T.RBracket);
    return this.ACTION(() => ({ type: "List" as const, items, ...span(open.startOffset, tokEnd(close)) }));
  });

  private record = this.RULE("record", (): A.RecordExpr => {
    const block = this.SUBRULE(this.block);
    return this.ACTION(() => (block ? { type: "Record" as const, block, ...span(block.start, block.end) } : (undefined as unknown as A.RecordExpr)));
  });
}

function push<X>(xs: X[], x: X | undefined): void {
  // Recovered sub-rules yield undefined; the tree keeps what parsed.
  if (x !== undefined && x !== null) xs.push(x);
}

function lit(t: IToken, kind: A.Literal["kind"], decode: (raw: string) => A.LiteralValue): A.Literal {
  // During grammar recording the token is a placeholder; decoding it must not throw.
  let value: A.LiteralValue = null;
  try {
    value = decode(t.image);
  } catch {
    value = null;
  }
  return { type: "Literal", kind, value, raw: t.image, start: t.startOffset, end: tokEnd(t) };
}

let shared: ItpParser | undefined;
/** One parser instance: building it (grammar analysis) is the expensive part. */
export function parserInstance(): ItpParser {
  return (shared ??= new ItpParser());
}

export interface ParseResult {
  readonly module: A.Module;
  readonly diagnostics: Diagnostic[];
}

/**
 * Parse a module. Well-formed text takes the fast path (fast-parser.ts); anything else, and every file when
 * `fast` is false, goes through the Chevrotain parser, which reports and recovers from errors.
 */
export function parse(text: string, path: string, opts: { fast?: boolean } = {}): ParseResult {
  const file = new SourceFile(path, text);
  if (opts.fast !== false) {
    const quick = fastParse(text);
    if (quick) {
      attachDocs(quick.decls, quick.comments);
      return { module: { file, imports: quick.imports, decls: quick.decls, comments: quick.comments, brokenNames: [] }, diagnostics: [] };
    }
  }
  const diagnostics: Diagnostic[] = [];
  const lexed = T.itpLexer.tokenize(text);
  // Offsets where the lexer found something wrong; the parser's complaints that follow from them are not reported.
  const lexErrorAt: number[] = [];
  for (const t of (lexed.groups["invalid"] ?? []) as IToken[]) {
    const raw = t.tokenType === T.UnterminatedRawString;
    const closed = !raw && t.image.length > 1 && t.image.endsWith('"');
    const message = raw ? 'unterminated raw string: no closing `"""`' : closed ? "invalid escape in string" : "unterminated string";
    const hint = raw
      ? 'close it with `"""`'
      : closed
        ? "the escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX \\u{X...}; a raw string `\"\"\"...\"\"\"` takes text as it is"
        : 'close the string with `"` on the same line, or use a raw string `"""..."""` for several lines';
    const end = raw ? t.startOffset + 3 : t.startOffset + t.image.length;
    diagnostics.push(error("E003", message, { file, start: t.startOffset, end }, hint));
    lexErrorAt.push(t.startOffset);
  }
  let tokens = lexed.tokens;
  if (lexed.errors.length > 0) {
    // One odd character is one error: the rest of its line is dropped rather than parsed as noise.
    const dropped: [number, number][] = [];
    for (const e of lexed.errors) {
      if (dropped.some(([s, en]) => e.offset >= s && e.offset < en)) continue;
      const lineEnd = e.offset + lineRest(text, e.offset);
      dropped.push([e.offset, lineEnd]);
      diagnostics.push(error("E002", e.message, { file, start: e.offset, end: e.offset + 1 }, "remove the character (comments start with `//`), or put it inside a string"));
      lexErrorAt.push(e.offset);
    }
    tokens = tokens.filter((t) => !dropped.some(([s, en]) => t.startOffset >= s && t.startOffset < en));
  }
  const comments: A.Comment[] = ((lexed.groups["comments"] ?? []) as IToken[]).map((t) => ({
    text: t.image,
    doc: t.tokenType === T.DocComment,
    start: t.startOffset,
    end: tokEnd(t),
  }));
  const parser = parserInstance();
  let result: { imports: A.Import[]; decls: A.Decl[]; brokenNames?: A.Name[] } | undefined;
  if (lexErrorAt.length === 0) {
    parser.input = tokens;
    result = parser.program();
    if (parser.errors.length > 0) result = undefined;
  }
  if (!result) result = parseInChunks(parser, tokens, text, file, lexErrorAt.sort((a, b) => a - b), diagnostics);
  attachDocs(result.decls, comments);
  return { module: { file, imports: result.imports, decls: result.decls, comments, brokenNames: result.brokenNames ?? [] }, diagnostics };
}

/**
 * The slow path, for a file with errors. Declarations starting in column 1 are parsed one by one, so a mistake in one
 * (a missing `}`) cannot swallow the next, and each reports at most its first syntax error: Chevrotain's in-rule
 * recovery otherwise turns one mistake into a cascade. Declarations whose parse failed are kept, marked `broken`:
 * the checker treats their names as declared but says nothing more about them.
 */
function parseInChunks(parser: ItpParser, tokens: IToken[], text: string, file: SourceFile, lexErrorAt: number[], diagnostics: Diagnostic[]) {
  const starts: number[] = [];
  for (let i = 0; i < tokens.length; i++) if (i === 0 || startsDeclaration(tokens, i, text)) starts.push(i);
  const imports: A.Import[] = [];
  const decls: A.Decl[] = [];
  const brokenNames: A.Name[] = [];
  for (let c = 0; c < starts.length; c++) {
    const from = starts[c]!;
    const to = c + 1 < starts.length ? starts[c + 1]! : tokens.length;
    const chunkStart = tokens[from]!.startOffset;
    const next = tokens[to];
    const chunkEnd = next ? next.startOffset : text.length;
    parser.input = tokens.slice(from, to);
    const r = parser.program() ?? { imports: [], decls: [] };
    const hasLexError = lexErrorAt.some((o) => o >= chunkStart && o < chunkEnd) || (c === 0 && lexErrorAt.some((o) => o < chunkStart));
    const first = parser.errors[0];
    // Input left over after complete declarations (a stray `)`) leaves those declarations intact.
    const leftover = first !== undefined && first.name === "NotAllInputParsedException";
    if (first && !hasLexError) {
      const atEnd = first.token.tokenType === EOF || Number.isNaN(first.token.startOffset);
      const start = atEnd ? chunkEnd : first.token.startOffset;
      const found = atEnd ? next : first.token;
      const message = leftover ? `unexpected '${clip(first.token.image)}'` : syntaxMessage(first.message, found ?? first.token, found === undefined);
      const hint = leftover ? "it does not start a declaration (`dataset x = ...`), an import or a type; remove it" : syntaxHint(first.message);
      diagnostics.push(error("E001", message, { file, start, end: found && !atEnd ? tokEnd(found) : start }, hint));
    }
    const broken = (first !== undefined && !leftover) || hasLexError;
    for (const imp of r.imports) {
      if (broken) (imp as { broken?: boolean }).broken = true;
      imports.push(imp);
    }
    for (const d of r.decls) {
      if (broken) (d as { broken?: boolean }).broken = true;
      decls.push(d);
    }
    // The name a broken declaration was giving, even if too little of it parsed to make a node.
    const kw = tokens[from]!.tokenType;
    const nameTok = tokens[from + 1];
    if (broken && (kw === T.StageKw || kw === T.Type || kw === T.Recipe || kw === T.Repeat) && nameTok && tokenMatcher(nameTok, T.Name)) brokenNames.push(nameOf(nameTok));
  }
  return { imports, decls, brokenNames };
}

/** A token in column 1 that begins a top-level declaration: `import`, `type X =`, `recipe X(`, `dataset x`. */
function startsDeclaration(tokens: IToken[], i: number, text: string): boolean {
  const t = tokens[i]!;
  if (t.startOffset > 0 && text[t.startOffset - 1] !== "\n") return false;
  const next = tokens[i + 1]?.tokenType;
  switch (t.tokenType) {
    case T.Import:
      return true;
    case T.Type:
    case T.Recipe:
    case T.Repeat:
    case T.StageKw:
      return next !== T.Equals && next !== T.Colon && next !== T.Dot;
    default:
      return false;
  }
}

function clip(s: string): string {
  return s.length > 30 ? s.slice(0, 30) + "…" : s;
}

function lineRest(text: string, offset: number): number {
  const nl = text.indexOf("\n", offset);
  return (nl < 0 ? text.length : nl) - offset;
}

function syntaxMessage(message: string, t: IToken, atEof: boolean): string {
  const found = atEof ? "end of file" : `'${clip(t.image)}'`;
  const expecting = /Expecting:? (?:token of type )?(?:-->\s*)?(.*?)(?:\s*<--)?(?: but found|$)/s.exec(message);
  if (expecting && !/one of these possible Token sequences/.test(message)) return `expected ${expecting[1]!.trim()}, found ${found}`;
  const alts = /one of these possible Token sequences:\s*([\s\S]*?)\s*but found/.exec(message);
  if (alts) {
    const options = [...alts[1]!.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]!.split(",")[0]!.trim());
    const uniq = [...new Set(options)].slice(0, 6);
    return `unexpected ${found}; expected ${uniq.join(" or ")}`;
  }
  return `unexpected ${found}`;
}

function syntaxHint(message: string): string {
  if (/'\}'|RBrace/.test(message)) return "check that every `{` has a matching `}`";
  if (/'\)'|RParen/.test(message)) return "check that every `(` has a matching `)`";
  if (/'\]'|RBracket/.test(message)) return "check that every `[` has a matching `]`";
  if (/'='/.test(message)) return "a declaration reads `<keyword> <name> = <stage>(...)`, a parameter `<name> = <value>`";
  return "a recipe is a list of `import`, `type`, `recipe` and stage declarations (`dataset x = ...`)";
}

/** `///` comments directly before a declaration become its doc string. */
function attachDocs(decls: A.Decl[], comments: A.Comment[]): void {
  const docComments = comments.filter((c) => c.doc); // in source order
  if (docComments.length === 0) return;
  // The first doc comment starting at or after `offset` (binary search: one pass per declaration, not per comment).
  const firstFrom = (offset: number) => {
    let lo = 0;
    let hi = docComments.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (docComments[mid]!.start < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const visit = (list: A.Decl[], from: number) => {
    let prevEnd = from;
    for (const d of list) {
      const docs: A.Comment[] = [];
      for (let i = firstFrom(prevEnd); i < docComments.length && docComments[i]!.end <= d.start; i++) docs.push(docComments[i]!);
      if (docs.length > 0) (d as { doc?: string }).doc = docs.map((c) => c.text.replace(/^\/\/\/ ?/, "")).join("\n");
      if (d.type === "RecipeDecl") visit([...d.stages, ...(d.repeats ?? [])].sort((a, b) => a.start - b.start), d.name.end);
      if (d.type === "RepeatDecl") visit(d.stages, d.name.end);
      prevEnd = d.end;
    }
  };
  visit(decls, 0);
}

/** Parse a lone expression (a `--set` value); the whole text must be one expression. */
export function parseExpression(text: string, path: string): { expr?: A.Expr; file: SourceFile; diagnostics: Diagnostic[] } {
  const file = new SourceFile(path, text);
  const lexed = T.itpLexer.tokenize(text);
  const diagnostics: Diagnostic[] = lexed.errors.map((e) => error("E002", e.message, { file, start: e.offset, end: e.offset + 1 }));
  const parser = parserInstance();
  parser.input = lexed.tokens;
  const expr = parser.expr();
  for (const e of parser.errors) {
    const atEof = e.token.tokenType === EOF || Number.isNaN(e.token.startOffset);
    const start = atEof ? text.length : e.token.startOffset;
    diagnostics.push(error("E001", syntaxMessage(e.message, e.token, atEof), { file, start, end: atEof ? start : tokEnd(e.token) }));
  }
  return { ...(expr && diagnostics.length === 0 ? { expr } : {}), file, diagnostics };
}
