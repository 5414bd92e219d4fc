import { Effect } from "effect";
import type { OutputSink, StageContext, StageImpl } from "../../runtime/impl.js";
import { TransientError, UserError } from "../../runtime/impl.js";
import { RecordError, type RecordValue } from "../../runtime/records.js";

/**
 * Most implementations are plain async functions over record streams; this makes the Effect the scheduler runs.
 * Interruption aborts `ctx.signal`, which loops check through `checkAbort`.
 */
export function asyncImpl(run: (ctx: StageContext, out: OutputSink) => Promise<void>, extra: Omit<StageImpl, "run"> = {}): StageImpl {
  return {
    ...extra,
    run: (ctx, out) =>
      Effect.tryPromise({
        try: () => run(ctx, out),
        catch: (e) => (e instanceof UserError || e instanceof RecordError || e instanceof TransientError || e instanceof Error ? e : new Error(String(e))),
      }),
  };
}

/** The one dataset input of a single-input stage. */
export function dataInput(ctx: StageContext, role = "data") {
  const a = ctx.inputs.get(role);
  if (!a) throw new Error(`stage ${ctx.stage.id} has no input ${role}`);
  return a;
}

export function checkAbort(ctx: StageContext): void {
  if (ctx.signal.aborted) throw new Error("interrupted");
}

/** Copy records through a per-record function (undefined drops the record), reporting progress. */
export async function mapRecords(ctx: StageContext, out: OutputSink, f: (r: RecordValue, i: number) => RecordValue | undefined | Promise<RecordValue | undefined>, role = "data"): Promise<void> {
  const input = dataInput(ctx, role);
  let i = 0;
  for await (const r of input.read()) {
    const v = await f(r, i);
    if (v !== undefined) await out.write(v);
    if (++i % 4096 === 0) {
      checkAbort(ctx);
      ctx.progress(i, input.records ?? undefined);
    }
  }
  ctx.progress(i, input.records ?? undefined);
}

/**
 * A deterministic pseudo-random number in [0, 1) for (seed, index): a stateless hash (splitmix32-style), so a
 * streamed sample is the same whatever the chunking.
 */
export function unitHash(seed: number, index: number): number {
  let h = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 0x632be5ab, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h / 4294967296;
}
