import type { InputArtifact, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import { mixMode, type MixMode } from "./kinds.js";
import { asyncImpl, checkAbort, seededTake, unitHash } from "../support/records.js";

/**
 * The `mix` stage. Each component's rule says how many of its records enter (see src/stages/mix/kinds.ts):
 * - count / fraction: `take(n)` and `fraction(f)` (n = floor(f x size)) are the first n of the component shuffled
 *   with the seed (the same records `sample(n, seed)` keeps), all of them when it has fewer; `all` is every
 *   record once and `repeat(k)` every record k times, in their order.
 * - weight / rate: `total` records are shared out in proportion to the weights, or to seqio's rates
 *   min(size x scale, maximum) ^ (1 / temperature), rounded by the largest-remainder method so the counts sum to
 *   `total` exactly. A component that must give more than it has is cycled through a seeded permutation.
 * Then, with `shuffle` (the default), the concatenation is shuffled with a seed derived from the mixture's seed;
 * otherwise the components follow one another in the order written.
 */

export interface MixRule {
  readonly fn: string;
  readonly n?: number;
  readonly f?: number;
  readonly times?: number;
  readonly w?: number;
  readonly maximum?: number;
  readonly scale?: number;
  readonly temperature?: number;
}

/** seqio's `mixing_rate_num_examples`: min(size x scale, maximum) ^ (1 / temperature), clipped before the temperature. */
export function mixRate(size: number, rule: MixRule, mix: { cap?: number | undefined; temperature?: number | undefined } = {}): number {
  const maximum = rule.maximum ?? mix.cap ?? Number.POSITIVE_INFINITY;
  const scale = rule.scale ?? 1;
  const temperature = rule.temperature ?? mix.temperature ?? 1;
  return Math.min(size * scale, maximum) ** (1 / temperature);
}

/**
 * Integer counts proportional to `shares` that sum to `total` exactly: each gets the floor of its quota, and the
 * remainder goes one by one to the largest fractional parts (ties: the earlier component).
 */
export function largestRemainder(total: number, shares: readonly number[]): number[] {
  const sum = shares.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new UserError("a weight or rate mixture needs at least one component with a positive share");
  const quotas = shares.map((s) => (total * s) / sum);
  const counts = quotas.map((q) => Math.floor(q));
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = quotas.map((q, i) => ({ i, r: q - Math.floor(q) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length) {
    counts[order[k]!.i]!++;
    left--;
  }
  while (left < 0) {
    // Floating point can only overshoot by rounding; take back from the largest counts.
    const j = counts.indexOf(Math.max(...counts));
    counts[j]!--;
    left++;
  }
  return counts;
}

export interface ComponentPlan {
  readonly name: string;
  /** Records drawn. */
  readonly count: number;
  /** How: the first `count` of a seeded shuffle (cycled when count > size), or whole copies in order. */
  readonly how: "seeded" | "copies";
}

/** How many records each component gives, from the rules, the mode and the components' sizes. */
export function planMix(params: Readonly<Record<string, unknown>>, sizes: ReadonlyMap<string, number>, order: readonly string[]): { mode: MixMode; plan: ComponentPlan[] } {
  const { mode, problems } = mixMode(params);
  if (problems.length > 0) throw new UserError(`mix: ${problems.map((p) => p.message).join("; ")}`);
  const rules = (params["components"] ?? {}) as Record<string, MixRule>;
  const ruleOf = (name: string): MixRule => {
    const r = rules[name];
    if (!r) throw new UserError(`mix: component \`${name}\` has no rule`);
    return r;
  };
  if (mode === "count" || mode === "fraction") {
    return {
      mode,
      plan: order.map((name) => {
        const rule = ruleOf(name);
        const size = sizes.get(name)!;
        switch (rule.fn) {
          case "all":
            return { name, count: size, how: "copies" };
          case "repeat":
            return { name, count: size * (rule.times ?? 1), how: "copies" };
          case "take":
            return { name, count: Math.min(rule.n ?? 0, size), how: "seeded" };
          case "fraction":
            return { name, count: Math.floor((rule.f ?? 0) * size), how: "seeded" };
          default:
            throw new UserError(`mix: \`${rule.fn}\` does not belong in a ${mode} mixture (component \`${name}\`)`);
        }
      }),
    };
  }
  const total = params["total"] as number | undefined;
  if (total === undefined) throw new UserError(`mix: a ${mode} mixture needs total`);
  const mixOpts = { cap: params["cap"] as number | undefined, temperature: params["temperature"] as number | undefined };
  const shares = order.map((name) => {
    const rule = ruleOf(name);
    if (rule.fn === "weight") return rule.w ?? 0;
    if (rule.fn === "rate") return mixRate(sizes.get(name)!, rule, mixOpts);
    throw new UserError(`mix: \`${rule.fn}\` does not belong in a ${mode} mixture (component \`${name}\`)`);
  });
  const counts = largestRemainder(total, shares);
  order.forEach((name, i) => {
    if (counts[i]! > 0 && sizes.get(name) === 0) throw new UserError(`mix: component \`${name}\` is empty but its share of total is ${counts[i]} records`);
  });
  return { mode, plan: order.map((name, i) => ({ name, count: counts[i]!, how: "seeded" })) };
}

/** A seed for the final shuffle, different from the components' (which use the mixture's seed as `sample` does). */
export function shuffleSeed(seed: number): number {
  return Math.floor(unitHash(seed, 0x6d6978) * 0x7fffffff);
}

/**
 * Appends the records of one component as planned to `into`: seeded (cycled through a seeded permutation when more
 * than it has) or whole copies in order. Returns how many. Appended one by one: no intermediate arrays for a
 * component of millions, and no spread (a call takes only so many arguments).
 */
async function drawComponent(a: InputArtifact, p: ComponentPlan, size: number, seed: number, onEach: () => void, into: RecordValue[]): Promise<number> {
  if (p.count === 0) return 0;
  const start = into.length;
  if (p.how === "copies") {
    for await (const r of a.read()) {
      into.push(r);
      onEach();
    }
  } else {
    for (const r of await seededTake(a.read(), Math.min(p.count, size), seed, onEach)) into.push(r);
  }
  const once = into.length - start;
  for (let k = once; once > 0 && k < p.count; k++) into.push(into[start + (k % once)]!);
  return into.length - start;
}

/**
 * The order of the final shuffle: indices sorted by unitHash(seed, i), ties by index. The hash is a multiple of
 * 2^-32, so (hash x 2^32) x 2^21 + i is an exact float for i < 2^21 and one typed-array sort (no comparator, no boxed
 * keys) gives the order; larger mixtures sort with a comparator, to the same order.
 */
export function shuffleOrder(n: number, seed: number, packedUpTo = 1 << 21): Uint32Array {
  const out = new Uint32Array(n);
  if (n <= Math.min(packedUpTo, 1 << 21)) {
    const packed = new Float64Array(n);
    for (let i = 0; i < n; i++) packed[i] = unitHash(seed, i) * 4294967296 * 2097152 + i;
    packed.sort();
    for (let j = 0; j < n; j++) out[j] = packed[j]! % 2097152;
    return out;
  }
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = unitHash(seed, i);
  for (let i = 0; i < n; i++) out[i] = i;
  return out.sort((x, y) => keys[x]! - keys[y]! || x - y);
}

async function sizeOf(a: InputArtifact): Promise<number> {
  if (a.records !== null) return a.records;
  let n = 0;
  for await (const _ of a.read()) n++;
  return n;
}

export const mixImpls: Record<string, StageImpl> = {
  mix: asyncImpl(async (ctx, out) => {
    const seed = (ctx.params["seed"] as number | undefined) ?? 42;
    const shuffle = ctx.params["shuffle"] !== false;
    // Components in the order written (the order of the stage's inputs).
    const comps = [...ctx.inputs].filter(([role]) => role.startsWith("component:")).map(([role, a]) => ({ name: role.slice("component:".length), a }));
    const sizes = new Map<string, number>();
    for (const c of comps) sizes.set(c.name, await sizeOf(c.a));
    const { plan } = planMix(ctx.params, sizes, comps.map((c) => c.name));
    const totalPlanned = plan.reduce((s, p) => s + p.count, 0);
    let read = 0;
    const onEach = () => {
      if (++read % 4096 === 0) checkAbort(ctx);
    };
    const mixed: RecordValue[] = [];
    for (let k = 0; k < comps.length; k++) {
      const p = plan[k]!;
      const n = await drawComponent(comps[k]!.a, p, sizes.get(p.name)!, seed, onEach, mixed);
      ctx.count(`component: ${p.name}`, n);
      if (!shuffle) {
        for (const r of mixed) await out.write(r);
        mixed.length = 0;
      }
    }
    if (shuffle) {
      const idx = shuffleOrder(mixed.length, shuffleSeed(seed));
      for (let j = 0; j < idx.length; j++) {
        await out.write(mixed[idx[j]!]!);
        if (j % 4096 === 0) {
          checkAbort(ctx);
          ctx.progress(j, totalPlanned);
        }
      }
    }
    ctx.progress(totalPlanned, totalPlanned);
  }),
};
