import type { z } from "zod";
import type { Code, Diagnostic } from "../diagnostics/diagnostic.js";
import type { SourceFile } from "../diagnostics/source.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";
import { deepMarker, elementOf, type ParamMarker } from "../stages/schema.js";
import type { Registry, StageKind } from "../stages/registry.js";
import type * as A from "../syntax/ast.js";
import { show, type Ty } from "../types/types.js";
import { typeEdges } from "./edges.js";
import { article, ctxFor, errorAt, ERR, noCtx, type Ctx, type Elab, type Env, type OverrideValue, type Round, type RoundsOf, type Spot, type Val } from "./elaboration.js";
import type { IrStage, Json, StageKeyword } from "../core/ir.js";
import type { LoadedModule, ModuleGraph } from "./modules.js";
import type { Override } from "./overrides.js";
import { validate, validateStageParams } from "./params.js";
import { checkValueEdges } from "./value-edges.js";
import { checkRecipeSignature, instantiate } from "./recipes.js";
import { checkRepeatDecl, elaborateRounds, evaluateCount, roundReference, roundStageId } from "./rounds.js";
import type { Elaborated } from "./reports.js";
import { Scopes } from "./scope.js";
import { bindStageCall } from "./stage-call.js";
import { buildStage } from "./stage-ir.js";
import { TypeResolver } from "./types.js";

const keywordOutput: Record<StageKeyword, Ty["k"][] | undefined> = {
  model: ["model"],
  train: ["model"],
  eval: ["report"],
  dataset: ["dataset"],
  generate: ["dataset"],
  filter: ["dataset"],
  mix: ["dataset"],
  stage: undefined,
};

/**
 * Elaborates one entry module into stage instances. Pure: reports problems as diagnostics and keeps going, so
 * one run shows as many real errors as possible. The driver of the phases:
 *
 * - scope (`scope.ts`): each module's names and imports, resolved to declarations;
 * - evaluation (here): expressions, references and calls, on demand from each declaration, with cycle detection;
 *   a reference elaborates the stage it names first;
 * - recipes (`recipes.ts`): a recipe call's arguments bound to its parameters, its body elaborated in the
 *   instance's namespace;
 * - a stage call, in four steps each handing its result to the next: binding arguments, block entries and
 *   overrides (`stage-call.ts`, a BoundCall) -> validating parameters (`params.ts`) -> typing the edges
 *   (`edges.ts`, TypedEdges) -> the output type and the IR stage (`stage-ir.ts`);
 * - reports after elaboration (`reports.ts`): unused declarations, unmatched overrides.
 */
export class Elaborator implements Elab, Elaborated {
  readonly stages = new Map<string, IrStage>();
  readonly diagnostics: Diagnostic[];
  readonly types: TypeResolver;
  readonly usedIds = new Set<string>();
  readonly overrides = new Map<string, Map<string, OverrideValue>>();
  readonly usedOverrides = new Set<string>();
  readonly recipeStack: A.RecipeDecl[] = [];
  readonly instantiated = new Set<A.RecipeDecl>();
  /** Declarations some expression referred to (kept even when the referring stage failed to check). */
  readonly referenced = new Set<A.StageDecl>();
  private readonly scopes: Scopes;
  private readonly memo = new Map<string, Val>();
  /** Stages being elaborated, innermost last (for cycle messages), and the same as a set (for the check). */
  private readonly inProgress: string[] = [];
  private readonly inProgressSet = new Set<string>();
  /** Top-level declarations already elaborated (declaration objects are unique across modules). */
  private readonly topMemo = new Map<A.StageDecl, Val>();
  /** Modules made for command-line overrides, so their values report errors at `--set`. */
  private readonly extraModules = new Map<string, LoadedModule>();
  /** Each repeat block's number of rounds where it is declared (undefined: not a constant, reported once). */
  private readonly roundCounts = new Map<string, number | undefined>();
  readonly rounds: RoundsOf = {
    count: (rep, outer, base) => {
      const key = `${outer.mod.path}\0${base}\0${rep.name.text}`;
      if (!this.roundCounts.has(key)) this.roundCounts.set(key, evaluateCount(this, rep, outer));
      return this.roundCounts.get(key);
    },
  };
  entryPath = "";

  constructor(
    private readonly graph: ModuleGraph,
    readonly registry: Registry,
    diagnostics: Diagnostic[],
    overrides: readonly Override[] = [],
  ) {
    this.diagnostics = diagnostics;
    this.scopes = new Scopes(graph, diagnostics);
    for (const o of overrides) {
      let m = this.overrides.get(o.target);
      if (!m) this.overrides.set(o.target, (m = new Map()));
      const mod: LoadedModule = { path: o.file.path, ast: { file: o.file, imports: [], decls: [], comments: [], brokenNames: [] }, std: false, importPaths: [], importOrigins: [] };
      this.extraModules.set(o.file.path, mod);
      m.set(o.param, { expr: o.expr, env: { mod, prefix: "" } });
    }
    this.types = new TypeResolver(
      (file, name) => {
        const b = this.scopes.lookup(this.moduleOf(file), name);
        return b?.k === "type" ? { decl: b.decl, file: b.mod.ast.file } : b?.k === "poisoned" ? "poisoned" : undefined;
      },
      (file) => [...this.scopes.scope(this.moduleOf(file)).entries()].filter(([, b]) => b.k === "type").map(([n]) => n),
      diagnostics,
    );
  }

  /** Declarations that reuse a name: reported once as duplicates, never as unused. */
  get duplicates(): ReadonlySet<A.Decl> {
    return this.scopes.duplicates;
  }

  private moduleOf(file: SourceFile): LoadedModule {
    return this.graph.modules.get(file.path) ?? this.extraModules.get(file.path)!;
  }

  err(code: Code, message: string, file: SourceFile, s: A.Span, hint?: string): void {
    errorAt(this.diagnostics, code, message, file, s, hint);
  }

  private visibleNames(env: Env): string[] {
    const names = [...this.scopes.scope(env.mod).keys()];
    if (env.locals) names.push(...env.locals.values.keys(), ...env.locals.stages.keys(), ...env.locals.repeats.keys());
    if (env.round) names.push(...env.round.decl.stages.map((s) => s.name.text));
    return names;
  }

  // ---------- entry points ----------

  /** Elaborate every stage declared at the top of a module. */
  elaborateModule(mod: LoadedModule, prefix: string): void {
    const env: Env = { mod, prefix };
    this.scopes.scope(mod);
    for (const d of mod.ast.decls) {
      if (d.broken) continue; // its syntax error is reported; nothing more to say
      if (d.type === "StageDecl") this.topStage(d, env);
      else if (d.type === "TypeDecl") this.types.declared(d, mod.ast.file);
      else if (d.type === "RepeatDecl") {
        checkRepeatDecl(this, d, new Set(this.scopes.scope(mod).keys()), mod.ast.file);
        elaborateRounds(this, d, env, prefix, this.rounds);
      } else checkRecipeSignature(this, d, mod);
    }
  }

  /**
   * Check the body of every recipe of a module that no stage instantiated, with its parameters standing for
   * values of their declared types: a typo in a recipe nobody uses yet is still an error.
   */
  checkUninstantiatedRecipes(mod: LoadedModule): void {
    for (const d of mod.ast.decls) {
      if (d.type !== "RecipeDecl" || d.broken || this.instantiated.has(d)) continue;
      const scratch = new Elaborator(this.graph, this.registry, this.diagnostics);
      scratch.entryPath = this.entryPath;
      const call: A.Call = { type: "Call", callee: d.name, parens: true, args: [], start: d.name.start, end: d.name.end };
      instantiate(scratch, d, mod, call, { mod, prefix: "" }, ctxFor(d.name.text, scratch.usedIds), undefined, true);
    }
  }

  // ---------- declarations ----------

  private topStage(d: A.StageDecl, env: Env): Val {
    const done = this.topMemo.get(d);
    if (done) return done;
    const key = `${env.mod.path}#${d.name.text}`;
    const id = env.prefix + d.name.text;
    if (this.inProgressSet.has(key)) return this.cycle(key, d, env);
    this.enter(key);
    const v = this.stageDecl(d, env, ctxFor(id, this.usedIds, d));
    this.leave(key);
    this.topMemo.set(d, v);
    return v;
  }

  innerStage(d: A.StageDecl, env: Env): Val {
    const locals = env.locals!;
    const key = `${locals.ns}#${d.name.text}`;
    const done = this.memo.get(key);
    if (done) return done;
    if (this.inProgressSet.has(key)) return this.cycle(key, d, env);
    this.enter(key);
    const own = `${locals.ns}.${d.name.text}`;
    const ctx = locals.outputName === d.name.text ? ctxFor(locals.instanceId, this.usedIds, d, own) : ctxFor(own, this.usedIds, d);
    const v = this.stageDecl(d, env, ctx);
    this.leave(key);
    this.memo.set(key, v);
    return v;
  }

  roundStage(d: A.StageDecl, round: Round): Val {
    const id = roundStageId(round, d);
    const key = `${round.outer.mod.path}#${id}`;
    const done = this.memo.get(key);
    if (done) return done;
    const env: Env = { ...round.outer, round };
    if (this.inProgressSet.has(key)) return this.cycle(key, d, env);
    this.enter(key);
    const v = this.stageDecl(d, env, ctxFor(id, this.usedIds, d));
    this.leave(key);
    this.memo.set(key, v);
    return v;
  }

  /** What `prev.x` is in round 1: the `from` record's entry, evaluated once where the block is declared. */
  private roundInit(round: Round, entry: A.Entry): Val {
    const id = `${round.base}${round.decl.name.text}.from.${entry.key[0]!.text}`;
    const key = `${round.outer.mod.path}#${id}`;
    const done = this.memo.get(key);
    if (done) return done;
    const v = this.expr(entry.value, round.outer, ctxFor(id, this.usedIds));
    this.memo.set(key, v);
    return v;
  }

  /** A repeat block visible from `env` by name: the enclosing recipe's, or a module's top-level one. */
  private repeatNamed(name: string, env: Env): { rep: A.RepeatDecl; outer: Env; base: string } | undefined {
    const local = env.locals?.repeats.get(name);
    if (local) return { rep: local, outer: env.round?.outer ?? env, base: `${env.locals!.ns}.` };
    if (env.locals?.stages.has(name) || env.locals?.values.has(name)) return undefined;
    const b = this.scopes.lookup(env.mod, name);
    if (b?.k !== "repeat") return undefined;
    const prefix = b.mod === env.mod && !env.locals ? env.prefix : this.prefixOf(b.mod);
    return { rep: b.decl, outer: { mod: b.mod, prefix }, base: prefix };
  }

  private stageDecl(d: A.StageDecl, env: Env, ctx: Ctx): Val {
    const file = env.mod.ast.file;
    const v = this.expr(d.value, env, ctx);
    if (v.t !== "stage") {
      if (v.t === "json") this.err("E044", `\`${d.name.text}\` is a plain value, not a stage`, file, d.value);
      return ERR;
    }
    const want = keywordOutput[d.keyword];
    if (want && !want.includes(v.ty.k)) this.err("E044", `\`${d.keyword}\` declaration, but its stage produces ${show(v.ty)}`, file, d.keywordSpan, `use \`${keywordFor(v.ty)}\``);
    return v;
  }

  private enter(key: string): void {
    this.inProgress.push(key);
    this.inProgressSet.add(key);
  }

  private leave(key: string): void {
    this.inProgress.pop();
    this.inProgressSet.delete(key);
  }

  private cycle(key: string, d: A.StageDecl, env: Env): Val {
    const at = this.inProgress.indexOf(key);
    const names = [...this.inProgress.slice(at), key].map((k) => k.slice(k.indexOf("#") + 1));
    this.err("E050", `cycle among stages: ${names.join(" -> ")}`, env.mod.ast.file, d.name, "a stage cannot read its own output, directly or through others");
    return ERR;
  }

  // ---------- expressions ----------

  expr(e: A.Expr, env: Env, ctx: Ctx, marker?: ParamMarker, schema?: z.ZodType): Val {
    switch (e.type) {
      case "Literal":
        return { t: "json", v: e.value as Json };
      case "List": {
        const el = schema ? elementOf(schema) : undefined;
        const elMarker = el ? deepMarker(el) : undefined;
        const out: Json[] = [];
        let bad = false;
        for (const item of e.items) {
          const v = this.expr(item, env, ctx.sub(), elMarker, el);
          if (v.t === "error") bad = true;
          else out.push(v.t === "json" ? v.v : { $ref: v.id });
        }
        return bad ? ERR : { t: "json", v: out };
      }
      case "Record": {
        const out: { [k: string]: Json } = {};
        let bad = false;
        for (const en of e.block.entries) {
          const k = en.key.map((n) => n.text).join(".");
          if (k in out) this.err("E021", `key \`${k}\` appears twice`, env.mod.ast.file, en.key[0]!, "remove one of them");
          const v = this.expr(en.value, env, ctx.sub());
          if (v.t === "error") bad = true;
          else out[k] = v.t === "json" ? v.v : { $ref: v.id };
        }
        return bad ? ERR : { t: "json", v: out };
      }
      case "Reference":
        return this.reference(e, env, marker);
      case "Call":
        return this.call(e, env, ctx, undefined, marker);
      case "Pipeline": {
        let cur = this.expr(e.head, env, ctx.sub());
        e.steps.forEach((step, i) => {
          const last = i === e.steps.length - 1;
          cur = cur.t === "error" ? (this.call(step, env, ctx.sub(), ERR), ERR) : this.call(step, env, last ? ctx : ctx.sub(), cur);
        });
        return cur;
      }
    }
  }

  reference(e: A.Reference, env: Env, marker?: ParamMarker): Val {
    const file = env.mod.ast.file;
    const name = e.path[0]!.text;
    if (marker?.kind === "field") {
      if (e.path.length > 1) {
        this.err("E041", `a field name is one identifier, not \`${e.path.map((p) => p.text).join(".")}\``, file, e);
        return ERR;
      }
      return { t: "json", v: name };
    }
    if (env.round || e.index || e.path.length > 1 || (env.locals?.repeats.size ?? 0) > 0 || this.scopes.lookup(env.mod, name)?.k === "repeat") {
      const r = roundReference(this, e, env, (n) => this.repeatNamed(n, env), this.rounds, (round, entry) => this.roundInit(round, entry));
      if (r) return r;
    }
    if (e.path.length > 1) {
      this.err("E020", `unknown name \`${e.path.map((p) => p.text).join(".")}\``, file, e, "refer to a stage by its name; recipe instances' inner stages are not visible outside");
      return ERR;
    }
    const local = env.locals?.values.get(name);
    if (local) return local;
    const innerDecl = env.locals?.stages.get(name);
    if (innerDecl) {
      this.referenced.add(innerDecl);
      return this.innerStage(innerDecl, env);
    }
    const b = this.scopes.lookup(env.mod, name);
    if (b?.k === "poisoned") return ERR;
    if (b?.k === "stage") this.referenced.add(b.decl);
    if (b?.k === "stage") return this.topStage(b.decl, { mod: b.mod, prefix: b.mod === env.mod && !env.locals ? env.prefix : this.prefixOf(b.mod) });
    if (b?.k === "recipe") {
      this.err("E020", `\`${name}\` is a recipe; call it to make stages: \`${name}(...)\``, file, e);
      return ERR;
    }
    if (b?.k === "type") {
      this.err("E020", `\`${name}\` is a type, not a value`, file, e);
      return ERR;
    }
    const vf = this.registry.value(name);
    if (vf?.constant) return this.valueCall(vf, [], env, file, e, marker);
    if (this.registry.stage(name)) {
      this.err("E020", `\`${name}\` is a stage kind; call it: \`${name}(...)\``, file, e);
      return ERR;
    }
    const candidates = this.visibleNames(env);
    for (const v of this.registry.allValues()) if (v.constant) candidates.push(v.name);
    this.err("E020", `unknown name \`${name}\``, file, e, hintDidYouMean(name, candidates) ?? "declare it, or import it from a module");
    return ERR;
  }

  /** Id prefix for top-level stages of a module that is not the entry: `std/flan/v2` gives `flan.v2.`. */
  prefixOf(mod: LoadedModule): string {
    if (mod.path === this.entryPath) return "";
    const base = mod.path.replace(/\.itp$/, "");
    const std = this.graph.modules.get(mod.path)!.std;
    const rel = std ? base.slice(base.lastIndexOf("/stdlib/") + 8) : base.slice(base.lastIndexOf("/") + 1);
    return `${rel.replace(/\//g, ".")}.`;
  }

  private call(c: A.Call, env: Env, ctx: Ctx, piped?: Val, marker?: ParamMarker): Val {
    const file = env.mod.ast.file;
    const name = c.callee.text;
    if (name === "env" || name === "secret") return this.envCall(c, env, piped);
    const b = env.locals?.stages.has(name) || env.locals?.values.has(name) ? undefined : this.scopes.lookup(env.mod, name);
    if (b?.k === "stage") this.referenced.add(b.decl); // named, if wrongly as a callee: not "unused"
    if (b?.k === "recipe") return instantiate(this, b.decl, b.mod, c, env, ctx, piped);
    if (b?.k === "poisoned") {
      for (const a of c.args) this.expr(a.value, env, ctx.sub());
      return ERR;
    }
    const kind = this.registry.stage(name);
    const vf = this.registry.value(name);
    if (kind && !(vf && marker?.kind === "value")) return this.stageCall(kind, c, env, ctx, piped);
    if (vf) {
      if (piped) {
        const user = [...this.registry.allStages()].find((k) => Object.values(k.params.shape as Record<string, z.ZodType>).some((ps) => {
          const m = deepMarker(ps) ?? (elementOf(ps) ? deepMarker(elementOf(ps)!) : undefined);
          return m?.kind === "value" && m.category === vf.category;
        }));
        this.err("E022", `\`${name}\` builds a value, it cannot take a piped dataset`, file, c.callee, user ? `it is a parameter value of \`${user.name}\` (\`itp kinds ${user.name}\`)` : undefined);
        return ERR;
      }
      if (c.block) this.err("E030", `\`${name}(...)\` takes no block`, file, c.block, "pass its parameters in the parentheses");
      return this.valueCall(vf, c.args, env, file, c, marker);
    }
    const candidates = [...this.registry.stageNames(), ...this.registry.valueNames(), ...[...this.scopes.scope(env.mod)].filter(([, v]) => v.k === "recipe").map(([n]) => n)];
    const what = b?.k === "stage" || env.locals?.stages.has(name) ? `\`${name}\` is a stage, not a stage kind or recipe` : `unknown stage kind or recipe \`${name}\``;
    this.err("E022", what, file, c.callee, hintDidYouMean(name, candidates) ?? "`itp kinds` lists the stage kinds");
    // Positional arguments are inputs whatever the kind: still resolved (their own errors, and what they use).
    // Named ones are parameters of an unknown kind: nothing can be said of them.
    for (const a of c.args) if (!a.name) this.expr(a.value, env, ctx.sub());
    return ERR;
  }

  private envCall(c: A.Call, env: Env, piped?: Val): Val {
    const file = env.mod.ast.file;
    const name = c.callee.text;
    const arg = c.args[0];
    if (piped || c.block || c.args.length !== 1 || arg?.name || arg?.value.type !== "Literal" || arg.value.kind !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(arg.value.value))) {
      this.err("E061", `\`${name}\` takes one variable name in quotes`, file, c, `write \`${name}("NAME")\``);
      return ERR;
    }
    return { t: "json", v: { [name === "env" ? "$env" : "$secret"]: arg.value.value as string } };
  }

  private valueCall(vf: NonNullable<ReturnType<Registry["value"]>>, args: readonly A.Arg[], env: Env, file: SourceFile, at: A.Span, marker?: ParamMarker): Val {
    if (marker && marker.kind === "value" && marker.category !== vf.category) {
      this.err("E032", `\`${vf.name}\` is ${article(vf.category.replace(/_/g, " "))}, but ${article(marker.category.replace(/_/g, " "))} is expected here`, file, at, this.categoryHint(marker.category));
      return ERR;
    }
    const shape = vf.params.shape as Record<string, z.ZodType>;
    const obj: Record<string, Json> = {};
    const spans = new Map<string, Spot>();
    const refs = new Map<string, { val: Val & { t: "stage" }; at: A.Span }>();
    const argAt = new Map<string, A.Span>();
    let pos = 0;
    let bad = false;
    for (const a of args) {
      const key = a.name?.text ?? vf.positional[pos++];
      if (key === undefined) {
        this.err("E030", `\`${vf.name}\` takes at most ${vf.positional.length} positional argument${vf.positional.length === 1 ? "" : "s"}`, file, a, `name the argument: \`${vf.name}(${Object.keys(shape)[0] ?? "x"}: ...)\``);
        bad = true;
        continue;
      }
      if (!(key in shape)) {
        this.err("E030", `\`${vf.name}\` has no parameter \`${key}\``, file, a.name ?? a, hintDidYouMean(key, Object.keys(shape)) ?? `its parameters: ${Object.keys(shape).join(", ") || "none"}`);
        bad = true;
        continue;
      }
      const s = shape[key]!;
      const v = this.expr(a.value, env, noCtx, deepMarker(s), s);
      if (v.t === "error") bad = true;
      else obj[key] = v.t === "json" ? v.v : { $ref: v.id };
      if (v.t === "stage") refs.set(key, { val: v, at: a });
      argAt.set(key, a);
      spans.set(key, { file, span: a });
    }
    if (bad) return ERR;
    const parsed = validate(this, vf.params, obj, spans, file, at, vf.name, new Set());
    if (!parsed) return ERR;
    if (!checkValueEdges(this, vf, refs, argAt, parsed, file)) return ERR;
    return { t: "json", v: { fn: vf.name, ...parsed } };
  }

  private categoryHint(category: string): string {
    const names = [...this.registry.allValues()].filter((v) => v.category === category).map((v) => (v.constant ? v.name : `${v.name}(...)`));
    return names.length > 0 ? `use one of: ${names.join(", ")}` : `no value function makes a ${category}`;
  }

  /** A stage call, phase by phase: bind, validate the parameters, type the edges, build the IR stage. */
  private stageCall(kind: StageKind, c: A.Call, env: Env, ctx: Ctx, piped?: Val): Val {
    const id = ctx.id ?? ctx.alloc(kind.name);
    const call = bindStageCall(this, kind, c, env, ctx, id, piped);
    const validated = validateStageParams(this, call);
    const edges = typeEdges(this, call, validated);
    if (!edges.ok || !validated) return ERR;
    return buildStage(this, call, validated, edges, env, ctx);
  }
}

function keywordFor(t: Ty): string {
  return t.k === "model" ? "model" : t.k === "report" ? "eval" : t.k === "dataset" ? "dataset" : "stage";
}
