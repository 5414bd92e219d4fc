import { Effect } from "effect";

/**
 * A counting semaphore with a first-in-first-out queue, for the scheduler's resource pools (CPU slots, GPUs, named
 * pools). Acquiring and releasing are O(1) whatever the number of waiters: with ten thousand stages queued for two
 * CPU slots, that is what keeps scheduling overhead flat.
 */
export class Slots {
  private free: number;
  private readonly queue: ({ need: number; grant: () => void } | undefined)[] = [];
  private head = 0;

  constructor(readonly capacity: number) {
    this.free = capacity;
  }

  private acquire(need: number): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (this.head === this.queue.length && this.free >= need) {
        this.free -= need;
        resume(Effect.void);
        return;
      }
      const waiter = { need, grant: () => resume(Effect.void) };
      const at = this.queue.push(waiter) - 1;
      // Interrupted while waiting: leave the queue.
      return Effect.sync(() => {
        if (this.queue[at] === waiter) this.queue[at] = undefined;
      });
    });
  }

  private release(n: number): void {
    this.free += n;
    while (this.head < this.queue.length) {
      const w = this.queue[this.head];
      if (w === undefined) {
        this.head++;
        continue;
      }
      if (w.need > this.free) break;
      this.free -= w.need;
      this.queue[this.head++] = undefined;
      w.grant();
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Run `effect` holding `n` permits (at most the capacity), released however it ends. */
  withPermits(n: number): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R> {
    const need = Math.min(n, this.capacity);
    return (effect) =>
      Effect.acquireUseRelease(
        this.acquire(need),
        () => effect,
        () => Effect.sync(() => this.release(need)),
      );
  }
}
