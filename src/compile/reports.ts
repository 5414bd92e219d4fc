import { error, warning, type Diagnostic } from "../diagnostics/diagnostic.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";
import type { Registry } from "../stages/registry.js";
import type * as A from "../syntax/ast.js";
import type { OverrideValue } from "./elaboration.js";
import type { IrStage } from "../core/ir.js";
import type { LoadedModule } from "./modules.js";

/** What the reports after elaboration look at: the program made, and what was used on the way. */
export interface Elaborated {
  readonly stages: ReadonlyMap<string, IrStage>;
  /** Declarations some expression referred to (kept even when the referring stage failed to check). */
  readonly referenced: ReadonlySet<A.StageDecl>;
  /** Declarations that reuse a name: reported once as duplicates, never as unused. */
  readonly duplicates: ReadonlySet<A.Decl>;
  readonly overrides: ReadonlyMap<string, ReadonlyMap<string, OverrideValue>>;
  readonly usedOverrides: ReadonlySet<string>;
}

/** Warn about declared source, model and template stages that nothing reads. */
export function reportUnused(e: Elaborated, mod: LoadedModule, diagnostics: Diagnostic[]): void {
  // A declaration broken by a syntax error may be the one that used the others.
  if (mod.std || mod.ast.brokenNames.length > 0 || mod.ast.decls.some((d) => d.broken)) return;
  for (const d of mod.ast.decls) {
    if (d.type !== "StageDecl" || e.referenced.has(d) || e.duplicates.has(d)) continue;
    const s = e.stages.get(d.name.text);
    if (!s) continue;
    // Only what exists to be consumed: a source, a model, a template. Any dataset may be a result.
    if (s.category === "source" || s.category === "model" || s.type.k === "template") {
      diagnostics.push(warning("W001", `${d.keyword} \`${d.name.text}\` is never used`, { file: mod.ast.file, start: d.name.start, end: d.name.end }, "use it in a stage, or remove it"));
    }
  }
}

/** Overrides (`--set`) that matched no stage or parameter. */
export function reportUnmatchedOverrides(e: Elaborated, registry: Registry, diagnostics: Diagnostic[]): void {
  for (const [target, params] of e.overrides) {
    for (const p of params.keys()) {
      if (e.usedOverrides.has(`${target}\0${p}`)) continue;
      const stage = e.stages.get(target);
      if (!stage) {
        diagnostics.push(error("E060", `--set ${target}.${p}: no stage \`${target}\``, undefined, hintDidYouMean(target, e.stages.keys()) ?? "use the stage's name as shown by `itp graph`"));
      } else {
        const kind = registry.stage(stage.kind);
        const keys = kind ? Object.keys(kind.params.shape) : [];
        diagnostics.push(error("E060", `--set ${target}.${p}: \`${stage.kind}\` has no parameter \`${p}\``, undefined, hintDidYouMean(p, keys) ?? `its parameters: ${keys.join(", ")}`));
      }
    }
  }
}
