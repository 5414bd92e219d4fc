/**
 * The concurrency limit of one model endpoint: at most `permits` requests in flight. Waiters are served first come,
 * first served, and a released permit goes straight to the next waiter, so a newcomer cannot overtake the queue.
 */
export class Semaphore {
  private free: number;
  private readonly queue: Waiter[] = [];
  private head = 0;

  constructor(readonly permits: number) {
    this.free = permits;
  }

  /** Take a permit if one is free now (the fast path: no promise). */
  tryAcquire(): boolean {
    if (this.free > 0 && this.head === this.queue.length) {
      this.free--;
      return true;
    }
    return false;
  }

  /** Wait for a permit; rejects with the signal's reason when it aborts first. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const w = new Waiter(resolve, reject, signal);
      this.queue.push(w);
      if (signal) watchAbort(signal, w);
    });
  }

  release(): void {
    while (this.head < this.queue.length) {
      const w = this.queue[this.head++]!;
      if (w.settled) continue;
      this.compact();
      w.grant();
      return;
    }
    this.compact();
    this.free++;
  }

  /** Permits in use. */
  get inUse(): number {
    return this.permits - this.free;
  }

  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }
}

class Waiter implements AbortWatcher {
  settled = false;

  constructor(
    private readonly resolve: () => void,
    private readonly reject: (reason: unknown) => void,
    private readonly signal: AbortSignal | undefined,
  ) {}

  grant(): void {
    this.settled = true;
    if (this.signal) unwatchAbort(this.signal, this);
    this.resolve();
  }

  onAbort(reason: unknown): void {
    if (this.settled) return;
    this.settled = true; // release() skips it
    this.reject(reason);
  }
}

/** Told when a watched signal aborts. */
export interface AbortWatcher {
  onAbort(reason: unknown): void;
}

/**
 * The calls waiting on each signal. A signal shared by every call of a stage gets one listener for all of them
 * instead of one per call: adding an EventTarget listener walks the listeners already there (to skip duplicates),
 * so thousands of calls each adding and removing their own made a quadratic cost on the hot path.
 */
const watchers = new WeakMap<AbortSignal, Set<AbortWatcher>>();

/** Have `w.onAbort(reason)` called when `signal` aborts (the signal must not have aborted yet). */
export function watchAbort(signal: AbortSignal, w: AbortWatcher): void {
  let set = watchers.get(signal);
  if (!set) {
    const all = (set = new Set());
    watchers.set(signal, all);
    signal.addEventListener(
      "abort",
      () => {
        const now = [...all];
        all.clear();
        for (const x of now) x.onAbort(signal.reason);
      },
      { once: true },
    );
  }
  set.add(w);
}

/** Stop watching (after the call settled). */
export function unwatchAbort(signal: AbortSignal, w: AbortWatcher): void {
  watchers.get(signal)?.delete(w);
}
