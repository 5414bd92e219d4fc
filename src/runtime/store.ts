import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { canonicalJson, fileDigest, sha256 } from "./digest.js";

/** What an artifact is and how it was made. Written last, atomically: an entry with a manifest is complete. */
export interface Manifest {
  readonly format: 1;
  readonly key: string;
  readonly recipe: string;
  readonly stage: string;
  readonly kind: string;
  readonly impl_version: string;
  /** The named components of the cache key, each a value or a digest: what `itp plan` compares. */
  readonly components: Readonly<Record<string, string>>;
  /** Parameters as they entered the key (secrets removed). */
  readonly params: unknown;
  readonly inputs: readonly { readonly role: string; readonly stage: string; readonly digest: string }[];
  readonly files: readonly { readonly path: string; readonly digest: string }[];
  readonly seed?: number;
  readonly started_at: string;
  readonly finished_at: string;
  readonly duration_ms: number;
  readonly attempts: number;
  readonly output: { readonly digest: string; readonly bytes: number; readonly records: number | null; readonly format: "jsonl" | "json" };
  readonly counts: Readonly<Record<string, number>>;
}

const required: (keyof Manifest)[] = ["format", "key", "stage", "kind", "impl_version", "components", "output", "started_at", "finished_at"];

export type Verdict = { readonly ok: true; readonly manifest: Manifest } | { readonly ok: false; readonly reason: string; readonly manifest?: Manifest };

/** A store that cannot be used (not writable, not a folder): reported once, clearly. */
export class StoreUnavailable extends Error {}

/**
 * The content-addressed store (`.itp/` by default):
 * - `objects/ab/<sha256>`: artifact data, named by the digest of its bytes;
 * - `entries/ab/<key>.json`: manifests, named by cache key;
 * - `refs/<recipe>/<stage>.json`: the last key of each stage of each recipe (what `plan` compares with);
 * - `runs/<id>.jsonl`: one event log per run; `tmp/` work in progress; `quarantine/` entries found corrupt.
 * Data and manifest are written under tmp/, made durable, then renamed into place: a reader never sees a partial
 * artifact, and a crash leaves at most garbage in tmp/.
 */
export class Store {
  private readonly madeDirs = new Set<string>();
  private readonly durability: Durability;

  constructor(readonly root: string) {
    this.durability = new Durability(root);
  }

  static async open(root: string): Promise<Store> {
    const s = new Store(root);
    try {
      await mkdir(join(root, "tmp"), { recursive: true });
      await access(join(root, "tmp"), constants.W_OK);
      const probe = join(root, "tmp", `probe-${process.pid}-${randomBytes(4).toString("hex")}`);
      await writeFile(probe, "");
      await unlink(probe);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new StoreUnavailable(`cannot write to the store ${root} (${code})`);
    }
    return s;
  }

  objectPath(digest: string): string {
    return join(this.root, "objects", digest.slice(0, 2), digest);
  }

  entryPath(key: string): string {
    return join(this.root, "entries", key.slice(0, 2), `${key}.json`);
  }

  private refPath(recipe: string, stage: string): string {
    return join(this.root, "refs", slug(recipe), `${stage}.json`);
  }

  async tmpPath(ext: string): Promise<string> {
    return join(this.root, "tmp", `${Date.now().toString(36)}-${process.pid}-${randomBytes(6).toString("hex")}${ext}`);
  }

  private async dir(d: string): Promise<void> {
    if (this.madeDirs.has(d)) return;
    await mkdir(d, { recursive: true });
    this.madeDirs.add(d);
  }

  async readManifest(key: string): Promise<Manifest | undefined | "unreadable"> {
    let text: string;
    try {
      text = await readFile(this.entryPath(key), "utf8");
    } catch {
      return undefined;
    }
    try {
      return JSON.parse(text) as Manifest;
    } catch {
      return "unreadable";
    }
  }

  /** Is the entry for this key complete and intact? (Manifest present and whole, data present, digest matching.) */
  async verify(key: string): Promise<Verdict | undefined> {
    const m = await this.readManifest(key);
    if (m === undefined) return undefined;
    if (m === "unreadable") return { ok: false, reason: "manifest is not valid JSON" };
    return this.verifyManifest(m);
  }

  async verifyManifest(m: Manifest): Promise<Verdict> {
    for (const f of required) if ((m as unknown as Record<string, unknown>)[f] === undefined) return { ok: false, reason: `manifest lacks \`${f}\``, manifest: m };
    const path = this.objectPath(m.output.digest);
    let st;
    try {
      st = await stat(path);
    } catch {
      return { ok: false, reason: "data file is missing", manifest: m };
    }
    if (st.size !== m.output.bytes) return { ok: false, reason: `data file has ${st.size} bytes, manifest says ${m.output.bytes}`, manifest: m };
    const { digest } = await fileDigest(path);
    if (digest !== m.output.digest) return { ok: false, reason: "data file's digest does not match the manifest", manifest: m };
    return { ok: true, manifest: m };
  }

  /** Move a corrupt entry out of the way (kept for inspection under quarantine/), so it is recomputed. */
  async quarantine(key: string, reason: string): Promise<void> {
    const dir = join(this.root, "quarantine");
    await this.dir(dir);
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    await rename(this.entryPath(key), join(dir, `${key}.${stamp}.json`)).catch(() => undefined);
    await writeFile(join(dir, `${key}.${stamp}.reason.txt`), reason + "\n").catch(() => undefined);
  }

  /**
   * Commit an artifact: its data (already written to `tmpData`) and its manifest become visible together, after
   * both are durable. The data is renamed to its digest's name first, so a manifest never points at nothing.
   */
  async commit(tmpData: string, manifest: Manifest): Promise<void> {
    const tmpManifest = await this.tmpPath(".json");
    await writeFile(tmpManifest, JSON.stringify(manifest, null, 1) + "\n");
    await this.durability.barrier([tmpData, tmpManifest]);
    const obj = this.objectPath(manifest.output.digest);
    await this.dir(join(this.root, "objects", manifest.output.digest.slice(0, 2)));
    // Same digest, same bytes: an object that already exists is kept.
    if (await exists(obj)) await unlink(tmpData);
    else await rename(tmpData, obj);
    await this.dir(join(this.root, "entries", manifest.key.slice(0, 2)));
    await rename(tmpManifest, this.entryPath(manifest.key));
  }

  async setRef(recipe: string, stage: string, key: string): Promise<void> {
    const path = this.refPath(recipe, stage);
    await this.dir(join(this.root, "refs", slug(recipe)));
    const tmp = await this.tmpPath(".ref");
    await writeFile(tmp, JSON.stringify({ key }) + "\n");
    await rename(tmp, path);
  }

  async getRef(recipe: string, stage: string): Promise<string | undefined> {
    try {
      return (JSON.parse(await readFile(this.refPath(recipe, stage), "utf8")) as { key: string }).key;
    } catch {
      return undefined;
    }
  }

  /** Remove what an interrupted run left in tmp/ (only files older than `olderThanMs`, so a concurrent run is safe). */
  async cleanTmp(olderThanMs = 60_000): Promise<number> {
    const dir = join(this.root, "tmp");
    let n = 0;
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      const p = join(dir, f);
      const st = await stat(p).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > olderThanMs) {
        await rm(p, { force: true, recursive: true });
        n++;
      }
    }
    return n;
  }

  async *entries(): AsyncGenerator<{ key: string; manifest: Manifest | "unreadable" }> {
    const base = join(this.root, "entries");
    for (const d of (await readdir(base).catch(() => [] as string[])).sort()) {
      for (const f of (await readdir(join(base, d)).catch(() => [] as string[])).sort()) {
        if (!f.endsWith(".json")) continue;
        const key = f.slice(0, -5);
        const m = await this.readManifest(key);
        if (m !== undefined) yield { key, manifest: m };
      }
    }
  }

  async *objects(): AsyncGenerator<string> {
    const base = join(this.root, "objects");
    for (const d of (await readdir(base).catch(() => [] as string[])).sort()) for (const f of (await readdir(join(base, d)).catch(() => [] as string[])).sort()) yield f;
  }

  async runLog(runId: string): Promise<RunLog> {
    await this.dir(join(this.root, "runs"));
    return RunLog.open(join(this.root, "runs", `${runId}.jsonl`));
  }

  /** Digest of a source file, remembered by (size, mtime, inode) so unchanged large files are not re-read. */
  async sourceDigest(path: string): Promise<string> {
    const st = await stat(path);
    const stampFile = join(this.root, "files", `${sha256(path).slice(0, 32)}.json`);
    const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    try {
      const known = JSON.parse(await readFile(stampFile, "utf8")) as { path: string; stamp: string; digest: string };
      if (known.path === path && known.stamp === stamp) return known.digest;
    } catch {
      // not known yet
    }
    const { digest } = await fileDigest(path);
    await this.dir(join(this.root, "files"));
    const tmp = await this.tmpPath(".stamp");
    await writeFile(tmp, JSON.stringify({ path, stamp, digest }));
    await rename(tmp, stampFile);
    return digest;
  }
}

/** The cache key: a digest of the named components. */
export function cacheKey(components: Readonly<Record<string, string>>): string {
  return sha256(canonicalJson(components));
}

function slug(recipe: string): string {
  return recipe.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "") || "recipe";
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** The per-run event log: one JSON object per line, appended as things happen. */
export class RunLog {
  private constructor(
    readonly path: string,
    private readonly fh: Awaited<ReturnType<typeof open>>,
  ) {}

  static async open(path: string): Promise<RunLog> {
    return new RunLog(path, await open(path, "a"));
  }

  private pending: Promise<unknown> = Promise.resolve();

  event(type: string, data: Record<string, unknown> = {}): void {
    const line = JSON.stringify({ t: new Date().toISOString(), type, ...data }) + "\n";
    this.pending = this.pending.then(() => this.fh.write(line)).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.pending;
    await this.fh.close();
  }
}

/**
 * Group commit: files waiting to become durable are flushed together. One `sync -f` (syncfs of the store's file
 * system) covers every file written before it started, so thousands of small artifacts cost a handful of flushes
 * rather than one fsync each. Where `sync -f` is missing, each file is fsynced instead.
 */
class Durability {
  private waiting: { files: string[]; done: () => void; fail: (e: Error) => void }[] = [];
  private running = false;
  private useSyncFs = true;

  constructor(private readonly root: string) {}

  barrier(files: string[]): Promise<void> {
    return new Promise((done, fail) => {
      this.waiting.push({ files, done, fail });
      if (!this.running) void this.cycle();
    });
  }

  private async cycle(): Promise<void> {
    this.running = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      try {
        await this.flush(batch.flatMap((b) => b.files));
        for (const b of batch) b.done();
      } catch (e) {
        for (const b of batch) b.fail(e as Error);
      }
    }
    this.running = false;
  }

  private async flush(files: string[]): Promise<void> {
    if (this.useSyncFs) {
      const ok = await new Promise<boolean>((resolve) => execFile("sync", ["-f", this.root], (err) => resolve(!err)));
      if (ok) return;
      this.useSyncFs = false;
    }
    await Promise.all(
      files.map(async (f) => {
        const fh = await open(f, "r+");
        try {
          await fh.datasync();
        } finally {
          await fh.close();
        }
      }),
    );
  }
}
