import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { IrProgram } from "../core/ir.js";
import { error, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { StageImpl } from "../core/stage.js";
import { resolveParams } from "../core/params.js";
import { neededStages } from "./scheduler.js";

/**
 * The local files that the stages to run read and that do not exist, as errors found before anything runs: a
 * missing input would otherwise fail its stage only after the stages before it had run (hours, for a generation).
 */
export function missingLocalFiles(program: IrProgram, impls: ReadonlyMap<string, StageImpl>, baseDir: string, only?: ReadonlySet<string>): Diagnostic[] {
  const out: Diagnostic[] = [];
  const need = neededStages(program, only);
  for (const s of program.stages.values()) {
    const files = impls.get(s.kind)?.files;
    if (!need.has(s.id) || !files) continue;
    let params;
    try {
      params = resolveParams(s.params, false);
    } catch {
      continue; // an unset env() value is reported, with its own hint, when the stage is keyed
    }
    for (const f of files(params)) {
      const abs = isAbsolute(f) ? f : resolve(baseDir, f);
      if (existsSync(abs)) continue;
      out.push(error("E070", `stage \`${s.id}\` reads ${f}, which does not exist (${abs})`, s.range, `paths are relative to the recipe's folder, ${baseDir}; nothing was run`));
    }
  }
  return out;
}
