import { z } from "zod";
import { error, warning, type Code, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Range, SourceFile } from "../diagnostics/source.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";
import { deepMarker, elementOf, universalParams, unwrap, type ParamMarker } from "../stages/schema.js";
import type { Registry, StageKind } from "../stages/registry.js";
import type * as A from "../syntax/ast.js";
import type { StageKeyword } from "../syntax/lexer.js";
import { parseType } from "../types/parse-type.js";
import { assignable, dataset, recordOf, show, showShape, substitute, type Bindings, type Ty } from "../types/types.js";
import type { IrInput, IrStage, Json } from "./ir.js";
import type { LoadedModule, ModuleGraph } from "./modules.js";
import { TypeResolver } from "./types.js";

/**
 * `--set stage.param=value`: applied to the stage (or recipe instance) with that id before validation. The value is
 * an expression (`0.8`, `"x"`, `take(1000)`, a field name), parsed from the command line into its own small file.
 */
export interface Override {
  readonly target: string;
  readonly param: string;
  readonly expr: A.Expr;
  readonly file: SourceFile;
}

/** What an expression evaluates to while elaborating: a stage's output, or a plain value. */
type Val = { readonly t: "stage"; readonly id: string; readonly ty: Ty } | { readonly t: "json"; readonly v: Json } | { readonly t: "error" };

const ERR: Val = { t: "error" };

type Binding =
  | { readonly k: "stage"; readonly decl: A.StageDecl; readonly mod: LoadedModule }
  | { readonly k: "recipe"; readonly decl: A.RecipeDecl; readonly mod: LoadedModule }
  | { readonly k: "type"; readonly decl: A.TypeDecl; readonly mod: LoadedModule }
  /** A name from an import that failed: already reported, so uses of it stay quiet. */
  | { readonly k: "poisoned" };

/** Names visible inside a recipe instance: its parameters (already bound) and its inner stages. */
interface Locals {
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
  /** Overrides of inner stages' parameters written at the instantiation: `{ sized.min = 5 }`. */
  readonly innerOverrides: Map<string, { entry: A.Entry; env: Env }[]>;
  readonly outputName?: string;
}

interface Env {
  readonly mod: LoadedModule;
  readonly locals?: Locals;
  /** Prefix for ids of stages declared at this level: "" in the entry module, "alpaca." in an imported one. */
  readonly prefix: string;
}

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
 * Elaborates one entry module into stage instances: resolves names and imports, instantiates recipes, applies
 * overrides, validates parameters with each kind's zod schema, and type-checks every edge. Pure: reports
 * problems as diagnostics and keeps going, so one run shows as many real errors as possible.
 */
export class Elaborator {
  readonly stages = new Map<string, IrStage>();
  private readonly diagnostics: Diagnostic[];
  private readonly scopes = new Map<string, Map<string, Binding>>();
  private readonly memo = new Map<string, Val>();
  /** Stages being elaborated, innermost last (for cycle messages), and the same as a set (for the check). */
  private readonly inProgress: string[] = [];
  private readonly inProgressSet = new Set<string>();
  /** Top-level declarations already elaborated (declaration objects are unique across modules). */
  private readonly topMemo = new Map<A.StageDecl, Val>();
  private readonly recipeStack: A.RecipeDecl[] = [];
  private readonly usedIds = new Set<string>();
  private readonly types: TypeResolver;
  private readonly overrides = new Map<string, Map<string, { expr: A.Expr; env: Env }>>();
  private readonly usedOverrides = new Set<string>();
  /** Declarations some expression referred to (kept even when the referring stage failed to check). */
  private readonly referenced = new Set<A.StageDecl>();
  /** Declarations that reuse a name: reported once as duplicates, never as unused. */
  private readonly duplicates = new Set<A.Decl>();

  constructor(
    private readonly graph: ModuleGraph,
    private readonly registry: Registry,
    diagnostics: Diagnostic[],
    overrides: readonly Override[] = [],
  ) {
    this.diagnostics = diagnostics;
    for (const o of overrides) {
      let m = this.overrides.get(o.target);
      if (!m) this.overrides.set(o.target, (m = new Map()));
      const mod: LoadedModule = { path: o.file.path, ast: { file: o.file, imports: [], decls: [], comments: [], brokenNames: [] }, std: false, importPaths: [] };
      this.extraModules.set(o.file.path, mod);
      m.set(o.param, { expr: o.expr, env: { mod, prefix: "" } });
    }
    this.types = new TypeResolver(
      (file, name) => {
        const b = this.lookupGlobal(this.moduleOf(file), name);
        return b?.k === "type" ? { decl: b.decl, file: b.mod.ast.file } : b?.k === "poisoned" ? "poisoned" : undefined;
      },
      (file) => [...this.scope(this.moduleOf(file)).entries()].filter(([, b]) => b.k === "type").map(([n]) => n),
      diagnostics,
    );
  }

  /** Modules made for command-line overrides, so their values report errors at `--set`. */
  private readonly extraModules = new Map<string, LoadedModule>();

  private moduleOf(file: SourceFile): LoadedModule {
    return this.graph.modules.get(file.path) ?? this.extraModules.get(file.path)!;
  }

  private err(code: Code, message: string, file: SourceFile, s: A.Span, hint?: string): void {
    this.diagnostics.push(error(code, message, { file, start: s.start, end: s.end }, hint));
  }

  // ---------- scopes ----------

  private scope(mod: LoadedModule): Map<string, Binding> {
    const cached = this.scopes.get(mod.path);
    if (cached) return cached;
    const scope = new Map<string, Binding>();
    this.scopes.set(mod.path, scope);
    const file = mod.ast.file;
    const defined = new Map<string, A.Span>();
    const define = (name: A.Name, b: Binding | "import") => {
      const prev = defined.get(name.text);
      if (prev) {
        if (b !== "import" && b.k !== "poisoned") this.duplicates.add(b.decl);
        const line = file.position(prev.start).line;
        this.err("E021", `\`${name.text}\` is already defined (line ${line})`, file, name, "give each declaration and import a unique name");
        return;
      }
      defined.set(name.text, name);
      if (b !== "import") scope.set(name.text, b);
    };
    mod.ast.imports.forEach((imp, i) => {
      const target = mod.importPaths[i];
      const tmod = target === undefined ? undefined : this.graph.modules.get(target);
      for (const { name, alias } of imp.names) {
        const local = alias ?? name;
        if (imp.broken) {
          if (local?.text && Number.isFinite(local.start) && !scope.has(local.text)) scope.set(local.text, { k: "poisoned" });
          continue;
        }
        define(local, "import");
        if (!tmod) {
          scope.set(local.text, { k: "poisoned" });
          continue;
        }
        const b = this.ownDecls(tmod).get(name.text);
        if (!b) {
          scope.set(local.text, { k: "poisoned" });
          const exported = [...this.ownDecls(tmod).keys()];
          this.err("E012", `\`${imp.path}\` has no declaration \`${name.text}\``, file, name, hintDidYouMean(name.text, exported) ?? `it declares: ${exported.slice(0, 12).join(", ")}`);
          continue;
        }
        scope.set(local.text, b);
      }
    });
    for (const d of mod.ast.decls) {
      // A declaration broken by a syntax error may have a made-up name (recovery inserts tokens): declared quietly.
      if (d.broken) {
        if (d.name?.text && Number.isFinite(d.name.start) && !scope.has(d.name.text)) scope.set(d.name.text, { k: "poisoned" });
      } else define(d.name, bindingOf(d, mod));
    }
    for (const n of mod.ast.brokenNames) if (!scope.has(n.text)) scope.set(n.text, { k: "poisoned" });
    return scope;
  }

  /** A module's own top-level declarations: what it exports. */
  private ownDecls(mod: LoadedModule): Map<string, Binding> {
    const m = new Map<string, Binding>();
    for (const d of mod.ast.decls) if (!m.has(d.name.text)) m.set(d.name.text, bindingOf(d, mod));
    return m;
  }

  private lookupGlobal(mod: LoadedModule, name: string): Binding | undefined {
    return this.scope(mod).get(name);
  }

  private visibleNames(env: Env): string[] {
    const names = [...this.scope(env.mod).keys()];
    if (env.locals) names.push(...env.locals.values.keys(), ...env.locals.stages.keys());
    return names;
  }

  // ---------- entry points ----------

  /** Elaborate every stage declared at the top of a module. */
  elaborateModule(mod: LoadedModule, prefix: string): void {
    const env: Env = { mod, prefix };
    this.scope(mod);
    for (const d of mod.ast.decls) {
      if (d.broken) continue; // its syntax error is reported; nothing more to say
      if (d.type === "StageDecl") this.topStage(d, env);
      else if (d.type === "TypeDecl") this.types.declared(d, mod.ast.file);
      else this.checkRecipeSignature(d, mod);
    }
  }

  /** Warn about declared source, model and template stages that nothing reads. */
  reportUnused(mod: LoadedModule): void {
    // A declaration broken by a syntax error may be the one that used the others.
    if (mod.std || mod.ast.brokenNames.length > 0 || mod.ast.decls.some((d) => d.broken)) return;
    for (const d of mod.ast.decls) {
      if (d.type !== "StageDecl" || this.referenced.has(d) || this.duplicates.has(d)) continue;
      const s = this.stages.get(d.name.text);
      if (!s) continue;
      // Only what exists to be consumed: a source, a model, a template. Any dataset may be a result.
      if (s.category === "source" || s.category === "model" || s.type.k === "template") {
        this.diagnostics.push(
          warning("W001", `${d.keyword} \`${d.name.text}\` is never used`, { file: mod.ast.file, start: d.name.start, end: d.name.end }, "use it in a stage, or remove it"),
        );
      }
    }
  }

  /** Overrides (`--set`) that matched no stage or parameter. */
  reportUnmatchedOverrides(): void {
    for (const [target, params] of this.overrides) {
      for (const p of params.keys()) {
        if (this.usedOverrides.has(`${target}\0${p}`)) continue;
        const stage = this.stages.get(target);
        if (!stage) {
          this.diagnostics.push(error("E060", `--set ${target}.${p}: no stage \`${target}\``, undefined, hintDidYouMean(target, this.stages.keys()) ?? "use the stage's name as shown by `itp graph`"));
        } else {
          const kind = this.registry.stage(stage.kind);
          const keys = kind ? Object.keys(kind.params.shape) : [];
          this.diagnostics.push(error("E060", `--set ${target}.${p}: \`${stage.kind}\` has no parameter \`${p}\``, undefined, hintDidYouMean(p, keys) ?? `its parameters: ${keys.join(", ")}`));
        }
      }
    }
  }

  private checkRecipeSignature(r: A.RecipeDecl, mod: LoadedModule): void {
    const file = mod.ast.file;
    const seen = new Set<string>();
    for (const p of r.params) {
      if (seen.has(p.name.text)) this.err("E021", `recipe parameter \`${p.name.text}\` is declared twice`, file, p.name, "rename one of them");
      seen.add(p.name.text);
      this.types.resolve(p.paramType, file);
    }
    const inner = new Set<string>();
    for (const s of r.stages) {
      if (inner.has(s.name.text) || seen.has(s.name.text)) this.err("E021", `\`${s.name.text}\` is already defined in recipe \`${r.name.text}\``, file, s.name, "give each stage a unique name");
      inner.add(s.name.text);
    }
    if (!r.output) this.err("E045", `recipe \`${r.name.text}\` has no \`output\``, file, r.name, "end the recipe body with `output <stage name>`");
    else if (!inner.has(r.output.text) && !seen.has(r.output.text))
      this.err("E020", `unknown stage \`${r.output.text}\` in \`output\``, file, r.output, hintDidYouMean(r.output.text, [...inner, ...seen]) ?? "name one of the recipe's stages");
    if (r.returns) this.types.resolve(r.returns, file);
  }

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

  private expr(e: A.Expr, env: Env, ctx: Ctx, marker?: ParamMarker, schema?: z.ZodType): Val {
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

  private reference(e: A.Reference, env: Env, marker?: ParamMarker): Val {
    const file = env.mod.ast.file;
    const name = e.path[0]!.text;
    if (marker?.kind === "field") {
      if (e.path.length > 1) {
        this.err("E041", `a field name is one identifier, not \`${e.path.map((p) => p.text).join(".")}\``, file, e);
        return ERR;
      }
      return { t: "json", v: name };
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
    const b = this.lookupGlobal(env.mod, name);
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

  entryPath = "";

  private call(c: A.Call, env: Env, ctx: Ctx, piped?: Val, marker?: ParamMarker): Val {
    const file = env.mod.ast.file;
    const name = c.callee.text;
    if (name === "env" || name === "secret") return this.envCall(c, env, piped);
    const b = env.locals?.stages.has(name) || env.locals?.values.has(name) ? undefined : this.lookupGlobal(env.mod, name);
    if (b?.k === "stage") this.referenced.add(b.decl); // named, if wrongly as a callee: not "unused"
    if (b?.k === "recipe") return this.instantiate(b.decl, b.mod, c, env, ctx, piped);
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
    const candidates = [...this.registry.stageNames(), ...this.registry.valueNames(), ...[...this.scope(env.mod)].filter(([, v]) => v.k === "recipe").map(([n]) => n)];
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
      spans.set(key, { file, span: a });
    }
    if (bad) return ERR;
    const parsed = this.validate(vf.params, obj, spans, file, at, vf.name, new Set());
    if (!parsed) return ERR;
    return { t: "json", v: { fn: vf.name, ...parsed } };
  }

  private categoryHint(category: string): string {
    const names = [...this.registry.allValues()].filter((v) => v.category === category).map((v) => (v.constant ? v.name : `${v.name}(...)`));
    return names.length > 0 ? `use one of: ${names.join(", ")}` : `no value function makes a ${category}`;
  }

  // ---------- stages ----------

  private stageCall(kind: StageKind, c: A.Call, env: Env, ctx: Ctx, piped?: Val): Val {
    const file = env.mod.ast.file;
    const id = ctx.id ?? ctx.alloc(kind.name);
    const shape = shapeWithUniversal(kind);
    const paramKeys = keysOf(kind);
    const inputNames = kind.inputs.map((i) => i.name);
    const inputs: { val: Val; at: A.Span }[] = [];
    const params: Record<string, Json> = {};
    const spans = new Map<string, Spot>();
    const envKeys = new Set<string>();
    /** Parameters whose value had an error of its own: left out of validation, so the others are still checked. */
    const failedKeys = new Set<string>();
    const refInputs: IrInput[] = [];
    // By key: a Flan-scale sub-mixture has thousands of components.
    const components = new Map<string, { key: string; val: Val; rule: Json; at: A.Span; ruleAt: A.Span }>();
    let bad = false;

    if (piped) inputs.push({ val: piped, at: c.callee });
    const setParam = (key: string, expr: A.Expr, at: A.Span, valueEnv: Env) => {
      if (key in params) {
        this.err("E021", `parameter \`${key}\` is set twice`, file, at, "remove one of them");
        return;
      }
      const s = shape[key]!;
      const v = this.expr(expr, valueEnv, ctx.sub(), deepMarker(s), s);
      const origin = expr.type === "Reference" && expr.path.length === 1 ? valueEnv.locals?.origins.get(expr.path[0]!.text) : undefined;
      spans.set(key, origin ?? { file: valueEnv.mod.ast.file, span: at });
      if (v.t === "error") {
        bad = true;
        failedKeys.add(key);
        return;
      }
      const json: Json = v.t === "json" ? v.v : { $ref: v.id };
      params[key] = json;
      collectRefs(json, key, refInputs);
      if (hasEnv(json)) envKeys.add(key);
    };
    const unknownParam = (key: string, at: A.Span) => {
      this.err("E030", `\`${kind.name}\` has no parameter \`${key}\``, file, at, hintDidYouMean(key, [...paramKeys, ...inputNames]) ?? `its parameters: ${paramKeys.join(", ") || "none"}`);
      bad = true;
    };

    // Positional arguments: stage outputs are inputs; plain values fill parameters in declaration order.
    let nextParam = 0;
    for (const a of c.args) {
      if (a.name) {
        const key = a.name.text;
        if (key in shape) setParam(key, a.value, a.name, env);
        else if (inputNames.includes(key)) inputs.push({ val: this.expr(a.value, env, ctx.sub()), at: a.value });
        else unknownParam(key, a.name);
        continue;
      }
      if (a.value.type === "Literal" || a.value.type === "List" || a.value.type === "Record") {
        while (nextParam < paramKeys.length && paramKeys[nextParam]! in params) nextParam++;
        const key = paramKeys[nextParam];
        if (key === undefined) {
          this.err("E030", `\`${kind.name}\` takes no more values`, file, a.value, paramKeys.length ? `name the parameter: \`${paramKeys[0]}: ...\`` : "remove the argument");
          bad = true;
        } else setParam(key, a.value, a.value, env);
        continue;
      }
      inputs.push({ val: this.expr(a.value, env, ctx.sub()), at: a.value });
    }

    for (const en of c.block?.entries ?? []) {
      const key = en.key.map((k) => k.text).join(".");
      if (en.op === ":") {
        if (!kind.components) {
          this.err("E030", `\`${kind.name}\` takes no components (\`name : rule\`)`, file, en.key[0]!, "set parameters with `=`: `name = value`");
          bad = true;
          continue;
        }
        if (en.quoted || en.key.length > 1) {
          this.err("E020", `a component is a stage name, not \`${key}\``, file, en.key[0]!);
          bad = true;
          continue;
        }
        const ref: A.Reference = { type: "Reference", path: en.key, start: en.key[0]!.start, end: en.key[0]!.end };
        const val = this.reference(ref, env);
        const rule = this.expr(en.value, env, ctx.sub(), deepMarker(kind.components.rule), kind.components.rule);
        if (components.has(key)) this.err("E021", `component \`${key}\` appears twice`, file, en.key[0]!, "remove one of them");
        else if (val.t !== "error" && rule.t !== "error") components.set(key, { key, val, rule: rule.t === "json" ? rule.v : { $ref: rule.id }, at: en, ruleAt: en.value });
        else bad = true;
        continue;
      }
      if (en.key.length > 1 || en.quoted) {
        this.err("E030", `\`${key}\` is not a parameter of \`${kind.name}\``, file, en.key[0]!, "dotted keys override a recipe's inner stages; this is a stage");
        bad = true;
        continue;
      }
      if (key in shape) setParam(key, en.value, en.key[0]!, env);
      else if (inputNames.includes(key)) {
        const v = this.expr(en.value, env, ctx.sub());
        if (v.t === "json") {
          this.err("E040", `input \`${key}\` of \`${kind.name}\` needs a stage, got a plain value`, file, en.value, "refer to a dataset or model stage by name");
          bad = true;
        } else inputs.push({ val: v, at: en.value });
      } else unknownParam(key, en.key[0]!);
    }

    // Recipe-instance overrides of this inner stage, then command-line overrides.
    const inner = ctx.innerName && env.locals?.innerOverrides.get(ctx.innerName);
    for (const { entry, env: oenv } of inner || []) {
      const pkey = entry.key.slice(1).map((k) => k.text).join(".");
      const comp = kind.components && components.get(pkey);
      if (comp) {
        const rule = this.expr(entry.value, oenv, ctx.sub(), deepMarker(kind.components!.rule), kind.components!.rule);
        if (rule.t === "json") comp.rule = rule.v;
        continue;
      }
      if (!(pkey in shape)) {
        this.diagnostics.push(error("E030", `\`${ctx.innerName}\` (\`${kind.name}\`) has no parameter or component \`${pkey}\``, { file: oenv.mod.ast.file, start: entry.key[1]?.start ?? entry.start, end: entry.key[entry.key.length - 1]!.end }, hintDidYouMean(pkey, [...paramKeys, ...components.keys()]) ?? `its parameters: ${paramKeys.join(", ")}`));
        bad = true;
        continue;
      }
      delete params[pkey];
      setParam(pkey, entry.value, entry.key[1] ?? entry, oenv);
    }
    const cli = this.overrides.get(id);
    for (const [p, o] of cli ?? []) {
      const comp = kind.components && components.get(p);
      if (comp) {
        this.usedOverrides.add(`${id}\0${p}`);
        const rule = this.expr(o.expr, o.env, ctx.sub(), deepMarker(kind.components!.rule), kind.components!.rule);
        if (rule.t === "json") comp.rule = rule.v;
        else bad = true;
        continue;
      }
      if (!(p in shape)) continue; // reported as unmatched at the end
      this.usedOverrides.add(`${id}\0${p}`);
      delete params[p];
      setParam(p, o.expr, o.expr, o.env);
    }

    // Validate parameters (values given through env() are known only at run time).
    const kindParams = Object.fromEntries(Object.entries(params).filter(([k]) => !(k in universalParams())));
    const ownValidated = this.validate(kind.params, kindParams, spans, file, c.callee, kind.name, envKeys, failedKeys);
    const universalValidated = this.validate(universalSchema(), Object.fromEntries(Object.entries(params).filter(([k]) => k in universalParams())), spans, file, c.callee, kind.name, envKeys, failedKeys);
    const validated = ownValidated && universalValidated ? { ...ownValidated, ...universalValidated } : undefined;

    // Inputs: count and types.
    const bindings: Bindings = new Map();
    const irInputs: IrInput[] = [];
    const inputVals = inputs.map((i) => i.val);
    if (inputVals.some((v) => v.t === "error")) bad = true;
    const specs = kind.inputs;
    const variadic = specs.length > 0 && specs[specs.length - 1]!.variadic === true;
    const required = specs.filter((s) => !s.optional && !s.variadic).length + (variadic ? 1 : 0);
    if (!bad && (inputs.length < required || (!variadic && inputs.length > specs.length))) {
      const want = variadic ? `at least ${required}` : required === specs.length ? `${specs.length}` : `${required} to ${specs.length}`;
      const names = specs.map((s) => `${s.name}: ${s.type}`).join(", ");
      this.err("E033", `\`${kind.name}\` takes ${want} input${specs.length === 1 && !variadic ? "" : "s"} (${names || "none"}), got ${inputs.length}`, file, inputs.length > specs.length && !variadic ? inputs[specs.length]!.at : c.callee, inputs.length < required ? `pass the input: \`${specs[inputs.length]?.name ?? "data"} |> ${kind.name}(...)\`` : "remove the extra input");
      bad = true;
    }
    inputs.forEach((inp, i) => {
      const spec = specs[Math.min(i, specs.length - 1)];
      if (!spec || inp.val.t !== "stage") {
        if (spec && inp.val.t === "json") {
          this.err("E040", `input \`${spec.name}\` of \`${kind.name}\` needs a stage, got a plain value`, file, inp.at, "refer to a dataset or model stage by name");
          bad = true;
        }
        return;
      }
      const expected = typeOf(spec.type);
      if (!this.checkEdge(inp.val, expected, bindings, file, inp.at, `input \`${spec.name}\` of \`${kind.name}\``)) bad = true;
      irInputs.push({ role: spec.variadic ? `${spec.name}[${i - specs.length + 1}]` : spec.name, from: inp.val.id });
    });
    if (kind.components) {
      const expected = typeOf(kind.components.type);
      for (const comp of components.values()) {
        if (comp.val.t !== "stage") {
          this.err("E040", `component \`${comp.key}\` is not a stage`, file, comp.at);
          bad = true;
          continue;
        }
        if (!this.checkEdge(comp.val, expected, bindings, file, comp.at, `component \`${comp.key}\` of \`${kind.name}\``)) bad = true;
        irInputs.push({ role: `component:${comp.key}`, from: comp.val.id });
      }
      if (components.size === 0 && !bad) {
        this.err("E033", `\`${kind.name}\` needs at least one component`, file, c.callee, "list components in its block: `{ flan : take(50_000) }`");
        bad = true;
      }
    }
    // Parameters that refer to stages: check the referenced stage's type.
    for (const r of refInputs) {
      const key = r.role.slice(6).split(/[.[]/)[0]!;
      const target = this.stages.get(r.from);
      const m = shape[key] ? refMarker(shape[key]!) : undefined;
      if (target && m) {
        const where = spans.get(key) ?? { file, span: c };
        if (!this.checkEdge({ t: "stage", id: target.id, ty: target.type }, typeOf(m.type), new Map(bindings), where.file, where.span, `parameter \`${key}\` of \`${kind.name}\``)) bad = true;
      }
      irInputs.push(r);
    }
    // Field references against the first input's record type.
    const firstInput = inputVals[0];
    const rec = firstInput?.t === "stage" ? recordOf(firstInput.ty) : undefined;
    if (rec && rec.k === "record" && !rec.open && validated) {
      for (const key of paramKeys) {
        const s = shape[key]!;
        const m = deepMarker(s);
        const elM = elementOf(s) ? deepMarker(elementOf(s)!) : undefined;
        const v = validated[key];
        const names = m?.kind === "field" && typeof v === "string" ? [v] : elM?.kind === "field" && Array.isArray(v) ? (v as Json[]).filter((x): x is string => typeof x === "string") : [];
        for (const n of names) {
          if (!rec.fields.has(n)) {
            const fs = fieldSpan(c, key, n);
            const where = fs ? { file, span: fs } : (spans.get(key) ?? { file, span: c });
            this.err("E041", `${rec.name} has no field \`${n}\``, where.file, where.span, [hintDidYouMean(n, rec.fields.keys()), `${rec.name} is ${showShape(rec)}`].filter(Boolean).join(" "));
            bad = true;
          }
        }
      }
    }
    if (bad || !validated) return ERR;

    let out = substitute(typeOf(kind.output), bindings);
    if (kind.addsFields && out.k === "dataset" && out.of.k === "record") {
      const fields = new Map(out.of.fields);
      for (const [name, t] of Object.entries(kind.addsFields(validated))) fields.set(name, { ty: typeOf(t), optional: false });
      out = dataset({ ...out.of, fields });
    }
    if (kind.category === "source") {
      const ann = ctx.decl?.annotation;
      if (ann && ctx.id === id) {
        const t = this.types.resolve(ann, file);
        if (!t) return ERR;
        const rec = t.k === "dataset" ? t.of : t;
        if (rec.k !== "record") {
          this.err("E043", `a source reads records: its annotation is a record type, not ${show(t)}`, file, ann, "write the type of one record, e.g. `dataset prefs: Preference = jsonl(...)`");
          return ERR;
        }
        out = dataset(rec);
      }
    } else if (ctx.decl?.annotation && ctx.id === id) {
      const t = this.types.resolve(ctx.decl.annotation, file);
      if (!t) return ERR;
      const want = ctx.decl.keyword === "model" || t.k !== "record" ? t : dataset(t);
      if (!assignable(out, want)) {
        this.err("E043", `\`${ctx.decl.name.text}\` is declared ${show(want)}, but \`${kind.name}\` produces ${show(out)}`, file, ctx.decl.annotation, out.k === "dataset" && want.k === "dataset" ? "fix the annotation, or convert the data" : "fix the annotation");
        return ERR;
      }
      out = want;
    }
    if (out.k === "var" || (out.k === "dataset" && out.of.k === "var")) out = dataset({ k: "record", name: "Json", fields: new Map(), open: true });

    const finalParams: Record<string, Json> = { ...validated };
    if (components.size > 0) {
      const comps: { [k: string]: Json } = {};
      for (const comp of components.values()) comps[comp.key] = comp.rule;
      finalParams["components"] = comps;
    }
    if (kind.refine && !hasEnv(finalParams)) {
      const problems = kind.refine(finalParams);
      for (const pr of problems) {
        const comp = pr.path[0] === "components" ? components.get(pr.path[1] ?? "") : undefined;
        const where = comp ? { file, span: comp.ruleAt } : (spans.get(pr.path[0] ?? "") ?? { file, span: c.callee });
        this.err("E032", pr.message, where.file, where.span, shape[pr.path[0] ?? ""]?.description);
      }
      if (problems.length > 0) return ERR;
    }
    const stage: IrStage = {
      id,
      kind: kind.name,
      category: kind.category,
      ...(ctx.decl && ctx.id === id ? { keyword: ctx.decl.keyword } : {}),
      params: sortKeys(finalParams) as { [k: string]: Json },
      inputs: irInputs,
      type: out,
      ...(ctx.decl?.doc && ctx.id === id ? { doc: ctx.decl.doc } : {}),
      range: { file, start: ctx.decl && ctx.id === id ? ctx.decl.start : c.start, end: ctx.decl && ctx.id === id ? ctx.decl.end : c.end },
      declared: ctx.decl !== undefined && ctx.id === id && !env.locals,
      ...(env.locals ? { recipe: env.locals.instanceId } : {}),
    };
    this.usedIds.add(id);
    this.stages.set(id, stage);
    return { t: "stage", id, ty: out };
  }

  private checkEdge(v: Val & { t: "stage" }, expected: Ty, b: Bindings, file: SourceFile, at: A.Span, what: string): boolean {
    if (assignable(v.ty, expected, b)) return true;
    const actualRec = recordOf(v.ty);
    let hint: string | undefined;
    if (actualRec && expected.k === "dataset") {
      const conv = this.registry.convertersFrom(actualRec.k === "record" ? actualRec.name : "").find((k) => assignable(typeOf(k.output), expected, new Map(b)));
      if (conv) hint = `convert it first: \`${v.id} |> ${conv.name}()\``;
    }
    const exp = substitute(expected, b);
    hint ??= actualRec && exp.k === "dataset" && exp.of.k === "record" ? `${show(v.ty)} records are ${showShape(actualRec)}; ${show(exp)} needs ${showShape(exp.of)}` : undefined;
    const wanted = hasVar(exp) ? (exp.k === "dataset" ? "a dataset" : "a value of another type") : show(exp);
    this.err("E040", `${what} expects ${wanted}, but \`${v.id}\` is ${show(v.ty)}`, file, at, hint);
    return false;
  }

  private validate(
    schema: z.ZodObject,
    obj: Record<string, Json>,
    spans: Map<string, Spot>,
    file: SourceFile,
    at: A.Span,
    what: string,
    envKeys: Set<string>,
    failedKeys: Set<string> = new Set(),
  ): Record<string, Json> | undefined {
    // env()/secret() values are resolved at run time: validate the rest, keep them as written.
    const probe: Record<string, Json> = {};
    for (const [k, v] of Object.entries(obj)) if (!envKeys.has(k)) probe[k] = v;
    const shape = schema.shape as Record<string, z.ZodType>;
    const r = schema.safeParse(probe);
    const skip = (k: string) => envKeys.has(k) || failedKeys.has(k);
    const issues = r.success ? [] : r.error.issues.filter((i) => !skip(String(i.path[0])));
    if (issues.length > 0) {
      for (const i of issues) {
        const key = String(i.path[0] ?? "");
        const missing = i.code === "invalid_type" && !(key in probe);
        if (missing) {
          const desc = shape[key]?.description;
          this.err("E031", `\`${what}\` needs parameter \`${key}\``, file, at, desc ? `${key}: ${desc}` : `set it: \`${key} = ...\``);
        } else {
          const where = spans.get(key) ?? { file, span: at };
          const path = i.path.length > 1 ? `${key}${i.path.slice(1).map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("")}` : key;
          this.err("E032", `invalid \`${path}\` for \`${what}\`: ${zodMessage(i, shape[key])}`, where.file, where.span, shape[key]?.description);
        }
      }
      return undefined;
    }
    if (failedKeys.size > 0) return undefined;
    const out = (r.success ? r.data : probe) as Record<string, Json>;
    for (const k of envKeys) {
      if (!(k in obj)) continue; // validated by the other schema (a stage's own parameters, or the universal ones)
      const m = shape[k] ? deepMarker(shape[k]!) : undefined;
      if (isSecret(obj[k]!) && m?.kind !== "secret") {
        const where = spans.get(k) ?? { file, span: at };
        this.err("E061", `\`secret()\` is only for credentials; \`${k}\` of \`${what}\` is not one`, where.file, where.span, "use `env(\"NAME\")` for ordinary values from the environment");
        return undefined;
      }
      out[k] = obj[k]!;
    }
    return out;
  }

  // ---------- recipes ----------

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
      scratch.instantiate(d, mod, call, { mod, prefix: "" }, ctxFor(d.name.text, scratch.usedIds), undefined, true);
    }
  }

  private readonly instantiated = new Set<A.RecipeDecl>();

  private instantiate(r: A.RecipeDecl, rmod: LoadedModule, c: A.Call, env: Env, ctx: Ctx, piped?: Val, abstract = false): Val {
    this.instantiated.add(r);
    const file = env.mod.ast.file;
    const rfile = rmod.ast.file;
    if (this.recipeStack.includes(r)) {
      this.err("E050", `recipe \`${r.name.text}\` instantiates itself`, file, c.callee, "recipes cannot be recursive");
      return ERR;
    }
    const id = ctx.id ?? ctx.alloc(r.name.text);
    const ns = ctx.ns ?? id;
    this.usedIds.add(id);
    const values = new Map<string, Val>();
    const origins = new Map<string, Spot>();
    const innerOverrides = new Map<string, { entry: A.Entry; env: Env }[]>();
    const stageDecls = new Map(r.stages.map((s) => [s.name.text, s] as const));
    const locals: Locals = { instanceId: id, ns, recipe: r, values, origins, stages: stageDecls, innerOverrides, ...(r.output ? { outputName: r.output.text } : {}) };
    const renv: Env = { mod: rmod, locals, prefix: "" };
    const paramNames = r.params.map((p) => p.name.text);
    let bad = false;
    const given = new Map<string, { expr?: A.Expr; val?: Val; at: A.Span }>();

    const positional: { expr?: A.Expr; val?: Val; at: A.Span }[] = [];
    if (piped) positional.push({ val: piped, at: c.callee });
    for (const a of c.args) {
      if (!a.name) positional.push({ expr: a.value, at: a.value });
      else if (paramNames.includes(a.name.text)) {
        if (given.has(a.name.text)) this.err("E021", `\`${a.name.text}\` is given twice`, file, a.name);
        given.set(a.name.text, { expr: a.value, at: a.name });
      } else {
        this.err("E030", `recipe \`${r.name.text}\` has no parameter \`${a.name.text}\``, file, a.name, hintDidYouMean(a.name.text, paramNames) ?? `its parameters: ${paramNames.join(", ") || "none"}`);
        bad = true;
      }
    }
    positional.forEach((p, i) => {
      const name = paramNames[i];
      if (name === undefined) {
        this.err("E033", `recipe \`${r.name.text}\` takes ${paramNames.length} parameter${paramNames.length === 1 ? "" : "s"}, got more`, file, p.at, "remove the extra argument");
        bad = true;
      } else if (given.has(name)) {
        this.err("E021", `\`${name}\` is given twice`, file, p.at);
        bad = true;
      } else given.set(name, p);
    });
    for (const en of c.block?.entries ?? []) {
      const head = en.key[0]!.text;
      if (en.key.length === 1 && !en.quoted && paramNames.includes(head)) {
        if (given.has(head)) this.err("E021", `\`${head}\` is given twice`, file, en.key[0]!);
        else given.set(head, { expr: en.value, at: en.key[0]! });
      } else if (en.key.length > 1 && stageDecls.has(head)) {
        const list = innerOverrides.get(head) ?? [];
        list.push({ entry: en, env });
        innerOverrides.set(head, list);
      } else {
        const inner = [...stageDecls.keys()].map((s) => `${s}.<param>`);
        this.err("E030", `recipe \`${r.name.text}\` has no parameter \`${en.key.map((k) => k.text).join(".")}\``, file, en.key[0]!, hintDidYouMean(head, [...paramNames, ...stageDecls.keys()]) ?? `its parameters: ${paramNames.join(", ")}; inner stages: ${inner.join(", ")}`);
        bad = true;
      }
    }
    const cli = this.overrides.get(id);

    this.recipeStack.push(r);
    for (const p of r.params) {
      const declared = this.types.resolve(p.paramType, rfile);
      const g = given.get(p.name.text);
      let v: Val;
      const cliV = cli?.get(p.name.text);
      if (cliV !== undefined) {
        this.usedOverrides.add(`${id}\0${p.name.text}`);
        v = this.expr(cliV.expr, cliV.env, ctxFor(`${ns}.${p.name.text}`, this.usedIds));
      } else if (g?.val) v = g.val;
      else if (g?.expr) {
        v = this.expr(g.expr, env, ctxFor(`${ns}.${p.name.text}`, this.usedIds));
        origins.set(p.name.text, { file, span: g.expr });
      } else if (p.default) v = this.expr(p.default, renv, ctxFor(`${ns}.${p.name.text}`, this.usedIds));
      else if (abstract && declared) {
        // A stand-in of the declared type: stages get a placeholder stage, plain values a placeholder value.
        const standIn: Val = declared.k === "dataset" || declared.k === "model" || declared.k === "template" ? { t: "stage", id: `${ns}.${p.name.text}`, ty: declared } : { t: "json", v: { $param: p.name.text } };
        values.set(p.name.text, standIn);
        continue;
      } else {
        this.err("E031", `recipe \`${r.name.text}\` needs parameter \`${p.name.text}\``, file, c.callee, `pass it: \`${r.name.text}(${p.name.text}: ...)\``);
        bad = true;
        continue;
      }
      if (v.t === "error" || !declared) {
        bad = true;
        values.set(p.name.text, ERR);
        continue;
      }
      const at = g?.at ?? c.callee;
      if (v.t === "stage") {
        if (!this.checkEdge(v, declared, new Map(), file, at, `parameter \`${p.name.text}\` of recipe \`${r.name.text}\``)) bad = true;
      } else if (!jsonMatches(v.v, declared)) {
        this.err("E032", `parameter \`${p.name.text}\` of recipe \`${r.name.text}\` is ${show(declared)}, got ${JSON.stringify(v.v)}`, file, at, `pass ${article(show(declared))}`);
        bad = true;
      }
      values.set(p.name.text, v);
    }
    if (cli) for (const k of cli.keys()) if (!paramNames.includes(k)) this.usedOverrides.add(`${id}\0${k}`), this.err60(`--set ${id}.${k}: recipe \`${r.name.text}\` has no parameter \`${k}\``, hintDidYouMean(k, paramNames));

    let out: Val = ERR;
    if (!bad && r.output) {
      // Inner stages are elaborated in order; each is memoized, so references between them are free.
      for (const s of r.stages) {
        const v = this.innerStage(s, renv);
        if (v.t === "error") bad = true;
      }
      const o = r.output.text;
      out = values.get(o) ?? (stageDecls.has(o) ? this.innerStage(stageDecls.get(o)!, renv) : ERR);
      for (const key of innerOverrides.keys()) if (!stageDecls.has(key)) bad = true;
    }
    this.recipeStack.pop();
    if (bad || out.t !== "stage") return ERR;
    if (r.returns) {
      const want = this.types.resolve(r.returns, rfile);
      if (want && !assignable(out.ty, want)) {
        this.err("E043", `recipe \`${r.name.text}\` declares it returns ${show(want)}, but its output is ${show(out.ty)}`, rfile, r.returns);
        return ERR;
      }
    }
    return out;
  }

  private err60(message: string, hint?: string): void {
    this.diagnostics.push(error("E060", message, undefined, hint));
  }

  private innerStage(d: A.StageDecl, env: Env): Val {
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
}

// ---------- helpers ----------

const parsedTypes = new Map<string, Ty>();
/** Signature types are a handful of strings, parsed once each. */
function typeOf(src: string): Ty {
  let t = parsedTypes.get(src);
  if (!t) parsedTypes.set(src, (t = parseType(src)));
  return t;
}

let universalObject: z.ZodObject | undefined;
const universalSchema = () => (universalObject ??= z.object(universalParams()));

const shapes = new WeakMap<StageKind, Record<string, z.ZodType>>();
/** A kind's parameters, plus those every stage takes (`retry`). */
function shapeWithUniversal(kind: StageKind): Record<string, z.ZodType> {
  let s = shapes.get(kind);
  if (!s) shapes.set(kind, (s = { ...universalParams(), ...(kind.params.shape as Record<string, z.ZodType>) }));
  return s;
}

const paramKeysOf = new WeakMap<StageKind, string[]>();
function keysOf(kind: StageKind): string[] {
  let k = paramKeysOf.get(kind);
  if (!k) paramKeysOf.set(kind, (k = Object.keys(kind.params.shape)));
  return k;
}

function bindingOf(d: A.Decl, mod: LoadedModule): Binding {
  if (d.broken) return { k: "poisoned" };
  return d.type === "StageDecl" ? { k: "stage", decl: d, mod } : d.type === "RecipeDecl" ? { k: "recipe", decl: d, mod } : { k: "type", decl: d, mod };
}

/** A place in some file: overrides from the command line live in their own. */
interface Spot {
  readonly file: SourceFile;
  readonly span: A.Span;
}

interface Ctx {
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

function ctxFor(id: string, used: Set<string>, decl?: A.StageDecl, ns = id): Ctx {
  const alloc = allocator(ns, used);
  const sub = (): Ctx => ({ id: undefined, alloc, sub });
  return { id, alloc, ns, ...(decl ? { decl, innerName: decl.name.text } : {}), sub };
}

const noCtx: Ctx = {
  id: undefined,
  alloc: (k) => `anonymous.${k}`,
  sub: () => noCtx,
};

function hasVar(t: Ty): boolean {
  return t.k === "var" || ((t.k === "dataset" || t.k === "list") && hasVar(t.of)) || (t.k === "union" && t.options.some(hasVar));
}

function keywordFor(t: Ty): string {
  return t.k === "model" ? "model" : t.k === "report" ? "eval" : t.k === "dataset" ? "dataset" : "stage";
}

function refMarker(s: z.ZodType): (ParamMarker & { kind: "ref" }) | undefined {
  const m = deepMarker(s);
  if (m?.kind === "ref") return m;
  const el = elementOf(s);
  const em = el ? deepMarker(el) : undefined;
  return em?.kind === "ref" ? em : undefined;
}

function collectRefs(j: Json, path: string, out: IrInput[]): void {
  if (j === null || typeof j !== "object") return;
  if (Array.isArray(j)) {
    j.forEach((x, i) => collectRefs(x, `${path}[${i}]`, out));
    return;
  }
  if (typeof j["$ref"] === "string" && Object.keys(j).length === 1) {
    out.push({ role: `param:${path}`, from: j["$ref"] });
    return;
  }
  for (const [k, v] of Object.entries(j)) collectRefs(v, `${path}.${k}`, out);
}

/** Values known only later: from the environment at run time, or a recipe parameter checked in the abstract. */
function hasEnv(j: Json): boolean {
  if (j === null || typeof j !== "object") return false;
  if (Array.isArray(j)) return j.some(hasEnv);
  if ("$env" in j || "$secret" in j || "$param" in j) return true;
  return Object.values(j).some(hasEnv);
}

function isSecret(j: Json): boolean {
  if (j === null || typeof j !== "object") return false;
  if (Array.isArray(j)) return j.some(isSecret);
  if ("$secret" in j) return true;
  return Object.values(j).some(isSecret);
}

function jsonMatches(v: Json, t: Ty): boolean {
  // A stand-in for a parameter of an enclosing recipe checked in the abstract: of the declared type by construction.
  if (typeof v === "object" && v !== null && !Array.isArray(v) && "$param" in v) return true;
  switch (t.k) {
    case "scalar":
      switch (t.name) {
        case "string":
          return typeof v === "string" || (typeof v === "object" && v !== null && "$env" in v);
        case "int":
          return Number.isInteger(v);
        case "float":
          return typeof v === "number";
        case "bool":
          return typeof v === "boolean";
        case "duration":
          return typeof v === "object" && v !== null && "duration_ms" in v;
        case "any":
          return true;
      }
      return false;
    case "list":
      return Array.isArray(v) && v.every((x) => jsonMatches(x, t.of));
    case "record":
      return typeof v === "object" && v !== null && !Array.isArray(v);
    default:
      return false;
  }
}

function article(noun: string): string {
  return /^[aeio]/i.test(noun) ? `an ${noun}` : `a ${noun}`;
}

function isDurationSchema(s: z.ZodType | undefined): boolean {
  const def = s && (unwrap(s) as unknown as { _zod: { def: { type: string; shape?: Record<string, unknown> } } })._zod.def;
  return def?.type === "object" && def.shape !== undefined && "duration_ms" in def.shape;
}

function zodMessage(i: z.core.$ZodIssue, schema?: z.ZodType): string {
  const inp = (i as { input?: unknown }).input;
  const got = inp === undefined ? "" : ` (got ${JSON.stringify(inp)?.slice(0, 60)})`;
  if (i.code === "invalid_type" && i.path.length <= 1 && isDurationSchema(schema)) return `expected a duration such as \`30s\`, \`5m\` or \`2h\`${got}`;
  switch (i.code) {
    case "too_small":
      return `must be ${i.inclusive === false ? "greater than" : "at least"} ${String(i.minimum)}${got}`;
    case "too_big":
      return `must be ${i.inclusive === false ? "less than" : "at most"} ${String(i.maximum)}${got}`;
    case "invalid_value":
      return `must be one of ${i.values.map((v) => JSON.stringify(v)).join(", ")}${got}`;
    case "invalid_type":
      return `expected ${i.expected === "object" ? "a record" : i.expected}${got}`;
    default:
      return i.message + got;
  }
}

function fieldSpan(c: A.Call, key: string, name: string): A.Span | undefined {
  const find = (e: A.Expr | undefined): A.Span | undefined => {
    if (!e) return undefined;
    if (e.type === "Reference" && e.path[0]!.text === name) return e;
    if (e.type === "List") for (const x of e.items) if (find(x)) return find(x);
    return undefined;
  };
  for (const a of c.args) if (a.name?.text === key) return find(a.value);
  for (const en of c.block?.entries ?? []) if (en.key[0]!.text === key) return find(en.value);
  return undefined;
}

export function sortKeys(j: Json): Json {
  if (j === null || typeof j !== "object") return j;
  if (Array.isArray(j)) return j.map(sortKeys);
  const out: { [k: string]: Json } = {};
  for (const k of Object.keys(j).sort()) out[k] = sortKeys(j[k]!);
  return out;
}

export type { Range };
