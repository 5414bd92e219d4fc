import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { error, hasErrors, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Profile } from "../executors/profile.js";
import { diagnosticsJson, printDiagnostics } from "./compile.js";
import { displayPath, UsageError } from "./host.js";

/** The options every command that runs or plans a recipe takes to choose where it runs. */
export const profileOptions = {
  profile: { type: "string" },
  "profile-file": { type: "string" },
} as const;

export const profileHelp = `  --profile NAME       where stages run: a profile of itp.profiles.yaml next to the recipe (executor,
                       Slurm partition and account, setup lines, the store on shared storage); never part of a cache key
  --profile-file PATH  read the profiles from PATH instead`;

/** The profile file a command reads: --profile-file, else itp.profiles.yaml in the recipe's folder. */
export function profileFile(recipe: string, flag: string | undefined, name: string): string {
  if (flag !== undefined) return resolve(flag);
  const abs = resolve(recipe);
  const dir = existsSync(abs) && statSync(abs).isDirectory() ? abs : dirname(abs);
  return join(dir, name);
}

/**
 * The diagnostics of a profile file and the profile chosen: E092 for a file that is not there, E090 for what is
 * wrong in it (YAML, unknown settings with a did-you-mean, wrong types), E091 for a name it does not define.
 */
export async function checkProfile(recipe: string, values: { profile?: string | undefined; "profile-file"?: string | undefined }): Promise<{ profile?: Profile; diagnostics: Diagnostic[] }> {
  if (values.profile === undefined && values["profile-file"] === undefined) return { diagnostics: [] };
  // Loaded only when a profile is asked for: its YAML parser and schema are not paid by every run and plan.
  const { chooseProfile, parseProfiles, PROFILE_FILE } = await import("../executors/profile.js");
  const path = profileFile(recipe, values["profile-file"], PROFILE_FILE);
  const shown = displayPath(path);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { diagnostics: [error("E092", `no profile file ${shown}${code && code !== "ENOENT" ? ` (${code})` : ""}`, undefined, `profiles live in ${PROFILE_FILE} next to the recipe; give another file with --profile-file PATH`)] };
  }
  const { profiles, diagnostics } = parseProfiles(text, shown);
  if (hasErrors(diagnostics) || values.profile === undefined) return { diagnostics };
  const chosen = chooseProfile(profiles, values.profile, shown);
  return chosen.profile ? { profile: chosen.profile, diagnostics } : { diagnostics: chosen.diagnostics };
}

/**
 * For run, plan and show: the profile chosen (made the executors' profile), with the store it names; exit code 1
 * with the diagnostics printed when it cannot be used.
 */
export async function applyProfile(recipe: string, values: { profile?: string | undefined; "profile-file"?: string | undefined }, json: boolean): Promise<{ store?: string; profile?: Profile } | number> {
  if (values["profile-file"] !== undefined && values.profile === undefined) throw new UsageError("--profile-file goes with --profile NAME");
  const r = await checkProfile(recipe, values);
  if (hasErrors(r.diagnostics) || (values.profile !== undefined && !r.profile)) {
    if (json) process.stdout.write(JSON.stringify({ diagnostics: diagnosticsJson(r.diagnostics) }) + "\n");
    else printDiagnostics(r.diagnostics, false);
    return 1;
  }
  // Loaded here, not with this module: `itp check` reads profiles but never starts an executor.
  const { useProfile } = await import("../executors/index.js");
  useProfile(r.profile);
  const store = r.profile ? (await import("../executors/profile.js")).profileStore(r.profile) : undefined;
  return { ...(store !== undefined ? { store } : {}), ...(r.profile ? { profile: r.profile } : {}) };
}
