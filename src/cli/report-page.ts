import { writeFileSync } from "node:fs";
import { basename, resolve } from "node:path";
import type { RecipeReport } from "../report/data.js";
import { gatherReport } from "../report/gather.js";
import { pageLibraries } from "../report/libraries.js";
import { renderPage } from "../report/page.js";
import { parseVerbArgs } from "./args.js";
import { displayPath, InputError, UsageError } from "./host.js";
import { loadForRun } from "./runtime-setup.js";

const help = `
usage: itp report <recipe> [<other recipe>] [--out FILE] [--set STAGE.PARAM=VALUE]... [--store DIR] [--json]

Write one HTML page of what the recipe's runs stored: the DAG with each stage coloured by its state (done by the
last run, cached, failed, not run), each stage's records and time, the records dropped by reason, each mixture's
planned and actual records per component, the requests sent to models with their tokens and cost, training loss
and learning-rate curves, and the evaluation tables. Everything is in the file (data, charts, Graphviz): it opens
offline. With two recipes (two versions of one, say), both side by side, and what differs is marked.
  --out FILE   where to write the page (default <recipe>.report.html, or <a>-vs-<b>.report.html, here)
  --json       print the gathered data as JSON as well (the page is still written)
--set applies to both recipes.`;

export async function reportPageVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { out: { type: "string", short: "o" }, set: { type: "string", multiple: true }, store: { type: "string" }, json: { type: "boolean" } }, help);
  if (!p) return 0;
  const files = p.positionals;
  if (files.length < 1 || files.length > 2) throw new UsageError("give one recipe file, or two to compare");
  const json = p.values.json ?? false;
  const reports: RecipeReport[] = [];
  for (const file of files) {
    const loaded = await loadForRun(file, { sets: p.values.set ?? [], ...(p.values.store ? { store: p.values.store } : {}), json });
    if (typeof loaded === "number") return loaded;
    const r = await gatherReport(loaded.program, loaded);
    if (r.run === null && r.stages.every((s) => s.state === "not run")) {
      throw new InputError(`${file} has not been run with the store ${displayPath(loaded.store.root)}: there is nothing to report (run it first: itp run ${file}${p.values.store ? ` --store ${p.values.store}` : ""})`);
    }
    reports.push(r);
  }
  const name = (f: string) => basename(f).replace(/\.itp$/, "");
  const out = resolve(p.values.out ?? (files.length === 2 ? `${name(files[0]!)}-vs-${name(files[1]!)}.report.html` : `${name(files[0]!)}.report.html`));
  const html = renderPage(reports, files, pageLibraries(), new Date().toISOString());
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
  process.stdout.write(`wrote ${displayPath(out)} (${(html.length / 1024).toFixed(0)} KiB)\n${reports.map((r, i) => `  ${files[i]}: ${r.stages.length} stages: ${states(r)}`).join("\n")}\n`);
  return 0;
}
