import type { IrProgram, Json } from "../core/ir.js";
import { planProgram, type PlanOptions } from "../runtime/plan.js";
import { artifactOf } from "../runtime/scheduler.js";
import type { Manifest, Store } from "../runtime/store.js";
import { isReport } from "../stages/eval/report.js";
import {
  dropsOf,
  generationOf,
  otherCounts,
  plannedMix,
  readRunEvents,
  ruleText,
  stateOf,
  trainingOf,
  type DropRow,
  type Edge,
  type EvalTable,
  type GenerationRow,
  type Mixture,
  type RecipeReport,
  type RunEvents,
  type StageRow,
  type StageState,
  type TrainingRun,
} from "./data.js";

/**
 * The last run of a recipe that the store's logs tell of (the newest log whose run_started names it), or of one run
 * by id. Logs are read newest first, and only as far as the first match.
 */
export function lastRunOf(store: Store, recipe: string, runId?: string): RunEvents | undefined {
  const ids = runId !== undefined ? [runId] : store.runIds().reverse();
  for (const id of ids) {
    const text = store.runLogText(id);
    if (text === undefined) continue;
    const events = readRunEvents(id, text);
    if (events.recipe === recipe) return events;
  }
  return undefined;
}

/** The runs of a recipe the store's logs tell of, newest first: what `--run` chooses from. */
export function runsOf(store: Store, recipe: string): RunEvents[] {
  const out: RunEvents[] = [];
  for (const id of store.runIds().reverse()) {
    const text = store.runLogText(id);
    const events = text === undefined ? undefined : readRunEvents(id, text);
    if (events?.recipe === recipe) out.push(events);
  }
  return out;
}

/** One stage as the report sees it: what it is, its artifact (if any) and its state. */
interface StageView {
  readonly id: string;
  readonly kind: string;
  readonly evaluation: boolean;
  readonly params: Readonly<Record<string, Json>>;
  readonly inputs: readonly { readonly role: string; readonly from: string }[];
  readonly manifest: Manifest | undefined;
  readonly state: StageState;
  readonly note: string | undefined;
}

/**
 * Everything `itp report` shows of a recipe as it is now, from the store: the plan gives each stage's artifact (if
 * any) and why the others have none; the recipe's last run log says which artifacts that run made and which stages
 * failed; the manifests give records, time, counts, drops, request counts and costs, training summaries; the eval
 * stages' artifacts are their Reports.
 */
export async function gatherReport(program: IrProgram, o: Omit<PlanOptions, "force" | "only">): Promise<RecipeReport> {
  const plan = await planProgram(program, { ...o, force: new Set() });
  const run = lastRunOf(o.store, o.recipe);
  const views = plan.map((p): StageView => {
    const s = program.stages.get(p.id)!;
    const last = run?.outcomes.get(s.id);
    const state = stateOf(p.manifest?.key, last);
    const note = state === "failed" ? last?.error : state === "not run" ? (last?.status === "skipped" ? last.because : p.reasons.join("; ")) : undefined;
    return { id: s.id, kind: s.kind, evaluation: s.type.k === "report", params: s.params, inputs: s.inputs, manifest: p.manifest, state, note };
  });
  return assemble(o.store, o.recipe, run, views);
}

/**
 * What one past run of a recipe made: each stage as that run left it (made: done; reused: cached; failed; skipped
 * or not in the run: not run), with the artifact the run logged, read from the store while it is there. The
 * stages are the recipe's as it is now, and those of the run it no longer has (their inputs from their manifests).
 */
export async function gatherRun(program: IrProgram, store: Store, recipe: string, runId: string): Promise<RecipeReport | undefined> {
  const run = lastRunOf(store, recipe, runId);
  if (!run) return undefined;
  const manifestOf = (key: string | undefined) => {
    const m = key === undefined ? undefined : store.manifestNow(key);
    return typeof m === "object" ? m : undefined;
  };
  const view = (id: string, kind: string, evaluation: boolean, params: Readonly<Record<string, Json>>, inputs: StageView["inputs"]): StageView => {
    const o = run.outcomes.get(id);
    const m = o?.status === "ran" || o?.status === "cached" ? manifestOf(o.key) : undefined;
    const state: StageState = o?.status === "ran" ? "done" : o?.status === "cached" ? "cached" : o?.status === "failed" ? "failed" : "not run";
    const note =
      o?.status === "failed" ? o.error : o?.status === "skipped" ? o.because : o === undefined ? "not part of this run" : m === undefined ? "its artifact is no longer in the store (itp cache gc)" : undefined;
    // The parameters the run used (in its manifest), else the recipe's as it is now.
    return { id, kind, evaluation, params: (m?.params as Record<string, Json> | undefined) ?? params, inputs, manifest: m, state, note };
  };
  const views = [...program.stages.values()].map((s) => view(s.id, s.kind, s.type.k === "report", s.params, s.inputs));
  for (const [id, o] of run.outcomes) {
    if (program.stages.has(id)) continue;
    const m = manifestOf(o.key);
    views.push(view(id, m?.kind ?? "?", m?.kind === "evaluate", (m?.params as Record<string, Json> | undefined) ?? {}, (m?.inputs ?? []).map((i) => ({ role: i.role, from: i.stage }))));
  }
  return assemble(store, recipe, run, views);
}

async function assemble(store: Store, recipe: string, run: RunEvents | undefined, views: readonly StageView[]): Promise<RecipeReport> {
  const byId = new Map(views.map((v) => [v.id, v]));
  const stages: StageRow[] = [];
  const dropped: DropRow[] = [];
  const mixtures: Mixture[] = [];
  const generation: GenerationRow[] = [];
  const training: TrainingRun[] = [];
  const evaluations: EvalTable[] = [];
  for (const v of views) {
    const m = v.manifest;
    stages.push({ id: v.id, kind: v.kind, state: v.state, records: m ? m.output.records : null, ms: m ? m.duration_ms : null, counts: m ? otherCounts(m.counts) : {}, ...(v.note ? { note: v.note } : {}) });
    if (m) {
      dropped.push(...dropsOf(v.id, m.counts));
      generation.push(...generationOf(v.id, m.counts));
      const t = trainingOf(v.id, m.summary);
      if (t) training.push(t);
      if (v.evaluation) {
        const value: unknown = await artifactOf(store, m).json();
        if (isReport(value)) evaluations.push({ stage: v.id, model: value.model, template: value.template, tasks: value.tasks.map((t) => ({ name: t.name, primary: t.primary, items: t.items, limited: t.limited, metrics: t.metrics })) });
      }
    }
    if (v.kind === "mix") {
      const comps = v.inputs.filter((i) => i.role.startsWith("component:")).map((i) => ({ name: i.role.slice("component:".length), from: i.from }));
      const sizes = new Map(comps.map((c) => [c.name, byId.get(c.from)?.manifest?.output.records ?? null] as const));
      const planned = plannedMix(v.params, sizes, comps.map((c) => c.name));
      const rules = (v.params["components"] ?? {}) as Record<string, Json>;
      mixtures.push({
        stage: v.id,
        components: comps.map((c) => ({ name: c.name, rule: ruleText(rules[c.name] ?? null), available: sizes.get(c.name) ?? null, planned: planned.get(c.name) ?? null, actual: m ? (m.counts[`component: ${c.name}`] ?? 0) : null })),
      });
    }
  }
  const edges: Edge[] = views.flatMap((v) => v.inputs.filter((i) => byId.has(i.from)).map((i) => ({ from: i.from, to: v.id, role: i.role })));
  return { recipe, run: run ? { id: run.id, started: run.started, finished: run.finished, seconds: run.seconds } : null, stages, edges, dropped, mixtures, generation, training, evaluations };
}
