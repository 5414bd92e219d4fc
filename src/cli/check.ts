import { hasErrors } from "../diagnostics/diagnostic.js";
import { compileFiles, diagnosticsJson, printDiagnostics } from "./compile.js";
import { UsageError } from "./host.js";
import { parseVerbArgs } from "./args.js";
import { checkProfile, profileHelp, profileOptions } from "./profile.js";

const help = `
usage: itp check <paths...> [--set STAGE.PARAM=VALUE]... [--profile NAME [--profile-file PATH]] [--json]

Parse, resolve and type-check recipes (folders are searched for .itp files). With --profile (or --profile-file),
also the profile file (itp.profiles.yaml next to the first recipe): unknown settings, wrong types, the name.
Exit 0 when there are no errors (warnings allowed), 1 otherwise.
${profileHelp}`;

export async function checkVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { json: { type: "boolean" }, set: { type: "string", multiple: true }, ...profileOptions }, help);
  if (!p) return 0;
  if (p.positionals.length === 0) throw new UsageError("give at least one file or folder");
  const compiled = compileFiles(p.positionals, p.values.set ?? []);
  const r = { ...compiled, diagnostics: [...compiled.diagnostics, ...checkProfile(p.positionals[0]!, p.values).diagnostics] };
  const failed = hasErrors(r.diagnostics);
  if (p.values.json) {
    process.stdout.write(JSON.stringify({ diagnostics: diagnosticsJson(r.diagnostics) }) + "\n");
  } else {
    printDiagnostics(r.diagnostics, false);
    if (!failed) {
      const stages = r.files.reduce((n, f) => n + (f.program?.stages.size ?? 0), 0);
      process.stdout.write(`ok: ${r.files.length} file${r.files.length === 1 ? "" : "s"}, ${stages} stage${stages === 1 ? "" : "s"}\n`);
    }
  }
  return failed ? 1 : 0;
}
