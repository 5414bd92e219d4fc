import { dirname, resolve } from "node:path";
import type { IrProgram } from "../core/ir.js";
import { hasErrors } from "../diagnostics/diagnostic.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";
import type { StageImpl } from "../core/stage.js";
import { loadCompiled, saveCompiled } from "../runtime/compiled.js";
import { missingLocalFiles } from "../runtime/preflight.js";
import { Store, StoreUnavailable } from "../runtime/store.js";
import { defaultRegistry } from "../stages/index.js";
import { checkedImplementations } from "../stages/impls.js";
import { checkRunnable } from "../compile/runnable.js";
import { AVAILABLE_EXECUTORS } from "../core/available-executors.js";
import { neededStages } from "../runtime/scheduler.js";
import type { Registry } from "../stages/registry.js";
import { compileFiles, diagnosticsJson, printDiagnostics } from "./compile.js";
import { displayPath, InputError, UsageError } from "./host.js";
import { fileEffects, type Permissions } from "../compile/effects.js";
import { permissionDiagnostics } from "../compile/permissions.js";
import { effectContext } from "./permissions.js";

export interface Loaded {
  readonly program: IrProgram;
  readonly registry: Registry;
  readonly impls: ReadonlyMap<string, StageImpl>;
  readonly store: Store;
  /** The recipe as named in refs and manifests (its path relative to the working directory). */
  readonly recipe: string;
  readonly baseDir: string;
}

/**
 * What every command that touches the store starts with: the recipe checked (errors printed, exit 1), the store
 * opened (an unwritable one is a clear error), the stage names given on the command line verified.
 */
export async function loadForRun(file: string, opts: { sets?: string[]; store?: string; json?: boolean; stageArgs?: string[]; only?: readonly string[]; permissions?: Permissions }): Promise<Loaded | number> {
  const registry = defaultRegistry();
  let store: Store;
  try {
    store = await Store.open(resolve(opts.store ?? ".itp"));
  } catch (e) {
    if (e instanceof StoreUnavailable) throw new InputError(`${e.message}; choose another with --store DIR`);
    throw e;
  }
  const recipe = displayPath(resolve(file));
  const sets = opts.sets ?? [];
  // An unchanged recipe (every module the same) reuses its checked program.
  const compiled = loadCompiled(store, recipe, sets, registry);
  let program = compiled?.program;
  if (compiled && compiled.warnings > 0 && !opts.json) process.stderr.write(`(${compiled.warnings} warning${compiled.warnings === 1 ? "" : "s"}: itp check ${file})\n`);
  if (!program) {
    const r = compileFiles([file], sets, { runnable: false });
    program = r.files[0]?.program;
    if (hasErrors(r.diagnostics) || !program) {
      if (opts.json) process.stdout.write(JSON.stringify({ diagnostics: diagnosticsJson(r.diagnostics) }) + "\n");
      else printDiagnostics(r.diagnostics, false);
      return 1;
    }
    // Warnings do not stop a run; a long list of them would bury its output, so a run shows the first few. A
    // missing local input is left to refuseMissingFiles, which makes it an error (and a file may appear later).
    const warnings = r.diagnostics.filter((d) => d.code !== "W002");
    if (warnings.length > 0 && !opts.json) {
      const shown = warnings.slice(0, 5);
      printDiagnostics(shown, false);
      if (warnings.length > shown.length) process.stderr.write(`(${warnings.length - shown.length} more warnings: itp check ${file})\n`);
    }
    // A git import at a branch or tag is checked against its remote on every run (a moved ref is refused), so
    // such a program is never reused unchecked.
    const followsRef = [...r.modules.modules.values()].some((m) => m.importOrigins.some((o) => o?.k === "git" && o.ref !== o.sha));
    if (!followsRef) saveCompiled(store, recipe, sets, registry, r.modules, program, warnings.length);
  }
  for (const s of opts.stageArgs ?? []) {
    if (program.stages.has(s)) continue;
    const hint = hintDidYouMean(s, program.stages.keys());
    throw new InputError(`no stage \`${s}\` in ${file}${hint ? `; ${hint}` : ""}`);
  }
  // Only the stages this command needs must be able to run: `--only data` works in a recipe whose training stage
  // this version cannot run.
  const need = neededStages(program, opts.only && opts.only.length > 0 ? new Set(opts.only) : undefined);
  const needed = need.size === program.stages.size ? program : { entry: program.entry, stages: new Map([...program.stages].filter(([id]) => need.has(id))) };
  const blocked = checkRunnable(needed, registry, AVAILABLE_EXECUTORS);
  // The safe default, on the stages to run, before anything runs (a cached program is checked again: the
  // permissions, the folder's symlinks and the environment may differ from the last time).
  if (opts.permissions) {
    const ctx = effectContext(file, opts.store ?? ".itp");
    const perms = opts.permissions;
    blocked.push(...permissionDiagnostics(needed, fileEffects(needed, registry, ctx, { reads: perms.denyReadOutside }), ctx, perms));
  }
  if (blocked.length > 0) {
    if (opts.json) process.stdout.write(JSON.stringify({ diagnostics: diagnosticsJson(blocked) }) + "\n");
    else printDiagnostics(blocked, false);
    return 1;
  }
  const impls = checkedImplementations(registry);
  return { program, registry, impls, store, recipe, baseDir: dirname(resolve(file)) };
}

/** Exit code 1, with the errors printed, when a stage to run reads a local file that does not exist; else undefined. */
export function refuseMissingFiles(loaded: Loaded, only: readonly string[], json: boolean): number | undefined {
  const missing = missingLocalFiles(loaded.program, loaded.impls, loaded.baseDir, only.length > 0 ? new Set(only) : undefined);
  if (missing.length === 0) return undefined;
  if (json) process.stdout.write(JSON.stringify({ diagnostics: diagnosticsJson(missing) }) + "\n");
  else printDiagnostics(missing, false);
  return 1;
}

export function positiveInt(v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} takes a positive integer, not '${v}'`);
  return n;
}
