import { writeFileSync } from "node:fs";
import { basename, resolve } from "node:path";
import type { RecipeReport } from "../report/data.js";
import { gatherReport, gatherRun, runsOf } from "../report/gather.js";
import { pageLibraries } from "../report/libraries.js";
import { renderPage } from "../report/page.js";
import { parseVerbArgs } from "./args.js";
import { displayPath, InputError, UsageError } from "./host.js";
import { loadForRun } from "./runtime-setup.js";

const help = `
usage: itp report <recipe> [<other recipe>] [--run ID [--run ID]] [--out FILE] [--set STAGE.PARAM=VALUE]...
                  [--store DIR] [--json]

Write one HTML page of what the recipe's runs stored: the DAG with each stage coloured by its state (done by the
last run, cached, failed, not run), each stage's records and time, the records dropped by reason, each mixture's
planned and actual records per component, the requests sent to models with their tokens and cost, training loss
and learning-rate curves, and the evaluation tables. Everything is in the file (data, charts, Graphviz): it opens
offline. With two recipes (two versions of one, say), both side by side, and what differs is marked.
  --run ID     what one past run made instead of the recipe as it is now (the id of its log, runs/<ID>.jsonl in
               the store); twice with one recipe: two of its runs side by side; with two recipes: one run of each
  --out FILE   where to write the page (default <recipe>.report.html, <a>-vs-<b>.report.html or
               <recipe>-runs.report.html, here)
  --json       print the gathered data as JSON as well (the page is still written)
--set applies to both recipes.`;

export async function reportPageVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { out: { type: "string", short: "o" }, run: { type: "string", multiple: true }, set: { type: "string", multiple: true }, store: { type: "string" }, json: { type: "boolean" } }, help);
  if (!p) return 0;
  const files = p.positionals;
  const runs = p.values.run ?? [];
  if (files.length < 1 || files.length > 2) throw new UsageError("give one recipe file, or two to compare");
  if (runs.length > 2 || (files.length === 2 && runs.length === 1)) throw new UsageError("--run: give one or two runs of one recipe, or one run of each of two recipes");
  for (const r of runs) if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(r)) throw new UsageError(`--run takes the id of a run (its log's name in runs/ without .jsonl), not \`${r}\``);
  const json = p.values.json ?? false;
  // The sides of the page: a recipe as it is now, or one of its runs.
  const sides = runs.length === 0 ? files.map((file) => ({ file, run: undefined })) : runs.map((run, i) => ({ file: files[files.length === 2 ? i : 0]!, run }));
  const reports: RecipeReport[] = [];
  for (const { file, run } of sides) {
    const loaded = await loadForRun(file, { sets: p.values.set ?? [], ...(p.values.store ? { store: p.values.store } : {}), json });
    if (typeof loaded === "number") return loaded;
    if (run !== undefined) {
      const r = await gatherRun(loaded.program, loaded.store, loaded.recipe, run);
      if (!r) {
        const known = runsOf(loaded.store, loaded.recipe).slice(0, 10);
        const list = known.length > 0 ? `its runs, newest first: ${known.map((k) => k.id).join(", ")}` : "the store has no run of it";
        throw new InputError(`no run \`${run}\` of ${file} in the store ${displayPath(loaded.store.root)} (${list})`);
      }
      reports.push(r);
      continue;
    }
    const r = await gatherReport(loaded.program, loaded);
    if (r.run === null && r.stages.every((s) => s.state === "not run")) {
      throw new InputError(`${file} has not been run with the store ${displayPath(loaded.store.root)}: there is nothing to report (run it first: itp run ${file}${p.values.store ? ` --store ${p.values.store}` : ""})`);
    }
    reports.push(r);
  }
  const labels = sides.map((s) => (s.run !== undefined ? `${s.file} (run ${s.run})` : s.file));
  const name = (f: string) => basename(f).replace(/\.itp$/, "");
  const defaultOut = sides.length === 1 ? `${name(files[0]!)}.report.html` : files.length === 1 ? `${name(files[0]!)}-runs.report.html` : `${name(files[0]!)}-vs-${name(files[1]!)}.report.html`;
  const out = resolve(p.values.out ?? defaultOut);
  const html = renderPage(reports, labels, pageLibraries(), new Date().toISOString());
  try {
    writeFileSync(out, html);
  } catch (e) {
    throw new InputError(`cannot write the report to ${displayPath(out)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); choose another place with --out FILE`);
  }
  if (json) {
    process.stdout.write(JSON.stringify({ out, reports }) + "\n");
    return 0;
  }
  const states = (r: RecipeReport) => (["done", "cached", "failed", "not run"] as const).map((s) => `${r.stages.filter((x) => x.state === s).length} ${s}`).join(", ");
  process.stdout.write(`wrote ${displayPath(out)} (${(html.length / 1024).toFixed(0)} KiB)\n${reports.map((r, i) => `  ${labels[i]}: ${r.stages.length} stages: ${states(r)}`).join("\n")}\n`);
  return 0;
}
