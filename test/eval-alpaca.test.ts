import { describe, expect, it } from "vitest";
import { lengthControlledWinRate, type AlpacaGlmRow } from "../src/stages/eval/alpaca-glm.js";
import { alpacaJudgePrompt, alpacaJudgePrompts, alpacaPreferenceFromLogprobs, alpacaWinRate, combineOrders, parseAlpacaPreference } from "../src/stages/eval/alpaca-eval.js";
import { rng } from "./support/fuzz.js";

describe("AlpacaEval judge prompt (weighted_alpaca_eval_gpt4_turbo)", () => {
  it("fills the template and splits it into messages as alpaca_eval does, byte for byte", () => {
    // Rendered by alpaca_eval's make_prompts (first occurrence of each placeholder, in turn) and prompt_to_chatml,
    // run in Python on alpaca_eval_clf.txt; the instruction holding "{output_1}" shows the reference's quirk.
    const p = alpacaJudgePrompt("Write a haiku about {output_1} and autumn.", "Leaves fall, crisp and red.\n", "  Autumn wind whispers\n");
    expect(p.text).toBe("<|im_start|>system\nYou are a highly efficient assistant, who evaluates and selects the best large language model (LLMs) based on the quality of their responses to a given instruction. This process will be used to create a leaderboard reflecting the most accurate and human-preferred answers.\n<|im_end|>\n<|im_start|>user\nI require a leaderboard for various large language models. I'll provide you with prompts given to these models and their corresponding outputs. Your task is to assess these responses, and select the model that produces the best output from a human perspective.\n\n## Instruction\n\n{\n    \"instruction\": \"\"\"Write a haiku about Leaves fall, crisp and red.\n and autumn.\"\"\",\n}\n\n## Model Outputs\n\nHere are the unordered outputs from the models. Each output is associated with a specific model, identified by a unique model identifier.\n\n{\n    {\n        \"model_identifier\": \"m\",\n        \"output\": \"\"\"{output_1}\"\"\"\n    },\n    {\n        \"model_identifier\": \"M\",\n        \"output\": \"\"\"  Autumn wind whispers\n\"\"\"\n    }\n}\n\n## Task\n\nEvaluate the models based on the quality and relevance of their outputs, and select the model that generated the best output. Answer by providing the model identifier of the best model. We will use your output as the name of the best model, so make sure your output only contains one of the following model identifiers and nothing else (no quotes, no spaces, no new lines, ...): m or M.\n\n## Best Model Identifier\n<|im_end|>");
    expect(p.messages).toEqual([{"role":"system","content":"You are a highly efficient assistant, who evaluates and selects the best large language model (LLMs) based on the quality of their responses to a given instruction. This process will be used to create a leaderboard reflecting the most accurate and human-preferred answers."},{"role":"user","content":"I require a leaderboard for various large language models. I'll provide you with prompts given to these models and their corresponding outputs. Your task is to assess these responses, and select the model that produces the best output from a human perspective.\n\n## Instruction\n\n{\n    \"instruction\": \"\"\"Write a haiku about Leaves fall, crisp and red.\n and autumn.\"\"\",\n}\n\n## Model Outputs\n\nHere are the unordered outputs from the models. Each output is associated with a specific model, identified by a unique model identifier.\n\n{\n    {\n        \"model_identifier\": \"m\",\n        \"output\": \"\"\"{output_1}\"\"\"\n    },\n    {\n        \"model_identifier\": \"M\",\n        \"output\": \"\"\"  Autumn wind whispers\n\"\"\"\n    }\n}\n\n## Task\n\nEvaluate the models based on the quality and relevance of their outputs, and select the model that generated the best output. Answer by providing the model identifier of the best model. We will use your output as the name of the best model, so make sure your output only contains one of the following model identifiers and nothing else (no quotes, no spaces, no new lines, ...): m or M.\n\n## Best Model Identifier"}]);
  });

  it("asks both orders", () => {
    const { baselineFirst, modelFirst } = alpacaJudgePrompts("Say hi.", "MODEL-ANSWER", "BASELINE-ANSWER");
    const at = (t: string, s: string) => t.indexOf(s);
    expect(at(baselineFirst.text, "BASELINE-ANSWER")).toBeLessThan(at(baselineFirst.text, "MODEL-ANSWER"));
    expect(at(modelFirst.text, "MODEL-ANSWER")).toBeLessThan(at(modelFirst.text, "BASELINE-ANSWER"));
  });

  it("reads the answer as a preference, from text or from log-probabilities", () => {
    expect(parseAlpacaPreference("m")).toBe(1);
    expect(parseAlpacaPreference(" M\n")).toBe(2);
    expect(parseAlpacaPreference("Model M")).toBeNaN();
    // The reference's own example completion: M at -0.017597131, m at -4.048847.
    const top = [{ token: "M", logprob: -0.017597131 }, { token: "m", logprob: -4.048847 }, { token: "Both", logprob: -14.9 }];
    const pm = Math.exp(-4.048847) / (Math.exp(-4.048847) + Math.exp(-0.017597131));
    expect(alpacaPreferenceFromLogprobs(top)).toBeCloseTo(2 - pm, 12);
    expect(alpacaPreferenceFromLogprobs([{ token: "m", logprob: -0.1 }])).toBe(1);
    expect(alpacaPreferenceFromLogprobs([{ token: "x", logprob: -0.1 }])).toBeNaN();
  });
});

/** The published win-rate formula, written out: mean of (p - 1) and its standard error (pandas sem, ddof 1), in percent. */
function referenceWinRate(prefs: number[]) {
  const x = prefs.map((p) => p - 1);
  const m = x.reduce((a, b) => a + b, 0) / x.length;
  const v = x.reduce((a, b) => a + (b - m) ** 2, 0) / (x.length - 1);
  return { win_rate: m * 100, standard_error: (Math.sqrt(v) / Math.sqrt(x.length)) * 100 };
}

describe("AlpacaEval win rate", () => {
  it("a judge that always prefers the first position gives 50%", () => {
    const judge = (_prompt: string) => "m";
    const prefs = ["a", "b", "c", "d", "e"].map((instruction, i) => {
      const { baselineFirst, modelFirst } = alpacaJudgePrompts(instruction, "model ".repeat(i + 1), "base");
      return combineOrders(parseAlpacaPreference(judge(baselineFirst.text)), parseAlpacaPreference(judge(modelFirst.text)));
    });
    const w = alpacaWinRate(prefs);
    expect(w.win_rate).toBe(50);
    expect(w.n_draws).toBe(5);
    expect(w.standard_error).toBe(0);
  });

  it("combines orders: a consistent judge keeps its verdict, a missing order leaves the other", () => {
    expect(combineOrders(2, 1)).toBe(2);
    expect(combineOrders(1, 2)).toBe(1);
    expect(combineOrders(1.25, 1.5)).toBe(1.375);
    expect(combineOrders(Number.NaN, 1)).toBe(2);
    expect(combineOrders(Number.NaN, Number.NaN)).toBeNaN();
  });

  it("equals the published formula on synthetic judgements", () => {
    const r = rng(7);
    const prefs = Array.from({ length: 200 }, () => 1 + r());
    const w = alpacaWinRate([...prefs, Number.NaN]);
    const ref = referenceWinRate(prefs);
    expect(w.win_rate).toBeCloseTo(ref.win_rate, 10);
    expect(w.standard_error).toBeCloseTo(ref.standard_error, 10);
    expect(w.n_total).toBe(200);
    const d = alpacaWinRate([2, 2, 1, 1.5, 0, 1.75]);
    expect(d.n_wins).toBe(3);
    expect(d.n_wins_base).toBe(1);
    expect(d.n_draws).toBe(2);
    expect(d.discrete_win_rate).toBeCloseTo(((1 + 1 + 0 + 0.5 + 0.5 + 1) / 6) * 100, 10);
    expect(() => alpacaWinRate([2.5])).toThrow(/outside/);
  });
});

/**
 * An independent fit of the same GLM: plain gradient descent on the soft-label log-loss with the same L2 penalty,
 * features [tanh(std_delta_len), (difficulty,) 1], std_delta_len = (baseline - model length) / sample std.
 */
function referenceLc(rows: AlpacaGlmRow[], l2: number, withDifficulty: boolean) {
  const delta = rows.map((r) => r.baselineLength - r.modelLength);
  const md = delta.reduce((a, b) => a + b, 0) / delta.length;
  const sd = Math.sqrt(delta.reduce((a, b) => a + (b - md) ** 2, 0) / (delta.length - 1));
  const feats = (r: AlpacaGlmRow, s: number) => (withDifficulty ? [Math.tanh(s), r.difficulty!, 1] : [Math.tanh(s), 1]);
  const X = rows.map((r, i) => feats(r, delta[i]! / sd));
  const y = rows.map((r) => r.preference - 1);
  const sig = (z: number) => 1 / (1 + Math.exp(-z));
  let w = X[0]!.map(() => 0);
  for (let it = 0; it < 20000; it++) {
    const g = w.map((wi) => l2 * wi);
    X.forEach((x, i) => {
      const e = sig(x.reduce((s, v, k) => s + v * w[k]!, 0)) - y[i]!;
      x.forEach((v, k) => (g[k]! += e * v));
    });
    w = w.map((wi, k) => wi - (0.5 / rows.length) * g[k]!);
  }
  const p = rows.map((r) => sig(feats(r, 0).reduce((s, v, k) => s + v * w[k]!, 0)));
  return { lc: (p.reduce((a, b) => a + b, 0) / p.length) * 100, w };
}

describe("AlpacaEval length-controlled win rate", () => {
  it("recovers a known GLM: soft preferences made by it give back its weights and LC = 100 sigmoid(w_model)", () => {
    const r = rng(11);
    const [a, b] = [-1.5, 0.4];
    const rows: AlpacaGlmRow[] = Array.from({ length: 300 }, () => {
      const baselineLength = 200 + Math.floor(r() * 800);
      const modelLength = 200 + Math.floor(r() * 1200);
      return { baselineLength, modelLength, preference: Number.NaN };
    });
    const delta = rows.map((x) => x.baselineLength - x.modelLength);
    const md = delta.reduce((s, v) => s + v, 0) / delta.length;
    const sd = Math.sqrt(delta.reduce((s, v) => s + (v - md) ** 2, 0) / (delta.length - 1));
    const made = rows.map((x, i) => ({ ...x, preference: 1 + 1 / (1 + Math.exp(-(a * Math.tanh(delta[i]! / sd) + b))) }));
    const lc = lengthControlledWinRate(made, { l2: 1e-9 });
    expect(lc.weights.length).toBeCloseTo(a, 5);
    expect(lc.weights.model).toBeCloseTo(b, 5);
    expect(lc.length_controlled_winrate).toBeCloseTo(100 / (1 + Math.exp(-b)), 4);
    // Without difficulties every prediction is the same: the reference's standard error is 0; the fit's is not.
    expect(lc.lc_standard_error).toBeCloseTo(0, 10);
    expect(lc.lc_standard_error_fit).toBeGreaterThan(0);
  });

  it("equals an independent fit on noisy binary judgements, with and without instruction difficulty", () => {
    const r = rng(5);
    const rows: AlpacaGlmRow[] = Array.from({ length: 120 }, () => {
      const baselineLength = 300 + Math.floor(r() * 600);
      const modelLength = 100 + Math.floor(r() * 1500);
      const difficulty = r() * 2 - 1;
      // A judge partial to length: the longer output wins more often.
      const pModel = 1 / (1 + Math.exp(-(0.002 * (modelLength - baselineLength) + 0.5 * difficulty)));
      return { baselineLength, modelLength, difficulty, preference: r() < pModel ? 2 : 1 };
    });
    for (const withDifficulty of [false, true]) {
      const input = withDifficulty ? rows : rows.map(({ difficulty: _d, ...x }) => x);
      const ours = lengthControlledWinRate(input, { l2: 1e-3 });
      const ref = referenceLc(rows, 1e-3, withDifficulty);
      expect(ours.length_controlled_winrate).toBeCloseTo(ref.lc, 4);
      expect(ours.weights.model).toBeCloseTo(ref.w[ref.w.length - 1]!, 4);
      expect(ours.weights.length).toBeCloseTo(ref.w[0]!, 4);
      // The model's outputs are longer on average and the judge likes length: controlling for it lowers the win rate.
      expect(ours.length_controlled_winrate).toBeLessThan(alpacaWinRate(rows.map((x) => x.preference)).win_rate);
    }
  });

  it("stays finite when the model always wins (the L2 penalty holds it just below 100%), and refuses no preferences at all", () => {
    const rows = [1, 2, 3, 4].map((i) => ({ baselineLength: 100 * i, modelLength: 50 * i, preference: 2 }));
    const lc = lengthControlledWinRate(rows);
    expect(lc.length_controlled_winrate).toBeGreaterThan(95);
    expect(lc.length_controlled_winrate).toBeLessThan(100);
    expect(Number.isFinite(lc.weights.model)).toBe(true);
    expect(() => lengthControlledWinRate([{ baselineLength: 1, modelLength: 2, preference: Number.NaN }])).toThrow(/no preferences/);
  });
});
