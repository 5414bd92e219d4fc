import type { IrProgram, IrStage, Json } from "../core/ir.js";
import { show } from "../types/types.js";
import { buildGraph, downstreamOf } from "./build.js";

export interface ParamChange {
  readonly param: string;
  /** Absent when the parameter was added. */
  readonly old?: Json;
  /** Absent when the parameter was removed. */
  readonly new?: Json;
  /** The recipe parameter that sets it (`clean.rouge_max`), when the value comes from one. */
  readonly from?: string;
}

/** A recipe parameter whose value changed, and the inner stages' parameters it sets. */
export interface RecipeParamChange {
  readonly param: string;
  readonly old?: Json;
  readonly new?: Json;
  /** `stage.param` of each inner stage parameter it sets. */
  readonly sets: string[];
}

export interface StageChange {
  readonly id: string;
  readonly kind: string;
  readonly oldKind?: string;
  readonly params: ParamChange[];
  /** Mixture components: a component added, removed, or its rule (count, fraction, weight) changed. */
  readonly components: { readonly component: string; readonly old?: Json; readonly new?: Json }[];
  readonly type?: { readonly old: string; readonly new: string };
  /** Inputs rewired: role -> upstream stage. */
  readonly inputs: { readonly role: string; readonly old?: string; readonly new?: string }[];
}

export interface ProgramDiff {
  readonly added: { id: string; kind: string; type: string }[];
  readonly removed: { id: string; kind: string; type: string }[];
  readonly changed: StageChange[];
  /** Recipe parameters that changed (as the user wrote them), with the inner parameters they set. */
  readonly recipeParams: RecipeParamChange[];
  /** Stages whose results the change invalidates: downstream of every added or changed stage (in the new program). */
  readonly invalidated: string[];
}

/** One import from outside the checkout, at a version: a package's, or a repository's commit. */
export interface ImportVersion {
  /** `@org/recipes`, `git+https://host/org/repo.git`. */
  readonly name: string;
  /** The package version, or the commit (several when the program imports the repository at several). */
  readonly version: string;
  /** The folders its modules lie in (a package's folder, a checkout). */
  readonly roots: readonly string[];
}

/** An import whose version changed, the new program's stages declared in it, and the stages downstream of those. */
export interface ImportChange {
  readonly name: string;
  /** Absent when the import is new. */
  readonly old?: string;
  /** Absent when the import was dropped. */
  readonly new?: string;
  readonly stages: string[];
  readonly invalidated: string[];
}

export function diffImports(oldI: readonly ImportVersion[], newI: readonly ImportVersion[], newP: IrProgram): ImportChange[] {
  const before = new Map(oldI.map((i) => [i.name, i]));
  const after = new Map(newI.map((i) => [i.name, i]));
  const out: ImportChange[] = [];
  const g = buildGraph(newP);
  for (const name of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const o = before.get(name);
    const n = after.get(name);
    if (o?.version === n?.version) continue;
    const roots = n?.roots ?? [];
    const stages = [...newP.stages.values()].filter((s) => roots.some((r) => s.range.file.path.startsWith(`${r}/`))).map((s) => s.id);
    out.push({ name, ...(o ? { old: o.version } : {}), ...(n ? { new: n.version } : {}), stages, invalidated: downstreamOf(g, stages) });
  }
  return out;
}

export function renderImportChanges(changes: readonly ImportChange[]): string[] {
  const out: string[] = [];
  for (const c of changes) {
    const short = (v: string) => v.replace(/\b([0-9a-f]{12})[0-9a-f]{28}\b/g, "$1");
    out.push(`~ import ${c.name}: ${c.old === undefined ? "(new)" : short(c.old)} -> ${c.new === undefined ? "(dropped)" : short(c.new)}`);
    if (c.stages.length > 0) out.push(`    stages from it: ${c.stages.join(", ")}`);
    if (c.invalidated.length > 0) out.push(`    invalidated downstream: ${c.invalidated.join(", ")}`);
  }
  return out;
}

/** The semantic difference between two checked programs, by stage id. */
export function diffPrograms(oldP: IrProgram, newP: IrProgram): ProgramDiff {
  const summary = (s: IrStage) => ({ id: s.id, kind: s.kind, type: show(s.type) });
  const added = [...newP.stages.values()].filter((s) => !oldP.stages.has(s.id)).map(summary);
  const removed = [...oldP.stages.values()].filter((s) => !newP.stages.has(s.id)).map(summary);
  const changed: StageChange[] = [];
  for (const n of newP.stages.values()) {
    const o = oldP.stages.get(n.id);
    if (!o) continue;
    const c = diffStage(o, n);
    if (c) changed.push(c);
  }
  const g = buildGraph(newP);
  const roots = [...added.map((a) => a.id), ...changed.map((c) => c.id)];
  const rootSet = new Set(roots);
  const invalidated = downstreamOf(g, roots).filter((id) => !rootSet.has(id));
  return { added, removed, changed, recipeParams: recipeParamChanges(changed), invalidated };
}

/** The recipe parameters behind inner parameter changes: what the user changed, in the recipe's own words. */
function recipeParamChanges(changed: readonly StageChange[]): RecipeParamChange[] {
  const byParam = new Map<string, { old?: Json; new?: Json; sets: string[] }>();
  for (const c of changed) {
    for (const p of c.params) {
      if (p.from === undefined) continue;
      const e = byParam.get(p.from) ?? { ...(p.old !== undefined ? { old: p.old } : {}), ...(p.new !== undefined ? { new: p.new } : {}), sets: [] };
      e.sets.push(`${c.id}.${p.param}`);
      byParam.set(p.from, e);
    }
  }
  return [...byParam].map(([param, e]) => ({ param, ...e }));
}

function diffStage(o: IrStage, n: IrStage): StageChange | undefined {
  const params: ParamChange[] = [];
  const keys = new Set([...Object.keys(o.params), ...Object.keys(n.params)]);
  keys.delete("components");
  for (const k of [...keys].sort()) {
    const a = o.params[k];
    const b = n.params[k];
    if (same(a, b)) continue;
    const from = n.fromRecipe?.[k] ?? o.fromRecipe?.[k];
    params.push({ param: k, ...(a !== undefined ? { old: a } : {}), ...(b !== undefined ? { new: b } : {}), ...(from !== undefined ? { from } : {}) });
  }
  const oc = (o.params["components"] ?? {}) as { [k: string]: Json };
  const nc = (n.params["components"] ?? {}) as { [k: string]: Json };
  const components: StageChange["components"] = [];
  for (const k of new Set([...Object.keys(oc), ...Object.keys(nc)])) {
    if (same(oc[k], nc[k])) continue;
    components.push({ component: k, ...(oc[k] !== undefined ? { old: oc[k] } : {}), ...(nc[k] !== undefined ? { new: nc[k] } : {}) });
  }
  const inputs: StageChange["inputs"] = [];
  const oi = new Map(o.inputs.filter((i) => !i.role.startsWith("param:") && !i.role.startsWith("component:")).map((i) => [i.role, i.from]));
  const ni = new Map(n.inputs.filter((i) => !i.role.startsWith("param:") && !i.role.startsWith("component:")).map((i) => [i.role, i.from]));
  for (const r of new Set([...oi.keys(), ...ni.keys()])) {
    if (oi.get(r) === ni.get(r)) continue;
    inputs.push({ role: r, ...(oi.has(r) ? { old: oi.get(r)! } : {}), ...(ni.has(r) ? { new: ni.get(r)! } : {}) });
  }
  const ot = show(o.type);
  const nt = show(n.type);
  if (o.kind === n.kind && params.length === 0 && components.length === 0 && inputs.length === 0 && ot === nt) return undefined;
  return {
    id: n.id,
    kind: n.kind,
    ...(o.kind !== n.kind ? { oldKind: o.kind } : {}),
    params,
    components,
    ...(ot !== nt ? { type: { old: ot, new: nt } } : {}),
    inputs,
  };
}

function same(a: Json | undefined, b: Json | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A parameter value in recipe syntax: `take(50000)`, `env("X")`, `30s`, a stage name. */
export function showValue(j: Json | undefined): string {
  if (j === undefined) return "(unset)";
  if (j === null || typeof j !== "object") return typeof j === "string" ? JSON.stringify(j) : String(j);
  if (Array.isArray(j)) return `[${j.map(showValue).join(", ")}]`;
  if (typeof j["$ref"] === "string") return j["$ref"];
  if (typeof j["$env"] === "string") return `env(${JSON.stringify(j["$env"])})`;
  if (typeof j["$secret"] === "string") return `secret(${JSON.stringify(j["$secret"])})`;
  if (typeof j["duration_ms"] === "number" && Object.keys(j).length === 1) return formatDuration(j["duration_ms"]);
  if (typeof j["fn"] === "string") {
    const args = Object.entries(j).filter(([k]) => k !== "fn");
    // A value function without parameters is a constant, written bare: `all`.
    return args.length === 0 ? j["fn"] : `${j["fn"]}(${args.map(([k, v]) => `${k}: ${showValue(v)}`).join(", ")})`;
  }
  return `{ ${Object.entries(j).map(([k, v]) => `${k}: ${showValue(v)}`).join(", ")} }`;
}

function formatDuration(ms: number): string {
  for (const [unit, n] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) if (ms % n === 0 && ms >= n) return `${ms / n}${unit}`;
  return `${ms}ms`;
}

export function renderDiff(d: ProgramDiff): string {
  const out: string[] = [];
  for (const r of d.recipeParams) out.push(`~ recipe parameter ${r.param}: ${showValue(r.old)} -> ${showValue(r.new)} (sets ${r.sets.join(", ")})`);
  for (const a of d.added) out.push(`+ ${a.id} (${a.kind}): ${a.type}`);
  for (const r of d.removed) out.push(`- ${r.id} (${r.kind}): ${r.type}`);
  for (const c of d.changed) {
    out.push(`~ ${c.id} (${c.oldKind ? `${c.oldKind} -> ` : ""}${c.kind})`);
    for (const p of c.params) out.push(`    ${p.param}: ${showValue(p.old)} -> ${showValue(p.new)}${p.from !== undefined ? ` (from recipe parameter ${p.from})` : ""}`);
    for (const k of c.components) out.push(`    component ${k.component}: ${k.old === undefined ? "(added)" : showValue(k.old)} -> ${k.new === undefined ? "(removed)" : showValue(k.new)}`);
    for (const i of c.inputs) out.push(`    input ${i.role}: ${i.old ?? "(none)"} -> ${i.new ?? "(none)"}`);
    if (c.type) out.push(`    type: ${c.type.old} -> ${c.type.new}`);
  }
  if (out.length === 0) return "no semantic changes\n";
  if (d.invalidated.length > 0) out.push(`invalidated downstream: ${d.invalidated.join(", ")}`);
  return out.join("\n") + "\n";
}
