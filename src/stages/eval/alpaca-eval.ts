// AlpacaEval pairwise judging and its win rate (tatsu-lab/alpaca_eval): the judge prompt filled as
// utils.make_prompts fills it and split into chat messages as utils.prompt_to_chatml splits it; the judge's answer
// read as a preference; each instruction judged in both orders (baseline first, then model first) and the two
// preferences averaged, which cancels the judge's position bias (the reference instead randomizes the order per
// instruction); the win rate and its standard error as metrics/helpers.py describe_head2head computes them.
import { ALPACA_EVAL_JUDGE_TEMPLATE } from "./alpaca-eval-prompt.js";
import { mean, sampleStddev } from "./stderr.js";

export interface AlpacaJudgeMessage {
  readonly role: "system" | "user";
  readonly content: string;
}

export interface AlpacaJudgePrompt {
  /** The filled template (ChatML text). */
  readonly text: string;
  readonly messages: readonly AlpacaJudgeMessage[];
}

/**
 * The judge prompt for `instruction` with `output1` shown as "m" and `output2` as "M". Each placeholder's first
 * occurrence is replaced in turn ({instruction}, {output_1}, {output_2}), as make_prompts does.
 */
export function alpacaJudgePrompt(instruction: string, output1: string, output2: string): AlpacaJudgePrompt {
  let text = ALPACA_EVAL_JUDGE_TEMPLATE;
  for (const [key, value] of [["instruction", instruction], ["output_1", output1], ["output_2", output2]] as const) {
    const at = text.indexOf(`{${key}}`);
    if (at >= 0) text = text.slice(0, at) + value + text.slice(at + key.length + 2);
  }
  return { text, messages: chatml(text) };
}

/** `prompt_to_chatml`: each `<|im_start|>role\ncontent<|im_end|>` block as a message, role and content stripped. */
function chatml(prompt: string): AlpacaJudgeMessage[] {
  return prompt
    .trim()
    .split("<|im_start|>")
    .slice(1)
    .map((block) => {
      const nl = block.indexOf("\n");
      const role = (nl < 0 ? block : block.slice(0, nl)).trim();
      const content = (nl < 0 ? "" : block.slice(nl + 1)).split("<|im_end|>")[0]!.trim();
      if (role !== "system" && role !== "user") throw new Error(`judge template has a ${role} turn`);
      return { role, content };
    });
}

/** Both orders of one comparison: the baseline as output_1 ("m"), then the model as output_1. */
export function alpacaJudgePrompts(instruction: string, modelOutput: string, baselineOutput: string): { baselineFirst: AlpacaJudgePrompt; modelFirst: AlpacaJudgePrompt } {
  return {
    baselineFirst: alpacaJudgePrompt(instruction, baselineOutput, modelOutput),
    modelFirst: alpacaJudgePrompt(instruction, modelOutput, baselineOutput),
  };
}

/** A text answer read as a preference: "m" -> 1 (output_1 better), "M" -> 2; anything else NaN (no preference). */
export function parseAlpacaPreference(answer: string): number {
  const a = answer.trim();
  return a === "m" ? 1 : a === "M" ? 2 : Number.NaN;
}

/**
 * The weighted preference from the judge's top log-probabilities of its one token (logprob_parser with numerator
 * "m", denominator ["m", "M"], not binarized): 2 - P(m) / (P(m) + P(M)); NaN when neither token is among them.
 */
export function alpacaPreferenceFromLogprobs(top: readonly { readonly token: string; readonly logprob: number }[]): number {
  const lp = new Map<string, number>();
  for (const t of top) if ((t.token === "m" || t.token === "M") && !lp.has(t.token)) lp.set(t.token, t.logprob);
  if (lp.size === 0) return Number.NaN;
  const m = lp.get("m") ?? -Infinity;
  const M = lp.get("M") ?? -Infinity;
  const hi = Math.max(m, M);
  const pm = Math.exp(m - hi) / (Math.exp(m - hi) + Math.exp(M - hi));
  return 2 - pm;
}

/**
 * The model's preference over one instruction from the two orders' judge preferences, in the reference's encoding
 * (1 = baseline wins, 2 = model wins): the mean of the baseline-first preference and the mirrored model-first one
 * (3 - p). One order without a preference (NaN) leaves the other; neither leaves NaN.
 */
export function combineOrders(baselineFirst: number, modelFirst: number): number {
  const a = baselineFirst === 0 ? 1.5 : baselineFirst;
  const b = modelFirst === 0 ? 1.5 : 3 - modelFirst;
  if (Number.isNaN(a)) return b;
  if (Number.isNaN(b)) return a;
  return (a + b) / 2;
}

export interface AlpacaWinRate {
  /** Percent: mean of (preference - 1) x 100. */
  readonly win_rate: number;
  /** Percent: the standard error of that mean. */
  readonly standard_error: number;
  /** Preferences rounded to a side (draws half a win): alpaca_eval's discrete_win_rate, percent. */
  readonly discrete_win_rate: number;
  readonly n_wins: number;
  readonly n_wins_base: number;
  readonly n_draws: number;
  /** Preferences counted (NaN ones dropped, as the reference drops non-preferences). */
  readonly n_total: number;
}

/** Win rate of the model over the baseline from model-oriented preferences in [1, 2] (0 and 1.5 are draws). */
export function alpacaWinRate(preferences: readonly number[]): AlpacaWinRate {
  const p = preferences.map((x) => (x === 0 ? 1.5 : x)).filter((x) => !Number.isNaN(x));
  for (const x of p) if (x < 1 || x > 2) throw new RangeError(`preference ${x} is outside [1, 2]`);
  const shifted = p.map((x) => x - 1);
  // describe_head2head counts draws before the float conversion: exactly 1.5 (or 0).
  const discrete = p.map((x) => (x === 1.5 ? 0.5 : Math.round(x) - 1));
  return {
    win_rate: mean(shifted) * 100,
    standard_error: (sampleStddev(shifted) / Math.sqrt(shifted.length)) * 100,
    discrete_win_rate: mean(discrete) * 100,
    n_wins: shifted.filter((x) => x > 0.5).length,
    n_wins_base: shifted.filter((x) => x < 0.5).length,
    n_draws: p.filter((x) => x === 1.5).length,
    n_total: p.length,
  };
}
