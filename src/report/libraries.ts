import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { PageLibraries } from "./page.js";

/**
 * The libraries a report page carries, read from the installed packages (pinned in package.json): Chart.js's UMD
 * build and viz.js's global build (Graphviz compiled to WebAssembly, the module inlined as data).
 */
export function pageLibraries(): PageLibraries {
  const req = createRequire(import.meta.url);
  // Their package exports name no built file of these kinds: the files sit beside the entry points.
  const chart = join(dirname(req.resolve("chart.js")), "chart.umd.min.js");
  const viz = join(dirname(req.resolve("@viz-js/viz")), "viz-global.js");
  return { chartJs: readFileSync(chart, "utf8"), vizJs: readFileSync(viz, "utf8") };
}
