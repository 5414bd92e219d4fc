import { closeSync, fdatasync, fdatasyncSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";

/**
 * The request cache: every model answer, keyed by the canonical content of its request, kept in the store under
 * `requests/`. Each process appends to a log of its own, one frame per answer, written in the event-loop turn the
 * answer arrives in: a process killed at any moment leaves every answer it had handled readable, and at worst a
 * torn last frame, which readers skip. Logs are fsynced about once a second, on the thread pool, and at close (for
 * power loss; a killed process loses nothing the kernel already has). Nothing is ever rewritten, so two processes
 * sharing a store never collide.
 *
 * A frame is `<bytes>\n<JSON {"k": key, "v": answer}>\n`.
 */
export class RequestCache {
  /** An answer by key: parsed, or still a frame of a log read at open (parsed when first asked for). */
  private readonly index = new Map<string, unknown>();
  private fd: number | undefined;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly file: string;

  private constructor(private readonly dir: string) {
    this.file = join(dir, `${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}-${Math.random().toString(36).slice(2, 8)}.log`);
  }

  /** Open the cache of a store (`<store>/requests`), indexing the answers every earlier run received. */
  static open(storeRoot: string): RequestCache {
    const dir = join(storeRoot, "requests");
    const c = new RequestCache(dir);
    let files: string[] = [];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith(".log")).sort();
    } catch {
      // no requests yet
    }
    for (const f of files) c.load(readFileSync(join(dir, f)));
    return c;
  }

  get size(): number {
    return this.index.size;
  }

  private load(buf: Buffer): void {
    let pos = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(10, pos);
      if (nl < 0) return;
      const len = Number(buf.toString("ascii", pos, nl));
      const start = nl + 1;
      const end = start + len;
      if (!Number.isInteger(len) || len <= 0 || end + 1 > buf.length || buf[end] !== 10) return; // a torn tail
      // The key is the first member: read it without parsing the answer, which is parsed when asked for.
      const k = buf.toString("utf8", start, Math.min(end, start + 80));
      const m = /^\{"k":"([0-9a-f]{64})"/.exec(k);
      if (!m) return;
      this.index.set(m[1]!, new Frame(buf, start, end));
      pos = end + 1;
    }
  }

  /** The answer cached for a request key, or undefined. */
  get<T>(key: string): T | undefined {
    const e = this.index.get(key);
    if (!(e instanceof Frame)) return e as T | undefined;
    try {
      const value = (JSON.parse(e.buf.toString("utf8", e.start, e.end)) as { v: unknown }).v;
      this.index.set(key, value);
      return value as T;
    } catch {
      // A frame whose length checks out but whose JSON does not: treated as absent, so the request is sent again.
      this.index.delete(key);
      return undefined;
    }
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  /**
   * Keep an answer: appended to this process's log before the event loop turns (the answers that arrived in the same
   * turn share one write), synced within a second.
   */
  put(key: string, answer: unknown): void {
    const body = `{"k":"${key}","v":${JSON.stringify(answer)}}`;
    this.pending.push(`${Buffer.byteLength(body, "utf8")}\n${body}\n`);
    this.index.set(key, answer);
    if (this.pending.length === 1) setImmediate(this.writePending);
  }

  private pending: string[] = [];

  private readonly writePending = (): void => {
    if (this.pending.length === 0) return;
    if (this.fd === undefined) {
      mkdirSync(this.dir, { recursive: true });
      this.fd = openSync(this.file, "a");
    }
    const data = Buffer.from(this.pending.join(""), "utf8");
    this.pending = [];
    writeSync(this.fd, data);
    this.dirty = true;
    this.timer ??= setInterval(() => this.sync(), 1000).unref();
  };

  /** An fdatasync on the thread pool, so the event loop (and the requests it drives) never waits for the disk. */
  private syncing = false;

  private sync(): void {
    if (!this.dirty || this.fd === undefined || this.syncing) return;
    this.dirty = false;
    this.syncing = true;
    fdatasync(this.fd, (e) => {
      this.syncing = false;
      if (e) this.dirty = true; // a failed sync is retried on the next tick, and at close
    });
  }

  close(): void {
    this.writePending();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.fd !== undefined) {
      // Synced here (whatever a sync under way on the thread pool does): everything written is on disk at close.
      if (this.dirty || this.syncing) {
        try {
          fdatasyncSync(this.fd);
        } catch {
          // the data is written; only its durability against power loss is in doubt
        }
      }
      closeSync(this.fd);
    }
    this.fd = undefined;
  }
}

/** A cached answer still in its log's bytes. */
class Frame {
  constructor(
    readonly buf: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}
}
