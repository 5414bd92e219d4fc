import { isAbsolute, resolve } from "node:path";
import type { IrStage, Json } from "../core/ir.js";
import type { Registry } from "../stages/registry.js";
import { cacheKey, canonicalJson, sha256 } from "../core/digest.js";
import type { StageImpl } from "../core/stage.js";
import { UserError } from "../core/errors.js";
import { resolveParams } from "../core/params.js";
import type { Manifest, Store } from "./store.js";

/** A stage's key, with the components it was made from and what the implementation gets to see. */
export interface KeyedStage {
  readonly key: string;
  readonly components: Record<string, string>;
  /** Parameters as they enter the key: env() resolved, secrets replaced by a placeholder. */
  readonly keyParams: Record<string, Json>;
  readonly files: { path: string; digest: string }[];
}

/**
 * The cache key of a stage: an explicit list of named components, each a value or a digest. Upstream artifacts
 * enter by digest (not by key), so a recomputed upstream with the same bytes does not invalidate what follows.
 */
export async function keyStage(
  stage: IrStage,
  registry: Registry,
  impl: StageImpl | undefined,
  inputDigests: ReadonlyMap<string, string>,
  store: Store,
  baseDir: string,
): Promise<KeyedStage> {
  const kind = registry.stage(stage.kind);
  const keyParams = resolveParams(stage.params, false);
  const components: Record<string, string> = {
    kind: stage.kind,
    impl: kind?.version ?? "0",
    params: sha256(canonicalJson(keyParams)),
  };
  for (const [role, digest] of [...inputDigests].sort(([a], [b]) => (a < b ? -1 : 1))) components[`input:${role}`] = digest;
  const files: { path: string; digest: string }[] = [];
  for (const f of impl?.files?.(keyParams) ?? []) {
    const abs = isAbsolute(f) ? f : resolve(baseDir, f);
    let digest: string;
    try {
      digest = await store.sourceDigest(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UserError(`stage \`${stage.id}\`: cannot read ${f}${code ? ` (${code})` : ""}`, `paths are relative to the recipe's folder, ${baseDir}`);
    }
    files.push({ path: f, digest });
    components[`file:${f}`] = digest;
  }
  return { key: cacheKey(components), components, keyParams, files };
}

/**
 * The artifact a stage's miss is explained against: the stage's last artifact from `against` (a recipe given to
 * `itp plan --against`), else from this recipe, else the newest one of a stage of that id and kind from any recipe
 * in the store. `from` names the recipe when it is another one.
 */
export function lastArtifact(store: Store, recipe: string, stage: IrStage, against?: string): { manifest: Manifest; from?: string } | undefined {
  const of = (r: string) => {
    const key = store.getRef(r, stage.id);
    const m = key ? store.manifestNow(key) : undefined;
    return typeof m === "object" ? m : undefined;
  };
  const m = (against !== undefined ? of(against) : of(recipe)) ?? (against === undefined ? store.latestOfStage(stage.id, stage.kind) : undefined);
  if (!m) return undefined;
  return m.recipe !== recipe ? { manifest: m, from: m.recipe } : { manifest: m };
}

/** Why a stage must run, in words: which components differ from the last artifact of that stage. */
export function explainMiss(k: KeyedStage, last: Manifest | undefined, from?: string): string[] {
  if (!last) return ["never run"];
  const reasons = differences(k, last);
  return from !== undefined ? reasons.map((r) => `${r} (against ${from})`) : reasons;
}

function differences(k: KeyedStage, last: Manifest): string[] {
  const reasons: string[] = [];
  const names = new Set([...Object.keys(k.components), ...Object.keys(last.components)]);
  for (const n of [...names].sort()) {
    const a = last.components[n];
    const b = k.components[n];
    if (a === b) continue;
    if (n === "params") {
      const oldP = (last.params ?? {}) as Record<string, unknown>;
      const newP = k.keyParams as Record<string, unknown>;
      for (const p of [...new Set([...Object.keys(oldP), ...Object.keys(newP)])].sort()) {
        const x = JSON.stringify(oldP[p]);
        const y = JSON.stringify(newP[p]);
        if (x !== y) reasons.push(`parameter ${p}: ${x ?? "(unset)"} -> ${y ?? "(unset)"}`);
      }
    } else if (n === "impl") reasons.push(`implementation version ${a} -> ${b}`);
    else if (n === "kind") reasons.push(`stage kind ${a} -> ${b}`);
    else if (n.startsWith("input:")) reasons.push(a === undefined ? `new input ${n.slice(6)}` : b === undefined ? `input ${n.slice(6)} removed` : `input ${n.slice(6)} changed`);
    else if (n.startsWith("file:")) reasons.push(a === undefined ? `new file ${n.slice(5)}` : b === undefined ? `file ${n.slice(5)} no longer read` : `file ${n.slice(5)} changed`);
    else reasons.push(`${n} changed`);
  }
  return reasons.length > 0 ? reasons : ["artifact missing from the store"];
}
