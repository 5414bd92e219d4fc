import { Effect } from "effect";
import type { OutputSink, StageContext, StageImpl } from "../../core/stage.js";
import type { RecordValue } from "../../core/records.js";

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
        catch: (e) => (e instanceof Error ? e : new Error(String(e))),
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

/**
 * Copy records through a per-record function (undefined drops the record), reporting progress. A record returned
 * as it came (the same object, unchanged: `f` must not modify its argument) is written as the bytes it was read
 * from; `line` is those bytes, for `ctx.drop`.
 */
export async function mapRecords(
  ctx: StageContext,
  out: OutputSink,
  f: (r: RecordValue, i: number, line: Buffer) => RecordValue | undefined | Promise<RecordValue | undefined>,
  role = "data",
): Promise<void> {
  const input = dataInput(ctx, role);
  const lines = input.read();
  let i = 0;
  for await (const r of lines) {
    const v = await f(r, i, lines.line);
    if (v === r) await out.writeLine(lines.line);
    else if (v !== undefined) await out.write(v);
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

/**
 * The `n` records with the smallest pseudo-random keys for the seed, in key order: the first n of a seeded
 * shuffle. Memory holds n records, not the dataset.
 */
export async function seededTake(records: AsyncIterable<RecordValue>, n: number, seed: number, onEach: (i: number) => void): Promise<RecordValue[]> {
  // A max-heap on key of size n.
  const heap: { k: number; i: number; r: RecordValue }[] = [];
  const less = (a: { k: number; i: number }, b: { k: number; i: number }) => a.k < b.k || (a.k === b.k && a.i < b.i);
  const up = (j: number) => {
    while (j > 0) {
      const p = (j - 1) >> 1;
      if (!less(heap[p]!, heap[j]!)) break;
      [heap[p], heap[j]] = [heap[j]!, heap[p]!];
      j = p;
    }
  };
  const down = (j: number) => {
    for (;;) {
      const l = 2 * j + 1;
      const r = l + 1;
      let m = j;
      if (l < heap.length && less(heap[m]!, heap[l]!)) m = l;
      if (r < heap.length && less(heap[m]!, heap[r]!)) m = r;
      if (m === j) return;
      [heap[m], heap[j]] = [heap[j]!, heap[m]!];
      j = m;
    }
  };
  let i = 0;
  for await (const r of records) {
    const e = { k: unitHash(seed, i), i, r };
    if (heap.length < n) {
      heap.push(e);
      up(heap.length - 1);
    } else if (n > 0 && less(e, heap[0]!)) {
      heap[0] = e;
      down(0);
    }
    onEach(++i);
  }
  return heap.sort((a, b) => (less(a, b) ? -1 : 1)).map((e) => e.r);
}

/** Inputs of a list-of-datasets parameter (`against`), in order: roles `param:against[0]`, `param:against[1]`, ... */
export function listInputs(ctx: StageContext, name: string) {
  const prefix = `param:${name}[`;
  return [...ctx.inputs]
    .filter(([role]) => role.startsWith(prefix))
    .sort(([a], [b]) => Number(a.slice(prefix.length, -1)) - Number(b.slice(prefix.length, -1)))
    .map(([, a]) => a);
}

/** Why a record is dropped: the counted reason, and per-record detail (the word that matched) kept with it. */
export type Verdict = string | { readonly reason: string; readonly detail: string } | undefined;
