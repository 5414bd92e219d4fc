import { hasErrors } from "../diagnostics/diagnostic.js";
import { buildGraph } from "../graph/build.js";
import { toDot, toJson, toMermaid } from "../graph/render.js";
import { compileFiles, diagnosticsJson, printDiagnostics } from "./compile.js";
import { UsageError } from "./host.js";
import { parseVerbArgs } from "./args.js";

const help = `
usage: itp graph <file> [--format dot|mermaid|json] [--set STAGE.PARAM=VALUE]...

Print the typed DAG of a recipe: one node per stage (qualified name, kind, output type), one edge per dependency.
--json is the same as --format json.`;

export async function graphVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { format: { type: "string", default: "dot" }, json: { type: "boolean" }, set: { type: "string", multiple: true } }, help);
  if (!p) return 0;
  if (p.positionals.length !== 1) throw new UsageError("give exactly one recipe file");
  const format = p.values.json ? "json" : p.values.format;
  if (format !== "dot" && format !== "mermaid" && format !== "json") throw new UsageError(`unknown format '${format}' (dot, mermaid or json)`);
  const r = compileFiles(p.positionals, p.values.set ?? [], { runnable: false });
  const program = r.files[0]?.program;
  if (hasErrors(r.diagnostics) || !program) {
    if (format === "json") process.stdout.write(JSON.stringify({ diagnostics: diagnosticsJson(r.diagnostics) }) + "\n");
    else printDiagnostics(r.diagnostics, false);
    return 1;
  }
  const g = buildGraph(program);
  const out = format === "json" ? JSON.stringify(toJson(g)) + "\n" : format === "mermaid" ? toMermaid(g) : toDot(g);
  process.stdout.write(out);
  return 0;
}
