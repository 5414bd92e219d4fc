import { hasErrors } from "../diagnostics/diagnostic.js";
import { compileFiles, diagnosticsJson, printDiagnostics } from "./compile.js";
import { UsageError } from "./host.js";
import { parseVerbArgs } from "./args.js";
import { effectContext, permissionHelp, permissionOptions, permissionsFrom } from "./permissions.js";
import { checkProfile, profileHelp, profileOptions } from "./profile.js";

const help = `
usage: itp check <paths...> [--set STAGE.PARAM=VALUE]... [--allow-write PATH]... [--allow-env NAME]...
                            [--deny-read-outside] [--profile NAME [--profile-file PATH]] [--json]

Parse, resolve and type-check recipes (folders are searched for .itp files), and check their effects against
the safe default: writes outside the recipe's folder and the store (.itp/) are refused, and so is an env() value
in what is sent to a host (an endpoint's base_url and credentials excepted). With --profile (or --profile-file),
also the profile file (itp.profiles.yaml next to the first recipe): unknown settings, wrong types, the name.
Every error is shown; a warning code repeated more than ten times shows its first ten and a count of the rest
(--json lists all). Exit 0 when there are no errors (warnings allowed), 1 otherwise.
${permissionHelp}
${profileHelp}`;

export async function checkVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { json: { type: "boolean" }, set: { type: "string", multiple: true }, ...permissionOptions, ...profileOptions }, help);
  if (!p) return 0;
  if (p.positionals.length === 0) throw new UsageError("give at least one file or folder");
  const profile = await checkProfile(p.positionals[0]!, p.values);
  const allow = permissionsFrom(p.values, profile.profile);
  const compiled = compileFiles(p.positionals, p.values.set ?? [], { permissions: { allow, context: (entry) => effectContext(entry, ".itp") } });
  const r = { ...compiled, diagnostics: [...compiled.diagnostics, ...profile.diagnostics] };
  const failed = hasErrors(r.diagnostics);
  if (p.values.json) {
    process.stdout.write(JSON.stringify({ diagnostics: diagnosticsJson(r.diagnostics) }) + "\n");
  } else {
    // One warning repeated for each of hundreds of stages would bury everything else.
    printDiagnostics(r.diagnostics, false, { perWarningCode: 10 });
    if (!failed) {
      const stages = r.files.reduce((n, f) => n + (f.program?.stages.size ?? 0), 0);
      process.stdout.write(`ok: ${r.files.length} file${r.files.length === 1 ? "" : "s"}, ${stages} stage${stages === 1 ? "" : "s"}\n`);
    }
  }
  return failed ? 1 : 0;
}
