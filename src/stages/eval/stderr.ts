// Standard errors as lm-evaluation-harness reports them (lm_eval/api/metrics.py): a metric that is a mean of
// per-example scores has the standard error of the mean, the sample standard deviation (n - 1) over sqrt(n).

/** The arithmetic mean; NaN for no values. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (Bessel's correction); NaN below two values, as the reference divides by n - 1. */
export function sampleStddev(xs: readonly number[]): number {
  if (xs.length < 2) return Number.NaN;
  const mu = mean(xs);
  let ss = 0;
  for (const x of xs) ss += (x - mu) ** 2;
  return Math.sqrt(ss / (xs.length - 1));
}

/** Standard error of the mean: `sample_stddev(xs) / sqrt(n)` (lm-eval's `mean_stderr`). */
export function meanStderr(xs: readonly number[]): number {
  return sampleStddev(xs) / Math.sqrt(xs.length);
}

/** A mean with its standard error and count, the shape every reported metric takes. */
export interface MeanWithStderr {
  readonly value: number;
  readonly stderr: number;
  readonly n: number;
}

export function meanWithStderr(xs: readonly number[]): MeanWithStderr {
  return { value: mean(xs), stderr: meanStderr(xs), n: xs.length };
}

/** Booleans as 0/1 scores. */
export function asScores(xs: readonly boolean[]): number[] {
  return xs.map((x) => (x ? 1 : 0));
}
