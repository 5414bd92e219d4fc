import { Effect, Exit } from "effect";

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

/**
 * Runs jobs in this process. Submitting only records the job; polling runs it in the polling fiber (no extra fiber
 * per job, which matters with thousands of small stages); cancelling aborts its signal, and interrupting the
 * poller interrupts the job.
 */
export class LocalExecutor implements Executor {
  readonly name = "local";
  private next = 0;
  private readonly jobs = new Map<string, { job: Job<unknown>; abort: AbortController }>();

  submit<A>(job: Job<A>): Effect.Effect<JobHandle, Error> {
    return Effect.sync(() => {
      const id = `local-${++this.next}`;
      this.jobs.set(id, { job: job as Job<unknown>, abort: new AbortController() });
      return { id, stage: job.stage };
    });
  }

  poll<A>(handle: JobHandle): Effect.Effect<JobStatus<A>> {
    return Effect.suspend(() => {
      const j = this.jobs.get(handle.id);
      if (!j) return Effect.succeed({ state: "failed", error: new Error(`unknown job ${handle.id}`) } as JobStatus<A>);
      return j.job.run(j.abort.signal).pipe(
        Effect.onInterrupt(() => Effect.sync(() => j.abort.abort())),
        Effect.map((value): JobStatus<A> => ({ state: "done", value: value as A })),
        Effect.catch((error: Error) => Effect.succeed<JobStatus<A>>({ state: "failed", error })),
        Effect.ensuring(Effect.sync(() => this.jobs.delete(handle.id))),
      );
    });
  }

  cancel(handle: JobHandle): Effect.Effect<void> {
    return Effect.sync(() => {
      this.jobs.get(handle.id)?.abort.abort();
      this.jobs.delete(handle.id);
    });
  }
}
