import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

/** Who holds a lock: written in the lock folder, its heartbeat refreshed while it is held. */
export interface LockOwner {
  readonly host: string;
  readonly pid: number;
  /** When the owner last said it was alive (ms since the epoch). */
  readonly heartbeat: number;
}

export interface HostLockOptions {
  /** How often the holder refreshes its heartbeat (default 10 s). */
  readonly heartbeatMs?: number;
  /** A lock whose heartbeat is older than this, held from another host, is stale (default 60 s). */
  readonly staleMs?: number;
  /** Is a process of this host alive (default: signal 0). */
  readonly alive?: (pid: number) => boolean;
}

/**
 * A lock over a folder of the store that holds across hosts on NFS-like file systems, where `flock` and `fcntl`
 * locks are not to be trusted: the lock is a folder created with `mkdir` (atomic on NFS: exactly one creator wins),
 * holding `owner.json` (host, pid, heartbeat). The holder refreshes the heartbeat (a write to a temporary file and a
 * rename, atomic too). Another itp finds it held; it is stale when its owner is on this host and its process is
 * gone, or on another host and its heartbeat is older than `staleMs` (clocks of a cluster's hosts agree to far less
 * than that). A stale lock is broken by renaming it away (one breaker wins the rename), then taken as usual.
 */
export class HostLock {
  private timer: NodeJS.Timeout | undefined;
  private readonly heartbeatMs: number;
  private readonly staleMs: number;
  private readonly alive: (pid: number) => boolean;

  constructor(
    readonly dir: string,
    o: HostLockOptions = {},
  ) {
    this.heartbeatMs = o.heartbeatMs ?? 10_000;
    this.staleMs = o.staleMs ?? 60_000;
    this.alive = o.alive ?? pidAlive;
  }

  /** Take the lock; undefined when taken, else its live owner (taken by nobody then). */
  acquire(): LockOwner | undefined {
    for (let tries = 0; tries < 5; tries++) {
      try {
        mkdirSync(this.dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        const owner = this.owner();
        if (owner && owner.host === hostname() && owner.pid === process.pid) {
          // Ours already (a retry of the same stage in this itp).
          if (!this.timer) this.start();
          return undefined;
        }
        if (owner && !this.stale(owner)) return owner;
        // No owner file yet: a holder between its mkdir and its first write, unless that is old.
        if (!owner && !this.orphaned()) return { host: "?", pid: 0, heartbeat: Date.now() };
        const away = `${this.dir}.stale-${randomBytes(4).toString("hex")}`;
        try {
          renameSync(this.dir, away);
          rmSync(away, { recursive: true, force: true });
        } catch {
          // another itp broke it first
        }
        continue;
      }
      this.start();
      return undefined;
    }
    return this.owner() ?? { host: "?", pid: 0, heartbeat: Date.now() };
  }

  private start(): void {
    this.beat();
    this.timer = setInterval(() => this.beat(), this.heartbeatMs);
    this.timer.unref();
  }

  release(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const mine = this.owner();
    if (mine && mine.host === hostname() && mine.pid === process.pid) rmSync(this.dir, { recursive: true, force: true });
  }

  owner(): LockOwner | undefined {
    try {
      const o = JSON.parse(readFileSync(join(this.dir, "owner.json"), "utf8")) as LockOwner;
      return typeof o.host === "string" && typeof o.pid === "number" && typeof o.heartbeat === "number" ? o : undefined;
    } catch {
      return undefined;
    }
  }

  stale(o: LockOwner): boolean {
    if (o.host === hostname()) return o.pid !== process.pid && !this.alive(o.pid);
    return Date.now() - o.heartbeat > this.staleMs;
  }

  /** A lock folder without an owner file for longer than a holder takes to write one. */
  private orphaned(): boolean {
    try {
      return Date.now() - statSync(this.dir).mtimeMs > this.staleMs;
    } catch {
      return true;
    }
  }

  private beat(): void {
    const tmp = join(this.dir, `owner.json.${process.pid}.tmp`);
    try {
      writeFileSync(tmp, JSON.stringify({ host: hostname(), pid: process.pid, heartbeat: Date.now() } satisfies LockOwner) + "\n");
      renameSync(tmp, join(this.dir, "owner.json"));
    } catch {
      // the folder was removed (released, or broken by another host after a long pause): nothing to refresh
    }
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
