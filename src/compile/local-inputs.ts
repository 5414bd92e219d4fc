import { dirname, isAbsolute, join } from "node:path";
import { warning, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Registry } from "../stages/registry.js";
import type { IrProgram } from "../core/ir.js";
import type { Host } from "./modules.js";

/**
 * Warnings for sources whose local file does not exist yet. Only a warning here: the file may be produced before
 * the run (a download, another recipe's export); `itp plan` and `itp run` make it an error before anything runs.
 */
export function missingLocalInputs(program: IrProgram, registry: Registry, host: Host): Diagnostic[] {
  if (!host.exists) return [];
  const baseDir = dirname(program.entry);
  const out: Diagnostic[] = [];
  for (const s of program.stages.values()) {
    for (const f of registry.stage(s.kind)?.localInputs?.(s.params) ?? []) {
      const at = isAbsolute(f) ? f : join(baseDir, f);
      if (host.exists(at)) continue;
      // Named by the file alone: a module shared by several entries gives one warning.
      out.push(warning("W002", `input file ${f} does not exist`, s.range, `paths are relative to the recipe's folder${baseDir === "." ? "" : `, ${baseDir}`}; \`itp run\` refuses to start without it`));
    }
  }
  return out;
}
