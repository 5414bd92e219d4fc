/**
 * Choosing the next token from a row of logits: greedy, temperature and nucleus (top-p) sampling with OpenAI-style
 * presence and frequency penalties, and the log-softmax that scoring needs. Everything is computed in float64 from
 * the model's float32 logits, so sums over a 100k-token vocabulary do not lose the small probabilities.
 */

export interface Sampling {
  /** 0 is greedy decoding (the highest logit, the lowest id on a tie). */
  readonly temperature: number;
  /** Keep the smallest set of most likely tokens whose probability reaches top_p (1 keeps all). */
  readonly top_p: number;
  /** Subtracted once from the logit of every token already generated (OpenAI's presence_penalty). */
  readonly presence_penalty?: number;
  /** Subtracted from a token's logit once per time it was generated (OpenAI's frequency_penalty). */
  readonly frequency_penalty?: number;
}

type Row = Float32Array | Float64Array;

/**
 * A seeded PRNG returning numbers in [0, 1): sfc32, its state filled by splitmix32 from the seed (any safe integer)
 * and a stream number, so that request i of a call gets its own sequence, whatever the other requests do.
 */
export function seededRandom(seed: number, stream = 0): () => number {
  let x = (Math.floor(seed / 4294967296) ^ Math.imul(stream, 0x9e3779b9)) >>> 0;
  const mix = (v: number) => {
    x = (x + v + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = mix(seed >>> 0);
  let b = mix(stream >>> 0);
  let c = mix(0);
  let d = 1;
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  // sfc32's recommended warm-up: the first outputs of a fresh state are still correlated with the seed.
  for (let i = 0; i < 12; i++) next();
  return () => next() / 4294967296;
}

/** Index of the largest value (the first on a tie); -1 for an empty row. */
export function argmax(row: Row): number {
  let best = -1;
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (v > max || best < 0) {
      max = v;
      best = i;
    }
  }
  return best;
}

/** log(sum(exp(row))), computed as max + log(sum(exp(row - max))) in float64. */
export function logSumExp(row: Row): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  return max + Math.log(sum);
}

/** The log-probabilities of a row of logits. */
export function logSoftmax(row: Row): Float64Array {
  const z = logSumExp(row);
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i]! - z;
  return out;
}

/** The row with the penalties applied for the tokens generated so far (the row itself when nothing changes). */
export function penalize(row: Row, s: Sampling, counts: ReadonlyMap<number, number>): Row {
  const presence = s.presence_penalty ?? 0;
  const frequency = s.frequency_penalty ?? 0;
  if ((presence === 0 && frequency === 0) || counts.size === 0) return row;
  const out = Float64Array.from(row);
  for (const [id, n] of counts) if (id < out.length) out[id] = out[id]! - presence - frequency * n;
  return out;
}

/**
 * The next token: greedy at temperature 0, else drawn from softmax(logits / temperature) restricted to the top-p
 * nucleus (tokens by decreasing probability, ties by id, up to and including the one whose cumulative probability
 * reaches top_p: HF's TopPLogitsWarper, keeping at least one). A tiny top_p is therefore greedy decoding.
 */
export function pickToken(row: Row, s: Sampling, random: () => number, counts: ReadonlyMap<number, number> = new Map()): number {
  const logits = penalize(row, s, counts);
  if (s.temperature === 0) return argmax(logits);
  const max = logits[argmax(logits)]!;
  const w = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += w[i] = Math.exp((logits[i]! - max) / s.temperature);
  if (s.top_p >= 1) return draw(w, total, random());
  const order = Array.from(w.keys()).filter((i) => w[i]! > 0);
  order.sort((i, j) => w[j]! - w[i]! || i - j);
  let kept = 0;
  let n = 0;
  while (n < order.length && (n === 0 || kept < s.top_p * total)) kept += w[order[n++]!]!;
  let u = random() * kept;
  for (let k = 0; k < n; k++) {
    u -= w[order[k]!]!;
    if (u < 0) return order[k]!;
  }
  return order[n - 1]!;
}

/** Inverse-CDF draw from unnormalized weights; rounding at the end falls on the last token with weight. */
function draw(w: Float64Array, total: number, r: number): number {
  let u = r * total;
  let last = 0;
  for (let i = 0; i < w.length; i++) {
    if (w[i]! <= 0) continue;
    last = i;
    u -= w[i]!;
    if (u < 0) return i;
  }
  return last;
}
