import type { Hash } from "node:crypto";
import { link, mkdir, open, readFile, rename, rm, stat, unlink, writeFile, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { UserError } from "../core/errors.js";
import { digestOf, expectedOf, feedFile, hasherFor } from "./checksum.js";
import { header, hubGet, HubTransientError, repoLabel, withRetries, type HubCall, type RetryPolicy } from "./http.js";
import { encodePath, type TreeFile } from "./tree.js";

/**
 * Downloading one file of a revision into the cache: `GET /datasets/{repo}/resolve/{revision}/{path}` (the hub
 * redirects LFS files to its storage host), appended to `<dest>.incomplete`. A broken connection keeps what
 * arrived, and the next attempt (a retry here, or a later run) asks for the rest with `Range: bytes=<have>-`.
 * The finished file must match the listing's checksum before it is renamed to `dest`; a mismatch removes it.
 */

export const resolveUrl = (call: HubCall, path: string) =>
  `${call.settings.endpoint}/datasets/${encodePath(call.repo)}/resolve/${encodeURIComponent(call.revision)}/${encodePath(path)}`;

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

/** Whether the file at `path` is the listed file: size and checksum. */
export async function verify(f: TreeFile, path: string): Promise<"ok" | "missing" | "differs"> {
  const size = await sizeOf(path);
  if (size === undefined) return "missing";
  if (size !== f.size) return "differs";
  return (await digestOf(f, path)).hex === expectedOf(f).hex ? "ok" : "differs";
}

const inFlight = new Map<string, Promise<void>>();

/**
 * Make `dest` hold the listed file: kept when it verifies, downloaded (resuming a partial one) otherwise. Two
 * stages of one run asking for the same file share one download; two processes take turns through a lock file.
 */
export function ensureDownloaded(call: HubCall, f: TreeFile, dest: string, policy: RetryPolicy): Promise<void> {
  let p = inFlight.get(dest);
  if (!p) {
    p = withLock(dest, call.signal, async () => {
      const state = await verify(f, dest);
      if (state === "ok") return;
      if (state === "differs") await rm(dest, { force: true });
      await withRetries(policy, () => attempt(call, f, dest), call.signal);
    }).finally(() => inFlight.delete(dest));
    inFlight.set(dest, p);
  }
  return p;
}

async function attempt(call: HubCall, f: TreeFile, dest: string): Promise<void> {
  const part = `${dest}.incomplete`;
  await mkdir(dirname(dest), { recursive: true });
  let have = (await sizeOf(part)) ?? 0;
  if (have > f.size) {
    await rm(part, { force: true });
    have = 0;
  }
  const sink = new PartFile(part, hasherFor(f));
  if (have > 0) await feedFile(sink.hash, part);
  if (have < f.size) {
    let refused: string | undefined;
    try {
      await hubGet(call, resolveUrl(call, f.path), f.path, have > 0 ? { range: `bytes=${have}-` } : {}, (status, headers) => {
        const range = header(headers, "content-range");
        if (status === 416 || (status === 206 && !range?.startsWith(`bytes ${have}-`))) {
          refused = `HTTP ${status}${range ? `, ${range}` : ""}`;
          return () => undefined;
        }
        // A 200 answer to a range request is the whole file: it replaces the partial one.
        if (have > 0 && status !== 206) sink.restart(hasherFor(f));
        return (chunk) => sink.push(chunk);
      });
    } finally {
      // Whatever arrived is written, even when the connection broke: the next attempt resumes after it.
      await sink.close();
    }
    if (refused) {
      await rm(part, { force: true });
      throw new HubTransientError(`${repoLabel(call)}: the server refused to resume ${f.path} at byte ${have} (${refused}); starting over`);
    }
  }
  const got = (await sizeOf(part)) ?? 0;
  if (got < f.size) throw new HubTransientError(`${repoLabel(call)}: the download of ${f.path} stopped at ${got} of ${f.size} bytes`);
  const want = expectedOf(f);
  // The hash has seen the partial file's bytes and then the answer's, which are now the file's.
  const hex = got === f.size ? sink.hash.digest("hex") : "";
  if (got !== f.size || hex !== want.hex) {
    await rm(part, { force: true });
    const wanted = `${want.kind} ${want.hex}${got !== f.size ? ` and ${f.size} bytes` : ""}`;
    throw new UserError(
      `${repoLabel(call)}: checksum mismatch for ${f.path}: expected ${wanted}, got ${got !== f.size ? `${got} bytes` : `${want.kind} ${hex}`}`,
      "the download was corrupted or the server sent other bytes than its listing names; the partial file was removed, so running again downloads it afresh",
    );
  }
  const fh = await open(part, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(part, dest);
}

/**
 * The partial file being appended to: chunks are hashed and kept as they arrive, and written in blocks of about
 * 1 MiB, one write at a time.
 */
class PartFile {
  private block: Buffer[] = [];
  private size = 0;
  private truncate = false;
  private fh: FileHandle | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    public hash: Hash,
  ) {}

  /** Start the file over (the server sent the whole file). */
  restart(hash: Hash): void {
    this.hash = hash;
    this.truncate = true;
  }

  push(chunk: Buffer): Promise<void> | undefined {
    this.hash.update(chunk);
    this.block.push(chunk);
    this.size += chunk.length;
    return this.size >= 1 << 20 ? this.flush() : undefined;
  }

  private flush(): Promise<void> {
    const data = Buffer.concat(this.block, this.size);
    this.block = [];
    this.size = 0;
    this.writing = this.writing.then(async () => {
      this.fh ??= await open(this.path, this.truncate ? "w" : "a");
      if (data.length > 0) await this.fh.write(data);
    });
    return this.writing;
  }

  async close(): Promise<void> {
    await this.flush().finally(() => this.fh?.close());
  }
}

/**
 * Run `fn` holding `<path>.lock`, a file naming the holder's pid, created by an atomic link so a half-written lock
 * is never seen. A lock whose process is gone is stale and taken over. (Two processes taking over the same stale
 * lock at once could both proceed; the checksum still stops a file they garbled from entering the cache.)
 */
async function withLock<T>(path: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  await mkdir(dirname(path), { recursive: true });
  const mine = `${lock}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  await writeFile(mine, String(process.pid));
  try {
    for (;;) {
      try {
        await link(mine, lock);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      const pid = Number((await readFile(lock, "utf8").catch(() => "")).trim());
      if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !alive(pid)) {
        await rm(lock, { force: true });
        continue;
      }
      if (signal?.aborted) throw new Error("interrupted");
      await sleep(200);
    }
  } finally {
    await unlink(mine).catch(() => undefined);
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
