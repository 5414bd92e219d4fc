import type { z } from "zod";
import type { SourceFile } from "../diagnostics/source.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";
import { deepMarker, elementOf, type ParamMarker } from "../stages/schema.js";
import type * as A from "../syntax/ast.js";
import { assignable, recordOf, show, showShape, substitute, type Bindings, type Ty } from "../types/types.js";
import { typeOf, type Elab, type Val } from "./elaboration.js";
import type { IrInput, Json } from "../core/ir.js";
import type { ValidatedParams } from "./params.js";
import type { BoundCall } from "./stage-call.js";

/** The edge phase's result: the stage's inputs for the IR, and the type variables their types bound. */
export interface TypedEdges {
  /** False when an edge (or an earlier phase) had an error. */
  readonly ok: boolean;
  readonly inputs: IrInput[];
  readonly bindings: Bindings;
}

/**
 * The edge phase: the number and types of a stage call's inputs, its components, the stages its parameters refer
 * to, and the fields its parameters name against the first input's record type.
 */
export function typeEdges(el: Elab, call: BoundCall, validated: ValidatedParams | undefined): TypedEdges {
  const e: EdgeState = { bad: call.bad, inputs: [], bindings: new Map() };
  positionalInputs(el, call, e);
  components(el, call, e);
  parameterRefs(el, call, e);
  fieldNames(el, call, validated, e);
  return { ok: !e.bad, inputs: e.inputs, bindings: e.bindings };
}

interface EdgeState {
  bad: boolean;
  readonly inputs: IrInput[];
  readonly bindings: Bindings;
}

function positionalInputs(el: Elab, call: BoundCall, e: EdgeState): void {
  const { kind, inputs, file } = call;
  const c = call.call;
  if (inputs.some((i) => i.val.t === "error")) e.bad = true;
  const specs = kind.inputs;
  const variadic = specs.length > 0 && specs[specs.length - 1]!.variadic === true;
  const required = specs.filter((s) => !s.optional && !s.variadic).length + (variadic ? 1 : 0);
  if (!e.bad && (inputs.length < required || (!variadic && inputs.length > specs.length))) {
    const want = variadic ? `at least ${required}` : required === specs.length ? `${specs.length}` : `${required} to ${specs.length}`;
    const names = specs.map((s) => `${s.name}: ${s.type}`).join(", ");
    el.err("E033", `\`${kind.name}\` takes ${want} input${specs.length === 1 && !variadic ? "" : "s"} (${names || "none"}), got ${inputs.length}`, file, inputs.length > specs.length && !variadic ? inputs[specs.length]!.at : c.callee, inputs.length < required ? `pass the input: \`${specs[inputs.length]?.name ?? "data"} |> ${kind.name}(...)\`` : "remove the extra input");
    e.bad = true;
  }
  inputs.forEach((inp, i) => {
    const spec = specs[Math.min(i, specs.length - 1)];
    if (!spec || inp.val.t !== "stage") {
      if (spec && inp.val.t === "json") {
        el.err("E040", `input \`${spec.name}\` of \`${kind.name}\` needs a stage, got a plain value`, file, inp.at, "refer to a dataset or model stage by name");
        e.bad = true;
      }
      return;
    }
    const expected = typeOf(spec.type);
    if (!checkEdge(el, inp.val, expected, e.bindings, file, inp.at, `input \`${spec.name}\` of \`${kind.name}\``)) e.bad = true;
    e.inputs.push({ role: spec.variadic ? `${spec.name}[${i - specs.length + 1}]` : spec.name, from: inp.val.id });
  });
}

function components(el: Elab, call: BoundCall, e: EdgeState): void {
  const { kind, file } = call;
  if (!kind.components) return;
  const expected = typeOf(kind.components.type);
  for (const comp of call.components.values()) {
    if (comp.val.t !== "stage") {
      el.err("E040", `component \`${comp.key}\` is not a stage`, file, comp.at);
      e.bad = true;
      continue;
    }
    if (!checkEdge(el, comp.val, expected, e.bindings, file, comp.at, `component \`${comp.key}\` of \`${kind.name}\``)) e.bad = true;
    e.inputs.push({ role: `component:${comp.key}`, from: comp.val.id });
  }
  if (call.components.size === 0 && !e.bad) {
    el.err("E033", `\`${kind.name}\` needs at least one component`, file, call.call.callee, "list components in its block: `{ flan : take(50_000) }`");
    e.bad = true;
  }
}

/** Parameters that refer to stages: check the referenced stage's type. */
function parameterRefs(el: Elab, call: BoundCall, e: EdgeState): void {
  const { kind, shape, spans, file } = call;
  for (const r of call.refInputs) {
    const key = r.role.slice(6).split(/[.[]/)[0]!;
    const target = el.stages.get(r.from);
    const m = shape[key] ? refMarker(shape[key]!) : undefined;
    if (target && m) {
      const where = spans.get(key) ?? { file, span: call.call };
      if (!checkEdge(el, { t: "stage", id: target.id, ty: target.type }, typeOf(m.type), new Map(e.bindings), where.file, where.span, `parameter \`${key}\` of \`${kind.name}\``)) e.bad = true;
    }
    e.inputs.push(r);
  }
}

/** Field references against the first input's record type. */
function fieldNames(el: Elab, call: BoundCall, validated: ValidatedParams | undefined, e: EdgeState): void {
  const { shape, spans, file } = call;
  const c = call.call;
  const firstInput = call.inputs[0]?.val;
  const rec = firstInput?.t === "stage" ? recordOf(firstInput.ty) : undefined;
  if (!rec || rec.k !== "record" || rec.open || !validated) return;
  for (const key of call.paramKeys) {
    const s = shape[key]!;
    const m = deepMarker(s);
    const elM = elementOf(s) ? deepMarker(elementOf(s)!) : undefined;
    const v = validated[key];
    const names = m?.kind === "field" && typeof v === "string" ? [v] : elM?.kind === "field" && Array.isArray(v) ? (v as Json[]).filter((x): x is string => typeof x === "string") : [];
    for (const n of names) {
      if (!rec.fields.has(n)) {
        const fs = fieldSpan(c, key, n);
        const where = fs ? { file, span: fs } : (spans.get(key) ?? { file, span: c });
        el.err("E041", `${rec.name} has no field \`${n}\``, where.file, where.span, [hintDidYouMean(n, rec.fields.keys()), `${rec.name} is ${showShape(rec)}`].filter(Boolean).join(" "));
        e.bad = true;
      }
    }
  }
}

/** Whether a stage's output may flow where `expected` is wanted; if not, an error that says how to get there. */
export function checkEdge(el: Elab, v: Val & { t: "stage" }, expected: Ty, b: Bindings, file: SourceFile, at: A.Span, what: string): boolean {
  if (assignable(v.ty, expected, b)) return true;
  const actualRec = recordOf(v.ty);
  let hint: string | undefined;
  if (actualRec && expected.k === "dataset") {
    const conv = el.registry.convertersFrom(actualRec.k === "record" ? actualRec.name : "").find((k) => assignable(typeOf(k.output), expected, new Map(b)));
    if (conv) hint = `convert it first: \`${v.id} |> ${conv.name}()\``;
  }
  const exp = substitute(expected, b);
  hint ??= actualRec && exp.k === "dataset" && exp.of.k === "record" ? `${show(v.ty)} records are ${showShape(actualRec)}; ${show(exp)} needs ${showShape(exp.of)}` : undefined;
  const wanted = hasVar(exp) ? (exp.k === "dataset" ? "a dataset" : "a value of another type") : show(exp);
  el.err("E040", `${what} expects ${wanted}, but \`${v.id}\` is ${show(v.ty)}`, file, at, hint);
  return false;
}

function hasVar(t: Ty): boolean {
  return t.k === "var" || ((t.k === "dataset" || t.k === "list") && hasVar(t.of)) || (t.k === "union" && t.options.some(hasVar));
}

function refMarker(s: z.ZodType): (ParamMarker & { kind: "ref" }) | undefined {
  const m = deepMarker(s);
  if (m?.kind === "ref") return m;
  const el = elementOf(s);
  const em = el ? deepMarker(el) : undefined;
  return em?.kind === "ref" ? em : undefined;
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
