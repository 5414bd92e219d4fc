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
      const w: Waiter = { resolve, settled: false };
      this.queue.push(w);
      if (!signal) return;
      const onAbort = () => {
        if (w.settled) return;
        w.settled = true; // release() skips it
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      w.resolve = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
    });
  }

  release(): void {
    while (this.head < this.queue.length) {
      const w = this.queue[this.head++]!;
      if (w.settled) continue;
      w.settled = true;
      this.compact();
      w.resolve();
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

interface Waiter {
  resolve: () => void;
  settled: boolean;
}
