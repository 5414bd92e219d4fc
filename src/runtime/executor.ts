import { Effect, Exit, Fiber } from "effect";

/** One attempt of a stage, as an executor runs it. */
export interface Job<A> {
  readonly stage: string;
  readonly run: (signal: AbortSignal) => Effect.Effect<A, Error>;
}

export interface JobHandle {
  readonly id: string;
  readonly stage: string;
}

export type JobStatus<A> = { readonly state: "running" } | { readonly state: "done"; readonly value: A } | { readonly state: "failed"; readonly error: Error };

/**
 * Where stage attempts run. The scheduler only submits, polls and cancels, so another place to run things (Slurm,
 * Kubernetes) is another implementation of this interface, chosen by name, with no change to the scheduler.
 */
export interface Executor {
  readonly name: string;
  submit<A>(job: Job<A>): Effect.Effect<JobHandle, Error>;
  /** The job's state; may wait a while for a change rather than return "running" at once. */
  poll<A>(handle: JobHandle): Effect.Effect<JobStatus<A>>;
  cancel(handle: JobHandle): Effect.Effect<void>;
}

/** Submit a job and wait for it; interrupting the waiter cancels the job. */
export function runJob<A>(ex: Executor, job: Job<A>): Effect.Effect<A, Error> {
  return Effect.acquireUseRelease(
    ex.submit(job),
    (h) =>
      Effect.gen(function* () {
        for (;;) {
          const s = yield* ex.poll<A>(h);
          if (s.state === "done") return s.value;
          if (s.state === "failed") return yield* Effect.fail(s.error);
        }
      }),
    (h, exit) => (Exit.isFailure(exit) && Exit.hasInterrupts(exit) ? ex.cancel(h) : Effect.void),
  );
}

/** Runs jobs in this process, as fibers: data stages, and anything that needs no other machine. */
export class LocalExecutor implements Executor {
  readonly name = "local";
  private next = 0;
  private readonly jobs = new Map<string, { fiber: Fiber.Fiber<unknown, Error>; abort: AbortController }>();

  submit<A>(job: Job<A>): Effect.Effect<JobHandle, Error> {
    const self = this;
    return Effect.gen(function* () {
      const abort = new AbortController();
      const fiber = yield* Effect.forkDetach(job.run(abort.signal).pipe(Effect.onInterrupt(() => Effect.sync(() => abort.abort()))));
      const id = `local-${++self.next}`;
      self.jobs.set(id, { fiber: fiber as Fiber.Fiber<unknown, Error>, abort });
      return { id, stage: job.stage };
    });
  }

  poll<A>(handle: JobHandle): Effect.Effect<JobStatus<A>> {
    const self = this;
    return Effect.gen(function* () {
      const j = self.jobs.get(handle.id);
      if (!j) return { state: "failed", error: new Error(`unknown job ${handle.id}`) } as JobStatus<A>;
      // In process, waiting for the fiber is the poll: it returns as soon as the job ends.
      const exit = yield* Fiber.await(j.fiber);
      self.jobs.delete(handle.id);
      if (Exit.isSuccess(exit)) return { state: "done", value: exit.value as A };
      const reason = exit.cause.reasons.find((r) => r._tag === "Fail" || r._tag === "Die") as { error?: unknown; defect?: unknown } | undefined;
      const err = reason?.error ?? reason?.defect ?? new Error("interrupted");
      return { state: "failed", error: err instanceof Error ? err : new Error(String(err)) };
    });
  }

  cancel(handle: JobHandle): Effect.Effect<void> {
    const self = this;
    return Effect.gen(function* () {
      const j = self.jobs.get(handle.id);
      if (!j) return;
      j.abort.abort();
      yield* Fiber.interrupt(j.fiber);
      self.jobs.delete(handle.id);
    });
  }
}
