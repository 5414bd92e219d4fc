import { describe, expect, it } from "vitest";
import { extractFlexible, extractStrict, GSM8K_INVALID, gsm8kExactMatch, gsm8kGold, gsm8kVerdict, normalizeGsm8k, type Gsm8kVariant } from "../src/stages/eval/gsm8k-extract.js";
import { GSM8K_COT_EXEMPLARS, GSM8K_COT_STOP, GSM8K_STOP, gsm8kStop, renderGsm8kCotPrompt, renderGsm8kPrompt } from "../src/stages/eval/gsm8k-prompt.js";

// Expected values were computed by lm-evaluation-harness's own logic (RegexFilter with take_first, exact_match with
// ignore_case and regexes_to_ignore [",", "\\$", "(?s).*#### ", "\\.$"]) run in Python on these strings.
// [variant, response, dataset answer, strict extracted, strict correct, flexible extracted, flexible correct]
const CASES: [Gsm8kVariant, string, string, string, boolean, string, boolean][] = [
    ["gsm8k", "Janet sells 16 - 3 - 4 = 9 eggs. She makes 9 * 2 = $18.\n#### 18", "Janet...\n#### 18", "18", true, "18", true],
    ["gsm8k", "The total is 1,234 apples.\n#### 1,234", "#### 1234", "1,234", true, "1,234", true],
    ["gsm8k", "She loses 5 dollars.\n#### -5", "#### -5", "-5", true, "-5", true],
    ["gsm8k", "It costs 3.50 dollars. #### 3.50", "#### 3.5", "3.50", false, "3.50", false],
    ["gsm8k", "#### $18", "#### 18", "[invalid]", false, "$18", true],
    ["gsm8k", "I cannot tell.", "#### 7", "[invalid]", false, "[invalid]", false],
    ["gsm8k", "So the answer is 42.", "#### 42", "[invalid]", false, "42.", true],
    ["gsm8k", "He had 5 apples, then 7, so 12", "#### 12", "[invalid]", false, "12", true],
    ["gsm8k", "#### 18\n#### 20", "#### 18", "18", true, "20", false],
    ["gsm8k", "The answer is 1,000,000.", "#### 1000000", "[invalid]", false, "1,000,000.", true],
    ["gsm8k", "It is -3 degrees", "#### -3", "[invalid]", false, "-3", true],
    ["gsm8k", "Answer: 7", "#### 7", "[invalid]", false, "7", true],
    ["gsm8k", "#### 5.\n", "#### 5", "5.", true, "5.", true],
    ["gsm8k", "It costs $1,200.50 in total", "#### 1200.50", "[invalid]", false, "$1,200.50", true],
    ["gsm8k", "#### 0", "#### 0", "0", true, "0", true],
    ["gsm8k", "between 3 and 4 hours; #### 4", "#### 4", "4", true, "4", true],
    ["gsm8k", "1. First 2. Second", "#### 2", "[invalid]", false, "2.", true],
    ["gsm8k", "The year 2023 had 365 days", "#### 365", "[invalid]", false, "365", true],
    ["gsm8k", "####18", "#### 18", "[invalid]", false, "18", true],
    ["gsm8k", "#### - 5", "#### -5", "[invalid]", false, "5", false],
    ["gsm8k", "The change is -0.5", "#### -0.5", "[invalid]", false, "-0.5", true],
    ["gsm8k", "Total: 12.0", "#### 12", "[invalid]", false, "12.0", false],
    ["gsm8k", "", "#### 3", "[invalid]", false, "[invalid]", false],
    ["gsm8k", "#### 72\n\nQuestion: next one", "#### 72", "72", true, "72", true],
    ["gsm8k", "the numbers 3, 4", "#### 4", "[invalid]", false, "4", true],
    ["gsm8k", "$", "#### 1", "[invalid]", false, "[invalid]", false],
    ["gsm8k", "#### 1,5", "#### 15", "1,5", true, "1,5", true],
    ["gsm8k", "1/2 of 10 is 5", "#### 5", "[invalid]", false, "5", true],
    ["gsm8k-cot", "THE ANSWER IS 12", "#### 12", "[invalid]", false, "12", true],
    ["gsm8k-cot", "So 5 * 4 = 20. The answer is 20.", "Five times four.\n#### 20", "20", true, "20.", true],
    ["gsm8k-cot", "The answer is 20", "#### 20", "2", false, "20", true],
    ["gsm8k-cot", "The answer is $20.", "#### 20", "[invalid]", false, "$20.", true],
    ["gsm8k-cot", "The answer is 10,000.", "#### 10,000", "10,000", true, "10,000.", true],
    ["gsm8k-cot", "The answer is -7 apples.", "#### -7", "-7", true, "-7", true],
    ["gsm8k-cot", "The answer is 8.\n\nQ: another", "#### 9", "8", false, "8.", false],
];

describe("GSM8K answer extraction (lm-eval strict-match and flexible-extract)", () => {
  it.each(CASES)("%s: %j", (variant, response, answer, strict, strictOk, flexible, flexibleOk) => {
    expect(extractStrict(response, variant)).toBe(strict);
    expect(extractFlexible(response)).toBe(flexible);
    const v = gsm8kVerdict(response, answer, variant);
    expect(v.strict).toEqual({ extracted: strict, correct: strictOk });
    expect(v.flexible).toEqual({ extracted: flexible, correct: flexibleOk });
  });

  it("has at least 30 cases, both filters both passing and failing", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    for (const col of [4, 6] as const) {
      expect(CASES.some((c) => c[col])).toBe(true);
      expect(CASES.some((c) => !c[col])).toBe(true);
    }
    expect(CASES.filter((c) => c[3] === GSM8K_INVALID).length).toBeGreaterThan(5);
  });

  it("normalizes commas, dollars, everything through the last \"#### \", a final period and case", () => {
    expect(normalizeGsm8k("$1,234.")).toBe("1234");
    expect(normalizeGsm8k("Step one #### 2 #### 3")).toBe("3");
    expect(normalizeGsm8k("5.\n")).toBe("5\n");
    expect(normalizeGsm8k("5..")).toBe("5.");
    expect(normalizeGsm8k("ABC")).toBe("abc");
    expect(gsm8kExactMatch("[invalid]", "#### 3")).toBe(false);
    expect(gsm8kGold("Half of 4 is 2.\n#### 2 ")).toBe("2");
  });
});

describe("GSM8K prompts (lm-eval gsm8k and gsm8k-cot)", () => {
  const question = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?";

  it("renders the 8-shot chain-of-thought prompt byte for byte", () => {
    // Rendered from lm-eval's gsm8k-cot.yaml (doc_to_text, fewshot_config.samples) with its fewshot_context rule.
    const expected = "Q: There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?\nA: There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.\n\nQ: If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?\nA: There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.\n\nQ: Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?\nA: Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39.\n\nQ: Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?\nA: Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8.\n\nQ: Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?\nA: Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The answer is 9.\n\nQ: There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?\nA: There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29.\n\nQ: Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?\nA: Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33.\n\nQ: Olivia has $23. She bought five bagels for $3 each. How much money does she have left?\nA: Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8.\n\nQ: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?\nA:";
    expect(renderGsm8kCotPrompt(question)).toBe(expected);
    expect(GSM8K_COT_EXEMPLARS).toHaveLength(8);
    for (const s of GSM8K_COT_EXEMPLARS) expect(s.answer).toMatch(/The answer is \d+\.$/);
  });

  it("takes the first n exemplars for fewer shots, and none for zero", () => {
    expect(renderGsm8kCotPrompt("What is 2 + 2?", 0)).toBe("Q: What is 2 + 2?\nA:");
    expect(renderGsm8kCotPrompt("What is 2 + 2?", 1)).toBe(
      "Q: There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?\nA: There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.\n\nQ: What is 2 + 2?\nA:",
    );
    expect(() => renderGsm8kCotPrompt("x", 9)).toThrow(/8 exemplars/);
  });

  it("renders the gsm8k prompt with full solutions as targets", () => {
    const shots = [
      { question: "Tom has 3 apples and buys 2. How many?", answer: "He has 3 + 2 = <<3+2=5>>5 apples.\n#### 5" },
      { question: "What is 10 - 4?", answer: "10 - 4 = <<10-4=6>>6\n#### 6" },
    ];
    expect(renderGsm8kPrompt("What is 1 + 1?", shots)).toBe(
      "Question: Tom has 3 apples and buys 2. How many?\nAnswer: He has 3 + 2 = <<3+2=5>>5 apples.\n#### 5\n\n" +
        "Question: What is 10 - 4?\nAnswer: 10 - 4 = <<10-4=6>>6\n#### 6\n\n" +
        "Question: What is 1 + 1?\nAnswer:",
    );
    expect(renderGsm8kPrompt("Q?", [])).toBe("Question: Q?\nAnswer:");
  });

  it("stops where lm-eval stops", () => {
    expect(GSM8K_STOP).toEqual(["Question:", "</s>", "<|im_end|>"]);
    expect(GSM8K_COT_STOP).toEqual(["Q:", "</s>", "<|im_end|>"]);
    expect(gsm8kStop("gsm8k-cot")).toBe(GSM8K_COT_STOP);
    expect(gsm8kStop("gsm8k")).toBe(GSM8K_STOP);
  });
});
