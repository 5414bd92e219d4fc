import { planProgram } from "../runtime/plan.js";
import { artifactOf } from "../runtime/scheduler.js";
import { isReport, type Report } from "../stages/eval/report.js";
import { parseVerbArgs } from "./args.js";
import { InputError, UsageError } from "./host.js";
import { diffReports, renderDiff } from "./report.js";
import { loadForRun } from "./runtime-setup.js";
import { compileFiles, diagnosticsJson, printDiagnostics } from "./compile.js";
import { hasErrors } from "../diagnostics/diagnostic.js";

const help = `
usage: itp report-diff <old.itp> <new.itp> [STAGE [NEW-STAGE]] [--set STAGE.PARAM=VALUE]... [--store DIR] [--json]

Compare the evaluation Reports of two versions of a recipe, metric by metric: the old and new values, the change,
the standard error of the change (sqrt(se_old^2 + se_new^2), the two evaluations being independent) and whether
the change is beyond it. STAGE is the eval stage (NEW-STAGE its name in the new version, when it was renamed);
without it, every eval stage that both versions have is compared. Both Reports must be in the store (itp run).
--set applies to both versions.`;

/** The Report of an eval stage of a recipe as it is now, from the store. */
async function reportOf(file: string, stageId: string, sets: string[], store: string | undefined, json: boolean): Promise<Report | number> {
  const loaded = await loadForRun(file, { sets, ...(store ? { store } : {}), json, stageArgs: [stageId], only: [stageId] });
  if (typeof loaded === "number") return loaded;
  const stage = loaded.program.stages.get(stageId)!;
  if (stage.type.k !== "report") throw new InputError(`\`${stageId}\` in ${file} is not an eval stage`);
  const plan = await planProgram(loaded.program, { ...loaded, force: new Set(), only: new Set([stageId]) });
  const entry = plan.find((s) => s.id === stageId)!;
  if (entry.status !== "cached" || !entry.manifest) throw new InputError(`\`${stageId}\` of ${file} has no Report for the recipe as it is now (${entry.reasons.join("; ") || entry.status}); compute it with: itp run ${file} --only ${stageId}`);
  const v = await artifactOf(loaded.store, entry.manifest).json();
  if (!isReport(v)) throw new InputError(`the artifact of \`${stageId}\` (${file}) is not a Report this version of itp can read`);
  return v;
}

/** The eval stages of a recipe (its errors printed: exit 1). */
function evalStages(file: string, sets: string[], json: boolean): string[] | number {
  const r = compileFiles([file], sets, { runnable: false });
  const program = r.files[0]?.program;
  if (hasErrors(r.diagnostics) || !program) {
    if (json) process.stdout.write(JSON.stringify({ diagnostics: diagnosticsJson(r.diagnostics) }) + "\n");
    else printDiagnostics(r.diagnostics, false);
    return 1;
  }
  return [...program.stages.values()].filter((s) => s.type.k === "report").map((s) => s.id);
}

export async function reportDiffVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { set: { type: "string", multiple: true }, store: { type: "string" }, json: { type: "boolean" } }, help);
  if (!p) return 0;
  const pos = p.positionals;
  if (pos.length < 2 || pos.length > 4) throw new UsageError("give two recipe files, then optionally the eval stage: itp report-diff old.itp new.itp [STAGE [NEW-STAGE]]");
  const [oldFile, newFile] = pos as [string, string];
  const sets = p.values.set ?? [];
  const json = p.values.json ?? false;
  let pairs: [string, string][];
  if (pos.length >= 3) pairs = [[pos[2]!, pos[3] ?? pos[2]!]];
  else {
    const a = evalStages(oldFile, sets, json);
    if (typeof a === "number") return a;
    const b = evalStages(newFile, sets, json);
    if (typeof b === "number") return b;
    const both = a.filter((s) => b.includes(s));
    if (both.length === 0) throw new InputError(`the two versions have no eval stage in common (old: ${a.join(", ") || "none"}; new: ${b.join(", ") || "none"})`);
    pairs = both.map((s) => [s, s]);
  }
  const results = [];
  for (const [o, n] of pairs) {
    const ro = await reportOf(oldFile, o, sets, p.values.store, json);
    if (typeof ro === "number") return ro;
    const rn = await reportOf(newFile, n, sets, p.values.store, json);
    if (typeof rn === "number") return rn;
    results.push({ old: o, new: n, changes: diffReports(ro, rn) });
  }
  if (json) process.stdout.write(JSON.stringify({ stages: results }) + "\n");
  else for (const r of results) process.stdout.write(`itp report-diff ${oldFile}:${r.old} -> ${newFile}:${r.new}\n${renderDiff(r.changes)}`);
  return 0;
}
