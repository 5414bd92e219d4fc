import { describe, expect, it } from "vitest";
import { dedupImpls, rougeDedup } from "../src/stages/dedup/dedup.js";
import { clusterSignatures, estimatedJaccard, MAX_BUCKET, minhashClusters, permutations, shingleHashes, SignatureBuilder, signatureInto } from "../src/stages/dedup/minhash.js";
import { LcsPattern, lcsLength, rougeLF1, rougeTokens, Vocabulary } from "../src/stages/support/text.js";
import { rng } from "./support/fuzz.js";
import { runImpl } from "./support/stage-ctx.js";

/** A vocabulary of pseudo-words drawn Zipf-like (a few frequent words, a long tail), as in real text. */
function wordSource(seed: number, size = 5000) {
  const r = rng(seed);
  const syll = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "dan", "el", "or", "qu", "is", "ber"];
  const vocab = Array.from({ length: size }, (_, i) => {
    let w = "";
    for (let n = i + 1; n > 0; n = Math.floor(n / syll.length)) w += syll[n % syll.length];
    return w;
  });
  const word = () => vocab[Math.floor(size * r() ** 3)]!;
  const doc = (n: number) => Array.from({ length: n }, word);
  return { r, word, doc };
}

/** Jaccard similarity of two texts' shingle sets. */
function jaccard(a: string, b: string, shingle: number): number {
  const A = new Set(shingleHashes(a, shingle));
  const B = new Set(shingleHashes(b, shingle));
  let inter = 0;
  for (const x of A) if (B.has(x)) inter++;
  return inter / (A.size + B.size - inter);
}

describe("MinHash shingles and signatures", () => {
  it("shingles are word windows: case and punctuation do not matter, order does", () => {
    expect([...shingleHashes("Hello, World! How are you?", 2)]).toEqual([...shingleHashes("hello world how -- are you", 2)]);
    expect(shingleHashes("one two three four", 2).length).toBe(3);
    expect(new Set(shingleHashes("a b c d", 2))).not.toEqual(new Set(shingleHashes("d c b a", 2)));
    // A text shorter than the shingle is one shingle of all its words; no words, no shingles.
    expect(shingleHashes("just two", 5).length).toBe(1);
    expect([...shingleHashes("Just two!", 5)]).toEqual([...shingleHashes("just two", 5)]);
    expect(shingleHashes(" ,;- ", 3).length).toBe(0);
    // Letters beyond ASCII are word characters, punctuation beyond ASCII is not.
    expect([...shingleHashes("Été «déjà» vu", 1)]).toEqual([...shingleHashes("été déjà vu", 1)]);
    expect(shingleHashes("Été déjà", 1)[0]).not.toBe(shingleHashes("ete deja", 1)[0]);
  });

  it("the share of equal signature values estimates the Jaccard similarity", () => {
    const { r, word, doc } = wordSource(1);
    const P = 256;
    const perms = permutations(P, 42);
    const sigs = new Uint32Array(2 * P);
    const errors: number[] = [];
    const z: number[] = [];
    for (let k = 0; k < 200; k++) {
      // Jaccard from about 0.05 to 1: a share of the words replaced.
      const a = doc(150);
      const change = (k % 20) / 20;
      const b = a.map((w) => (r() < change ? word() : w));
      const ta = a.join(" ");
      const tb = b.join(" ");
      signatureInto(shingleHashes(ta, 2), perms, sigs, 0);
      signatureInto(shingleHashes(tb, 2), perms, sigs, P);
      const J = jaccard(ta, tb, 2);
      const e = estimatedJaccard(sigs, P, 0, 1) - J;
      errors.push(e);
      z.push(e / Math.sqrt(Math.max(J * (1 - J), 0.01) / P));
    }
    const mean = errors.reduce((s, e) => s + e, 0) / errors.length;
    const zrms = Math.sqrt(z.reduce((s, e) => s + e * e, 0) / z.length);
    // Unbiased, and spread as a binomial of P draws with probability J (z-rms about 1; correlated permutations
    // would spread wider).
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(zrms).toBeGreaterThan(0.7);
    expect(zrms).toBeLessThan(1.25);
    expect(Math.max(...errors.map(Math.abs))).toBeLessThan(0.13);
  });

  it("identical shingle sets give identical signatures; the seed changes the permutations", () => {
    const P = 64;
    const sigs = new Uint32Array(3 * P);
    signatureInto(shingleHashes("the cat sat on the mat", 2), permutations(P, 1), sigs, 0);
    signatureInto(shingleHashes("The cat sat on the mat.", 2), permutations(P, 1), sigs, P);
    signatureInto(shingleHashes("the cat sat on the mat", 2), permutations(P, 2), sigs, 2 * P);
    expect(estimatedJaccard(sigs, P, 0, 1)).toBe(1);
    expect(estimatedJaccard(sigs, P, 0, 2)).toBeLessThan(0.5);
    expect(permutations(8, 7)).toEqual(permutations(8, 7));
    // Multipliers are odd (a bijection), and a signature of 6 values takes the leftover single-permutation loop.
    expect([...permutations(64, 3).mul].every((a) => (a & 1) === 1)).toBe(true);
    const six = new Uint32Array(6);
    signatureInto(shingleHashes("the cat sat on the mat", 2), permutations(6, 1), six, 0);
    expect([...six]).toEqual([...sigs.slice(0, 6)]);
  });
});

describe("MinHash LSH clusters", () => {
  /** Signatures written by hand: rows of P values. */
  const sigsOf = (rows: number[][]) => {
    const P = rows[0]!.length;
    const s = new Uint32Array(rows.length * P);
    rows.forEach((row, i) => s.set(row, i * P));
    return s;
  };

  it("union-find: chains join, a later record merges two clusters, the first record of a cluster is kept", () => {
    // P = 8, one row per band, threshold 0.75: 6 equal values make a duplicate.
    const sigs = sigsOf([
      [1, 2, 3, 4, 5, 6, 7, 8], // 0
      [1, 2, 3, 4, 5, 6, 70, 80], // 1: 6 equal with 0
      [1, 2, 3, 4, 50, 60, 70, 80], // 2: 6 with 1, 4 with 0: joins through 1
      [9, 9, 9, 9, 5, 6, 7, 8], // 3: 4 with 0: a cluster of its own for now
      [1, 2, 9, 9, 5, 6, 7, 8], // 4: 6 with 0 and 6 with 3: merges 3 into 0's cluster
      [11, 12, 13, 14, 15, 16, 17, 18], // 5: alone
    ]);
    const c = clusterSignatures(sigs, 6, new Uint8Array(6), { permutations: 8, bands: 8, threshold: 0.75 });
    expect([...c.root]).toEqual([0, 0, 0, 0, 0, 5]);
    expect(c.clusters).toBe(1);
    expect(c.largest).toBe(5);
    // A higher threshold: only identical signatures.
    const strict = clusterSignatures(sigs, 6, new Uint8Array(6), { permutations: 8, bands: 8, threshold: 1 });
    expect([...strict.root]).toEqual([0, 1, 2, 3, 4, 5]);
    expect(strict.clusters).toBe(0);
    expect(strict.largest).toBe(1);
  });

  it("a pair must agree on a whole band to be compared", () => {
    // 7 of 8 values equal, but the unequal ones spoil both bands of 4 rows: never candidates.
    const sigs = sigsOf([
      [1, 2, 3, 4, 5, 6, 7, 8],
      [1, 2, 3, 40, 5, 6, 7, 80],
    ]);
    expect([...clusterSignatures(sigs, 2, new Uint8Array(2), { permutations: 8, bands: 2, threshold: 0.5 }).root]).toEqual([0, 1]);
    expect([...clusterSignatures(sigs, 2, new Uint8Array(2), { permutations: 8, bands: 4, threshold: 0.5 }).root]).toEqual([0, 0]);
  });

  it("empty texts are never duplicates; a bucket of unrelated records is capped, not quadratic", () => {
    expect([...minhashClusters(["", " ... ", "", "some words here"], { shingle: 2, permutations: 16, bands: 4, threshold: 0.5, seed: 1 }).root]).toEqual([0, 1, 2, 3]);
    // MAX_BUCKET + 10 records share their first band but nothing else.
    const n = MAX_BUCKET + 10;
    const rows = Array.from({ length: n }, (_, i) => [1, 2, 3, 4, 100 + i, 200 + i, 300 + i, 400 + i]);
    const c = clusterSignatures(sigsOf(rows), n, new Uint8Array(n), { permutations: 8, bands: 2, threshold: 0.75 });
    expect(c.clusters).toBe(0);
    expect(c.overflows).toBe(10);
    expect(c.compared).toBe(MAX_BUCKET * (MAX_BUCKET - 1) / 2 + 10 * MAX_BUCKET);
  });

  it("finds planted near-duplicates among unrelated documents, and nothing else", () => {
    const { r, word, doc } = wordSource(5);
    const texts = Array.from({ length: 2000 }, () => doc(120).join(" "));
    // 100 planted copies, 3% of their words replaced (Jaccard of 2-shingles about 0.9), at random places.
    const planted: [number, number][] = [];
    for (let k = 0; k < 100; k++) {
      const orig = Math.floor(r() * texts.length);
      const copy = texts[orig]!.split(" ").map((w) => (r() < 0.03 ? word() : w)).join(" ");
      const at = Math.floor(r() * (texts.length + 1));
      texts.splice(at, 0, copy);
      for (const p of planted) for (let j = 0; j < 2; j++) if (p[j]! >= at) p[j]!++;
      planted.push([orig >= at ? orig + 1 : orig, at]);
    }
    const c = minhashClusters(texts, { shingle: 2, permutations: 128, bands: 32, threshold: 0.6, seed: 42 });
    for (const [a, b] of planted) expect(c.root[a], `pair ${a}, ${b}`).toBe(c.root[b]);
    // Copies of copies make clusters of three; every other record is alone.
    const inPairs = new Set(planted.flat());
    for (let i = 0; i < texts.length; i++) if (!inPairs.has(i)) expect(c.root[i]).toBe(i);
    const roots = new Set(planted.map(([a]) => c.root[a]));
    expect(c.clusters).toBe(roots.size);
    expect(c.largest).toBeGreaterThanOrEqual(2);
    // Each cluster's root is its first record.
    const first = new Map<number, number>();
    c.root.forEach((root, i) => first.has(root) || first.set(root, i));
    for (const [root, i] of first) expect(root).toBe(i);
    // Deterministic: the same seed, the same clusters; another seed finds the same pairs here.
    expect([...minhashClusters(texts, { shingle: 2, permutations: 128, bands: 32, threshold: 0.6, seed: 42 }).root]).toEqual([...c.root]);
    expect([...minhashClusters(texts, { shingle: 2, permutations: 128, bands: 32, threshold: 0.6, seed: 7 }).root]).toEqual([...c.root]);
  });

  it("below the threshold is not a duplicate", () => {
    const { r, word, doc } = wordSource(9);
    const a = doc(200);
    const b = a.map((w) => (r() < 0.3 ? word() : w));
    const J = jaccard(a.join(" "), b.join(" "), 3);
    expect(J).toBeLessThan(0.4);
    expect([...minhashClusters([a.join(" "), b.join(" ")], { shingle: 3, permutations: 128, bands: 16, threshold: 0.8, seed: 42 }).root]).toEqual([0, 1]);
    expect([...minhashClusters([a.join(" "), b.join(" ")], { shingle: 3, permutations: 128, bands: 64, threshold: 0.1, seed: 42 }).root]).toEqual([0, 0]);
  });

  it("signatures grow past the first capacity", () => {
    const sb = new SignatureBuilder(2, 4, 1, 1);
    for (let i = 0; i < 5; i++) sb.add(i === 3 ? "" : `text number ${i} of five`);
    expect(sb.n).toBe(5);
    expect([...sb.empty.slice(0, 5)]).toEqual([0, 0, 0, 1, 0]);
    expect(sb.signatures.length).toBeGreaterThanOrEqual(20);
  });
});

describe("minhash_dedup stage", () => {
  const base = "the quick brown fox jumps over the lazy dog near the river bank while the farmer watches from his old wooden porch";
  const data = [
    { id: 1, text: base },
    { id: 2, text: "A completely different sentence about stock markets, interest rates and the price of tea in distant provinces" },
    { id: 3, text: base.toUpperCase() + "!" },
    { id: 4, text: base.replace("lazy", "sleepy") },
    { id: 5, text: "" },
    { id: 6, text: "" },
  ];

  it("keeps the first record of each cluster, drops the rest naming the kept record, counts clusters", async () => {
    const r = await runImpl(dedupImpls["minhash_dedup"]!, { field: "text", shingle: 3, permutations: 128, bands: 32, threshold: 0.7, seed: 42 }, { data });
    expect(r.records.map((x) => x["id"])).toEqual([1, 2, 5, 6]);
    expect(r.dropped.map((d) => [d.record["id"], d.reason, d.detail])).toEqual([
      [3, "near duplicate", "of record 1 (id 1)"],
      [4, "near duplicate", "of record 1 (id 1)"],
    ]);
    // Without an id, the kept record's first words.
    const noIds = data.map(({ text }) => ({ text }));
    const n = await runImpl(dedupImpls["minhash_dedup"]!, { field: "text", shingle: 3, permutations: 128, bands: 32, threshold: 0.7, seed: 42 }, { data: noIds });
    expect(n.dropped.map((d) => d.detail)).toEqual(['of record 1 ("the quick brown fox jumps over the lazy ...")', 'of record 1 ("the quick brown fox jumps over the lazy ...")']);
    expect(r.counts).toEqual({ kept: 4, "dropped: near duplicate": 2, clusters: 1, "largest cluster": 3, "LSH bands": 32, "LSH rows per band": 4 });
  });

  it("a field that is not text is an error naming the record", async () => {
    await expect(runImpl(dedupImpls["minhash_dedup"]!, { field: "text" }, { data: [{ text: "a" }, { text: { x: 1 } }] })).rejects.toThrow(/record 2/);
  });
});

/** The textbook all-pairs filter: every text against every kept one, full LCS table on string tokens. */
function naiveRougeDedup(texts: string[], max: number, against: string[]): number[] {
  const lcsF1 = (x: string[], y: string[]) => {
    if (x.length === 0 || y.length === 0) return 0;
    const t = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
    for (let i = 1; i <= x.length; i++) for (let j = 1; j <= y.length; j++) t[i]![j] = x[i - 1] === y[j - 1] ? t[i - 1]![j - 1]! + 1 : Math.max(t[i - 1]![j]!, t[i]![j - 1]!);
    const l = t[x.length]![y.length]!;
    return l === 0 ? 0 : (2 * (l / y.length) * (l / x.length)) / (l / y.length + l / x.length);
  };
  const pool = against.map(rougeTokens);
  const kept: number[] = [];
  texts.forEach((t, i) => {
    const x = rougeTokens(t);
    if (!pool.some((y) => lcsF1(x, y) > max)) {
      kept.push(i);
      pool.push(x);
    }
  });
  return kept;
}

describe("rouge_dedup with prefix filtering", () => {
  it("keeps exactly what the all-pairs filter keeps, for thresholds from 0 to 1", () => {
    const { r, word, doc } = wordSource(3, 300);
    const texts: string[] = [];
    for (let i = 0; i < 400; i++) {
      // Fresh texts, and edits of earlier ones (a word replaced, inserted or removed), so that many pairs sit near the threshold.
      if (i > 0 && r() < 0.5) {
        const w = rougeTokens(texts[Math.floor(r() * texts.length)]!);
        const k = Math.floor(r() * (w.length + 1));
        const op = r();
        if (op < 0.4) w.splice(k, 1, word());
        else if (op < 0.7) w.splice(k, 0, word());
        else w.splice(k, 1);
        texts.push(w.join(r() < 0.5 ? " " : ", "));
      } else texts.push(doc(1 + Math.floor(r() * 14)).join(" "));
    }
    const seeds = Array.from({ length: 20 }, () => doc(2 + Math.floor(r() * 10)).join(" "));
    for (const max of [0, 0.3, 0.5, 0.7, 0.8, 2 / 3, 0.9, 1]) expect(rougeDedup(texts, max, seeds), `max ${max}`).toEqual(naiveRougeDedup(texts, max, seeds));
  });

  it("a pair exactly at max is kept (F1 > max drops), as rouge_score's comparison", () => {
    // LCS 7 of 10 + 10 tokens: F1 exactly 0.7.
    const a = "a b c d e f g h i j";
    const b = "a b c d e f g x y z";
    const v = new Vocabulary();
    expect(rougeLF1(v.encode(rougeTokens(a)), v.encode(rougeTokens(b)))).toBeCloseTo(0.7, 12);
    expect(rougeDedup([a, b], 0.7)).toEqual(naiveRougeDedup([a, b], 0.7, []));
    expect(rougeDedup([a, b], 0.69)).toEqual([0]);
  });

  it("the stage names the record each dropped one is too similar to", async () => {
    const data = [{ instruction: "Give three tips for staying healthy." }, { instruction: "Name a color." }, { instruction: "Give three tips for staying healthy and fit." }, { instruction: "Translate this sentence into French." }];
    const r = await runImpl(dedupImpls["rouge_dedup"]!, { field: "instruction", max: 0.7, against: [{ $ref: "seeds" }] }, { data, "param:against[0]": [{ instruction: "Say hi." }, { instruction: "Translate the sentence into French." }] });
    expect(r.records.map((x) => x["instruction"])).toEqual(["Give three tips for staying healthy.", "Name a color."]);
    expect(r.dropped.map((d) => [d.reason, d.detail])).toEqual([
      ["ROUGE-L above max", "F1 0.857 with record 1"],
      ["ROUGE-L above max", "F1 0.800 with param:against[0] record 2"],
    ]);
  });
});

/** The LCS by the full table, the textbook way. */
function tableLcs(x: ArrayLike<unknown>, y: ArrayLike<unknown>): number {
  const t = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
  for (let i = 1; i <= x.length; i++) for (let j = 1; j <= y.length; j++) t[i]![j] = x[i - 1] === y[j - 1] ? t[i - 1]![j - 1]! + 1 : Math.max(t[i - 1]![j]!, t[i]![j - 1]!);
  return t[x.length]![y.length]!;
}

describe("the fast ROUGE-L path equals the straightforward computation", () => {
  it("bit-parallel LCS: the table's length on random sequences, repeated tokens, empty ones, across word boundaries", () => {
    const r = rng(23);
    const pattern = new LcsPattern();
    // Lengths around 32 and 64 bits (carries between words), alphabets from 1 token (all repeats) to 40.
    const lengths = [0, 1, 2, 31, 32, 33, 63, 64, 65, 96, 130];
    for (let k = 0; k < 3000; k++) {
      const alphabet = 1 + Math.floor(r() ** 2 * 40);
      const len = () => (r() < 0.3 ? lengths[Math.floor(r() * lengths.length)]! : Math.floor(r() * 50));
      const a = Int32Array.from({ length: len() }, () => Math.floor(r() * alphabet) * 7);
      const b = Int32Array.from({ length: len() }, () => Math.floor(r() * alphabet) * 7 + (r() < 0.1 ? 3 : 0));
      const want = tableLcs(a, b);
      expect(lcsLength(a, b), `${a} | ${b}`).toBe(want);
      expect(lcsLength(b, a)).toBe(want);
      // One pattern reused for many sequences, as rouge_dedup does: the previous pattern's masks must not leak.
      pattern.set(a);
      expect(pattern.lcs(b)).toBe(want);
      expect(pattern.lcs(a)).toBe(a.length);
    }
    pattern.set([5, 5, 5]);
    expect(pattern.lcs([1_000_000, 5, 9, 5])).toBe(2);
    expect(() => pattern.set([1, -1])).toThrow(RangeError);
  });

  it("rouge_dedup: the all-pairs filter's records, with repeated tokens, empty texts and thresholds exactly at pairs' F1", () => {
    const r = rng(29);
    const words = ["a", "b", "c", "d", "e", "f", "g", "h"];
    const texts: string[] = [];
    for (let i = 0; i < 300; i++) {
      const pick = r();
      if (pick < 0.05) texts.push(r() < 0.5 ? "" : "!!! ...");
      else if (pick < 0.45 && texts.length > 0) {
        // An edit of an earlier text: near the thresholds.
        const w = rougeTokens(texts[Math.floor(r() * texts.length)]!);
        const k = Math.floor(r() * (w.length + 1));
        if (r() < 0.5) w.splice(k, 1, words[Math.floor(r() * words.length)]!);
        else w.splice(k, 0, words[Math.floor(r() * words.length)]!);
        texts.push(w.join(" "));
      } else {
        // Few distinct words: most texts repeat tokens ("a b a a c"); some are long (several 32-bit words).
        const n = r() < 0.1 ? 30 + Math.floor(r() * 80) : 1 + Math.floor(r() * 12);
        const alphabet = 2 + Math.floor(r() * (words.length - 1));
        texts.push(Array.from({ length: n }, () => words[Math.floor(r() * alphabet)]).join(" "));
      }
    }
    const against = ["a b c", "", "a a a a b", "h g f e d c b a"];
    // Thresholds: round ones, and F1 values that pairs of these texts have exactly (a pair at max is kept).
    const v = new Vocabulary();
    const f1s = new Set<number>();
    for (let k = 0; k < 400; k++) {
      const x = texts[Math.floor(r() * texts.length)]!;
      const y = texts[Math.floor(r() * texts.length)]!;
      f1s.add(rougeLF1(v.encode(rougeTokens(x)), v.encode(rougeTokens(y))));
    }
    const thresholds = [0, 0.5, 0.7, 1, ...[...f1s].filter((f) => f > 0 && f < 1).slice(0, 25)];
    for (const max of thresholds) {
      const dups: [number, number, number][] = [];
      const kept = rougeDedup(texts, max, against, undefined, (i, q, f1) => dups.push([i, q, f1]));
      expect(kept, `max ${max}`).toEqual(naiveRougeDedup(texts, max, against));
      // Each dropped text names a pool text (against, then kept) whose F1 with it, by the table, is above max.
      const poolTexts = [...against, ...kept.map((i) => texts[i]!)];
      expect(dups.length).toBe(texts.length - kept.length);
      for (const [i, q, f1] of dups) {
        const x = rougeTokens(texts[i]!);
        const y = rougeTokens(poolTexts[q]!);
        const l = tableLcs(x, y);
        expect(f1).toBe((2 * (l / y.length) * (l / x.length)) / (l / y.length + l / x.length));
        expect(f1).toBeGreaterThan(max);
      }
    }
  });
});
