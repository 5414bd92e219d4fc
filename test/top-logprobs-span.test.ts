import { describe, expect, it } from "vitest";
import { logprobColumns, parseAnswer, tokenAt } from "../src/models/openai-wire.js";
import { seededRandom } from "../src/models/retry.js";
import { topLogprobsSpan } from "../src/models/top-logprobs-span.js";

describe("topLogprobsSpan", () => {
  it("finds the array and its elements, whatever the strings around them hold", () => {
    const t = '{"text":"a \\"top_logprobs\\": [1]","logprobs":{"tokens":["\\"top_logprobs\\":","]"],"top_logprobs" : [ null, {"}\\\\":-1} ,{"[":-2}],"text_offset":[0,1]}}';
    const s = topLogprobsSpan(t)!;
    expect(t.slice(s.start, s.end)).toBe('[ null, {"}\\\\":-1} ,{"[":-2}]');
    expect(s.starts.map((a, k) => JSON.parse(t.slice(a, s.ends[k])) as unknown)).toEqual([null, { "}\\": -1 }, { "[": -2 }]);
    expect(topLogprobsSpan('{"top_logprobs":[]}')).toEqual({ start: 16, end: 18, starts: [], ends: [] });
  });

  it("gives up where JSON.parse's reading is not certain, or the array is not well formed", () => {
    expect(topLogprobsSpan('{"a":{"top_logprobs":[1]},"top_logprobs":[2]}')).toBeUndefined(); // twice
    expect(topLogprobsSpan('{"top_logprobs":[1],"x":"\\u0041"}')).toBeUndefined(); // a \u escape
    expect(topLogprobsSpan('{"top_logprobs":null}')).toBeUndefined();
    expect(topLogprobsSpan('{"top_logprobs":[1,]}')).toBeUndefined();
    expect(topLogprobsSpan('{"top_logprobs":[,1]}')).toBeUndefined();
    expect(topLogprobsSpan('{"top_logprobs":[{"a":1}')).toBeUndefined();
    expect(topLogprobsSpan('{"top_logprobs":["a]')).toBeUndefined();
    expect(topLogprobsSpan('{"x":["top_logprobs"]}')).toBeUndefined(); // a value, not a key
  });
});

describe("a completions answer read with its top_logprobs left in the text", () => {
  it("reads as the whole text parsed does, on 2,000 random answers", () => {
    const random = seededRandom(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const pieces = ["a", " the", "\n", '"', "\\", "]", "}", "[", "{", ",", ":", '"top_logprobs":', "é", "😀", "\t", " "];
    // Now and then a control character, which JSON.stringify writes as a \u escape (then the whole text is parsed).
    const word = () => Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(pieces)).join("") + (random() < 0.01 ? "\u0001" : "");
    let used = 0;
    for (let n = 0; n < 2000; n++) {
      const count = Math.floor(random() * 6);
      const tokens = Array.from({ length: count }, word);
      const top = tokens.map((t, k) => (k === 0 && random() < 0.5 ? null : Object.fromEntries(Array.from({ length: 1 + Math.floor(random() * 3) }, (_, a) => [a === 0 ? t : word(), -random() * 4]))));
      const logprobs: Record<string, unknown> = { tokens, token_logprobs: tokens.map((_, k) => (k === 0 ? null : -random() * 4)), top_logprobs: top, text_offset: tokens.map((_, k) => k * 2) };
      // Members in any order, sometimes a decoy top_logprobs elsewhere (then the whole text is parsed).
      const lp = Object.fromEntries(Object.entries(logprobs).sort(() => random() - 0.5));
      const choice = { index: 0, text: tokens.join(""), finish_reason: "length", logprobs: lp };
      const body: Record<string, unknown> = random() < 0.5 ? { id: word(), choices: [choice], usage: { prompt_tokens: count, completion_tokens: 0 } } : { choices: [choice, { index: 1, text: word(), finish_reason: null }] };
      if (random() < 0.1) body["extra"] = { top_logprobs: [word()] };
      const text = JSON.stringify(body, null, pick([undefined, 1, "\t"]));
      // The same answer with a \u escape in a member of its own: read by parsing the whole text.
      const whole = text.replace(/^\{/, '{"z":"\\u0041",');
      const got = parseAnswer("completions", text, 0);
      const want = parseAnswer("completions", whole, 0);
      expect(JSON.stringify(got.choices), text).toBe(JSON.stringify(want.choices));
      expect(got.usage).toEqual(want.usage);
      const cols = logprobColumns(got.choices[0]!)!;
      expect(Array.from({ length: count }, (_, k) => tokenAt(cols, k))).toEqual(want.choices[0]!.logprobs);
      if (topLogprobsSpan(text)) used++;
    }
    expect(used).toBeGreaterThan(1500);
  });
});
