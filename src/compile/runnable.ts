import { error, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Registry } from "../stages/registry.js";
import type { IrProgram, IrStage } from "../core/ir.js";

/**
 * The last check before a program may run: each stage's kind has an implementation (E075), and the executor it
 * asks for exists (E076). A recipe that passes `itp check` can run, as far as this version of itp knows.
 * Reported once per stage kind or executor and file, at the first stage that uses it, so a recipe with ten
 * `evaluate` stages gets one error, with the count.
 */
export function checkRunnable(program: IrProgram, registry: Registry, executors: ReadonlySet<string>): Diagnostic[] {
  const out: Diagnostic[] = [];
  const byKind = new Map<string, { first: IrStage; n: number }>();
  const byExecutor = new Map<string, { first: IrStage; n: number }>();
  for (const s of program.stages.values()) {
    if (registry.stage(s.kind)?.implemented === false) {
      const e = byKind.get(s.kind);
      if (e) e.n++;
      else byKind.set(s.kind, { first: s, n: 1 });
    }
    const ex = s.params["executor"];
    if (typeof ex === "string" && !executors.has(ex)) {
      const e = byExecutor.get(ex);
      if (e) e.n++;
      else byExecutor.set(ex, { first: s, n: 1 });
    }
  }
  const others = (n: number) => (n > 1 ? ` (and ${n - 1} other stage${n === 2 ? "" : "s"})` : "");
  for (const [kind, { first, n }] of byKind) {
    out.push(error("E075", `stage \`${first.id}\`${others(n)}: stage kind \`${kind}\` has no implementation in this version of itp, so the recipe cannot run`, first.range, "the recipe is well-typed: `itp run FILE --only STAGE` runs the stages that do not need this one"));
  }
  for (const [ex, { first, n }] of byExecutor) {
    out.push(error("E076", `stage \`${first.id}\`${others(n)}: executor \`${ex}\` is not available in this version of itp (available: ${[...executors].join(", ")})`, first.range, `remove \`executor = "${ex}"\` to run it here`));
  }
  return out;
}
