import type { IrProgram } from "../core/ir.js";
import type { Registry } from "../stages/registry.js";
import type { StageImpl } from "../core/stage.js";
import { UserError } from "../core/errors.js";
import { explainMiss, keyStage, lastArtifact } from "./keys.js";
import { neededStages } from "./scheduler.js";
import type { Manifest, Store } from "./store.js";

export interface PlannedStage {
  readonly id: string;
  readonly kind: string;
  readonly status: "cached" | "run" | "excluded" | "blocked";
  /** For `run`: why, in words (the components that differ from the stage's last artifact). */
  readonly reasons: readonly string[];
  /** Known when every input is cached. */
  readonly key?: string;
  readonly manifest?: Manifest;
}

export interface PlanOptions {
  readonly registry: Registry;
  readonly impls: ReadonlyMap<string, StageImpl>;
  readonly store: Store;
  readonly recipe: string;
  readonly baseDir: string;
  readonly force: ReadonlySet<string>;
  readonly only?: ReadonlySet<string>;
  /** Explain misses against this recipe's last artifacts (`itp plan --against OLD.itp`), as named in the store. */
  readonly against?: string;
}

/**
 * The plan, computed before anything runs: for each stage, `cached` (a verified artifact exists for its key) or
 * `run` and why. A stage downstream of one that runs runs too, unless the recomputed input turns out identical.
 */
export async function planProgram(program: IrProgram, o: PlanOptions): Promise<PlannedStage[]> {
  const need = neededStages(program, o.only);
  const out: PlannedStage[] = [];
  const byId = new Map<string, PlannedStage>();
  for (const s of program.stages.values()) {
    let p: PlannedStage;
    if (!need.has(s.id)) p = { id: s.id, kind: s.kind, status: "excluded", reasons: [] };
    else {
      const running = s.inputs.map((i) => byId.get(i.from)!).filter((u) => u.status !== "cached");
      if (running.length > 0) {
        const reasons = running.map((u) => (u.status === "blocked" ? `input ${u.id} cannot be computed` : `input ${u.id} will be recomputed`));
        p = { id: s.id, kind: s.kind, status: running.some((u) => u.status === "blocked") ? "blocked" : "run", reasons };
      } else {
        const digests = new Map(s.inputs.map((i) => [i.role, byId.get(i.from)!.manifest!.output.digest] as const));
        let k;
        try {
          k = await keyStage(s, o.registry, o.impls.get(s.kind), digests, o.store, o.baseDir);
        } catch (e) {
          if (!(e instanceof UserError)) throw e;
          p = { id: s.id, kind: s.kind, status: "blocked", reasons: [e.message] };
          out.push(p);
          byId.set(s.id, p);
          continue;
        }
        const verdict = await o.store.verify(k.key);
        if (o.force.has(s.id)) p = { id: s.id, kind: s.kind, status: "run", reasons: ["forced (--force)"], key: k.key };
        else if (verdict?.ok) p = { id: s.id, kind: s.kind, status: "cached", reasons: [], key: k.key, manifest: verdict.manifest };
        else if (verdict) p = { id: s.id, kind: s.kind, status: "run", reasons: [`artifact is corrupt (${verdict.reason}); it will be recomputed`], key: k.key };
        else {
          const last = lastArtifact(o.store, o.recipe, s, o.against);
          p = { id: s.id, kind: s.kind, status: "run", reasons: explainMiss(k, last?.manifest, last?.from), key: k.key };
        }
      }
    }
    out.push(p);
    byId.set(s.id, p);
  }
  return out;
}
