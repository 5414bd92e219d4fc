import { UserError } from "./errors.js";
import type { Json } from "./ir.js";

/** Substitute env() values (and, when `withSecrets`, secret() values) from the environment. */
export function resolveParams(params: Readonly<Record<string, Json>>, withSecrets: boolean | "keep", env: NodeJS.ProcessEnv = process.env): Record<string, Json> {
  const walk = (j: Json, path: string): Json => {
    if (j === null || typeof j !== "object") return j;
    if (Array.isArray(j)) return j.map((x, i) => walk(x, `${path}[${i}]`));
    if (typeof j["$env"] === "string" && Object.keys(j).length === 1) {
      const v = env[j["$env"]];
      if (v === undefined) throw new UserError(`environment variable ${j["$env"]} is not set (parameter \`${path}\`)`, `export ${j["$env"]}=... before running`);
      return v;
    }
    if (typeof j["$secret"] === "string" && Object.keys(j).length === 1) {
      if (withSecrets === "keep") return j; // the reference, resolved by whoever connects
      if (!withSecrets) return "<secret>";
      const v = env[j["$secret"]];
      if (v === undefined) throw new UserError(`secret ${j["$secret"]} is not set (parameter \`${path}\`)`, `export ${j["$secret"]}=... before running; it is never written to the store or logs`);
      return v;
    }
    const out: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(j)) out[k] = walk(v, path ? `${path}.${k}` : k);
    return out;
  };
  return walk(params as Json, "") as Record<string, Json>;
}
