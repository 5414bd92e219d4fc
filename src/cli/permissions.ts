import { existsSync, realpathSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { EffectContext, Permissions } from "../compile/effects.js";
import type { Profile } from "../executors/profile.js";
import { hubSettings } from "../hub/settings.js";
import { UsageError } from "./host.js";

/** The options every verb that enforces the safe default takes (check, plan, run). */
export const permissionOptions = {
  "allow-write": { type: "string", multiple: true },
  "allow-env": { type: "string", multiple: true },
  "deny-read-outside": { type: "boolean" },
} as const;

export const permissionHelp = `  --allow-write PATH   allow writes to PATH (a file, or a folder and what is below it) outside the recipe's
                       folder and the store (repeatable)
  --allow-env NAME     allow the value of env("NAME") in what is sent to a host: a header, a prompt, a query
                       (repeatable)
  --deny-read-outside  make reads outside the recipe's folder errors (for CI that runs contributed recipes)`;

/**
 * The permissions the command line gives, with those of the profile chosen with --profile (its paths relative to
 * the profile file's folder). Nothing else gives any: not the recipe, not a module or package it imports.
 */
export function permissionsFrom(values: { "allow-write"?: string[]; "allow-env"?: string[]; "deny-read-outside"?: boolean }, profile?: Profile): Permissions {
  for (const n of values["allow-env"] ?? []) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) throw new UsageError(`--allow-env takes an environment variable's name, not '${n}'`);
  const fromProfile = (profile?.allow_write ?? []).map((p) => resolve(dirname(resolve(profile!.file)), p));
  return {
    allowWrite: [...(values["allow-write"] ?? []).map((p) => resolve(p)), ...fromProfile],
    allowEnv: [...(values["allow-env"] ?? []), ...(profile?.allow_env ?? [])],
    denyReadOutside: (values["deny-read-outside"] ?? false) || profile?.deny_read_outside === true,
  };
}

/** The machine's side of a recipe's effects: its folder, the store, symlinks, the environment, the hub. */
export function effectContext(recipe: string, store: string, extra: Partial<EffectContext> = {}): EffectContext {
  return {
    folder: dirname(resolve(recipe)),
    store: resolve(store),
    hubEndpoint: hubSettings().endpoint,
    realpath: (p) => {
      // A missing path is common (an input not made yet): asked without the cost of an exception.
      if (!existsSync(p)) return undefined;
      try {
        return realpathSync.native(p);
      } catch {
        return undefined;
      }
    },
    env: (name) => process.env[name],
    ...extra,
  };
}
