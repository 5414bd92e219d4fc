import type { IrProgram } from "../core/ir.js";
import { planProgram, type PlanOptions, type PlannedStage } from "../runtime/plan.js";
import { artifactOf } from "../runtime/scheduler.js";
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
  type EvalTable,
  type GenerationRow,
  type Mixture,
  type RecipeReport,
  type RunEvents,
  type StageRow,
  type TrainingRun,
} from "./data.js";

/**
 * The last run of a recipe that the store's logs tell of (the newest log whose run_started names it), or of one run
 * by id. Logs are read newest first, and only as far as the first match.
 */
export function lastRunOf(store: PlanOptions["store"], recipe: string, runId?: string): RunEvents | undefined {
  const ids = runId !== undefined ? [runId] : store.runIds().reverse();
  for (const id of ids) {
    const text = store.runLogText(id);
    if (text === undefined) continue;
    const events = readRunEvents(id, text);
    if (events.recipe === recipe) return events;
  }
  return undefined;
}

/**
 * Everything `itp report` shows of a recipe as it is now, from the store: the plan gives each stage's artifact (if
 * any) and why the others have none; the recipe's last run log says which artifacts that run made and which stages
 * failed; the manifests give records, time, counts, drops, request counts and costs, training summaries; the eval
 * stages' artifacts are their Reports.
 */
export async function gatherReport(program: IrProgram, o: Omit<PlanOptions, "force" | "only">): Promise<RecipeReport> {
  const plan = await planProgram(program, { ...o, force: new Set() });
  const byId = new Map<string, PlannedStage>(plan.map((p) => [p.id, p]));
  const run = lastRunOf(o.store, o.recipe);
  const stages: StageRow[] = [];
  const dropped: DropRow[] = [];
  const mixtures: Mixture[] = [];
  const generation: GenerationRow[] = [];
  const training: TrainingRun[] = [];
  const evaluations: EvalTable[] = [];
  for (const s of program.stages.values()) {
    const p = byId.get(s.id)!;
    const m = p.manifest;
    const last = run?.outcomes.get(s.id);
    const state = stateOf(m?.key, last);
    const note = state === "failed" ? last?.error : state === "not run" ? (last?.status === "skipped" ? last.because : p.reasons.join("; ")) : undefined;
    stages.push({ id: s.id, kind: s.kind, state, records: m ? m.output.records : null, ms: m ? m.duration_ms : null, counts: m ? otherCounts(m.counts) : {}, ...(note ? { note } : {}) });
    if (m) {
      dropped.push(...dropsOf(s.id, m.counts));
      generation.push(...generationOf(s.id, m.counts));
      const t = trainingOf(s.id, m.summary);
      if (t) training.push(t);
      if (s.type.k === "report") {
        const v: unknown = await artifactOf(o.store, m).json();
        if (isReport(v)) evaluations.push({ stage: s.id, model: v.model, template: v.template, tasks: v.tasks.map((t) => ({ name: t.name, primary: t.primary, items: t.items, limited: t.limited, metrics: t.metrics })) });
      }
    }
    if (s.kind === "mix") {
      const comps = s.inputs.filter((i) => i.role.startsWith("component:")).map((i) => ({ name: i.role.slice("component:".length), from: i.from }));
      const sizes = new Map(comps.map((c) => [c.name, byId.get(c.from)?.manifest?.output.records ?? null] as const));
      const planned = plannedMix(s.params, sizes, comps.map((c) => c.name));
      const rules = (s.params["components"] ?? {}) as Record<string, never>;
      mixtures.push({
        stage: s.id,
        components: comps.map((c) => ({ name: c.name, rule: ruleText(rules[c.name] ?? null), available: sizes.get(c.name) ?? null, planned: planned.get(c.name) ?? null, actual: m ? (m.counts[`component: ${c.name}`] ?? 0) : null })),
      });
    }
  }
  const edges = [...program.stages.values()].flatMap((s) => s.inputs.map((i) => ({ from: i.from, to: s.id, role: i.role })));
  return { recipe: o.recipe, run: run ? { id: run.id, started: run.started, finished: run.finished } : null, stages, edges, dropped, mixtures, generation, training, evaluations };
}
