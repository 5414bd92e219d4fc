import type { StageImpl } from "../../runtime/impl.js";
import type { RecordValue } from "../../runtime/records.js";
import { compilePredicate } from "./predicate.js";
import { asyncImpl, checkAbort, dataInput, mapRecords, unitHash } from "./support.js";

/**
 * The `n` records with the smallest pseudo-random keys for the seed, in key order: the first n of a seeded
 * shuffle. Memory holds n records, not the dataset.
 */
async function seededTake(records: AsyncIterable<RecordValue>, n: number, seed: number, onEach: (i: number) => void): Promise<RecordValue[]> {
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

export const transformImpls: Record<string, StageImpl> = {
  take: asyncImpl(async (ctx, out) => {
    const n = ctx.params["n"] as number;
    const input = dataInput(ctx);
    let i = 0;
    for await (const r of input.read()) {
      if (i >= n) break;
      await out.write(r);
      if (++i % 4096 === 0) checkAbort(ctx);
    }
    ctx.count("kept", i);
  }),

  sample: asyncImpl(async (ctx, out) => {
    const input = dataInput(ctx);
    const seed = ctx.params["seed"] as number;
    let n = ctx.params["n"] as number | undefined;
    if (n === undefined) {
      let total = input.records;
      if (total === null) {
        total = 0;
        for await (const _ of input.read()) total++;
      }
      n = Math.floor((ctx.params["fraction"] as number) * total);
    }
    const kept = await seededTake(input.read(), n, seed, (i) => i % 4096 === 0 && (checkAbort(ctx), ctx.progress(i, input.records ?? undefined)));
    for (const r of kept) await out.write(r);
    ctx.count("kept", kept.length);
  }),

  shuffle: asyncImpl(async (ctx, out) => {
    const input = dataInput(ctx);
    const all = await seededTake(input.read(), Number.MAX_SAFE_INTEGER, ctx.params["seed"] as number, () => undefined);
    for (const r of all) await out.write(r);
  }),

  where: asyncImpl(async (ctx, out) => {
    const pred = compilePredicate(String(ctx.params["expr"]));
    let kept = 0;
    let dropped = 0;
    await mapRecords(ctx, out, (r) => (pred(r) ? (kept++, r) : (dropped++, undefined)));
    ctx.count("kept", kept);
    ctx.count("dropped: predicate false", dropped);
  }),

  concat: asyncImpl(async (ctx, out) => {
    const roles = [...ctx.inputs.keys()].sort((a, b) => roleIndex(a) - roleIndex(b));
    for (const role of roles) for await (const r of ctx.inputs.get(role)!.read()) await out.write(r);
  }),
};

function roleIndex(role: string): number {
  const m = /\[(\d+)\]$/.exec(role);
  return m ? Number(m[1]) : role === "data" ? -1 : 0;
}
