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

/**
 * The implementations of the stage kinds, by kind name: each family's impls.ts, assembled. Loaded only by the
 * commands that run things, so `itp check` never pays for them. A new family with implementations adds its
 * impls.ts here.
 */
export function implementations(): Map<string, StageImpl> {
  return new Map(Object.entries({ ...sources, ...convert, ...template, ...transform, ...filter, ...dedup, ...mix, ...model, ...generate, ...exportFamily }));
}

/** Kinds of the registry that have an implementation, checked against the registry (a typo here is a bug). */
export function checkedImplementations(registry: Registry): Map<string, StageImpl> {
  const impls = implementations();
  for (const k of impls.keys()) if (!registry.stage(k)) throw new Error(`implementation for unknown stage kind ${k}`);
  return impls;
}
