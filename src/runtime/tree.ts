import { chmod, lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileDigest } from "../core/digest.js";

/**
 * A directory artifact (a model: config, weights, tokenizer) is named by its listing: one line per file, sorted by
 * path, `<sha256> <bytes> <path>`. The listing is stored as an ordinary object (its digest is the tree's digest),
 * and the files under `trees/ab/<digest>/`: verifying the tree is verifying the listing, then each file against it.
 */
export interface TreeFile {
  readonly path: string;
  readonly bytes: number;
  readonly digest: string;
}

/** The files of a directory, hashed, sorted by path (`/`-separated). Only plain files and folders are allowed. */
export async function listTree(dir: string): Promise<TreeFile[]> {
  const out: TreeFile[] = [];
  const walk = async (rel: string) => {
    const names = (await readdir(join(dir, rel))).sort();
    for (const name of names) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const full = join(dir, r);
      const st = await lstat(full);
      if (st.isDirectory()) await walk(r);
      else if (st.isFile()) {
        if (/[\n\r]/.test(r)) throw new Error(`cannot store ${full}: a file name with a line break`);
        const { digest, bytes } = await fileDigest(full);
        out.push({ path: r, bytes, digest });
      } else throw new Error(`cannot store ${full}: only files and folders go into a tree artifact (not links or devices)`);
    }
  };
  await walk("");
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

export function listingText(files: readonly TreeFile[]): string {
  return files.map((f) => `${f.digest} ${f.bytes} ${f.path}\n`).join("");
}

export function parseListing(text: string): TreeFile[] | undefined {
  const out: TreeFile[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const m = /^([0-9a-f]{64}) (\d+) (.+)$/.exec(line);
    if (!m) return undefined;
    out.push({ digest: m[1]!, bytes: Number(m[2]), path: m[3]! });
  }
  return out;
}

/** What is wrong with a stored tree against its listing (a file missing, extra, of another size or digest), or undefined. */
export async function checkTree(dir: string, expected: readonly TreeFile[]): Promise<string | undefined> {
  let actual: TreeFile[];
  try {
    actual = await listTree(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "its folder is missing" : `its folder cannot be read (${code ?? (e as Error).message})`;
  }
  const want = new Map(expected.map((f) => [f.path, f]));
  for (const f of actual) {
    const w = want.get(f.path);
    if (!w) return `${f.path} is not in its listing`;
    if (w.bytes !== f.bytes) return `${f.path} has ${f.bytes} bytes, its listing says ${w.bytes}`;
    if (w.digest !== f.digest) return `${f.path}'s digest does not match its listing`;
    want.delete(f.path);
  }
  const missing = [...want.keys()];
  return missing.length > 0 ? `${missing[0]} is missing${missing.length > 1 ? ` (and ${missing.length - 1} more files)` : ""}` : undefined;
}

/** Make a stored tree's files read-only: whoever loads the model must not change the store's copy. */
export async function freezeTree(dir: string, files: readonly TreeFile[]): Promise<void> {
  for (const f of files) await chmod(join(dir, f.path), 0o444);
}
