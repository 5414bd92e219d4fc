import { existsSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { BYTES } from "./bytes.js";

/**
 * Where a `tokenizer` parameter points. The same rules run when the cache key is computed (which files to digest,
 * before the recipe's folder is known) and when the stage loads the tokenizer, so both always agree:
 * - `bytes`: the byte-level fallback (no file);
 * - a path ending in `.json`: that tokenizer.json, relative to the recipe's folder;
 * - a hub model id (`org/name` or `name`) whose tokenizer.json is in the local Hugging Face cache (the snapshot that
 *   `refs/main` names): that file. Nothing is downloaded: runs are reproducible and work offline;
 * - anything else: a directory holding tokenizer.json, relative to the recipe's folder.
 */
export type TokenizerSource = { readonly kind: "bytes" } | { readonly kind: "file"; readonly path: string; readonly hub?: string };

const HUB_ID = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;

/** The Hugging Face hub cache folder, as huggingface_hub finds it. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env["HF_HUB_CACHE"] ?? env["HUGGINGFACE_HUB_CACHE"];
  if (explicit) return explicit;
  const home = env["HF_HOME"] ?? join(env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "huggingface");
  return join(home, "hub");
}

/** The cached tokenizer.json of a hub model, or undefined when the cache does not hold it. */
export function hubTokenizerFile(id: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!HUB_ID.test(id) || id.includes("..")) return undefined;
  const repo = join(hubCacheDir(env), `models--${id.replace("/", "--")}`);
  let rev: string | undefined;
  try {
    rev = readFileSync(join(repo, "refs", "main"), "utf8").trim();
  } catch {
    // No refs/main (a snapshot fetched by revision): use the snapshot when there is exactly one.
    try {
      const snaps = readdirSync(join(repo, "snapshots"));
      if (snaps.length === 1) rev = snaps[0];
    } catch {
      return undefined;
    }
  }
  if (!rev) return undefined;
  const file = join(repo, "snapshots", rev, "tokenizer.json");
  return existsSync(file) ? file : undefined;
}

/** The file a tokenizer parameter names, as written (relative paths stay relative to the recipe's folder). */
export function tokenizerSource(spec: string, env: NodeJS.ProcessEnv = process.env): TokenizerSource {
  if (spec === BYTES) return { kind: "bytes" };
  if (spec.endsWith(".json")) return { kind: "file", path: spec };
  const hub = isAbsolute(spec) || spec.startsWith(".") ? undefined : hubTokenizerFile(spec, env);
  if (hub) return { kind: "file", path: hub, hub: spec };
  return { kind: "file", path: `${spec.replace(/\/+$/, "")}/tokenizer.json` };
}

/** The files a tokenizer parameter makes a stage read: their digests belong in its cache key. */
export function tokenizerFiles(spec: unknown): string[] {
  if (typeof spec !== "string") return [];
  const s = tokenizerSource(spec);
  return s.kind === "file" ? [s.path] : [];
}

/** The absolute path of a source file, for reading. */
export function sourcePath(s: TokenizerSource & { kind: "file" }, baseDir: string): string {
  return isAbsolute(s.path) ? s.path : resolve(baseDir, s.path);
}
