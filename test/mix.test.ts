import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RecordValue } from "../src/core/records.js";
import { largestRemainder, mixImpls, mixRate, planMix, shuffleOrder } from "../src/stages/mix/mix.js";
import { unitHash } from "../src/stages/support/records.js";
import { itp, tempTree } from "./support/cli.js";
import { runImpl } from "./support/stage-ctx.js";

// Mixing acceptance: exact counts, seqio's examples-proportional rates on hand-computed cases, determinism by seed,
// nested mixtures, and the per-component counts in the mixture's manifest.

const comp = (name: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${name}${i}` }));
const from = (records: readonly RecordValue[], name: string) => records.filter((r) => String(r["id"]).replace(/\d+$/, "") === name);
const mix = (params: Record<string, unknown>, inputs: Record<string, RecordValue[]>) => runImpl(mixImpls["mix"]!, params, inputs);

describe("mix: counts", () => {
  it("a Tulu-shaped count mixture (scaled down 1:100): take, all and repeat give exactly their counts", async () => {
    // Tulu 2 at 1/100: flan 500 of 700, cot 250 + 250, oasst all 77, sharegpt all 1,140, hard-coded 14 x 10.
    const inputs = { "component:flan": comp("flan", 700), "component:cotz": comp("cotz", 400), "component:cotf": comp("cotf", 300), "component:oasst": comp("oasst", 77), "component:sharegpt": comp("sharegpt", 1140), "component:hard": comp("hard", 14) };
    const components = { flan: { fn: "take", n: 500 }, cotz: { fn: "take", n: 250 }, cotf: { fn: "take", n: 250 }, oasst: { fn: "all" }, sharegpt: { fn: "all" }, hard: { fn: "repeat", times: 10 } };
    const r = await mix({ seed: 42, components }, inputs);
    const want = { flan: 500, cotz: 250, cotf: 250, oasst: 77, sharegpt: 1140, hard: 140 };
    expect(r.records.length).toBe(2357);
    for (const [name, n] of Object.entries(want)) {
      expect(from(r.records, name).length, name).toBe(n);
      expect(r.counts[`component: ${name}`], name).toBe(n);
    }
    // take(n): n distinct records; repeat(10): each of the 14 exactly 10 times.
    expect(new Set(from(r.records, "flan").map((x) => x["id"])).size).toBe(500);
    const hard = from(r.records, "hard").map((x) => String(x["id"]));
    for (let i = 0; i < 14; i++) expect(hard.filter((id) => id === `hard${i}`).length).toBe(10);
  });

  it("weight mode: the counts sum to total exactly, whatever the weights", () => {
    const rand = (k: number) => ((k * 2654435761) % 1000) / 1000 + 0.001;
    for (let k = 1; k < 60; k++) {
      const shares = Array.from({ length: 1 + (k % 7) }, (_, j) => rand(k * 31 + j));
      const counts = largestRemainder(1000 + k, shares);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(1000 + k);
      const sum = shares.reduce((a, b) => a + b, 0);
      // Each within one record of its exact quota.
      counts.forEach((c, j) => expect(Math.abs(c - ((1000 + k) * shares[j]!) / sum)).toBeLessThan(1));
    }
  });
});

describe("mix: seqio's examples-proportional rates", () => {
  const plan = (params: Record<string, unknown>, sizes: Record<string, number>) => planMix(params, new Map(Object.entries(sizes)), Object.keys(sizes)).plan.map((p) => p.count);

  it("rate = min(size x scale, maximum) ^ (1 / temperature), normalized: hand-computed cases", () => {
    // Flan 2021's maximum 3,000: rates 3000, 1000, 3000 -> 3/7, 1/7, 3/7 of 700.
    expect(plan({ total: 700, components: { a: { fn: "rate", maximum: 3000 }, b: { fn: "rate", maximum: 3000 }, c: { fn: "rate", maximum: 3000 } } }, { a: 5000, b: 1000, c: 20000 })).toEqual([300, 100, 300]);
    // Temperature 2, uncapped: rates sqrt(400) = 20, sqrt(100) = 10, sqrt(2500) = 50 -> 2/8, 1/8, 5/8 of 800.
    expect(plan({ total: 800, temperature: 2, components: { a: { fn: "rate" }, b: { fn: "rate" }, c: { fn: "rate" } } }, { a: 400, b: 100, c: 2500 })).toEqual([200, 100, 500]);
    // Clipped before the temperature: 90,000 -> 3,000 -> 54.772; 900 -> 30; 100 -> 10. Quotas of 1,000: 577.94,
    // 316.55, 105.52; floors give 998, the two left go to the largest remainders (a, then b).
    expect(plan({ total: 1000, cap: 3000, temperature: 2, components: { a: { fn: "rate" }, b: { fn: "rate" }, c: { fn: "rate" } } }, { a: 90000, b: 900, c: 100 })).toEqual([578, 317, 105]);
    // Scale before the cap: 4,000 x 0.5 = 2,000 (under 3,000); 1,000 -> 1,000.
    expect(plan({ total: 300, components: { a: { fn: "rate", maximum: 3000, scale: 0.5 }, b: { fn: "rate", maximum: 3000 } } }, { a: 4000, b: 1000 })).toEqual([200, 100]);
    // A rule's own maximum and temperature win over the mixture's.
    expect(mixRate(10000, { fn: "rate", maximum: 100, temperature: 1 }, { cap: 5000, temperature: 2 })).toBe(100);
  });

  it("a Flan 2021-shaped rate mixture: big tasks capped, small tasks cycled, every count exact", async () => {
    // Flan 2021 caps each task's rate at 3,000; here at 30 for tasks of 1,000, 300, 20 and 5 records: rates 30, 30,
    // 20, 5 (sum 85), so 170 examples are 60, 60, 40, 10; c and d give each of their records twice.
    const inputs = { "component:a": comp("a", 1000), "component:b": comp("b", 300), "component:c": comp("c", 20), "component:d": comp("d", 5) };
    const components = { a: { fn: "rate", maximum: 30 }, b: { fn: "rate", maximum: 30 }, c: { fn: "rate", maximum: 30 }, d: { fn: "rate", maximum: 30 } };
    expect(plan({ total: 170, components }, { a: 1000, b: 300, c: 20, d: 5 })).toEqual([60, 60, 40, 10]);
    const r = await mix({ seed: 5, total: 170, components }, inputs);
    expect(r.counts).toEqual({ "component: a": 60, "component: b": 60, "component: c": 40, "component: d": 10 });
    for (const [name, size] of [["c", 20], ["d", 5]] as const) {
      const ids = from(r.records, name).map((x) => String(x["id"]));
      for (let i = 0; i < size; i++) expect(ids.filter((id) => id === `${name}${i}`).length).toBe(2);
    }
  });
});

describe("mix: determinism", () => {
  const inputs = { "component:a": comp("a", 300), "component:b": comp("b", 200) };
  const params = { seed: 42, components: { a: { fn: "take", n: 100 }, b: { fn: "take", n: 100 } } };

  it("the final shuffle orders records by unitHash(seed, i), ties by index, packed or with a comparator", () => {
    for (const n of [0, 1, 2, 1000, 50_000]) {
      const want = Array.from({ length: n }, (_, i) => i).sort((x, y) => unitHash(9, x) - unitHash(9, y) || x - y);
      expect([...shuffleOrder(n, 9)], `n = ${n}`).toEqual(want);
      expect([...shuffleOrder(n, 9, 0)], `n = ${n}, comparator`).toEqual(want);
    }
  });

  it("the same seed gives byte-identical output; another seed another sample and order", async () => {
    const one = await mix(params, inputs);
    const two = await mix(params, inputs);
    expect(JSON.stringify(two.records)).toBe(JSON.stringify(one.records));
    const other = await mix({ ...params, seed: 43 }, inputs);
    expect(other.records.length).toBe(one.records.length);
    expect(new Set(from(other.records, "a").map((x) => x["id"]))).not.toEqual(new Set(from(one.records, "a").map((x) => x["id"])));
    expect(other.records.map((x) => x["id"])).not.toEqual(one.records.map((x) => x["id"]));
    // Only the order differs when every record is taken.
    const all = { seed: 42, components: { a: { fn: "all" }, b: { fn: "all" } } };
    const x = await mix(all, inputs);
    const y = await mix({ ...all, seed: 43 }, inputs);
    expect(x.records.map((r) => r["id"])).not.toEqual(y.records.map((r) => r["id"]));
    expect(new Set(x.records.map((r) => r["id"]))).toEqual(new Set(y.records.map((r) => r["id"])));
  });
});

describe("mix: nested mixtures", () => {
  it("a mixture's output is a component of another; the counts compose", async () => {
    const inner = await mix({ seed: 1, total: 300, components: { a: { fn: "rate", maximum: 100 }, b: { fn: "rate", maximum: 100 } } }, { "component:a": comp("a", 1000), "component:b": comp("b", 50) });
    // rates 100 and 50: 200 and 100 of 300 (b's 50 records twice each).
    expect(inner.counts).toEqual({ "component: a": 200, "component: b": 100 });
    const outer = await mix({ seed: 1, total: 500, components: { inner: { fn: "weight", w: 0.6 }, c: { fn: "weight", w: 0.4 } } }, { "component:inner": inner.records, "component:c": comp("c", 400) });
    expect(outer.counts).toEqual({ "component: inner": 300, "component: c": 200 });
    expect([from(outer.records, "a").length, from(outer.records, "b").length, from(outer.records, "c").length]).toEqual([200, 100, 200]);
  });

  describe("through itp run", () => {
    const dirs: string[] = [];
    afterAll(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });
    const jsonl = (name: string, n: number) => comp(name, n).map((r) => JSON.stringify({ ...r, task: name }) + "\n").join("");
    const recipe = `type Ex = {
  id: string
  task: string
}

dataset a: Ex = jsonl("a.jsonl")
dataset b: Ex = jsonl("b.jsonl")
dataset c: Ex = jsonl("c.jsonl")

/// Examples-proportional, capped at 100.
mix inner = mix(seed: 1, total: 300) {
  a: rate(maximum: 100)
  b: rate(maximum: 100)
}

mix outer = mix(seed: 1, total: 500) {
  inner: weight(0.6)
  c: weight(0.4)
}

dataset out = export(outer, path: "out.jsonl")
`;

    it("runs, counts each component in the manifests, and gives the same bytes twice; another seed another mixture", () => {
      const dir = tempTree({ "r.itp": recipe, "a.jsonl": jsonl("a", 1000), "b.jsonl": jsonl("b", 50), "c.jsonl": jsonl("c", 400) });
      dirs.push(dir);
      const runOnce = (store: string, extra: string[] = []) => {
        const r = itp(["run", "r.itp", "--store", store, "--json", ...extra], { cwd: dir });
        expect(r.code, r.stderr).toBe(0);
        const counts = (stage: string) => {
          const s = itp(["show", "r.itp", stage, "--store", store, "--json", ...extra], { cwd: dir });
          expect(s.code, s.stderr).toBe(0);
          return (JSON.parse(s.stdout) as { counts: Record<string, number> }).counts;
        };
        return { inner: counts("inner"), outer: counts("outer"), bytes: readFileSync(join(dir, "out.jsonl"), "utf8") };
      };
      const first = runOnce("s1");
      expect(first.inner).toEqual({ "component: a": 200, "component: b": 100 });
      expect(first.outer).toEqual({ "component: inner": 300, "component: c": 200 });
      const lines = first.bytes.trim().split("\n").map((l) => JSON.parse(l) as { task: string });
      expect(["a", "b", "c"].map((t) => lines.filter((l) => l.task === t).length)).toEqual([200, 100, 200]);
      expect(runOnce("s2").bytes).toBe(first.bytes);
      const reseeded = runOnce("s3", ["--set", "inner.seed=2", "--set", "outer.seed=2"]);
      expect(reseeded.outer).toEqual(first.outer);
      expect(reseeded.bytes).not.toBe(first.bytes);
    });
  });
});
