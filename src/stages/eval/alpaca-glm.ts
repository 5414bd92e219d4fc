// AlpacaEval 2's length-controlled win rate (tatsu-lab/alpaca_eval metrics/glm_winrate.py, GLM
// "length_controlled_v1"): a logistic model of the judge's preference for the model over the baseline,
//   logit P(model wins) = w_len * tanh(std_delta_len) + w_diff * instruction_difficulty + w_model
// (the formula `np.tanh(std_delta_len) + instruction_difficulty + not_gamed_baseline.astype(float) - 1`, no
// intercept), fitted to the preferences as soft labels (preference - 1 in [0, 1]); the length-controlled win rate is
// the mean predicted preference with the length term at 0. std_delta_len is (baseline length - model length) over
// its sample standard deviation, lengths in characters.
//
// Simplifications, all forced by running offline on one model: the reference takes each instruction's difficulty
// from a table fitted on its leaderboard (df_gamed.csv, downloaded at run time) and regularizes towards the baseline
// with annotations of two "gamed" baselines from that table (lambda 0.2); it fits with scikit-learn's
// LogisticRegressionCV (L1, liblinear, 5 group folds over C). Here difficulties are an input (omitted: the term is
// dropped, which is the reference's "length_controlled_minimal" GLM), there is no gamed-baseline data, and the fit is
// Newton's method on the same soft-label log-loss with a small L2 penalty (default 1e-3) that keeps it finite when
// the model always wins or always loses.
import { mean, sampleStddev } from "./stderr.js";

export interface AlpacaGlmRow {
  /** The model-oriented preference in [1, 2] (1 = baseline wins, 2 = model wins); NaN when the judge gave none. */
  readonly preference: number;
  /** Characters of the baseline's output (output_1). */
  readonly baselineLength: number;
  /** Characters of the model's output (output_2). */
  readonly modelLength: number;
  /** The instruction's difficulty (alpaca_eval's instruction_difficulty.csv), when known. */
  readonly difficulty?: number;
}

export interface LengthControlled {
  /** Percent. */
  readonly length_controlled_winrate: number;
  /** Percent: the standard error of the mean predicted preference, as the reference reports it (0 without difficulties). */
  readonly lc_standard_error: number;
  /** Percent: the standard error of the length-controlled win rate from the fit's uncertainty (sandwich estimator, delta method). */
  readonly lc_standard_error_fit: number;
  readonly weights: { readonly length: number; readonly difficulty: number; readonly model: number };
  readonly n: number;
}

export interface GlmOptions {
  /** L2 penalty on the weights (default 1e-3). */
  readonly l2?: number;
}

const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/** Solves A x = b for a small symmetric positive definite A (Gaussian elimination with partial pivoting). */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = M[r]![c]! / M[c]![c]!;
      for (let k = c; k <= n; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= M[r]![k]! * x[k]!;
    x[r] = s / M[r]![r]!;
  }
  return x;
}

/**
 * Weights minimizing the soft-label log-loss sum_i -(y_i log p_i + (1 - y_i) log(1 - p_i)) + l2/2 |w|^2 with
 * p_i = sigmoid(x_i . w), by Newton's method. Returns the weights and the Hessian at them.
 */
export function fitSoftLogistic(X: readonly (readonly number[])[], y: readonly number[], l2 = 1e-3): { w: number[]; hessian: number[][] } {
  const d = X[0]?.length ?? 0;
  let w = new Array<number>(d).fill(0);
  let hessian: number[][] = [];
  for (let iter = 0; iter < 100; iter++) {
    const g = w.map((wi) => l2 * wi);
    hessian = Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? l2 : 0)));
    X.forEach((x, i) => {
      const p = sigmoid(x.reduce((s, v, k) => s + v * w[k]!, 0));
      const r = p - y[i]!;
      const s = p * (1 - p);
      for (let a = 0; a < d; a++) {
        g[a]! += r * x[a]!;
        for (let b = 0; b < d; b++) hessian[a]![b]! += s * x[a]! * x[b]!;
      }
    });
    const step = solve(hessian, g);
    w = w.map((wi, k) => wi - step[k]!);
    if (Math.max(...step.map(Math.abs)) < 1e-12) break;
  }
  return { w, hessian };
}

/** The length-controlled win rate of the model over the baseline. */
export function lengthControlledWinRate(rows: readonly AlpacaGlmRow[], opts: GlmOptions = {}): LengthControlled {
  const l2 = opts.l2 ?? 1e-3;
  const delta = rows.map((r) => r.baselineLength - r.modelLength);
  const sd = sampleStddev(delta);
  const stdDelta = delta.map((x) => (sd > 0 ? x / sd : 0));
  const withDifficulty = rows.some((r) => (r.difficulty ?? 0) !== 0);
  const features = (r: AlpacaGlmRow, s: number) => (withDifficulty ? [Math.tanh(s), r.difficulty ?? 0, 1] : [Math.tanh(s), 1]);
  const train = rows.flatMap((r, i) => (Number.isNaN(r.preference) ? [] : [{ x: features(r, stdDelta[i]!), y: r.preference - 1 }]));
  for (const t of train) if (t.y < 0 || t.y > 1) throw new RangeError(`preference ${t.y + 1} is outside [1, 2]`);
  if (train.length === 0) throw new RangeError("no preferences to fit the length-controlled win rate to");
  const { w, hessian } = fitSoftLogistic(
    train.map((t) => t.x),
    train.map((t) => t.y),
    l2,
  );
  // Predictions for every instruction (the reference predicts all rows, judged or not) with the length term at 0.
  const test = rows.map((r) => features(r, 0));
  const predicted = test.map((x) => sigmoid(x.reduce((s, v, k) => s + v * w[k]!, 0)));
  // Sandwich covariance H^-1 B H^-1 (B: outer products of per-row gradients), then the delta method on the mean.
  const d = w.length;
  const B = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  for (const t of train) {
    const r = sigmoid(t.x.reduce((s, v, k) => s + v * w[k]!, 0)) - t.y;
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) B[a]![b]! += r * r * t.x[a]! * t.x[b]!;
  }
  const grad = new Array<number>(d).fill(0);
  test.forEach((x, i) => {
    const s = predicted[i]! * (1 - predicted[i]!);
    for (let a = 0; a < d; a++) grad[a]! += (s * x[a]!) / test.length;
  });
  const u = solve(hessian, grad);
  const Bu = B.map((row) => row.reduce((s, v, k) => s + v * u[k]!, 0));
  const variance = u.reduce((s, v, k) => s + v * Bu[k]!, 0);
  return {
    length_controlled_winrate: mean(predicted) * 100,
    lc_standard_error: (sampleStddev(predicted) / Math.sqrt(predicted.length)) * 100,
    lc_standard_error_fit: Math.sqrt(Math.max(variance, 0)) * 100,
    weights: { length: w[0]!, difficulty: withDifficulty ? w[1]! : 0, model: w[d - 1]! },
    n: train.length,
  };
}
