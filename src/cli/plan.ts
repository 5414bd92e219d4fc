import { planProgram } from "../runtime/plan.js";
import { resolve } from "node:path";
import { displayPath, UsageError } from "./host.js";
import { parseVerbArgs } from "./args.js";
import { loadForRun, refuseMissingFiles } from "./runtime-setup.js";

const help = `
usage: itp plan <file> [--only STAGE]... [--force STAGE]... [--set STAGE.PARAM=VALUE]... [--against OLD.itp]
                       [--store DIR] [--json]

For each stage: cached (a verified artifact exists for its cache key) or run, and why: which component of the key
differs from the stage's last artifact (a parameter with its old and new value, an input, a file, the
implementation version). The last artifact is this recipe's; for a stage this recipe never ran (a copy, a
renamed recipe), the newest of a stage with that name and kind from any recipe in the store.
  --against OLD.itp   explain against the last artifacts of another recipe (as run from this folder)`;

export async function planVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { only: { type: "string", multiple: true }, force: { type: "string", multiple: true }, set: { type: "string", multiple: true }, store: { type: "string" }, against: { type: "string" }, json: { type: "boolean" } }, help);
  if (!p) return 0;
  if (p.positionals.length !== 1) throw new UsageError("give exactly one recipe file");
  const only = p.values.only ?? [];
  const force = p.values.force ?? [];
  const loaded = await loadForRun(p.positionals[0]!, { sets: p.values.set ?? [], ...(p.values.store ? { store: p.values.store } : {}), json: p.values.json ?? false, stageArgs: [...only, ...force] });
  if (typeof loaded === "number") return loaded;
  const missing = refuseMissingFiles(loaded, only, p.values.json ?? false);
  if (missing !== undefined) return missing;
  const against = p.values.against !== undefined ? displayPath(resolve(p.values.against)) : undefined;
  const plan = await planProgram(loaded.program, { ...loaded, force: new Set(force), ...(only.length > 0 ? { only: new Set(only) } : {}), ...(against !== undefined ? { against } : {}) });
  const shown = plan.filter((s) => s.status !== "excluded");
  if (p.values.json) {
    process.stdout.write(JSON.stringify({ stages: shown.map((s) => ({ id: s.id, kind: s.kind, status: s.status, reasons: s.reasons, ...(s.key ? { key: s.key } : {}) })) }) + "\n");
  } else {
    for (const s of shown) {
      const doc = summary(loaded.program.stages.get(s.id)?.doc);
      process.stdout.write(`${s.status.padEnd(7)} ${s.id}${doc ? `  // ${doc}` : ""}\n`);
      for (const r of s.reasons) process.stdout.write(`          ${r}\n`);
    }
    const n = (st: string) => shown.filter((s) => s.status === st).length;
    process.stdout.write(`${n("run")} to run, ${n("cached")} cached${n("blocked") ? `, ${n("blocked")} blocked` : ""}\n`);
  }
  return plan.some((s) => s.status === "blocked") ? 1 : 0;
}

/** A doc comment's first sentence (its lines joined), never cut inside one. */
export function summary(doc: string | undefined): string | undefined {
  if (!doc) return undefined;
  const para = doc.split(/\n\s*\n/)[0]!.replace(/\s*\n\s*/g, " ").trim();
  // A sentence ends at . ! or ? before a capital or the end ("e.g. the" goes on).
  const end = /[.!?](?=\s+[A-Z]|$)/.exec(para);
  return end ? para.slice(0, end.index + 1) : para;
}
