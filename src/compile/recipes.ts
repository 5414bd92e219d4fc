import { error } from "../diagnostics/diagnostic.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";
import type * as A from "../syntax/ast.js";
import { assignable, show, type Ty } from "../types/types.js";
import { checkEdge } from "./edges.js";
import { checkRepeatDecl, elaborateRounds } from "./rounds.js";
import { article, ctxFor, ERR, type Ctx, type Elab, type Env, type Locals, type Spot, type Val } from "./elaboration.js";
import type { Json } from "../core/ir.js";
import type { LoadedModule } from "./modules.js";

/** A recipe declaration's own rules: unique parameter and stage names, an `output` that names one of them. */
export function checkRecipeSignature(el: Elab, r: A.RecipeDecl, mod: LoadedModule): void {
  const file = mod.ast.file;
  const seen = new Set<string>();
  for (const p of r.params) {
    if (seen.has(p.name.text)) el.err("E021", `recipe parameter \`${p.name.text}\` is declared twice`, file, p.name, "rename one of them");
    seen.add(p.name.text);
    el.types.resolve(p.paramType, file);
  }
  const inner = new Set<string>();
  for (const s of [...r.stages, ...(r.repeats ?? [])]) {
    if (inner.has(s.name.text) || seen.has(s.name.text)) el.err("E021", `\`${s.name.text}\` is already defined in recipe \`${r.name.text}\``, file, s.name, "give each stage a unique name");
    inner.add(s.name.text);
  }
  for (const rep of r.repeats ?? []) checkRepeatDecl(el, rep, new Set([...inner, ...seen]), file);
  if (!r.output) el.err("E045", `recipe \`${r.name.text}\` has no \`output\``, file, r.name, "end the recipe body with `output <stage name>`");
  else if (!inner.has(r.output.text) && !seen.has(r.output.text))
    el.err("E020", `unknown stage \`${r.output.text}\` in \`output\``, file, r.output, hintDidYouMean(r.output.text, [...inner, ...seen]) ?? "name one of the recipe's stages");
  if (r.returns) el.types.resolve(r.returns, file);
}

/** An argument of a recipe call: an expression to evaluate where it was written, or an evaluated (piped) value. */
interface Given {
  readonly expr?: A.Expr;
  readonly val?: Val;
  readonly at: A.Span;
}

/** One instantiation in progress: the recipe, where it is called, and the instance's names. */
interface Instance {
  readonly r: A.RecipeDecl;
  readonly c: A.Call;
  /** Where the call is written, and the recipe's own module. */
  readonly env: Env;
  readonly renv: Env;
  readonly locals: Locals;
  readonly paramNames: readonly string[];
  readonly given: Map<string, Given>;
  bad: boolean;
}

/**
 * Instantiates a recipe: binds the call's arguments to its parameters (checked against their declared types),
 * collects the overrides of its inner stages, then elaborates its body in the instance's namespace. `abstract`
 * checks a recipe nobody instantiated, its missing parameters standing for values of their declared types.
 */
export function instantiate(el: Elab, r: A.RecipeDecl, rmod: LoadedModule, c: A.Call, env: Env, ctx: Ctx, piped?: Val, abstract = false): Val {
  el.instantiated.add(r);
  if (el.recipeStack.includes(r)) {
    el.err("E050", `recipe \`${r.name.text}\` instantiates itself`, env.mod.ast.file, c.callee, "recipes cannot be recursive");
    return ERR;
  }
  const id = ctx.id ?? ctx.alloc(r.name.text);
  const ns = ctx.ns ?? id;
  el.usedIds.add(id);
  const stageDecls = new Map(r.stages.map((s) => [s.name.text, s] as const));
  const repeats = new Map((r.repeats ?? []).map((d) => [d.name.text, d] as const));
  const locals: Locals = { instanceId: id, ns, recipe: r, values: new Map(), origins: new Map(), stages: stageDecls, repeats, innerOverrides: new Map(), ...(r.output ? { outputName: r.output.text } : {}) };
  const inst: Instance = { r, c, env, renv: { mod: rmod, locals, prefix: "" }, locals, paramNames: r.params.map((p) => p.name.text), given: new Map(), bad: false };
  bindArguments(el, inst, piped);
  bindBlock(el, inst);
  el.recipeStack.push(r);
  bindParameters(el, inst, abstract);
  const out = inst.bad || !r.output ? ERR : elaborateBody(el, inst);
  el.recipeStack.pop();
  if (inst.bad || out.t !== "stage") return ERR;
  if (r.returns) {
    const want = el.types.resolve(r.returns, rmod.ast.file);
    if (want && !assignable(out.ty, want)) {
      el.err("E043", `recipe \`${r.name.text}\` declares it returns ${show(want)}, but its output is ${show(out.ty)}`, rmod.ast.file, r.returns);
      return ERR;
    }
  }
  return out;
}

/** Arguments in the parentheses: positional ones (a piped dataset first) fill the parameters in order. */
function bindArguments(el: Elab, inst: Instance, piped?: Val): void {
  const { r, c, given, paramNames } = inst;
  const file = inst.env.mod.ast.file;
  const positional: Given[] = [];
  if (piped) positional.push({ val: piped, at: c.callee });
  for (const a of c.args) {
    if (!a.name) positional.push({ expr: a.value, at: a.value });
    else if (paramNames.includes(a.name.text)) {
      if (given.has(a.name.text)) el.err("E021", `\`${a.name.text}\` is given twice`, file, a.name);
      given.set(a.name.text, { expr: a.value, at: a.name });
    } else {
      el.err("E030", `recipe \`${r.name.text}\` has no parameter \`${a.name.text}\``, file, a.name, hintDidYouMean(a.name.text, paramNames) ?? `its parameters: ${paramNames.join(", ") || "none"}`);
      inst.bad = true;
    }
  }
  positional.forEach((p, i) => {
    const name = paramNames[i];
    if (name === undefined) {
      el.err("E033", `recipe \`${r.name.text}\` takes ${paramNames.length} parameter${paramNames.length === 1 ? "" : "s"}, got more`, file, p.at, "remove the extra argument");
      inst.bad = true;
    } else if (given.has(name)) {
      el.err("E021", `\`${name}\` is given twice`, file, p.at);
      inst.bad = true;
    } else given.set(name, p);
  });
}

/** The call's block: parameters (`n = 5`) and overrides of inner stages (`mixture.seed = 7`). */
function bindBlock(el: Elab, inst: Instance): void {
  const { r, c, given, paramNames } = inst;
  const { stages: stageDecls, innerOverrides } = inst.locals;
  const file = inst.env.mod.ast.file;
  for (const en of c.block?.entries ?? []) {
    const head = en.key[0]!.text;
    if (en.key.length === 1 && !en.quoted && paramNames.includes(head)) {
      if (given.has(head)) el.err("E021", `\`${head}\` is given twice`, file, en.key[0]!);
      else given.set(head, { expr: en.value, at: en.key[0]! });
    } else if (en.key.length > 1 && (stageDecls.has(head) || roundStageNames(r).has(head))) {
      const list = innerOverrides.get(head) ?? [];
      list.push({ entry: en, env: inst.env });
      innerOverrides.set(head, list);
    } else {
      const inner = [...stageDecls.keys()].map((s) => `${s}.<param>`);
      el.err("E030", `recipe \`${r.name.text}\` has no parameter \`${en.key.map((k) => k.text).join(".")}\``, file, en.key[0]!, hintDidYouMean(head, [...paramNames, ...stageDecls.keys()]) ?? `its parameters: ${paramNames.join(", ")}; inner stages: ${inner.join(", ")}`);
      inst.bad = true;
    }
  }
}

/** Each parameter's value: from `--set`, the call, or the default; checked against the declared type. */
function bindParameters(el: Elab, inst: Instance, abstract: boolean): void {
  const { r, c, env, renv, given, paramNames } = inst;
  const { instanceId: id, ns, values, origins } = inst.locals;
  const file = env.mod.ast.file;
  const cli = el.overrides.get(id);
  for (const p of r.params) {
    const declared = el.types.resolve(p.paramType, renv.mod.ast.file);
    const g = given.get(p.name.text);
    let v: Val;
    const cliV = cli?.get(p.name.text);
    if (cliV !== undefined) {
      el.usedOverrides.add(`${id}\0${p.name.text}`);
      v = el.expr(cliV.expr, cliV.env, ctxFor(`${ns}.${p.name.text}`, el.usedIds));
    } else if (g?.val) v = g.val;
    else if (g?.expr) {
      v = el.expr(g.expr, env, ctxFor(`${ns}.${p.name.text}`, el.usedIds));
      origins.set(p.name.text, { file, span: g.expr } satisfies Spot);
    } else if (p.default) v = el.expr(p.default, renv, ctxFor(`${ns}.${p.name.text}`, el.usedIds));
    else if (abstract && declared) {
      // A stand-in of the declared type: stages get a placeholder stage, plain values a placeholder value.
      const standIn: Val = declared.k === "dataset" || declared.k === "model" || declared.k === "template" ? { t: "stage", id: `${ns}.${p.name.text}`, ty: declared } : { t: "json", v: { $param: p.name.text } };
      values.set(p.name.text, standIn);
      continue;
    } else {
      el.err("E031", `recipe \`${r.name.text}\` needs parameter \`${p.name.text}\``, file, c.callee, `pass it: \`${r.name.text}(${p.name.text}: ...)\``);
      inst.bad = true;
      continue;
    }
    if (v.t === "error" || !declared) {
      inst.bad = true;
      values.set(p.name.text, ERR);
      continue;
    }
    if (!parameterMatches(el, inst, p, v, declared, g?.at ?? c.callee)) inst.bad = true;
    values.set(p.name.text, v);
  }
  if (cli) for (const k of cli.keys()) if (!paramNames.includes(k)) el.usedOverrides.add(`${id}\0${k}`), el.diagnostics.push(error("E060", `--set ${id}.${k}: recipe \`${r.name.text}\` has no parameter \`${k}\``, undefined, hintDidYouMean(k, paramNames)));
}

function parameterMatches(el: Elab, inst: Instance, p: A.RecipeParam, v: Val, declared: Ty, at: A.Span): boolean {
  const file = inst.env.mod.ast.file;
  const r = inst.r;
  if (v.t === "stage") return checkEdge(el, v, declared, new Map(), file, at, `parameter \`${p.name.text}\` of recipe \`${r.name.text}\``);
  if (v.t === "json" && !jsonMatches(v.v, declared)) {
    el.err("E032", `parameter \`${p.name.text}\` of recipe \`${r.name.text}\` is ${show(declared)}, got ${JSON.stringify(v.v)}`, file, at, `pass ${article(show(declared))}`);
    return false;
  }
  return true;
}

/** Inner stages are elaborated in order; each is memoized, so references between them are free. */
function elaborateBody(el: Elab, inst: Instance): Val {
  const { r, renv } = inst;
  const { values, stages: stageDecls, innerOverrides } = inst.locals;
  for (const s of r.stages) {
    const v = el.innerStage(s, renv);
    if (v.t === "error") inst.bad = true;
  }
  for (const rep of r.repeats ?? []) if (!elaborateRounds(el, rep, renv, `${inst.locals.ns}.`, el.rounds)) inst.bad = true;
  const o = r.output!.text;
  const out = values.get(o) ?? (stageDecls.has(o) ? el.innerStage(stageDecls.get(o)!, renv) : ERR);
  for (const key of innerOverrides.keys()) if (!stageDecls.has(key) && !roundStageNames(r).has(key)) inst.bad = true;
  return out;
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

/** The stage names of a recipe's repeat blocks: an instantiation's `{ curate.min_score = 4 }` sets it in every round. */
function roundStageNames(r: A.RecipeDecl): Set<string> {
  return new Set((r.repeats ?? []).flatMap((rep) => rep.stages.map((s) => s.name.text)));
}
