/**
 * MinHash-LSH near-duplicate detection, as pure functions over texts and signatures (the `minhash_dedup` stage
 * reads records, feeds their texts through these and drops what {@link clusterSignatures} says).
 *
 * - Shingles: the text's words (lowercased; a word is a run of letters, digits and marks), every `shingle`
 *   consecutive words hashed to 32 bits (murmur3's mixing over per-word FNV-1a hashes). A text shorter than
 *   `shingle` words is one shingle of all its words, so short texts still compare; a text without words has none
 *   and is never a duplicate.
 * - Signature: for each of `permutations` hash functions h_p(x) = (x xor s_p) x a_p mod 2^32 (a bijection of the
 *   32-bit integers for seeded s_p and odd a_p), the smallest value over the shingles. Signatures of all texts lie
 *   in one Uint32Array.
 * - LSH: the first bands x rows values of the signature are cut into `bands` bands of `rows` values (by default the
 *   banding datasketch would choose for the threshold: see lsh-bands.ts; values past bands x rows are not
 *   banded); texts whose band hashes agree in some band are candidates; a candidate pair is a duplicate when the
 *   share of equal signature values over the whole signature (the estimated Jaccard similarity) is at least
 *   `threshold`.
 * - Clusters, two ways: union-find joins duplicates of duplicates into one cluster (a chain of texts, each like the
 *   next, is one cluster), or "kept record": each text is compared with the texts kept so far only and joins the
 *   most similar one, so every dropped text is itself similar to the text named for it. Either way each cluster keeps
 *   its first text (input order).
 */

import { resolveBanding, type Banding } from "./lsh-bands.js";

/** murmur3's finalizer: a bijection of 32-bit integers that mixes every input bit into every output bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** One murmur3 block step: folds a 32-bit value into the running hash. */
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

// Whether a UTF-16 code unit outside ASCII belongs to a word (0: not yet known, 1: yes, 2: no). Surrogates are
// word characters: an astral character is rarely punctuation, and this keeps the scan one unit at a time.
const WORD_CHAR = /[\p{L}\p{N}\p{M}]/u;
const nonAscii = new Uint8Array(65536);
function isWordUnit(c: number): boolean {
  if (c < 128) return (c >= 97 && c <= 122) || (c >= 48 && c <= 57);
  if (c >= 0xd800 && c <= 0xdfff) return true;
  let v = nonAscii[c]!;
  if (v === 0) nonAscii[c] = v = WORD_CHAR.test(String.fromCharCode(c)) ? 1 : 2;
  return v === 1;
}

let words = new Int32Array(1024);

/**
 * The 32-bit hashes of a text's word shingles (a multiset: a repeated shingle repeats; MinHash does not mind).
 * Words are hashed from the lowercased text's UTF-16 units without making substrings.
 */
export function shingleHashes(text: string, shingle: number): Int32Array {
  const t = text.toLowerCase();
  let n = 0;
  let h = 0x811c9dc5;
  let inWord = false;
  for (let i = 0; i <= t.length; i++) {
    const c = i < t.length ? t.charCodeAt(i) : 32;
    if (isWordUnit(c)) {
      h = Math.imul(h ^ c, 0x01000193);
      inWord = true;
    } else if (inWord) {
      if (n === words.length) {
        const w = new Int32Array(n * 2);
        w.set(words);
        words = w;
      }
      words[n++] = h;
      h = 0x811c9dc5;
      inWord = false;
    }
  }
  if (n === 0) return new Int32Array(0);
  const k = Math.min(shingle, n);
  const out = new Int32Array(n - k + 1);
  for (let i = 0; i + k <= n; i++) {
    let s = k;
    for (let j = 0; j < k; j++) s = mix(s, words[i + j]!);
    out[i] = fmix32(s ^ k) | 0;
  }
  return out;
}

/** The hash permutations of a signature: h_p(x) = ((x xor xor_p) x mul_p) mod 2^32, mul_p odd. */
export interface Permutations {
  readonly xor: Int32Array;
  readonly mul: Int32Array;
}

/** The permutations for a seed, from a splitmix32 sequence: the same seed gives the same permutations. */
export function permutations(count: number, seed: number): Permutations {
  const xor = new Int32Array(count);
  const mul = new Int32Array(count);
  let x = (seed ^ 0x5bd1e995) | 0;
  for (let p = 0; p < count; p++) {
    x = (x + 0x9e3779b9) | 0;
    xor[p] = fmix32(x) | 0;
    x = (x + 0x9e3779b9) | 0;
    mul[p] = fmix32(x) | 1;
  }
  return { xor, mul };
}

/**
 * Writes the MinHash signature of the shingles at `sigs[offset .. offset + count)`. A multiplication by an odd
 * number is a bijection of the 32-bit integers; the shingle hashes are well mixed already, so one multiply per
 * permutation orders them as independently as a full mixing function would (the estimates stay within the binomial
 * spread: see test/dedup.test.ts), at a third of the cost. Minima are taken in signed order, as good an order as any
 * for MinHash. Four permutations per pass over the shingles: independent multiplications the CPU overlaps.
 */
export function signatureInto(shingles: Int32Array, perms: Permutations, sigs: Uint32Array, offset: number): void {
  const m = shingles.length;
  const { xor, mul } = perms;
  let p = 0;
  for (; p + 4 <= xor.length; p += 4) {
    const x0 = xor[p]!;
    const x1 = xor[p + 1]!;
    const x2 = xor[p + 2]!;
    const x3 = xor[p + 3]!;
    const a0 = mul[p]!;
    const a1 = mul[p + 1]!;
    const a2 = mul[p + 2]!;
    const a3 = mul[p + 3]!;
    let m0 = 0x7fffffff;
    let m1 = 0x7fffffff;
    let m2 = 0x7fffffff;
    let m3 = 0x7fffffff;
    for (let i = 0; i < m; i++) {
      const x = shingles[i]!;
      const h0 = Math.imul(x ^ x0, a0);
      const h1 = Math.imul(x ^ x1, a1);
      const h2 = Math.imul(x ^ x2, a2);
      const h3 = Math.imul(x ^ x3, a3);
      if (h0 < m0) m0 = h0;
      if (h1 < m1) m1 = h1;
      if (h2 < m2) m2 = h2;
      if (h3 < m3) m3 = h3;
    }
    sigs[offset + p] = m0;
    sigs[offset + p + 1] = m1;
    sigs[offset + p + 2] = m2;
    sigs[offset + p + 3] = m3;
  }
  for (; p < xor.length; p++) {
    const xp = xor[p]!;
    const ap = mul[p]!;
    let min = 0x7fffffff;
    for (let i = 0; i < m; i++) {
      const h = Math.imul(shingles[i]! ^ xp, ap);
      if (h < min) min = h;
    }
    sigs[offset + p] = min;
  }
}

/** The estimated Jaccard similarity of texts i and j: the share of their signature values that are equal. */
export function estimatedJaccard(sigs: Uint32Array, permutations: number, i: number, j: number): number {
  let eq = 0;
  const a = i * permutations;
  const b = j * permutations;
  for (let p = 0; p < permutations; p++) if (sigs[a + p] === sigs[b + p]) eq++;
  return eq / permutations;
}

/** How duplicates make clusters: see the module's comment. */
export type Clustering = "union_find" | "kept_record";

export interface ClusterOptions {
  readonly permutations: number;
  /** Bands and signature values per band: see resolveBanding (default: the optimal banding for the threshold). */
  readonly bands?: number;
  readonly rows?: number;
  readonly threshold: number;
  /** Default union_find. */
  readonly clustering?: Clustering;
  /** Distinct clusters one bucket holds at most (default MAX_BUCKET; Infinity: no cap, to measure what the cap changes). */
  readonly maxBucket?: number;
  /** Called now and then with the work done and the work in all (band x text steps), e.g. to check for interruption. */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface Clusters {
  /** For each text, the first text (input order) of its cluster: itself when kept. */
  readonly root: Int32Array;
  /** Clusters of two or more texts. */
  readonly clusters: number;
  /** Size of the largest cluster (1 when nothing is duplicated, 0 for no texts). */
  readonly largest: number;
  /** Candidate pairs compared (signatures checked against the threshold). */
  readonly compared: number;
  /** Texts not added to a full bucket (see MAX_BUCKET): a sign of many texts sharing long boilerplate. */
  readonly overflows: number;
}

/**
 * How many distinct clusters one LSH bucket holds at most. Texts that share a band but are not similar (a common
 * boilerplate) would otherwise make every newcomer compare against all of them: quadratic time. Past the cap a
 * text is still compared with the bucket's members, but not added to it.
 */
export const MAX_BUCKET = 64;

function banding(o: ClusterOptions): Banding {
  return resolveBanding(o.permutations, o.threshold, o.bands, o.rows);
}

/** The hash of band b of text i: 30 bits (small integers are the Map's fast keys; a collision only costs a comparison). */
function bandKey(sigs: Uint32Array, permutations: number, rows: number, i: number, b: number): number {
  let key = rows;
  const base = i * permutations + b * rows;
  for (let r = 0; r < rows; r++) key = mix(key, sigs[base + r]!);
  return fmix32(key) >>> 2;
}

/** Equal signature values needed for a duplicate; the small margin keeps a ratio that is exactly the threshold in. */
function needed(threshold: number, permutations: number): number {
  return Math.max(1, Math.ceil(threshold * permutations - 1e-9));
}

/** Clusters' sizes from each text's root. */
function summarize(root: Int32Array, compared: number, overflows: number): Clusters {
  const n = root.length;
  const size = new Int32Array(n);
  for (let i = 0; i < n; i++) size[root[i]!]!++;
  let clusters = 0;
  let largest = 0;
  for (let i = 0; i < n; i++) {
    if (size[i]! >= 2) clusters++;
    if (size[i]! > largest) largest = size[i]!;
  }
  return { root, clusters, largest, compared, overflows };
}

/** Clusters of near-duplicates among `n` signatures (`empty[i]`: text i has no words). Deterministic for given signatures. */
export function clusterSignatures(sigs: Uint32Array, n: number, empty: Uint8Array, o: ClusterOptions): Clusters {
  return (o.clustering ?? "union_find") === "union_find" ? unionFindClusters(sigs, n, empty, o) : keptRecordClusters(sigs, n, empty, o);
}

/**
 * Union-find. Bands are processed one after another, so one Map (band hash -> the latest text of the bucket, the
 * others chained through `next`) is alive at a time. A bucket holds one member per cluster: a text that joins (or
 * already belongs to) the cluster of a member is not added, so copies of one text do not pile up.
 */
function unionFindClusters(sigs: Uint32Array, n: number, empty: Uint8Array, o: ClusterOptions): Clusters {
  const { permutations, threshold } = o;
  const { bands, rows } = banding(o);
  const maxBucket = o.maxBucket ?? MAX_BUCKET;
  const need = needed(threshold, permutations);
  const parent = new Int32Array(n);
  for (let i = 0; i < n; i++) parent[i] = i;
  const find = (i: number): number => {
    while (parent[i] !== i) {
      const g = parent[parent[i]!]!;
      parent[i] = g;
      i = g;
    }
    return i;
  };
  const similar = (i: number, j: number): boolean => {
    const a = i * permutations;
    const b = j * permutations;
    let eq = 0;
    for (let p = 0; p < permutations; p++) {
      if (sigs[a + p] === sigs[b + p]) {
        if (++eq >= need) return true;
      } else if (eq + permutations - p - 1 < need) return false;
    }
    return false;
  };
  const next = new Int32Array(n);
  const depth = new Int32Array(n);
  let compared = 0;
  let overflows = 0;
  for (let b = 0; b < bands; b++) {
    const heads = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      if ((i & 4095) === 0) o.onProgress?.(b * n + i, bands * n);
      if (empty[i]) continue;
      const key = bandKey(sigs, permutations, rows, i, b);
      const head = heads.get(key);
      let represented = false;
      if (head !== undefined) {
        for (let j = head; j >= 0; j = next[j]!) {
          const rj = find(j);
          const ri = find(i);
          if (rj === ri) {
            represented = true;
            continue;
          }
          compared++;
          if (similar(i, j)) {
            // The cluster's root is its first text.
            if (ri < rj) parent[rj] = ri;
            else parent[ri] = rj;
            represented = true;
          }
        }
      }
      if (represented) continue;
      const d = head === undefined ? 0 : depth[head]!;
      if (d >= maxBucket) {
        overflows++;
        continue;
      }
      next[i] = head ?? -1;
      depth[i] = d + 1;
      heads.set(key, i);
    }
  }
  o.onProgress?.(bands * n, bands * n);
  const root = new Int32Array(n);
  for (let i = 0; i < n; i++) root[i] = find(i);
  return summarize(root, compared, overflows);
}

/**
 * Kept record: texts in input order; a text's candidates are the kept texts sharing one of its bands; it joins
 * the candidate with the most equal signature values at or above the threshold (the first kept on a tie), or is
 * kept. Buckets hold kept texts only. First each (band, text) gets a dense bucket number (one Map alive at a time,
 * as union-find), then buckets are chains through typed arrays: 16 bytes per band and text.
 */
function keptRecordClusters(sigs: Uint32Array, n: number, empty: Uint8Array, o: ClusterOptions): Clusters {
  const { permutations, threshold } = o;
  const { bands, rows } = banding(o);
  const maxBucket = o.maxBucket ?? MAX_BUCKET;
  const need = needed(threshold, permutations);
  // bucket[i * bands + b]: the number of text i's bucket in band b (all bands' buckets numbered together).
  const bucket = new Int32Array(n * bands);
  let buckets = 0;
  for (let b = 0; b < bands; b++) {
    const ids = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      if ((i & 4095) === 0) o.onProgress?.(b * n + i, 2 * bands * n);
      if (empty[i]) continue;
      const key = bandKey(sigs, permutations, rows, i, b);
      let id = ids.get(key);
      if (id === undefined) ids.set(key, (id = buckets++));
      bucket[i * bands + b] = id;
    }
  }
  const head = new Int32Array(buckets).fill(-1);
  const size = new Int32Array(buckets);
  // next[i * bands + b]: the kept text before i in its band-b bucket.
  const next = new Int32Array(n * bands);
  // seen[j] === i + 1: kept text j was already compared with text i (they may share several bands).
  const seen = new Int32Array(n);
  const root = new Int32Array(n);
  let compared = 0;
  let overflows = 0;
  for (let i = 0; i < n; i++) {
    if ((i & 4095) === 0) o.onProgress?.(bands * n + i * bands, 2 * bands * n);
    root[i] = i;
    if (empty[i]) continue;
    let best = -1;
    let bestEq = need - 1;
    const a = i * permutations;
    for (let b = 0; b < bands; b++) {
      for (let j = head[bucket[i * bands + b]!]!; j >= 0; j = next[j * bands + b]!) {
        if (seen[j] === i + 1) continue;
        seen[j] = i + 1;
        compared++;
        // Equal values, given up as soon as they cannot reach the best so far (or the threshold).
        const bar = Math.max(need, bestEq);
        const c = j * permutations;
        let eq = 0;
        for (let p = 0; p < permutations; p++) {
          if (sigs[a + p] === sigs[c + p]) eq++;
          else if (eq + permutations - p - 1 < bar) break;
        }
        if (eq > bestEq || (eq === bestEq && eq >= need && j < best)) {
          bestEq = eq;
          best = j;
        }
      }
    }
    if (best >= 0) {
      root[i] = best;
      continue;
    }
    for (let b = 0; b < bands; b++) {
      const id = bucket[i * bands + b]!;
      if (size[id]! >= maxBucket) {
        overflows++;
        continue;
      }
      next[i * bands + b] = head[id]!;
      head[id] = i;
      size[id]!++;
    }
  }
  o.onProgress?.(2 * bands * n, 2 * bands * n);
  return summarize(root, compared, overflows);
}

export interface MinhashOptions extends Omit<ClusterOptions, "onProgress"> {
  readonly shingle: number;
  readonly seed: number;
}

/**
 * Signatures of texts given one at a time, in one growing Uint32Array (4 x permutations bytes per text: the texts
 * themselves are not kept).
 */
export class SignatureBuilder {
  private sigs: Uint32Array;
  private empties: Uint8Array;
  private readonly perms: Permutations;
  n = 0;
  constructor(
    private readonly shingle: number,
    private readonly count: number,
    seed: number,
    capacity = 1024,
  ) {
    this.perms = permutations(count, seed);
    this.sigs = new Uint32Array(Math.max(1, capacity) * count);
    this.empties = new Uint8Array(Math.max(1, capacity));
  }
  add(text: string): void {
    if (this.n === this.empties.length) {
      const sigs = new Uint32Array(this.sigs.length * 2);
      sigs.set(this.sigs);
      this.sigs = sigs;
      const e = new Uint8Array(this.empties.length * 2);
      e.set(this.empties);
      this.empties = e;
    }
    const sh = shingleHashes(text, this.shingle);
    if (sh.length === 0) this.empties[this.n] = 1;
    else signatureInto(sh, this.perms, this.sigs, this.n * this.count);
    this.n++;
  }
  get signatures(): Uint32Array {
    return this.sigs;
  }
  get empty(): Uint8Array {
    return this.empties;
  }
}

/** Near-duplicate clusters of texts: signatures, then LSH and clusters. */
export function minhashClusters(texts: Iterable<string>, o: MinhashOptions & { readonly onProgress?: (done: number, total: number) => void }): Clusters {
  const sb = new SignatureBuilder(o.shingle, o.permutations, o.seed);
  for (const t of texts) sb.add(t);
  return clusterSignatures(sb.signatures, sb.n, sb.empty, o);
}
