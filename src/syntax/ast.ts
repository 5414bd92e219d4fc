import type { SourceFile } from "../diagnostics/source.js";
import type { StageKeyword } from "../core/ir.js";

/** Every node carries its source span as offsets into its module's file. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

export interface Name extends Span {
  readonly text: string;
}

export interface Comment extends Span {
  readonly text: string;
  readonly doc: boolean;
}

export interface Module {
  readonly file: SourceFile;
  readonly imports: Import[];
  readonly decls: Decl[];
  readonly comments: Comment[];
  /** Names of declarations too broken by syntax errors to make a node: declared, so uses stay quiet. */
  readonly brokenNames: Name[];
}

export interface Import extends Span {
  readonly type: "Import";
  /** Set when the import had a syntax error: its names are declared, the module is not loaded. */
  readonly broken?: boolean;
  /** `std/alpaca` (std: true) or a relative path string. */
  readonly path: string;
  readonly std: boolean;
  readonly pathSpan: Span;
  readonly names: { name: Name; alias?: Name }[];
}

export type Decl = TypeDecl | RecipeDecl | StageDecl | RepeatDecl;

export interface TypeDecl extends Span {
  readonly type: "TypeDecl";
  /** Set when the declaration had a syntax error: it is declared, but not checked further. */
  readonly broken?: boolean;
  readonly name: Name;
  readonly fields: FieldDecl[];
  readonly doc?: string;
}

export interface FieldDecl extends Span {
  readonly name: Name;
  readonly optional: boolean;
  readonly fieldType: TypeExpr;
}

export interface TypeExpr extends Span {
  readonly name: Name;
  readonly args: TypeExpr[];
}

export interface RecipeDecl extends Span {
  readonly type: "RecipeDecl";
  /** Set when the declaration had a syntax error: it is declared, but not checked further. */
  readonly broken?: boolean;
  readonly name: Name;
  readonly params: RecipeParam[];
  /** Offset just after the `)` closing the parameters. */
  readonly paramsEnd: number;
  readonly returns?: TypeExpr;
  readonly stages: StageDecl[];
  /** `repeat` blocks of the body (absent when there are none); the formatter interleaves them with `stages` by position. */
  readonly repeats?: RepeatDecl[];
  readonly output?: Name;
  readonly doc?: string;
}

export interface RecipeParam extends Span {
  readonly name: Name;
  readonly paramType: TypeExpr;
  readonly default?: Expr;
}

export interface StageDecl extends Span {
  readonly type: "StageDecl";
  /** Set when the declaration had a syntax error: it is declared, but not checked further. */
  readonly broken?: boolean;
  readonly keyword: StageKeyword;
  readonly keywordSpan: Span;
  readonly name: Name;
  readonly annotation?: TypeExpr;
  readonly value: Expr;
  readonly doc?: string;
}

/**
 * `repeat round(2) from { model: seed } { ... }`: the stages of the body, once per round, unrolled at check time into
 * stages named `round[1].x`, `round[2].x`. In round k, `prev.x` is round k-1's `x` (round 1's comes from the `from`
 * record); elsewhere `round[k].x` and `round.last.x` name one round's stage.
 */
export interface RepeatDecl extends Span {
  readonly type: "RepeatDecl";
  readonly broken?: boolean;
  readonly name: Name;
  /** The number of rounds: an int literal or a recipe parameter. */
  readonly count: Expr;
  /** What `prev.x` means in round 1. */
  readonly init?: Block;
  readonly stages: StageDecl[];
  readonly doc?: string;
}

export type Expr = Pipeline | Call | Reference | Literal | ListExpr | RecordExpr;

export interface Pipeline extends Span {
  readonly type: "Pipeline";
  readonly head: Expr;
  readonly steps: Call[];
}

export interface Call extends Span {
  readonly type: "Call";
  readonly callee: Name;
  /** Whether the source wrote `( )`; a call may have only a block. */
  readonly parens: boolean;
  readonly args: Arg[];
  readonly block?: Block;
}

export interface Arg extends Span {
  readonly name?: Name;
  readonly value: Expr;
}

export interface Block extends Span {
  readonly entries: Entry[];
}

export interface Entry extends Span {
  /** Dotted key (`a.b`) or a quoted one. */
  readonly key: Name[];
  readonly quoted: boolean;
  /** `=` sets a parameter; `:` adds a component or a record field. */
  readonly op: "=" | ":";
  readonly value: Expr;
}

export interface Reference extends Span {
  readonly type: "Reference";
  readonly path: Name[];
  /** `round[2].x`: the round its first name selects (a `repeat` block's). */
  readonly index?: { readonly value: number } & Span;
}

export type LiteralValue = string | number | boolean | null | { duration_ms: number };

export interface Literal extends Span {
  readonly type: "Literal";
  readonly kind: "string" | "raw" | "number" | "duration" | "bool" | "null";
  readonly value: LiteralValue;
  /** The text as written (numbers keep `52_000`). */
  readonly raw: string;
}

export interface ListExpr extends Span {
  readonly type: "List";
  readonly items: Expr[];
}

export interface RecordExpr extends Span {
  readonly type: "Record";
  readonly block: Block;
}
