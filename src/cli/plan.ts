import { planProgram } from "../runtime/plan.js";
import { UsageError } from "./host.js";
import { parseVerbArgs } from "./args.js";
import { loadForRun } from "./runtime-setup.js";

const help = `
usage: itp plan <file> [--only STAGE]... [--force STAGE]... [--set STAGE.PARAM=VALUE]... [--store DIR] [--json]

For each stage: cached (a verified artifact exists for its cache key) or run, and why: which component of the key
differs from the stage's last artifact (a parameter with its old and new value, an input, a file, the
implementation version).`;

export async function planVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { only: { type: "string", multiple: true }, force: { type: "string", multiple: true }, set: { type: "string", multiple: true }, store: { type: "string" }, json: { type: "boolean" } }, help);
  if (!p) return 0;
  if (p.positionals.length !== 1) throw new UsageError("give exactly one recipe file");
  const only = p.values.only ?? [];
  const force = p.values.force ?? [];
  const loaded = await loadForRun(p.positionals[0]!, { sets: p.values.set ?? [], ...(p.values.store ? { store: p.values.store } : {}), json: p.values.json ?? false, stageArgs: [...only, ...force] });
  if (typeof loaded === "number") return loaded;
  const plan = await planProgram(loaded.program, { ...loaded, force: new Set(force), ...(only.length > 0 ? { only: new Set(only) } : {}) });
  const shown = plan.filter((s) => s.status !== "excluded");
  if (p.values.json) {
    process.stdout.write(JSON.stringify({ stages: shown.map((s) => ({ id: s.id, kind: s.kind, status: s.status, reasons: s.reasons, ...(s.key ? { key: s.key } : {}) })) }) + "\n");
  } else {
    for (const s of shown) {
      const doc = loaded.program.stages.get(s.id)?.doc?.split("\n")[0];
      process.stdout.write(`${s.status.padEnd(7)} ${s.id}${doc ? `  // ${doc}` : ""}\n`);
      for (const r of s.reasons) process.stdout.write(`          ${r}\n`);
    }
    const n = (st: string) => shown.filter((s) => s.status === st).length;
    process.stdout.write(`${n("run")} to run, ${n("cached")} cached${n("blocked") ? `, ${n("blocked")} blocked` : ""}\n`);
  }
  return plan.some((s) => s.status === "blocked") ? 1 : 0;
}
