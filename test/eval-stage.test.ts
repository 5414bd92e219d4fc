import { describe, expect, it } from "vitest";
import type { EvalModel } from "../src/generate/eval-model.js";
import { isReport } from "../src/stages/eval/report.js";
import { bigramLogprob, evaluateWith, TableModel } from "./support/table-model.js";

// The `evaluate` stage over a model the test defines at the EvalModel seam (test/support/table-model.ts): what the stage
// sends is recorded, so prompts are asserted byte for byte, and log-likelihoods are computed again here.

const evaluate = async (params: Record<string, unknown>, inputs: Record<string, unknown>, model: EvalModel) => {
  const r = await evaluateWith(params, inputs, model);
  expect(isReport(r.report)).toBe(true);
  return r;
};

const quiz = [
  { q: "Which is a colour?", options: ["red", "seven"], gold: 0 },
  { q: "Which is a number?", options: ["blue", "three", "cat"], gold: "three" },
  { q: "Pick the last letter.", options: ["a", "z"], gold: "B" },
];

describe("multiple_choice", () => {
  it("scores each choice as the continuation of the prompt; accuracy and length-normalized accuracy equal a computation here", async () => {
    const model = new TableModel(() => "");
    const { report } = await evaluate({ tasks: [{ fn: "multiple_choice", data: { $ref: "quiz" }, question: "q", choices: "options", answer: "gold", prompt: "Question: {question}\nAnswer:" }] }, { "param:tasks[0].data": quiz }, model);
    expect(model.loglikAsked.map((r) => [r.context, r.continuation])).toEqual([
      ["Question: Which is a colour?\nAnswer:", " red"],
      ["Question: Which is a colour?\nAnswer:", " seven"],
      ["Question: Which is a number?\nAnswer:", " blue"],
      ["Question: Which is a number?\nAnswer:", " three"],
      ["Question: Which is a number?\nAnswer:", " cat"],
      ["Question: Pick the last letter.\nAnswer:", " a"],
      ["Question: Pick the last letter.\nAnswer:", " z"],
    ]);
    const golds = [0, 1, 1];
    let acc = 0;
    let accNorm = 0;
    quiz.forEach((item, i) => {
      const lls = item.options.map((o) => bigramLogprob(`Question: ${item.q}\nAnswer:`, ` ${o}`));
      const best = lls.indexOf(Math.max(...lls));
      const norm = lls.map((l, j) => l / item.options[j]!.length);
      if (best === golds[i]) acc++;
      if (norm.indexOf(Math.max(...norm)) === golds[i]) accNorm++;
    });
    const t = report.tasks[0]!;
    expect(t).toMatchObject({ name: "multiple_choice", task: "multiple_choice", primary: "acc", items: 3, limited: false, params: { data: { stage: "param:tasks[0].data" } } });
    expect(t.metrics["acc"]!.value).toBeCloseTo(acc / 3, 12);
    expect(t.metrics["acc_norm"]!.value).toBeCloseTo(accNorm / 3, 12);
    const p = acc / 3;
    expect(t.metrics["acc"]!.stderr!).toBeCloseTo(Math.sqrt((3 * p * (1 - p)) / 2) / Math.sqrt(3), 12);
    expect(t.contamination).toEqual({ unavailable: "the training data of the model is not in this recipe" });
    expect(report.examples["multiple_choice"]![1]).toMatchObject({ prompt: "Question: Which is a number?\nAnswer:", gold: "three" });
  });

  it("a record whose answer is none of its choices is an error naming the task and the record", async () => {
    const bad = [{ q: "x?", options: ["a", "b"], gold: 5 }];
    await expect(evaluate({ tasks: [{ fn: "multiple_choice", name: "mine", data: { $ref: "quiz" }, question: "q", choices: "options", answer: "gold", prompt: "{question}" }] }, { "param:tasks[0].data": bad }, new TableModel(() => ""))).rejects.toThrow(
      /task `mine`: record 1 of data \(`param:tasks\[0\]\.data`\): field `gold` \(5\) is not one of the 2 choices/,
    );
  });
});

describe("generate_and_check", () => {
  const sums = [
    { question: "2+2", answer: 4 },
    { question: "3+3", answer: "6" },
    { question: "1+1", answer: "2" },
  ];
  const answers = (p: string) => (p.includes("2+2") ? "The sum is 4." : p.includes("3+3") ? "It is 7" : "no idea");

  it("exact match on the trimmed answer, or through a regular expression's first group", async () => {
    const model = new TableModel(answers);
    const { report } = await evaluate(
      {
        tasks: [
          { fn: "generate_and_check", name: "exact", data: { $ref: "s" }, prompt: "Q: {question}\nA:", answer: "answer", match: "exact", stop: ["\n"] },
          { fn: "generate_and_check", name: "regex", data: { $ref: "s" }, prompt: "Q: {question}\nA:", answer: "answer", match: "(-?[0-9]+)", limit: 2 },
        ],
      },
      { "param:tasks[0].data": sums, "param:tasks[1].data": sums },
      model,
    );
    expect(model.genAsked[0]).toEqual({ prompt: "Q: 2+2\nA:", stop: ["\n"], max_tokens: 64, temperature: 0, seed: 42 });
    const [exact, regex] = report.tasks;
    expect(exact!.metrics["acc"]!.value).toBe(0);
    expect(regex!.metrics["acc"]).toMatchObject({ value: 0.5, n: 2 });
    expect(regex!.limited).toBe(true);
    expect(report.examples["regex"]!.map((e) => [e.extracted, e.gold, e.passed])).toEqual([
      ["4", "4", true],
      ["7", "6", false],
    ]);
  });

  it("a chat template wraps generation prompts; a chat endpoint gets the messages", async () => {
    const model = new TableModel(answers);
    const { report } = await evaluate({ template: { $ref: "t" }, tasks: [{ fn: "generate_and_check", data: { $ref: "s" }, prompt: "Q: {question}", answer: "answer", match: "exact", limit: 1 }] }, { "param:template": { format: "tulu" }, "param:tasks[0].data": sums }, model);
    expect(model.genAsked[0]!.prompt).toBe("<|user|>\nQ: 2+2\n<|assistant|>\n");
    expect(report.template).toBe("`param:template` (chat format tulu)");
    const chat = new TableModel(answers, true);
    await evaluate({ tasks: [{ fn: "generate_and_check", data: { $ref: "s" }, prompt: "Q: {question}", answer: "answer", match: "exact", limit: 1 }] }, { "param:tasks[0].data": sums }, chat);
    expect(chat.genAsked[0]!.messages).toEqual([{ role: "user", content: "Q: 2+2" }]);
  });
});

describe("contamination", () => {
  it("counts the test items that share an n-gram with the training data, with the decontaminate filter's measure", async () => {
    const questions = [
      { q: "What is the capital city of the country that lies directly north of the United States of America?", options: ["Ottawa", "Paris"], gold: 0 },
      { q: "Which planet of the solar system is the largest one by mass and also by its volume today?", options: ["Jupiter", "Mars"], gold: 0 },
      { q: "Short one?", options: ["yes", "no"], gold: 0 },
    ];
    const train = [
      // 13 words of question 1, in other case and punctuation.
      { instruction: "Tell me: the CAPITAL city of the country that lies directly north of the United States!", output: "Ottawa." },
      { messages: [{ role: "user", content: "short   ONE" }, { role: "assistant", content: "ok" }] },
      { instruction: "Which planet is the largest?", output: "Jupiter" },
    ];
    const { report, counts } = await evaluate(
      { tasks: [{ fn: "multiple_choice", data: { $ref: "q" }, question: "q", choices: "options", answer: "gold", prompt: "{question}" }] },
      { "param:tasks[0].data": questions, "train_data:sft_data": train },
      new TableModel(() => ""),
    );
    expect(report.tasks[0]!.contamination).toEqual({ ngram: 13, items: 3, contaminated: 2, training_data: ["train_data:sft_data"] });
    expect(counts["multiple_choice: contaminated items"]).toBe(2);
  });
});
