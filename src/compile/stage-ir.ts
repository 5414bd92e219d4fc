import { assignable, dataset, show, substitute, type Ty } from "../types/types.js";
import { hasEnv, typeOf, type Ctx, type Elab, type Env, type Val } from "./elaboration.js";
import type { TypedEdges } from "./edges.js";
import type { IrInput, IrStage, Json } from "../core/ir.js";
import { TRAIN_DATA_ROLE } from "../stages/eval/kinds.js";
import type { ValidatedParams } from "./params.js";
import type { BoundCall } from "./stage-call.js";

/**
 * The last phase of a stage call: its output type (the kind's signature with the inputs' bindings, fields the
 * kind adds, the declaration's annotation), its final parameters (components, cross-parameter rules) and the IR
 * stage, added to the program.
 */
export function buildStage(el: Elab, call: BoundCall, validated: ValidatedParams, edges: TypedEdges, env: Env, ctx: Ctx): Val {
  const out = outputType(el, call, validated, edges, ctx);
  if (!out) return { t: "error" };
  const params = finalParams(el, call, validated);
  if (!params) return { t: "error" };
  const { kind, id, file } = call;
  const c = call.call;
  const declared = ctx.decl && ctx.id === id ? ctx.decl : undefined;
  const stage: IrStage = {
    id,
    kind: kind.name,
    category: kind.category,
    ...(declared ? { keyword: declared.keyword } : {}),
    params: sortKeys(params) as { [k: string]: Json },
    inputs: kind.trainingData ? [...edges.inputs, ...trainingDataInputs(el, edges.inputs, kind.trainingData)] : edges.inputs,
    type: out,
    ...(declared?.doc ? { doc: declared.doc } : {}),
    range: { file, start: declared ? declared.start : c.start, end: declared ? declared.end : c.end },
    declared: declared !== undefined && !env.locals,
    ...(env.locals ? { recipe: env.locals.instanceId } : {}),
    ...(call.fromRecipe.size > 0 ? { fromRecipe: Object.fromEntries([...call.fromRecipe].sort()) } : {}),
  };
  el.usedIds.add(id);
  el.stages.set(id, stage);
  return { t: "stage", id, ty: out };
}

function outputType(el: Elab, call: BoundCall, validated: ValidatedParams, edges: TypedEdges, ctx: Ctx): Ty | undefined {
  const { kind, id, file } = call;
  let out = substitute(typeOf(kind.output), edges.bindings);
  if (kind.addsFields && out.k === "dataset" && out.of.k === "record") {
    const fields = new Map(out.of.fields);
    for (const [name, t] of Object.entries(kind.addsFields(validated))) fields.set(name, { ty: typeOf(t), optional: false });
    out = dataset({ ...out.of, fields });
  }
  if (kind.category === "source") {
    const ann = ctx.decl?.annotation;
    if (ann && ctx.id === id) {
      const t = el.types.resolve(ann, file);
      if (!t) return undefined;
      const rec = t.k === "dataset" ? t.of : t;
      if (rec.k !== "record") {
        el.err("E043", `a source reads records: its annotation is a record type, not ${show(t)}`, file, ann, "write the type of one record, e.g. `dataset prefs: Preference = jsonl(...)`");
        return undefined;
      }
      out = dataset(rec);
    }
  } else if (ctx.decl?.annotation && ctx.id === id) {
    const t = el.types.resolve(ctx.decl.annotation, file);
    if (!t) return undefined;
    const want = ctx.decl.keyword === "model" || t.k !== "record" ? t : dataset(t);
    if (!assignable(out, want)) {
      el.err("E043", `\`${ctx.decl.name.text}\` is declared ${show(want)}, but \`${kind.name}\` produces ${show(out)}`, file, ctx.decl.annotation, out.k === "dataset" && want.k === "dataset" ? "fix the annotation, or convert the data" : "fix the annotation");
      return undefined;
    }
    out = want;
  }
  if (out.k === "var" || (out.k === "dataset" && out.of.k === "var")) out = dataset({ k: "record", name: "Json", fields: new Map(), open: true });
  return out;
}

/** The validated parameters with the components' rules, checked by the kind's rules across parameters. */
function finalParams(el: Elab, call: BoundCall, validated: ValidatedParams): Record<string, Json> | undefined {
  const { kind, components, spans, shape, file } = call;
  const params: Record<string, Json> = { ...validated };
  if (components.size > 0) {
    const comps: { [k: string]: Json } = {};
    for (const comp of components.values()) comps[comp.key] = comp.rule;
    params["components"] = comps;
  }
  if (kind.refine && !hasEnv(params)) {
    const problems = kind.refine(params);
    for (const pr of problems) {
      const comp = pr.path[0] === "components" ? components.get(pr.path[1] ?? "") : undefined;
      const where = comp ? { file, span: comp.ruleAt } : (spans.get(pr.path[0] ?? "") ?? { file, span: call.call.callee });
      el.err("E032", pr.message, where.file, where.span, shape[pr.path[0] ?? ""]?.description);
    }
    if (problems.length > 0) return undefined;
  }
  return params;
}

/**
 * The training data of the model a stage reads (its input `role`): walking upstream through the stages that make
 * models, the `data` input of each training stage, once each, as inputs `train_data:<stage>`. A model made outside
 * the recipe (`hf_model`, an endpoint) has none here.
 */
function trainingDataInputs(el: Elab, inputs: readonly IrInput[], role: string): IrInput[] {
  const out: IrInput[] = [];
  const seen = new Set<string>();
  const walk = (id: string): void => {
    if (seen.has(id)) return;
    seen.add(id);
    const s = el.stages.get(id);
    if (!s || s.type.k !== "model") return;
    for (const i of s.inputs) {
      if (s.category === "train" && i.role === "data") {
        if (!out.some((o) => o.from === i.from)) out.push({ role: `${TRAIN_DATA_ROLE}${i.from}`, from: i.from });
      } else walk(i.from);
    }
  };
  for (const i of inputs) if (i.role === role) walk(i.from);
  return out;
}

export function sortKeys(j: Json): Json {
  if (j === null || typeof j !== "object") return j;
  if (Array.isArray(j)) return j.map(sortKeys);
  const out: { [k: string]: Json } = {};
  for (const k of Object.keys(j).sort()) out[k] = sortKeys(j[k]!);
  return out;
}
