import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { candidateProbability, detectionProbability, optimalBanding, resolveBanding } from "../src/stages/dedup/lsh-bands.js";
import { clusterSignatures, MAX_BUCKET, minhashClusters } from "../src/stages/dedup/minhash.js";
import { mulberry32 } from "../src/core/random.js";
import { itp, tempTree } from "./support/cli.js";
import { editedCopy, exactJaccard, shingleSet, zipfWords } from "./support/planted.js";

/**
 * datasketch's `_optimal_param` computed independently: the two areas integrated exactly by expanding
 * (1 - s^r)^b binomially, in fixed-point BigInt arithmetic (100 decimal places; the alternating sums cancel far
 * beyond float precision), the threshold as a fraction p / q.
 *   FP = ∫_0^t 1 - (1 - s^r)^b ds = t - Σ_k C(b,k) (-1)^k t^(rk+1) / (rk+1)
 *   FN = ∫_t^1 (1 - s^r)^b ds = Σ_k C(b,k) (-1)^k (1 - t^(rk+1)) / (rk+1)
 */
function exactOptimal(p: bigint, q: bigint, permutations: number): { bands: number; rows: number } {
  const SCALE = 10n ** 100n;
  let best = { bands: 0, rows: 0 };
  let bestError: bigint | undefined;
  for (let b = 1; b <= permutations; b++) {
    const binom: bigint[] = [1n];
    for (let k = 1; k <= b; k++) binom.push((binom[k - 1]! * BigInt(b - k + 1)) / BigInt(k));
    for (let r = 1; r * b <= permutations; r++) {
      let fp = (SCALE * p) / q;
      let fn = 0n;
      for (let k = 0; k <= b; k++) {
        const e = BigInt(r * k + 1);
        const tPow = (SCALE * p ** e) / q ** e;
        const sign = k % 2 === 0 ? 1n : -1n;
        fp -= (sign * binom[k]! * tPow) / e;
        fn += (sign * binom[k]! * (SCALE - tPow)) / e;
      }
      const error = fp + fn; // both weights 0.5: the same order as 0.5 fp + 0.5 fn
      if (bestError === undefined || error < bestError) {
        bestError = error;
        best = { bands: b, rows: r };
      }
    }
  }
  return best;
}

describe("LSH banding chosen from the threshold", () => {
  it("matches datasketch's _optimal_param, computed here exactly", () => {
    // [threshold as p / q, permutations, datasketch's (b, r)]: the values its code (scipy's quad) gives; (0.9, 128)
    // -> (5, 25) is also the example in MinHashLSH's docstring.
    const cases: [bigint, bigint, number, [number, number]][] = [
      [1n, 2n, 128, [25, 5]],
      [7n, 10n, 128, [14, 9]],
      [4n, 5n, 128, [9, 13]],
      [9n, 10n, 128, [5, 25]],
      [1n, 2n, 64, [14, 4]],
      [3n, 10n, 256, [64, 4]],
      [3n, 4n, 32, [4, 8]],
      [19n, 20n, 16, [1, 16]],
    ];
    for (const [p, q, n, [b, r]] of cases) {
      const t = Number(p) / Number(q);
      const chosen = optimalBanding(t, n);
      expect(exactOptimal(p, q, n), `exact, threshold ${t}, ${n} permutations`).toEqual({ bands: b, rows: r });
      expect(chosen, `threshold ${t}, ${n} permutations`).toEqual({ bands: b, rows: r });
    }
  });

  it("explicit bands and rows override the choice; rows default to what fits", () => {
    expect(resolveBanding(128, 0.5)).toEqual({ bands: 25, rows: 5, chosen: true });
    expect(resolveBanding(128, 0.5, 16)).toEqual({ bands: 16, rows: 8, chosen: false });
    expect(resolveBanding(100, 0.5, 16)).toEqual({ bands: 16, rows: 6, chosen: false });
    expect(resolveBanding(100, 0.5, undefined, 7)).toEqual({ bands: 14, rows: 7, chosen: false });
    expect(() => resolveBanding(100, 0.5, 16, 7)).toThrow(/16 bands of 7 rows need 112 signature values; the signature has 100/);
  });

  it("the detection model is the S-curve when the threshold is low, and the threshold when bands catch everything", () => {
    for (const s of [0.2, 0.5, 0.8]) expect(detectionProbability(s, 128, { bands: 16, rows: 8 }, 0)).toBeCloseTo(candidateProbability(s, 16, 8), 12);
    // One row per band over the whole signature: found exactly when enough values agree (a binomial tail).
    const tail = (s: number, n: number, need: number) => {
      let t = 0;
      for (let k = need; k <= n; k++) {
        let c = 1;
        for (let i = 0; i < k; i++) c = (c * (n - i)) / (i + 1);
        t += c * s ** k * (1 - s) ** (n - k);
      }
      return t;
    };
    expect(detectionProbability(0.6, 20, { bands: 20, rows: 1 }, 0.5)).toBeCloseTo(tail(0.6, 20, 10), 12);
    // Values past the bands count towards the estimate.
    expect(detectionProbability(0.6, 24, { bands: 20, rows: 1 }, 0.5)).toBeCloseTo(tail(0.6, 24, 12) - (1 - 0.6) ** 20 * tail(0.6, 4, 12), 12);
  });
});

describe("recall per Jaccard band on planted pairs", () => {
  /**
   * `pairs` planted pairs (documents of 120-200 Zipf words, copies edited towards a target spread over
   * [low, high]), shuffled among as many unrelated documents; per exact-Jaccard band of width 0.1 the share of pairs
   * found, against the share the model predicts for each pair's exact similarity.
   */
  function plant(seed: number, pairs: number, low: number, high: number) {
    const r = mulberry32(seed);
    const word = zipfWords(r, 20000);
    const texts: string[] = [];
    const planted: { a: number; b: number; j: number }[] = [];
    for (let k = 0; k < pairs; k++) {
      const doc = Array.from({ length: 120 + Math.floor(r() * 81) }, word);
      const copy = editedCopy(doc, low + (high - low) * r(), 2, r, word);
      texts.push(Array.from({ length: 150 }, word).join(" "));
      planted.push({ a: texts.length, b: texts.length + 1, j: exactJaccard(shingleSet(doc.join(" "), 2), shingleSet(copy.join(" "), 2)) });
      texts.push(doc.join(" "), copy.join(" "));
    }
    return { texts, planted };
  }

  const memo = new Map<string, ReturnType<typeof measure>>();
  const perBand = (threshold: number, seed: number, bands?: number) => {
    const key = `${threshold} ${seed} ${bands}`;
    if (!memo.has(key)) memo.set(key, measure(threshold, seed, bands));
    return memo.get(key)!;
  };
  function measure(threshold: number, seed: number, bands?: number) {
    const { texts, planted } = plant(seed, 1200, Math.max(0.05, threshold - 0.3), Math.min(0.99, threshold + 0.25));
    const banding = resolveBanding(128, threshold, bands);
    const c = minhashClusters(texts, { shingle: 2, permutations: 128, threshold, seed: 42, ...(bands ? { bands } : {}) });
    const rows: { band: number; pairs: number; found: number; expected: number; sd: number }[] = [];
    for (let lo = 0; lo < 10; lo++) {
      const inBand = planted.filter((p) => Math.floor(p.j * 10) === lo);
      if (inBand.length < 60) continue;
      let found = 0;
      let expected = 0;
      let variance = 0;
      for (const p of inBand) {
        if (c.root[p.b] === c.root[p.a]) found++;
        const q = detectionProbability(p.j, 128, banding, threshold);
        expected += q;
        variance += q * (1 - q);
      }
      rows.push({ band: lo / 10, pairs: inBand.length, found: found / inBand.length, expected: expected / inBand.length, sd: Math.sqrt(variance) / inBand.length });
    }
    // Unrelated documents never join anything.
    for (let i = 0; i < texts.length; i += 3) expect(c.root[i]).toBe(i);
    return rows;
  }

  for (const [threshold, seed] of [[0.5, 11], [0.7, 12], [0.8, 13]] as const) {
    it(`threshold ${threshold}: each band's recall is what the S-curve and the estimate's spread predict`, () => {
      const rows = perBand(threshold, seed);
      expect(rows.length).toBeGreaterThanOrEqual(4);
      for (const row of rows) {
        // Four standard deviations of the binomial count, and 0.03 for hashing that is not quite ideal.
        expect(Math.abs(row.found - row.expected), JSON.stringify(row)).toBeLessThanOrEqual(4 * row.sd + 0.03);
      }
      // Well above the threshold nearly everything is found; well below, nearly nothing.
      for (const row of rows) {
        if (row.band >= threshold + 0.2 - 1e-9) expect(row.found, JSON.stringify(row)).toBeGreaterThanOrEqual(0.97);
        if (row.band + 0.1 <= threshold - 0.1) expect(row.found, JSON.stringify(row)).toBeLessThanOrEqual(0.02);
      }
    });
  }

  it("at threshold 0.5 the fixed 16 x 8 banding misses most pairs just above it; the chosen banding does not", () => {
    const fixed = perBand(0.5, 11, 16);
    const chosen = perBand(0.5, 11);
    const at = (rows: typeof fixed, band: number) => rows.find((r) => Math.abs(r.band - band) < 1e-9)!;
    expect(at(fixed, 0.6).found).toBeLessThan(0.45);
    expect(at(chosen, 0.6).found).toBeGreaterThan(0.8);
    // The model explains both.
    for (const row of fixed) expect(Math.abs(row.found - row.expected), JSON.stringify(row)).toBeLessThanOrEqual(4 * row.sd + 0.03);
  });
});

describe("kept-record clustering", () => {
  const sigsOf = (rows: number[][]) => Uint32Array.from(rows.flat());

  it("a chain is not one cluster: each record is compared with the kept records only", () => {
    // 8 values, one row per band, threshold 0.75: 6 equal values make a duplicate.
    const sigs = sigsOf([
      [1, 2, 3, 4, 5, 6, 7, 8], // 0
      [1, 2, 3, 4, 5, 6, 70, 80], // 1: 6 equal with 0
      [1, 2, 3, 4, 50, 60, 70, 80], // 2: 6 with 1 (dropped), 4 with 0: kept
      [1, 2, 3, 4, 50, 60, 70, 81], // 3: 7 with 2, 5 with 1, 3 with 0
      [1, 2, 3, 4, 5, 6, 7, 81], // 4: 7 with 0, 4 with 2
    ]);
    const o = { permutations: 8, bands: 8, threshold: 0.75 } as const;
    expect([...clusterSignatures(sigs, 5, new Uint8Array(5), o).root]).toEqual([0, 0, 0, 0, 0]);
    const c = clusterSignatures(sigs, 5, new Uint8Array(5), { ...o, clustering: "kept_record" });
    expect([...c.root]).toEqual([0, 0, 2, 2, 0]);
    expect(c.clusters).toBe(2);
    expect(c.largest).toBe(3);
  });

  it("joins the most similar kept record, the first on a tie", () => {
    const sigs = sigsOf([
      [1, 2, 3, 4, 5, 6, 7, 8], // 0
      [9, 9, 9, 9, 5, 6, 7, 8], // 1: 4 with 0: kept
      [1, 2, 3, 4, 5, 6, 7, 9], // 2: 7 with 0, 3 with 1
      [9, 9, 9, 4, 5, 6, 7, 8], // 3: 7 with 1, 5 with 0
      [1, 2, 9, 9, 5, 6, 7, 8], // 4: 6 with 0, 6 with 1: the first
    ]);
    const c = clusterSignatures(sigs, 5, new Uint8Array(5), { permutations: 8, bands: 8, threshold: 0.75, clustering: "kept_record" });
    expect([...c.root]).toEqual([0, 1, 0, 1, 0]);
  });

  it("buckets hold kept records up to the cap; empty texts stay alone", () => {
    const n = MAX_BUCKET + 10;
    const rows = Array.from({ length: n }, (_, i) => [1, 2, 3, 4, 100 + i, 200 + i, 300 + i, 400 + i]);
    const c = clusterSignatures(sigsOf(rows), n, new Uint8Array(n), { permutations: 8, bands: 2, threshold: 0.75, clustering: "kept_record" });
    expect(c.clusters).toBe(0);
    expect(c.overflows).toBe(10);
    expect(c.compared).toBe((MAX_BUCKET * (MAX_BUCKET - 1)) / 2 + 10 * MAX_BUCKET);
    const open = clusterSignatures(sigsOf(rows), n, new Uint8Array(n), { permutations: 8, bands: 2, threshold: 0.75, clustering: "kept_record", maxBucket: Infinity });
    expect(open.overflows).toBe(0);
    expect(open.compared).toBe((n * (n - 1)) / 2);
    expect([...minhashClusters(["", "", "some words here", "some words here"], { shingle: 2, permutations: 16, bands: 4, threshold: 0.5, seed: 1, clustering: "kept_record" }).root]).toEqual([0, 1, 2, 2]);
  });

  it("values past the bands are not banded but count towards the estimate", () => {
    // 10 values in 3 bands of 3: the last value is in no band.
    const sigs = sigsOf([
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      [1, 2, 3, 40, 50, 60, 70, 80, 90, 10],
    ]);
    for (const clustering of ["union_find", "kept_record"] as const) {
      // 1 and 0: a band agrees, 4 of 10 values (with the tenth): a duplicate at 0.4, not at 0.5.
      expect([...clusterSignatures(sigs, 2, new Uint8Array(2), { permutations: 10, bands: 3, rows: 3, threshold: 0.4, clustering }).root]).toEqual([0, 0]);
      expect([...clusterSignatures(sigs, 2, new Uint8Array(2), { permutations: 10, bands: 3, rows: 3, threshold: 0.5, clustering }).root]).toEqual([0, 1]);
      // 2 and 0 differ only past the bands: 9 of 10.
      const sub = sigsOf([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [1, 2, 3, 4, 5, 6, 7, 8, 9, 11]]);
      expect([...clusterSignatures(sub, 2, new Uint8Array(2), { permutations: 10, bands: 3, rows: 3, threshold: 0.9, clustering }).root]).toEqual([0, 0]);
      expect([...clusterSignatures(sub, 2, new Uint8Array(2), { permutations: 10, bands: 3, rows: 3, threshold: 1, clustering }).root]).toEqual([0, 1]);
    }
  });
});

describe("minhash_dedup through the CLI", () => {
  // A chain: A ~ B (Jaccard 0.6) and B ~ C (0.6), A and C apart (0.33).
  const w = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `w${from + i}`).join(" ");
  const docs = [
    { id: "a", text: w(1, 20) },
    { id: "b", text: w(6, 25) },
    { id: "c", text: w(11, 30) },
    { id: "d", text: w(100, 130) },
  ];
  const recipe = `type Doc = {
  id: string
  text: string
}

dataset docs: Doc = jsonl("docs.jsonl")

filter chained = minhash_dedup(docs) {
  field = text
  shingle = 1
  permutations = 256
  threshold = 0.45
}

filter direct = minhash_dedup(docs) {
  field = text
  shingle = 1
  permutations = 256
  threshold = 0.45
  bands = 64
  clustering = "kept_record"
}
`;

  it("the banding chosen for the threshold (or given) is in `itp show`; kept_record does not follow chains", () => {
    const dir = tempTree({ "r.itp": recipe, "docs.jsonl": docs.map((d) => JSON.stringify(d)).join("\n") + "\n" });
    try {
      const r = itp(["run", "r.itp", "--store", "store"], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      const chosen = optimalBanding(0.45, 256);
      const chained = itp(["show", "r.itp", "chained", "--store", "store"], { cwd: dir }).stdout;
      expect(chained).toContain(`LSH bands (chosen for the threshold) ${chosen.bands}, LSH rows per band ${chosen.rows}`);
      expect(chained).toMatch(/records +2;/);
      const direct = itp(["show", "r.itp", "direct", "--store", "store"], { cwd: dir }).stdout;
      expect(direct).toContain("LSH bands 64, LSH rows per band 4");
      expect(direct).toMatch(/records +3;/);
      const dropped = itp(["show", "r.itp", "direct", "--dropped", "--store", "store", "--json"], { cwd: dir }).stdout;
      expect((JSON.parse(dropped) as { records: { record: { id: string }; detail: string }[] }).records.map((d) => [d.record.id, d.detail])).toEqual([["b", expect.stringMatching(/^of record 1\b/)]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
