import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { UserError } from "../core/errors.js";
import type { TreeFile } from "./tree.js";

/**
 * The download cache, one folder per repository and revision:
 *
 *     <cache>/datasets/<owner>/<name>/<revision>/tree.json            the file listing (offline runs read it)
 *     <cache>/datasets/<owner>/<name>/<revision>/files/<path>         verified files
 *     <cache>/datasets/<owner>/<name>/<revision>/files/<path>.incomplete   a download in progress (resumed)
 *
 * The revision is URI-encoded (`refs/convert/parquet` is one folder). Everything is written to a temporary name
 * and renamed, so a reader never sees half a file.
 */
export class RevisionCache {
  readonly dir: string;

  constructor(
    root: string,
    readonly repo: string,
    readonly revision: string,
  ) {
    const [owner, name] = repo.split("/");
    // The repo id was checked by the parameter schema, but `.`/`..` would still climb out of the cache.
    if (!owner || !name || /^\.+$/.test(owner) || /^\.+$/.test(name)) throw new UserError(`\`${repo}\` is not a hub repository id`, "write it as owner/name");
    this.dir = join(root, "datasets", owner, name, encodeURIComponent(revision));
  }

  file(path: string): string {
    return join(this.dir, "files", ...path.split("/"));
  }

  get treePath(): string {
    return join(this.dir, "tree.json");
  }

  /** The cached listing, or undefined when there is none or it does not read back (it is then listed again). */
  async readTree(): Promise<TreeFile[] | undefined> {
    try {
      const j = JSON.parse(await readFile(this.treePath, "utf8")) as { repo?: string; revision?: string; files?: TreeFile[] };
      if (j.repo !== this.repo || j.revision !== this.revision || !Array.isArray(j.files)) return undefined;
      return j.files;
    } catch {
      return undefined;
    }
  }

  async writeTree(files: readonly TreeFile[]): Promise<void> {
    await writeAtomically(this.treePath, JSON.stringify({ repo: this.repo, revision: this.revision, files }, null, 1) + "\n");
  }
}

/** Write `text` to `path` through a temporary file in the same folder, synced, then renamed into place. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    const fh = await open(tmp, "wx");
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
