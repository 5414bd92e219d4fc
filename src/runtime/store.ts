import { spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { randomBytes } from "node:crypto";
import { constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { access, mkdir, open, readdir, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileDigest, sha256 } from "../core/digest.js";
import { RequestCache } from "./request-cache.js";
import { checkTree, freezeTree, listingText, listTree, parseListing } from "./tree.js";

/** Files up to this size are read and hashed in one synchronous call: far cheaper than a stream for small data. */
const SMALL = 8 << 20;

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
  /**
   * The data: records (jsonl), one value (json), a safetensors file (a token artifact), or a folder of files (tree: `digest` and `bytes` are its listing's,
   * `tree` counts its files and their bytes; the files are under `trees/`).
   */
  readonly output: {
    readonly digest: string;
    readonly bytes: number;
    readonly records: number | null;
    readonly format: "jsonl" | "json" | "tree" | "safetensors";
    readonly tree?: { readonly files: number; readonly bytes: number };
  };
  readonly counts: Readonly<Record<string, number>>;
  /** What the stage reported about its work (a training job: steps, first, last and lowest loss, tokens/s). */
  readonly summary?: Readonly<Record<string, unknown>>;
  /**
   * The records a filter dropped, each with its reason (`{reason, record}` lines): what `itp show --dropped` lists.
   * Lines of the data input dropped as they are may be logged by place instead (`{reason, lines: [[from, to], ...]}`,
   * line numbers from 0, `to` excluded): `lines_of` is then the digest of that input's stored file, kept with the log.
   */
  readonly dropped?: { readonly digest: string; readonly bytes: number; readonly records: number; readonly lines_of?: string };
  /** Where a small artifact's data lives inside a pack (set when read from the store, never written). */
  readonly packed?: { readonly file: string; readonly offset: number };
}

/** Artifacts up to this size are appended to a pack rather than written as files of their own. */
export const PACK_LIMIT = 64 * 1024;

const required: (keyof Manifest)[] = ["format", "key", "stage", "kind", "impl_version", "components", "output", "started_at", "finished_at"];

export type Verdict = { readonly ok: true; readonly manifest: Manifest } | { readonly ok: false; readonly reason: string; readonly manifest?: Manifest };

/** A store that cannot be used (not writable, not a folder): reported once, clearly. */
export class StoreUnavailable extends Error {}

/**
 * The content-addressed store (`.itp/` by default):
 * - `objects/ab/<sha256>`: artifact data, named by the digest of its bytes;
 * - `trees/ab/<digest>/`: the files of folder artifacts (models), named by the digest of their listing (an object);
 * - `work/<key>/`: a stage's work that outlives an attempt (a training job's checkpoints), until its entry commits;
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

  treePath(digest: string): string {
    return join(this.root, "trees", digest.slice(0, 2), digest);
  }

  /** The folder a stage keeps across attempts (checkpoints), created on first use; removed once its entry commits. */
  async workDir(key: string): Promise<string> {
    const dir = join(this.root, "work", key);
    await mkdir(dir, { recursive: true });
    this.madeWork.add(key);
    return dir;
  }

  /** Work folders made by this store, and those there when it first removed one. */
  private readonly madeWork = new Set<string>();
  private workAtStart: Set<string> | undefined;

  async removeWorkDir(key: string): Promise<void> {
    // Every commit removes its stage's work folder, and most stages never make one: only a folder made here or
    // already there (left by an earlier attempt) is removed, not ten thousand that do not exist.
    if (!this.workAtStart) {
      try {
        this.workAtStart = new Set(readdirSync(join(this.root, "work")));
      } catch {
        this.workAtStart = new Set();
      }
    }
    if (!this.madeWork.has(key) && !this.workAtStart.has(key)) return;
    await rm(join(this.root, "work", key), { recursive: true, force: true });
    this.madeWork.delete(key);
    this.workAtStart.delete(key);
  }

  /**
   * Publish a folder built under tmp/ as a tree artifact: its files hashed and listed, the listing published as an
   * object, the folder renamed to its digest's name and made read-only. A tree already there is kept if intact,
   * else replaced (as `publish` does for a damaged object).
   */
  async publishTree(tmpDir: string): Promise<{ digest: string; bytes: number; files: number; treeBytes: number; paths: string[] }> {
    const files = await listTree(tmpDir);
    const listing = Buffer.from(listingText(files), "utf8");
    const digest = sha256(listing);
    const tmpListing = await this.tmpPath(".listing");
    writeFileSync(tmpListing, listing);
    const dest = this.treePath(digest);
    this.dir(join(this.root, "trees", digest.slice(0, 2)));
    if (existsSync(dest)) {
      if ((await checkTree(dest, files)) === undefined) await rm(tmpDir, { recursive: true, force: true });
      else {
        const aside = await this.tmpPath(".damaged-tree");
        renameSync(dest, aside);
        renameSync(tmpDir, dest);
        await rm(aside, { recursive: true, force: true });
      }
    } else renameSync(tmpDir, dest);
    await freezeTree(dest, files);
    this.publish(tmpListing, digest);
    return { digest, bytes: listing.length, files: files.length, treeBytes: files.reduce((a, f) => a + f.bytes, 0), paths: files.map((f) => join(dest, f.path)) };
  }

  entryPath(key: string): string {
    return join(this.root, "entries", key.slice(0, 2), `${key}.json`);
  }

  private refPath(recipe: string): string {
    return join(this.root, "refs", `${slug(recipe)}.json`);
  }

  private tmpCounter = 0;
  private readonly tmpPrefix = `${process.pid}-${randomBytes(4).toString("hex")}`;

  /** A fresh name under tmp/: unique to this process (pid, a random tag) and this call (a counter). */
  async tmpPath(ext: string): Promise<string> {
    return join(this.root, "tmp", `${this.tmpPrefix}-${(++this.tmpCounter).toString(36)}${ext}`);
  }

  private dir(d: string): void {
    if (this.madeDirs.has(d)) return;
    mkdirSync(d, { recursive: true });
    this.madeDirs.add(d);
  }

  private requestCache: RequestCache | undefined;

  /** The cache of model answers (`requests/`), opened on first use. */
  requests(): RequestCache {
    return (this.requestCache ??= RequestCache.open(this.root));
  }

  /** Sync and close what the store holds open for writing (the request log). */
  closeRequests(): void {
    this.requestCache?.close();
    this.requestCache = undefined;
  }

  // Metadata operations are synchronous: manifests and refs are small, and a synchronous call costs a fraction of
  // a round trip through libuv's thread pool. Data of any size is streamed asynchronously.
  async readManifest(key: string): Promise<Manifest | undefined | "unreadable"> {
    return this.manifestNow(key);
  }

  /** The manifest of a key: a loose entry, else the latest intact frame of a pack. */
  manifestNow(key: string): Manifest | undefined | "unreadable" {
    // Packed entries are indexed in memory; a loose entry (a large artifact) is a file of its own.
    const packed = this.packs().get(key);
    if (packed && !this.looseKeys().has(key)) return this.frameManifest(packed);
    if (!this.looseKeys().has(key)) return undefined;
    let text: string;
    try {
      text = readFileSync(this.entryPath(key), "utf8");
    } catch {
      return packed ? this.frameManifest(packed) : undefined;
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
    if (m.dropped) {
      const bad = await this.checkObject(m.dropped.digest, m.dropped.bytes);
      if (bad) return { ok: false, reason: `the log of dropped records: ${bad}`, manifest: m };
      // The input whose lines it names is checked as that stage's artifact; here only that it is there.
      if (m.dropped.lines_of !== undefined && !existsSync(this.objectPath(m.dropped.lines_of))) return { ok: false, reason: "the log of dropped records: the input its lines are in is missing", manifest: m };
    }
    if (m.packed) {
      const data = this.packedData(m);
      if (!data) return { ok: false, reason: "pack data is missing or short", manifest: m };
      if (sha256(data) !== m.output.digest) return { ok: false, reason: "packed data's digest does not match the manifest", manifest: m };
      return { ok: true, manifest: m };
    }
    const bad = await this.checkObject(m.output.digest, m.output.bytes);
    if (bad) return { ok: false, reason: m.output.format === "tree" ? `the listing of its files: ${bad}` : bad, manifest: m };
    if (m.output.format === "tree") {
      const files = parseListing(readFileSync(this.objectPath(m.output.digest), "utf8"));
      if (!files) return { ok: false, reason: "the listing of its files cannot be read", manifest: m };
      const wrong = await checkTree(this.treePath(m.output.digest), files);
      if (wrong) return { ok: false, reason: `its folder: ${wrong}`, manifest: m };
    }
    return { ok: true, manifest: m };
  }

  /** What is wrong with an object (missing, wrong size, wrong digest), or undefined when it is intact. */
  private async checkObject(digest: string, bytes: number): Promise<string | undefined> {
    const path = this.objectPath(digest);
    let st;
    try {
      st = statSync(path);
    } catch {
      return "data file is missing";
    }
    if (st.size !== bytes) return `data file has ${st.size} bytes, manifest says ${bytes}`;
    const actual = st.size <= SMALL ? sha256(readFileSync(path)) : (await fileDigest(path)).digest;
    return actual === digest ? undefined : "data file's digest does not match the manifest";
  }

  /** Move a corrupt entry out of the way (kept for inspection under quarantine/), so it is recomputed. */
  async quarantine(key: string, reason: string): Promise<void> {
    const dir = join(this.root, "quarantine");
    this.dir(dir);
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const packed = this.packs().get(key);
    if (packed && !existsSync(this.entryPath(key))) {
      // A pack is append-only: the bad frame gets a tombstone, and a recomputed one supersedes it.
      this.dir(join(this.root, "tombstones"));
      writeFileSync(join(this.root, "tombstones", `${key}.json`), JSON.stringify(packed.packed) + "\n");
      this.packIndex?.delete(key);
      writeFileSync(join(dir, `${key}.${stamp}.reason.txt`), `${reason} (${packed.packed.file}@${packed.packed.offset})\n`);
      return;
    }
    await rename(this.entryPath(key), join(dir, `${key}.${stamp}.json`)).catch(() => undefined);
    this.loose?.delete(key);
    await writeFile(join(dir, `${key}.${stamp}.reason.txt`), reason + "\n").catch(() => undefined);
  }

  /**
   * Publish an artifact's data: renamed from tmp/ to its digest's name, readable at once by downstream stages.
   * Same digest, same bytes: an object that already exists is kept, if it is intact. It may not be: a damaged file
   * keeps its digest's name, and its entry was quarantined so this stage would recompute it. Keeping the damaged
   * copy would make the new entry point at bad bytes again; it is replaced (one atomic rename).
   */
  publish(tmpData: string, digest: string): void {
    const obj = this.objectPath(digest);
    this.dir(join(this.root, "objects", digest.slice(0, 2)));
    if (existsSync(obj) && intactObject(obj, digest, statSync(tmpData).size)) unlinkSync(tmpData);
    else renameSync(tmpData, obj);
  }

  /**
   * Commit an artifact's manifest, after its data and the manifest itself are durable (group commit). Only then
   * is the entry visible: an entry with a manifest is complete, and a crash before leaves nothing half-made.
   */
  async commit(manifest: Manifest, extraFiles: readonly string[] = []): Promise<void> {
    const tmpManifest = await this.tmpPath(".json");
    writeFileSync(tmpManifest, JSON.stringify(manifest, null, 1) + "\n");
    await this.durability.barrier([this.objectPath(manifest.output.digest), tmpManifest, ...(manifest.dropped ? [this.objectPath(manifest.dropped.digest)] : []), ...extraFiles]);
    this.dir(join(this.root, "entries", manifest.key.slice(0, 2)));
    renameSync(tmpManifest, this.entryPath(manifest.key));
    this.looseKeys().add(manifest.key);
  }

  // ---- packs: small artifacts, appended with their manifest as one frame ----

  private packIndex: Map<string, PackFrame> | undefined;
  private readonly packBuffers = new Map<string, Buffer>();
  private myPack: { fd: number; file: string; size: number } | undefined;
  private readonly ownPackData = new Map<number, Buffer>();

  private packs(): Map<string, PackFrame> {
    if (this.packIndex) return this.packIndex;
    const index = new Map<string, PackFrame>();
    const dir = join(this.root, "packs");
    let files: string[] = [];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith(".pack")).sort();
    } catch {
      // no packs yet
    }
    const tombs = new Map<string, string>();
    try {
      for (const t of readdirSync(join(this.root, "tombstones"))) tombs.set(t.replace(/\.json$/, ""), readFileSync(join(this.root, "tombstones", t), "utf8").trim());
    } catch {
      // none
    }
    for (const file of files) {
      const buf = readFileSync(join(dir, file));
      this.packBuffers.set(file, buf);
      for (const frame of readFrames(buf, file)) {
        if (tombs.get(frame.key) === JSON.stringify(frame.packed)) continue;
        index.set(frame.key, frame);
      }
    }
    this.packIndex = index;
    return index;
  }

  /** A frame's manifest, parsed on first use: opening a store with many small entries reads only their keys. */
  private frameManifest(f: PackFrame): Manifest | "unreadable" {
    if (f.manifest === undefined) {
      try {
        f.manifest = { ...(JSON.parse(f.header!.toString("utf8")) as Manifest), packed: f.packed };
      } catch {
        f.manifest = "unreadable";
      }
      f.header = undefined;
    }
    return f.manifest;
  }

  /** The bytes of a packed artifact, or undefined if its pack is gone or short. */
  packedData(m: Manifest): Buffer | undefined {
    if (!m.packed) return undefined;
    if (m.packed.file === this.myPack?.file) return this.ownPackData.get(m.packed.offset);
    let buf = this.packBuffers.get(m.packed.file);
    if (!buf) {
      try {
        buf = readFileSync(join(this.root, "packs", m.packed.file));
      } catch {
        return undefined;
      }
      this.packBuffers.set(m.packed.file, buf);
    }
    const end = m.packed.offset + m.output.bytes;
    return end <= buf.length ? buf.subarray(m.packed.offset, end) : undefined;
  }

  /**
   * Commit a small artifact: its manifest and data appended as one frame to this process's pack, made durable
   * with the others of the same group commit, then visible. A crash mid-append leaves a torn last frame, which
   * readers skip.
   */
  async commitPacked(manifest: Manifest, data: Buffer): Promise<Manifest> {
    if (!this.myPack) {
      this.dir(join(this.root, "packs"));
      const file = `${new Date().toISOString().replace(/[:.]/g, "-")}-${this.tmpPrefix}.pack`;
      this.myPack = { fd: openSync(join(this.root, "packs", file), "a"), file, size: 0 };
    }
    const p = this.myPack;
    const header = Buffer.from(JSON.stringify(manifest) + "\n", "utf8");
    const frame = Buffer.concat([Buffer.from(`${header.length} ${data.length}\n`, "ascii"), header, data, NEWLINE]);
    const dataOffset = p.size + frame.length - data.length - 1;
    writeSync(p.fd, frame);
    p.size += frame.length;
    await this.durability.barrier([join(this.root, "packs", p.file), ...(manifest.dropped ? [this.objectPath(manifest.dropped.digest)] : [])]);
    const placed: Manifest = { ...manifest, packed: { file: p.file, offset: dataOffset } };
    // Readers in this process get the data from memory; other processes read the pack.
    this.ownPackData.set(dataOffset, data);
    this.packs().set(manifest.key, { key: manifest.key, packed: placed.packed!, header: undefined, manifest: placed });
    return placed;
  }

  private loose: Set<string> | undefined;

  /** Keys of loose entries, listed once (two directory levels), then kept current by this process's commits. */
  private looseKeys(): Set<string> {
    if (this.loose) return this.loose;
    const keys = new Set<string>();
    const base = join(this.root, "entries");
    let dirs: string[] = [];
    try {
      dirs = readdirSync(base);
    } catch {
      // none yet
    }
    for (const d of dirs) {
      try {
        for (const f of readdirSync(join(base, d))) if (f.endsWith(".json")) keys.add(f.slice(0, -5));
      } catch {
        // not a folder
      }
    }
    this.loose = keys;
    return keys;
  }

  private refs = new Map<string, { keys: Map<string, string>; dirty: boolean }>();

  private refsOf(recipe: string) {
    let r = this.refs.get(recipe);
    if (!r) {
      let keys = new Map<string, string>();
      try {
        keys = new Map(Object.entries(JSON.parse(readFileSync(this.refPath(recipe), "utf8")) as Record<string, string>));
      } catch {
        // none yet
      }
      this.refs.set(recipe, (r = { keys, dirty: false }));
    }
    return r;
  }

  /** Remember `key` as the last artifact of a stage of a recipe (what `plan` explains a miss against). */
  setRef(recipe: string, stage: string, key: string): void {
    const r = this.refsOf(recipe);
    if (r.keys.get(stage) === key) return;
    r.keys.set(stage, key);
    r.dirty = true;
  }

  getRef(recipe: string, stage: string): string | undefined {
    return this.refsOf(recipe).keys.get(stage);
  }

  /**
   * The newest artifact of a stage with this id and kind made by any recipe in the store: what a miss is explained
   * against when the recipe itself has none (a copy of a recipe, a recipe moved or renamed).
   */
  latestOfStage(stage: string, kind: string): Manifest | undefined {
    let best: Manifest | undefined;
    for (const key of this.refIndex().get(stage) ?? []) {
      const m = this.manifestNow(key);
      if (typeof m === "object" && m.kind === kind && (!best || m.finished_at > best.finished_at)) best = m;
    }
    return best;
  }

  /**
   * Stage id -> its keys in the refs of every recipe (in the order of the refs folder's listing), read once and
   * again after this store writes refs: a run explains each miss through it, and reading every refs file for each
   * of ten thousand stages made runs slow.
   */
  private refsByStage: Map<string, string[]> | undefined;

  private refIndex(): Map<string, string[]> {
    if (this.refsByStage) return this.refsByStage;
    const index = new Map<string, string[]>();
    let names: string[] = [];
    try {
      names = readdirSync(join(this.root, "refs")).filter((f) => f.endsWith(".json"));
    } catch {
      // no refs yet
    }
    for (const f of names) {
      let keys: Record<string, string>;
      try {
        keys = JSON.parse(readFileSync(join(this.root, "refs", f), "utf8")) as Record<string, string>;
      } catch {
        continue; // refs are hints
      }
      for (const [stage, key] of Object.entries(keys)) if (typeof key === "string" && key) (index.get(stage) ?? index.set(stage, []).get(stage)!).push(key);
    }
    this.refsByStage = index;
    return index;
  }

  /** Write the refs that changed (atomically; they are hints, so no fsync). Called during and at the end of a run. */
  flushRefs(): void {
    for (const [recipe, r] of this.refs) {
      if (!r.dirty) continue;
      this.dir(join(this.root, "refs"));
      const tmp = join(this.root, "tmp", `refs-${process.pid}-${randomBytes(6).toString("hex")}`);
      writeFileSync(tmp, JSON.stringify(Object.fromEntries([...r.keys].sort(([a], [b]) => (a < b ? -1 : 1))), null, 1) + "\n");
      renameSync(tmp, this.refPath(recipe));
      r.dirty = false;
      this.refsByStage = undefined;
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
    for (const [key, frame] of [...this.packs()].sort(([a], [b]) => (a < b ? -1 : 1))) if (!existsSync(this.entryPath(key))) yield { key, manifest: this.frameManifest(frame) };
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

  /** Digests of the stored trees (folders under trees/). */
  async *trees(): AsyncGenerator<string> {
    const base = join(this.root, "trees");
    for (const d of (await readdir(base).catch(() => [] as string[])).sort()) for (const f of (await readdir(join(base, d)).catch(() => [] as string[])).sort()) yield f;
  }

  /** Keys of the stages' work folders (kept across attempts until their entry commits). */
  async workKeys(): Promise<string[]> {
    return (await readdir(join(this.root, "work")).catch(() => [] as string[])).sort();
  }

  async *objects(): AsyncGenerator<string> {
    const base = join(this.root, "objects");
    for (const d of (await readdir(base).catch(() => [] as string[])).sort()) for (const f of (await readdir(join(base, d)).catch(() => [] as string[])).sort()) yield f;
  }

  /** The ids of the runs whose event logs are kept (`runs/<id>.jsonl`), oldest first (ids begin with their start time). */
  runIds(): string[] {
    try {
      return readdirSync(join(this.root, "runs"))
        .filter((f) => f.endsWith(".jsonl"))
        .map((f) => f.slice(0, -".jsonl".length))
        .sort();
    } catch {
      return [];
    }
  }

  /** The text of a run's event log, or undefined when there is none. */
  runLogText(runId: string): string | undefined {
    try {
      return readFileSync(join(this.root, "runs", `${runId}.jsonl`), "utf8");
    } catch {
      return undefined;
    }
  }

  async runLog(runId: string): Promise<RunLog> {
    this.dir(join(this.root, "runs"));
    return RunLog.open(join(this.root, "runs", `${runId}.jsonl`));
  }

  /** Digest of a source file, remembered by (size, mtime, inode) so unchanged large files are not re-read. */
  async sourceDigest(path: string): Promise<string> {
    const st = statSync(path);
    const stampFile = join(this.root, "files", `${sha256(path).slice(0, 32)}.json`);
    const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    try {
      const known = JSON.parse(readFileSync(stampFile, "utf8")) as { path: string; stamp: string; digest: string };
      if (known.path === path && known.stamp === stamp) return known.digest;
    } catch {
      // not known yet
    }
    const { digest } = await fileDigest(path);
    this.dir(join(this.root, "files"));
    const tmp = await this.tmpPath(".stamp");
    writeFileSync(tmp, JSON.stringify({ path, stamp, digest }));
    renameSync(tmp, stampFile);
    return digest;
  }
}

const NEWLINE = Buffer.from("\n");

/** A frame of a pack, indexed by key; its manifest is parsed when first needed. */
interface PackFrame {
  readonly key: string;
  readonly packed: { readonly file: string; readonly offset: number };
  header: Buffer | undefined;
  manifest?: Manifest | "unreadable";
}

const KEY_FIELD = Buffer.from('"key":"');

/**
 * The frames of a pack: `<header bytes> <data bytes>\n<manifest JSON>\n<data>\n`, one after another. Reading stops
 * at the first frame that is torn or malformed (the tail of a crashed run). Only the key is read from each header.
 */
function* readFrames(buf: Buffer, file: string): Generator<PackFrame> {
  let pos = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(10, pos);
    if (nl < 0) return;
    const m = /^(\d+) (\d+)$/.exec(buf.toString("ascii", pos, nl));
    if (!m) return;
    const hLen = Number(m[1]);
    const dLen = Number(m[2]);
    const hStart = nl + 1;
    const dStart = hStart + hLen;
    const end = dStart + dLen + 1;
    if (end > buf.length || buf[end - 1] !== 10 || buf[dStart - 1] !== 10) return;
    const k = buf.indexOf(KEY_FIELD, hStart);
    if (k < 0 || k + KEY_FIELD.length + 65 > dStart) return;
    const key = buf.toString("ascii", k + KEY_FIELD.length, k + KEY_FIELD.length + 64);
    if (!/^[0-9a-f]{64}$/.test(key) || buf[k + KEY_FIELD.length + 64] !== 34) return;
    yield { key, packed: { file, offset: dStart }, header: buf.subarray(hStart, dStart) };
    pos = end;
  }
}


/** Does the file at `path` hold `size` bytes with this digest? Large files are not re-hashed: they are replaced. */
function intactObject(path: string, digest: string, size: number): boolean {
  try {
    const st = statSync(path);
    return st.size === size && size <= SMALL && sha256(readFileSync(path)) === digest;
  } catch {
    return false;
  }
}

function slug(recipe: string): string {
  return recipe.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "") || "recipe";
}

/** The per-run event log: one JSON object per line, buffered and appended every 100 ms and at the end. */
export class RunLog {
  private buf: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly fh: Awaited<ReturnType<typeof open>>,
  ) {}

  static async open(path: string): Promise<RunLog> {
    return new RunLog(path, await open(path, "a"));
  }

  event(type: string, data: Record<string, unknown> = {}): void {
    this.buf.push(JSON.stringify({ t: new Date().toISOString(), type, ...data }) + "\n");
    this.timer ??= setTimeout(() => this.flush(), 100);
  }

  private flush(): Promise<unknown> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buf.length === 0) return this.writing;
    const text = this.buf.join("");
    this.buf = [];
    this.writing = this.writing.then(() => this.fh.write(text)).catch(() => undefined);
    return this.writing;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.fh.close();
  }
}

/**
 * Group commit: the files of every commit that arrives while a flush is under way are flushed together in the
 * next one. A flush is one syncfs(2) of the store's file system, asked of a small long-lived shell that runs
 * `sync -f` (Node has no syncfs, and forking from a large Node process per flush is slow); thousands of small
 * artifacts then cost a handful of flushes, not one fsync each. Where that is not available, each file of the
 * batch is fdatasync'ed, in parallel.
 */
class Durability {
  private waiting: { files: string[]; done: () => void; fail: (e: Error) => void }[] = [];
  private running = false;
  private syncer: SyncFs | undefined | null;

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
    // Nothing to flush: let the process exit without waiting on the shell.
    this.syncer?.idle();
  }

  private async flush(files: string[]): Promise<void> {
    if (this.syncer === undefined) this.syncer = SyncFs.start(this.root);
    if (this.syncer && (await this.syncer.sync())) return;
    this.syncer = null;
    await Promise.all(files.map(syncFile));
  }
}

async function syncFile(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** A shell that runs `sync -f ROOT` (syncfs) each time it reads a line, and answers with a line. */
class SyncFs {
  private pending: ((ok: boolean) => void)[] = [];
  private dead = false;

  private constructor(private readonly child: ChildProcessByStdio<Writable, Readable, null>) {
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      for (const c of chunk) {
        if (c === "0") this.pending.shift()?.(true);
        else if (c === "1") this.pending.shift()?.(false);
      }
    });
    const die = () => {
      this.dead = true;
      for (const p of this.pending.splice(0)) p(false);
    };
    child.on("exit", die);
    child.on("error", die);
    child.stdin.on("error", die);
  }

  static start(root: string): SyncFs | null {
    try {
      const child = spawn("/bin/sh", ["-c", 'while read _; do if sync -f "$0" 2>/dev/null; then printf 0; else printf 1; fi; done', root], { stdio: ["pipe", "pipe", "ignore"] });
      return new SyncFs(child);
    } catch {
      return null;
    }
  }

  sync(): Promise<boolean> {
    if (this.dead) return Promise.resolve(false);
    this.child.ref();
    (this.child.stdout as unknown as { ref(): void }).ref();
    return new Promise((resolve) => {
      this.pending.push(resolve);
      this.child.stdin.write("\n");
    });
  }

  /** Don't keep the process alive for the shell; it ends with its parent (stdin closes). */
  idle(): void {
    if (this.pending.length > 0) return;
    this.child.unref();
    (this.child.stdout as unknown as { unref(): void }).unref();
    (this.child.stdin as unknown as { unref?(): void }).unref?.();
  }
}
