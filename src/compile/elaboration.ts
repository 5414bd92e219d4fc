import type { z } from "zod";
import { error, type Code, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { SourceFile } from "../diagnostics/source.js";
import type { ParamMarker } from "../stages/schema.js";
import type { Registry } from "../stages/registry.js";
import type * as A from "../syntax/ast.js";
import { parseType } from "../types/parse-type.js";
import type { Ty } from "../types/types.js";
import type { IrStage, Json } from "../core/ir.js";
import type { LoadedModule } from "./modules.js";
import type { TypeResolver } from "./types.js";

// The vocabulary the elaborator's phases share: what an expression evaluates to, where it is evaluated, and the
// driver's services a phase may call (`Elab`). The phases (scope, stage-call, params, edges, stage-ir, recipes,
// reports) import this module, never the driver, so the driver can import them all.

/** What an expression evaluates to while elaborating: a stage's output, or a plain value. */
export type Val = { readonly t: "stage"; readonly id: string; readonly ty: Ty } | { readonly t: "json"; readonly v: Json } | { readonly t: "error" };

export const ERR: Val = { t: "error" };

/** Names visible inside a recipe instance: its parameters (already bound) and its inner stages. */
export interface Locals {
  /** The id of the instance's output stage. */
  readonly instanceId: string;
  /**
   * Prefix of its other stages' ids. Usually the instance id; when a recipe's output is itself a recipe instance,
   * the inner one gets its own namespace so the two instances' stages never share ids.
   */
  readonly ns: string;
  readonly recipe: A.RecipeDecl;
  readonly values: Map<string, Val>;
  /** Where each parameter's value was written at the instantiation: errors about it are reported there. */
  readonly origins: Map<string, Spot>;
  readonly stages: Map<string, A.StageDecl>;
  /** The recipe body's `repeat` blocks, by name. */
  readonly repeats: Map<string, A.RepeatDecl>;
  /** Overrides of inner stages' parameters written at the instantiation: `{ sized.min = 5 }`. */
  readonly innerOverrides: Map<string, { entry: A.Entry; env: Env }[]>;
  readonly outputName?: string;
}

export interface Env {
  readonly mod: LoadedModule;
  readonly locals?: Locals;
  /** Prefix for ids of stages declared at this level: "" in the entry module, "alpaca." in an imported one. */
  readonly prefix: string;
  /** Set inside a `repeat` block's body: the round being elaborated. */
  readonly round?: Round;
}

/** The rounds of a repeat block where it is declared: its count evaluated once, or undefined when it is not a constant. */
export interface RoundsOf {
  count(rep: A.RepeatDecl, outer: Env, base: string): number | undefined;
}

/** One round of a `repeat` block: its stages are `<base><name>[k].<stage>`. */
export interface Round {
  readonly decl: A.RepeatDecl;
  /** 1-based. */
  readonly k: number;
  readonly count: number;
  /** Where the block is declared (a recipe instance's or a module's environment), without a round. */
  readonly outer: Env;
  /** Prefix of the rounds' stage ids and memo keys: `tulu.` in an instance, the module's prefix at the top. */
  readonly base: string;
}

/** A place in some file: overrides from the command line live in their own. */
export interface Spot {
  readonly file: SourceFile;
  readonly span: A.Span;
}

/** A `--set` value, with the environment it is evaluated in (its own small module). */
export interface OverrideValue {
  readonly expr: A.Expr;
  readonly env: Env;
}

export interface Ctx {
  /** The id to give the stage this expression makes (the declaration's), if it makes one. */
  readonly id: string | undefined;
  readonly alloc: (kind: string) => string;
  readonly decl?: A.StageDecl;
  /** The inner stage's name, when elaborating a recipe's inner declaration (for instance overrides). */
  readonly innerName?: string;
  /** Namespace for the ids of stages made on the way (pipeline steps, a recipe instance's inner stages). */
  readonly ns?: string;
  sub(): Ctx;
}

function allocator(base: string, used: Set<string>): (kind: string) => string {
  return (kind) => {
    let id = `${base}.${kind}`;
    for (let n = 2; used.has(id); n++) id = `${base}.${kind}_${n}`;
    used.add(id);
    return id;
  };
}

export function ctxFor(id: string, used: Set<string>, decl?: A.StageDecl, ns = id): Ctx {
  const alloc = allocator(ns, used);
  const sub = (): Ctx => ({ id: undefined, alloc, sub });
  return { id, alloc, ns, ...(decl ? { decl, innerName: decl.name.text } : {}), sub };
}

export const noCtx: Ctx = {
  id: undefined,
  alloc: (k) => `anonymous.${k}`,
  sub: () => noCtx,
};

/**
 * What the phases may use of the elaborator driving them: the registry, the type resolver, the diagnostics and
 * stages collected so far, and expression evaluation (which calls back into the phases for nested stages).
 */
export interface Elab {
  readonly registry: Registry;
  readonly types: TypeResolver;
  readonly diagnostics: Diagnostic[];
  /** The stage instances made so far, by id. */
  readonly stages: Map<string, IrStage>;
  readonly usedIds: Set<string>;
  /** `--set` values by target id, then parameter. */
  readonly overrides: ReadonlyMap<string, ReadonlyMap<string, OverrideValue>>;
  /** `${target}\0${param}` of the overrides that matched. */
  readonly usedOverrides: Set<string>;
  /** Recipes being instantiated, innermost last; and every recipe instantiated so far. */
  readonly recipeStack: A.RecipeDecl[];
  readonly instantiated: Set<A.RecipeDecl>;
  err(code: Code, message: string, file: SourceFile, s: A.Span, hint?: string): void;
  expr(e: A.Expr, env: Env, ctx: Ctx, marker?: ParamMarker, schema?: z.ZodType): Val;
  reference(e: A.Reference, env: Env, marker?: ParamMarker): Val;
  /** How many rounds each repeat block has, evaluated once per place it is declared. */
  readonly rounds: RoundsOf;
  innerStage(d: A.StageDecl, env: Env): Val;
  /** A stage of a `repeat` block's body, in one round. */
  roundStage(d: A.StageDecl, round: Round): Val;
}

export function errorAt(diagnostics: Diagnostic[], code: Code, message: string, file: SourceFile, s: A.Span, hint?: string): void {
  diagnostics.push(error(code, message, { file, start: s.start, end: s.end }, hint));
}

const parsedTypes = new Map<string, Ty>();
/** Signature types are a handful of strings, parsed once each. */
export function typeOf(src: string): Ty {
  let t = parsedTypes.get(src);
  if (!t) parsedTypes.set(src, (t = parseType(src)));
  return t;
}

/** Values known only later: from the environment at run time, or a recipe parameter checked in the abstract. */
export function hasEnv(j: Json): boolean {
  if (j === null || typeof j !== "object") return false;
  if (Array.isArray(j)) return j.some(hasEnv);
  if ("$env" in j || "$secret" in j || "$param" in j) return true;
  return Object.values(j).some(hasEnv);
}

export function article(noun: string): string {
  return /^[aeio]/i.test(noun) ? `an ${noun}` : `a ${noun}`;
}
