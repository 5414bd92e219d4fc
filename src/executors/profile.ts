import { isAbsolute, resolve, dirname } from "node:path";
import { isMap, isScalar, parseDocument, type Node as YamlNode } from "yaml";
import { z } from "zod";
import { error, type Diagnostic } from "../diagnostics/diagnostic.js";
import { SourceFile, type Range } from "../diagnostics/source.js";
import { didYouMean } from "../diagnostics/suggest.js";

/**
 * Where a recipe runs, kept out of the recipe: a profile in `itp.profiles.yaml` (next to the recipe, or
 * `--profile-file PATH`), chosen with `--profile NAME`. The recipe says what a stage needs (gpus, nodes, memory,
 * time); the profile says where that is found. A profile never enters a cache key: where a stage runs does not
 * change what it makes.
 *
 *   cluster:
 *     executor: slurm
 *     partition: gpu
 *     account: my-lab
 *     setup: ["module load cuda/12.1", "source ~/venvs/itp/bin/activate"]
 *     python: python3
 *     store: /shared/$USER/itp-store
 */
export const PROFILE_FILE = "itp.profiles.yaml";

const text = () => z.string().min(1);

export const profileSchema = z.strictObject({
  executor: z.enum(["local", "slurm"]).describe("Where training and evaluation jobs run (default local)."),
  partition: text().optional().describe("Slurm partition (sbatch --partition); a stage's `partition` parameter wins."),
  account: text().optional().describe("Slurm account to charge (sbatch --account)."),
  qos: text().optional().describe("Slurm quality of service (sbatch --qos)."),
  constraint: text().optional().describe("Node features required (sbatch --constraint), e.g. a100|h100."),
  sbatch: z.array(text()).optional().describe("Extra sbatch options, one per line, written as `#SBATCH` lines (e.g. --exclusive)."),
  setup: z.array(text()).optional().describe("Shell lines run in the job before the program (module load, activating a Python environment)."),
  python: text().optional().describe("The Python the job runs (on the compute node); default ITP_PYTHON, else python3."),
  store: text().optional().describe("The store, on storage the compute nodes share (relative to this file's folder); --store wins."),
  cpus_per_gpu: z.number().int().positive().optional().describe("CPUs per GPU asked for (sbatch --cpus-per-gpu)."),
  rendezvous_port: z.number().int().min(1024).max(65535).optional().describe("Port of torchrun's rendezvous on a multi-node job's first node (default 29500)."),
  poll_seconds: z.number().positive().max(600).optional().describe("How often a job's state is asked of Slurm (default 2)."),
  allow_write: z.array(text()).optional().describe("Paths (files, or folders and what is below them; relative to this file's folder) a recipe may write outside its folder and the store, as --allow-write."),
  allow_env: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable's name")).optional().describe("Environment variables whose env() values a recipe may send to a host, as --allow-env."),
  deny_read_outside: z.boolean().optional().describe("Reads outside the recipe's folder are errors, as --deny-read-outside."),
});

export type Profile = z.infer<typeof profileSchema> & {
  /** The profile's name and the file it came from (messages). */
  readonly name: string;
  readonly file: string;
};

const KEYS = Object.keys(profileSchema.shape);

/** Every profile of a profile file, or the diagnostics that make it unusable (E090). */
export function parseProfiles(source: string, path: string): { profiles: Map<string, Profile>; diagnostics: Diagnostic[] } {
  const file = new SourceFile(path, source);
  const diagnostics: Diagnostic[] = [];
  const profiles = new Map<string, Profile>();
  const doc = parseDocument(source, { uniqueKeys: true, prettyErrors: false });
  const at = (n: { range?: [number, number, number] | null } | null | undefined): Range => ({ file, start: n?.range?.[0] ?? 0, end: n?.range?.[1] ?? 0 });
  for (const e of doc.errors) diagnostics.push(error("E090", `profile file: ${e.message.split("\n")[0]}`, { file, start: e.pos[0], end: e.pos[1] }, "the file is YAML: each profile a name followed by its settings, indented"));
  if (diagnostics.length > 0) return { profiles, diagnostics };
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return { profiles, diagnostics };
  if (!isMap(root)) {
    diagnostics.push(error("E090", "profile file: expected profiles by name (a mapping), each with its settings", at(root as YamlNode), `e.g.\n    cluster:\n      executor: slurm\n      partition: gpu`));
    return { profiles, diagnostics };
  }
  for (const pair of root.items) {
    const keyNode = pair.key as YamlNode | null;
    const name = isScalar(keyNode) ? String(keyNode.value) : "";
    const valueNode = pair.value as YamlNode | null;
    if (!isMap(valueNode)) {
      diagnostics.push(error("E090", `profile \`${name}\`: expected its settings (a mapping), e.g. \`executor: slurm\``, at(valueNode ?? keyNode)));
      continue;
    }
    const value = valueNode.toJSON() as Record<string, unknown>;
    const r = profileSchema.safeParse(value);
    if (r.success) {
      profiles.set(name, { ...r.data, name, file: path });
      continue;
    }
    const nodeOf = (key: PropertyKey | undefined, which: "key" | "value") => {
      const item = valueNode.items.find((p) => isScalar(p.key) && p.key.value === key);
      return (which === "key" ? item?.key : (item?.value ?? item?.key)) as YamlNode | undefined;
    };
    for (const issue of r.error.issues) {
      if (issue.code === "unrecognized_keys") {
        for (const k of issue.keys) {
          const s = didYouMean(k, KEYS);
          diagnostics.push(error("E090", `profile \`${name}\`: unknown setting \`${k}\``, at(nodeOf(k, "key")), s ? `did you mean \`${s}\`?` : `the settings are ${KEYS.join(", ")}`));
        }
        continue;
      }
      const key = issue.path[0];
      const shape = (profileSchema.shape as Record<string, z.ZodType>)[String(key)];
      const doc = shape?.description;
      const missing = key !== undefined && !(String(key) in value);
      diagnostics.push(
        error(
          "E090",
          missing ? `profile \`${name}\`: \`${String(key)}\` is required` : `profile \`${name}\`: \`${issue.path.map(String).join(".")}\`: ${issue.message}`,
          missing ? at(keyNode) : at(nodeOf(key, "value")),
          doc ? `${String(key)}: ${doc}` : undefined,
        ),
      );
    }
  }
  return { profiles, diagnostics };
}

/** The profile of a name in a file's profiles, or an error (E091) naming the closest one. */
export function chooseProfile(profiles: ReadonlyMap<string, Profile>, name: string, path: string): { profile?: Profile; diagnostics: Diagnostic[] } {
  const p = profiles.get(name);
  if (p) return { profile: p, diagnostics: [] };
  const s = didYouMean(name, profiles.keys());
  const known = [...profiles.keys()];
  return {
    diagnostics: [error("E091", `no profile \`${name}\` in ${path}`, undefined, s ? `did you mean \`${s}\`?` : known.length > 0 ? `its profiles: ${known.join(", ")}` : "the file defines no profile")],
  };
}

/** The store a profile names, as an absolute path (relative to the profile file's folder), with `$VAR`s expanded. */
export function profileStore(p: Profile, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (p.store === undefined) return undefined;
  const expanded = p.store.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, v: string) => env[v] ?? "").replace(/^~(?=\/|$)/, env["HOME"] ?? "~");
  return isAbsolute(expanded) ? expanded : resolve(dirname(p.file), expanded);
}
