import { Effect } from "effect";
import type { StageImpl } from "../core/stage.js";
import type { Registry } from "./registry.js";
import { impls as sources } from "./sources/impls.js";
import { impls as convert } from "./convert/impls.js";
import { impls as template } from "./template/impls.js";
import { impls as transform } from "./transform/impls.js";
import { impls as filter } from "./filter/impls.js";
import { impls as dedup } from "./dedup/impls.js";
import { impls as mix } from "./mix/impls.js";
import { impls as model } from "./model/impls.js";
import { impls as generate } from "./generate/impls.js";
import { impls as exportFamily } from "./export/impls.js";
import { trainImpls as train } from "./train/train.js";

/**
 * Evaluation, loaded when an `evaluate` runs: its code (the IFEval checkers with their sentence splitter's data,
 * language identification) is the largest of the families, and a run without evaluation should not load it.
 */
const evalFamily: Record<string, StageImpl> = {
  evaluate: {
    run: (ctx, out) =>
      Effect.flatMap(
        Effect.tryPromise({ try: () => import("./eval/impls.js"), catch: (e) => (e instanceof Error ? e : new Error(String(e))) }),
        (m) => m.impls["evaluate"]!.run(ctx, out),
      ),
  },
};

/**
 * The implementations of the stage kinds, by kind name: each family's impls.ts, assembled. Loaded only by the
 * commands that run things, so `itp check` never pays for them. A new family with implementations adds its
 * impls.ts here.
 */
export function implementations(): Map<string, StageImpl> {
  return new Map(Object.entries({ ...sources, ...convert, ...template, ...transform, ...filter, ...dedup, ...mix, ...model, ...generate, ...exportFamily, ...train, ...evalFamily }));
}

/** Kinds of the registry that have an implementation, checked against the registry (a typo here is a bug). */
export function checkedImplementations(registry: Registry): Map<string, StageImpl> {
  const impls = implementations();
  for (const k of impls.keys()) {
    const kind = registry.stage(k);
    if (!kind) throw new Error(`implementation for unknown stage kind ${k}`);
    if (kind.implemented === false) throw new Error(`stage kind ${k} has an implementation but is declared \`implemented: false\``);
  }
  for (const kind of registry.allStages()) if (kind.implemented !== false && !impls.has(kind.name)) throw new Error(`stage kind ${kind.name} has no implementation: declare it \`implemented: false\``);
  return impls;
}
