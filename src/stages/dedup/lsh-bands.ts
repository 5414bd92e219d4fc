/**
 * How a MinHash LSH index cuts its signature into bands, and what a banding catches: pure functions of the
 * threshold and the signature length.
 *
 * Two texts of Jaccard similarity s agree on one signature value with probability s, on a band of r values with
 * probability s^r, and become candidates (agree on some band of b) with probability P(s) = 1 - (1 - s^r)^b: the
 * S-curve. The banding is chosen as datasketch's MinHashLSH chooses it (`_optimal_param`): over every b >= 1 and
 * r >= 1 with b x r <= the signature length (values past b x r are not banded), the one that minimizes
 *   w_fp x (area under P from 0 to the threshold) + w_fn x (area above P from the threshold to 1),
 * the first found in the order b = 1, 2, ..., then r = 1, 2, ... when two are equal.
 */

/** A banding: `bands` bands of `rows` signature values each (the first bands x rows values are banded). */
export interface Banding {
  readonly bands: number;
  readonly rows: number;
}

/** The S-curve: the probability that texts of Jaccard similarity s share at least one of `bands` bands of `rows`. */
export function candidateProbability(s: number, bands: number, rows: number): number {
  return 1 - (1 - s ** rows) ** bands;
}

/** Gauss-Legendre nodes and weights on [-1, 1] for m points (Newton's method on the Legendre recurrence). */
function gaussLegendre(m: number): { x: Float64Array; w: Float64Array } {
  const x = new Float64Array(m);
  const w = new Float64Array(m);
  for (let i = 0; i < Math.ceil(m / 2); i++) {
    let z = Math.cos((Math.PI * (i + 0.75)) / (m + 0.5));
    let dp = 1;
    for (let it = 0; it < 100; it++) {
      let p1 = 1;
      let p2 = 0;
      for (let j = 1; j <= m; j++) {
        const p3 = p2;
        p2 = p1;
        p1 = ((2 * j - 1) * z * p2 - (j - 1) * p3) / j;
      }
      dp = (m * (z * p1 - p2)) / (z * z - 1);
      const z1 = z;
      z = z1 - p1 / dp;
      if (Math.abs(z - z1) < 1e-15) break;
    }
    x[i] = -z;
    x[m - 1 - i] = z;
    w[i] = w[m - 1 - i] = 2 / ((1 - z * z) * dp * dp);
  }
  return { x, w };
}

const rules = new Map<number, { x: Float64Array; w: Float64Array }>();

/**
 * The integral of f over [a, b], exact (to rounding) for a polynomial f of degree below 2m: Gauss-Legendre with m
 * nodes. The S-curve of b bands of r rows is a polynomial of degree b x r, so m = (degree + 1) / 2 integrates it
 * exactly, however steep it is.
 */
function integrate(f: (x: number) => number, a: number, b: number, degree: number): number {
  if (b <= a) return 0;
  const m = Math.max(1, Math.ceil((degree + 1) / 2));
  let rule = rules.get(m);
  if (!rule) rules.set(m, (rule = gaussLegendre(m)));
  const half = (b - a) / 2;
  const mid = (a + b) / 2;
  let sum = 0;
  for (let i = 0; i < m; i++) sum += rule.w[i]! * f(mid + half * rule.x[i]!);
  return sum * half;
}

/** The area under the S-curve below the threshold: the weight of pairs that become candidates though dissimilar. */
export function falsePositiveArea(threshold: number, b: Banding, degree = b.bands * b.rows): number {
  return integrate((s) => candidateProbability(s, b.bands, b.rows), 0, threshold, degree);
}

/** The area above the S-curve from the threshold to 1: the weight of similar pairs that never become candidates. */
export function falseNegativeArea(threshold: number, b: Banding, degree = b.bands * b.rows): number {
  return integrate((s) => 1 - candidateProbability(s, b.bands, b.rows), threshold, 1, degree);
}

/**
 * The banding for a threshold and a signature of `permutations` values that minimizes the weighted false-positive
 * and false-negative areas (weights 0.5 and 0.5 by default, as datasketch's). A grid search over about
 * permutations x ln(permutations) bandings, each integrated exactly with at most permutations / 2 + 1 nodes.
 */
export function optimalBanding(threshold: number, permutations: number, weights: { falsePositive: number; falseNegative: number } = { falsePositive: 0.5, falseNegative: 0.5 }): Banding {
  if (!(threshold >= 0 && threshold <= 1)) throw new RangeError(`threshold must be between 0 and 1, not ${threshold}`);
  if (!Number.isInteger(permutations) || permutations < 1) throw new RangeError(`permutations must be a positive whole number, not ${permutations}`);
  let best: Banding = { bands: 1, rows: permutations };
  let bestError = Infinity;
  for (let bands = 1; bands <= permutations; bands++) {
    for (let rows = 1; rows * bands <= permutations; rows++) {
      const b = { bands, rows };
      // One rule for all (exact up to degree `permutations`): computing a rule per degree would cost more.
      const error = weights.falsePositive * falsePositiveArea(threshold, b, permutations) + weights.falseNegative * falseNegativeArea(threshold, b, permutations);
      if (error < bestError) {
        bestError = error;
        best = b;
      }
    }
  }
  return best;
}

/**
 * The probability that a pair of Jaccard similarity s is reported as a duplicate by LSH over a signature of
 * `permutations` values, for ideal (independent) hash permutations: it agrees on all rows of some band AND at least
 * ceil(threshold x permutations) of its values agree. An exact sum over the bands (a distribution of the number of
 * agreeing values so far, with and without a whole band yet), so the estimate's spread near the threshold is in it
 * as well as the S-curve.
 */
export function detectionProbability(s: number, permutations: number, banding: Banding, threshold: number): number {
  const { bands, rows } = banding;
  if (bands * rows > permutations) throw new RangeError(`${bands} bands of ${rows} rows need ${bands * rows} values; the signature has ${permutations}`);
  const need = Math.max(1, Math.ceil(threshold * permutations - 1e-9));
  // notYet[k] / already[k]: probability of k agreeing values so far, without / with a whole agreeing band.
  let notYet = new Float64Array(permutations + 1);
  let already = new Float64Array(permutations + 1);
  notYet[0] = 1;
  const band = binomialPmf(rows, s);
  let used = 0;
  for (let b = 0; b < bands; b++) {
    const n1 = new Float64Array(permutations + 1);
    const a1 = new Float64Array(permutations + 1);
    for (let k = 0; k <= used; k++) {
      const x = notYet[k]!;
      const y = already[k]!;
      if (x === 0 && y === 0) continue;
      for (let m = 0; m <= rows; m++) {
        const p = band[m]!;
        if (m === rows) a1[k + m] = a1[k + m]! + (x + y) * p;
        else {
          n1[k + m] = n1[k + m]! + x * p;
          a1[k + m] = a1[k + m]! + y * p;
        }
      }
    }
    notYet = n1;
    already = a1;
    used += rows;
  }
  // The values past the bands count towards the estimate only.
  const rest = binomialPmf(permutations - used, s);
  let found = 0;
  for (let k = 0; k <= used; k++) {
    const y = already[k]!;
    if (y === 0) continue;
    for (let m = 0; m < rest.length; m++) if (k + m >= need) found += y * rest[m]!;
  }
  return Math.min(1, found);
}

/** P(k successes in n trials of probability p), k = 0..n. */
function binomialPmf(n: number, p: number): Float64Array {
  const out = new Float64Array(n + 1);
  out[0] = 1;
  for (let i = 0; i < n; i++) {
    for (let k = i + 1; k >= 1; k--) out[k] = out[k]! * (1 - p) + out[k - 1]! * p;
    out[0] = out[0]! * (1 - p);
  }
  return out;
}

/**
 * The banding a stage uses: `bands` (and `rows`) where given, rows defaulting to as many as fit
 * (permutations / bands, rounded down), bands defaulting likewise from rows; else the optimal banding for the
 * threshold. `chosen` says whether it came from the threshold.
 */
export function resolveBanding(permutations: number, threshold: number, bands?: number, rows?: number): Banding & { readonly chosen: boolean } {
  if (bands === undefined && rows === undefined) return { ...optimalBanding(threshold, permutations), chosen: true };
  const b = bands ?? Math.floor(permutations / rows!);
  const r = rows ?? Math.floor(permutations / b);
  if (!Number.isInteger(b) || !Number.isInteger(r) || b < 1 || r < 1 || b * r > permutations) {
    throw new RangeError(`${b} bands of ${r} rows need ${b * r} signature values; the signature has ${permutations}`);
  }
  return { bands: b, rows: r, chosen: false };
}
