import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIServer, type OpenAIServer, type ServerRequest } from "./support/openai-server.js";
import { evaluateWith, TableModel } from "./support/table-model.js";

// Prompts byte for byte: for each task, the rendered prompts of fixed items equal reference strings written here from
// the benchmarks' own formats (few-shot headers, separators, choice labels, a chat template's application), and the
// judged tasks send their judge what the reference implementations send.

const algebra = (question: string, choices: string[], answer: number) => ({ question, subject: "abstract_algebra", choices, answer });
const dev = [
  { question: "Which planet is red?", subject: "astronomy", choices: ["Mars", "Venus", "Earth", "Moon"], answer: 0 },
  algebra("Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.", ["0", "1", "2", "3"], 1),
  algebra("Statement 1 | If aH is an element of a factor group, then |aH| divides |a|.", ["True, True", "False, False", "True, False", "False, True"], 1),
  algebra("A third algebra question?", ["w", "x", "y", "z"], 3),
];
const test = [algebra("Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.", ["0", "4", "2", "6"], 1), { question: "  Which star is nearest?  ", subject: "astronomy", choices: ["Sun", "Sirius", "Vega", "Rigel"], answer: 0 }];

describe("mmlu", () => {
  const first =
    "The following are multiple choice questions (with answers) about  abstract algebra.\n\n" +
    "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n" +
    "Statement 1 | If aH is an element of a factor group, then |aH| divides |a|.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: B\n\n" +
    "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:";

  it("hendrycks/test's prompt: the subject header, the subject's first dev rows as shots, \" A\"..\" D\" scored", async () => {
    const model = new TableModel(() => "");
    const { report } = await evaluateWith({ tasks: [{ fn: "mmlu", data: { $ref: "t" }, dev: { $ref: "d" }, shots: 2, style: "hendrycks", subjects: ["abstract_algebra"] }] }, { "param:tasks[0].data": test, "param:tasks[0].dev": dev }, model);
    expect(model.loglikAsked).toEqual([" A", " B", " C", " D"].map((continuation) => ({ context: first, continuation })));
    expect(report.examples["mmlu"]![0]).toMatchObject({ id: "abstract_algebra/0", prompt: first, gold: "B" });
    expect(Object.keys(report.tasks[0]!.metrics).slice(0, 4)).toEqual(["acc", "acc_macro", "acc:stem", "acc_macro:stem"]);
  });

  it("lm-evaluation-harness's bytes: one space in the header, the question stripped; zero shots need no dev set", async () => {
    const model = new TableModel(() => "");
    await evaluateWith({ tasks: [{ fn: "mmlu", data: { $ref: "t" }, shots: 0, style: "lm-eval" }] }, { "param:tasks[0].data": test }, model);
    expect(model.loglikAsked.map((r) => r.context)[4]).toBe("The following are multiple choice questions (with answers) about astronomy.\n\nWhich star is nearest?\nA. Sun\nB. Sirius\nC. Vega\nD. Rigel\nAnswer:");
  });

  it("a subject with fewer dev rows than shots is an error naming it", async () => {
    await expect(evaluateWith({ tasks: [{ fn: "mmlu", data: { $ref: "t" }, dev: { $ref: "d" }, shots: 2 }] }, { "param:tasks[0].data": test, "param:tasks[0].dev": dev }, new TableModel(() => ""))).rejects.toThrow(/has 1 question\(s\) of subject astronomy; 2 shots need 2/);
  });
});

describe("gsm8k", () => {
  const sums = [
    { question: "Tom has 3 apples and buys 4 more. How many apples does he have?", answer: "Tom has 3 + 4 = <<3+4=7>>7 apples.\n#### 7" },
    { question: "A box holds 1,200 pens; 200 are sold. How many are left?", answer: "1,200 - 200 = <<1200-200=1000>>1000\n#### 1,000" },
  ];
  const train = [{ question: "Ann has 2 cats and 5 dogs. How many pets?", answer: "2 + 5 = <<2+5=7>>7\n#### 7" }];

  it("\"Question: ...\\nAnswer:\" with the train split's full solutions as shots; strict and flexible exact match", async () => {
    const model = new TableModel((p) => (p.includes("Tom") ? "He has 3 + 4 = 7 apples.\n#### 7" : "So 1,000 pens are left, not 1200."));
    const { report } = await evaluateWith({ tasks: [{ fn: "gsm8k", data: { $ref: "t" }, train: { $ref: "tr" }, shots: 1, seed: 1234, variant: "gsm8k" }] }, { "param:tasks[0].data": sums, "param:tasks[0].train": train }, model);
    expect(model.genAsked[0]).toEqual({
      prompt: "Question: Ann has 2 cats and 5 dogs. How many pets?\nAnswer: 2 + 5 = <<2+5=7>>7\n#### 7\n\nQuestion: Tom has 3 apples and buys 4 more. How many apples does he have?\nAnswer:",
      stop: ["Question:", "</s>", "<|im_end|>"],
      max_tokens: 64,
      temperature: 0,
      seed: 42,
    });
    const t = report.tasks[0]!;
    expect(t.primary).toBe("exact_match_strict");
    expect(t.metrics["exact_match_strict"]!.value).toBe(0.5);
    expect(t.metrics["exact_match_flexible"]!.value).toBe(0.5);
    expect(report.examples["gsm8k"]!.map((e) => e.extracted)).toEqual([
      { strict: "7", flexible: "7" },
      { strict: "[invalid]", flexible: "1200." },
    ]);
  });

  it("gsm8k-cot: the fixed chain-of-thought exemplars, \"Q: ...\\nA:\", wrapped in a chat template for a chat model", async () => {
    const model = new TableModel(() => "The answer is 7.");
    await evaluateWith({ template: { $ref: "chatml" }, tasks: [{ fn: "gsm8k", data: { $ref: "t" }, shots: 2, variant: "gsm8k-cot", limit: 1 }] }, { "param:template": { format: "chatml" }, "param:tasks[0].data": sums }, model);
    expect(model.genAsked[0]!.prompt).toBe(
      "<|im_start|>user\n" +
        "Q: There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?\nA: There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.\n\n" +
        "Q: If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?\nA: There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.\n\n" +
        "Q: Tom has 3 apples and buys 4 more. How many apples does he have?\nA:<|im_end|>\n<|im_start|>assistant\n",
    );
    expect(model.genAsked[0]!.stop).toEqual(["Q:", "</s>", "<|im_end|>"]);
  });
});

describe("ifeval", () => {
  const rows = [
    { key: 1000, prompt: "Write a haiku about rain. Do not use any commas.", instruction_id_list: ["punctuation:no_comma"], kwargs: [{}] },
    { key: 1001, prompt: "Answer in all lowercase letters: what is the sky?", instruction_id_list: ["change_case:english_lowercase", "punctuation:no_comma"], kwargs: [{}, {}] },
  ];

  it("the prompt alone through the model's own (Jinja) chat template; verdicts per instruction, strict and loose", async () => {
    const jinja = "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}";
    const model = new TableModel((p) => (p.includes("haiku") ? "rain falls soft\nno commas here\nquiet" : "**The sky is blue, mostly.**"));
    const { report } = await evaluateWith({ template: { $ref: "hf" }, tasks: [{ fn: "ifeval", data: { $ref: "d" }, mode: "both" }] }, { "param:template": { jinja, source: "tokenizer_config.json", tokens: { eos_token: "</s>" } }, "param:tasks[0].data": rows }, model);
    expect(model.genAsked.map((g) => g.prompt)).toEqual([
      "<|user|>\nWrite a haiku about rain. Do not use any commas.</s>\n<|assistant|>\n",
      "<|user|>\nAnswer in all lowercase letters: what is the sky?</s>\n<|assistant|>\n",
    ]);
    const m = report.tasks[0]!.metrics;
    expect([m["prompt_level_strict_acc"]!.value, m["inst_level_strict_acc"]!.value, m["prompt_level_loose_acc"]!.value, m["inst_level_loose_acc"]!.value]).toEqual([0.5, 1 / 3, 0.5, 1 / 3]);
    expect(report.examples["ifeval"]![1]).toMatchObject({ id: "1001", passed: false, verdict: { "0:change_case:english_lowercase": { strict: false, loose: false }, "1:punctuation:no_comma": { strict: false, loose: false } } });
  });
});

describe("judged tasks", () => {
  let judge: OpenAIServer;
  const asked: ServerRequest[] = [];
  beforeAll(async () => {
    judge = await startOpenAIServer({
      answer: (req) => {
        asked.push(req);
        const msgs = req.body["messages"] as { role: string; content: string }[];
        const user = msgs[msgs.length - 1]!.content;
        if (user.includes("Best Model Identifier") || user.includes("model_identifier")) {
          if (user.includes("ALWAYS-FIRST")) return "m";
          // Prefers the output that says GOOD: "m" when it comes first.
          const good = user.indexOf("GOOD");
          const second = user.indexOf('"model_identifier": "M"');
          return good < 0 ? "m" : good < second ? "m" : "M";
        }
        return user.includes("Follow-up") ? "Fine. Rating: [[4]]" : "Good answer. Rating: [[8]]";
      },
    });
  });
  afterAll(async () => {
    await judge.close();
  });
  const judgeModel = () => ({ kind: "openai_compatible", stage: "judge", params: { model: "judge-1", base_url: judge.url, kind: "chat" } });

  it("alpaca_eval asks the judge AlpacaEval's prompt in both orders; a judge that always picks the first gives 50%", async () => {
    const data = [
      { instruction: "Name a fruit.", output: "a rock", generator: "baseline" },
      { instruction: "Name a colour.", output: "GOOD: red", generator: "baseline" },
      { instruction: "Name a tree. ALWAYS-FIRST", output: "oak", generator: "baseline" },
    ];
    const model = new TableModel((p) => (p.includes("fruit") ? "GOOD: apple" : p.includes("colour") ? "blue" : "pine"), true);
    asked.length = 0;
    const { report } = await evaluateWith({ tasks: [{ fn: "alpaca_eval", data: { $ref: "a" }, judge: { $ref: "judge" }, length_controlled: true }] }, { "param:tasks[0].data": data, "param:tasks[0].judge": judgeModel() }, model);
    expect(model.genAsked[0]!.messages).toEqual([{ role: "user", content: "Name a fruit." }]);
    const prompts = asked.map((r) => (r.body["messages"] as { content: string }[])[1]!.content).filter((c) => c.includes("Name a fruit."));
    expect(prompts).toHaveLength(2);
    // Baseline first (its output as "m"), then the model first.
    expect(prompts.some((c) => c.indexOf("a rock") < c.indexOf("GOOD: apple"))).toBe(true);
    expect(prompts.some((c) => c.indexOf("GOOD: apple") < c.indexOf("a rock"))).toBe(true);
    expect(prompts[0]).toContain('"instruction": """Name a fruit.""",');
    const sys = (asked[0]!.body["messages"] as { role: string; content: string }[])[0]!;
    expect(sys.role).toBe("system");
    expect(sys.content.startsWith("You are a highly efficient assistant, who evaluates and selects the best large language model")).toBe(true);
    expect(asked[0]!.body["max_tokens"]).toBe(1);
    // fruit: the model wins both orders (2); colour: the baseline wins both (1); tree: first position both times (1.5).
    expect(report.examples["alpaca_eval"]!.map((e) => (e.verdict as { preference: number }).preference)).toEqual([2, 1, 1.5]);
    const wr = report.tasks[0]!.metrics["win_rate"]!;
    expect(wr.value).toBeCloseTo(50, 10);
    expect(wr.stderr!).toBeCloseTo((Math.sqrt(((0.5 ** 2 + 0.5 ** 2 + 0) / 2)) / Math.sqrt(3)) * 100, 10);
    expect(report.tasks[0]!.metrics["length_controlled_win_rate"]).toBeDefined();
  });

  it("mt_bench: the second turn sees the first answer; the judge rates each turn with FastChat's prompts, reference-guided for math", async () => {
    const questions = [
      { question_id: 81, category: "writing", turns: ["Write a short poem.", "Follow-up: make it rhyme."] },
      { question_id: 111, category: "math", turns: ["What is 2+2?", "Follow-up: and 3+3?"], reference: ["4", "6"] },
    ];
    const model = new TableModel((p) => (p.includes("3+3") ? "6" : p.includes("2+2") ? "4" : "roses"));
    asked.length = 0;
    const { report } = await evaluateWith({ template: { $ref: "c" }, tasks: [{ fn: "mt_bench", data: { $ref: "q" }, judge: { $ref: "judge" } }] }, { "param:template": { format: "chatml" }, "param:tasks[0].data": questions, "param:tasks[0].judge": judgeModel() }, model);
    expect(model.genAsked.map((g) => g.prompt)).toEqual([
      "<|im_start|>user\nWrite a short poem.<|im_end|>\n<|im_start|>assistant\n",
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
      "<|im_start|>user\nWrite a short poem.<|im_end|>\n<|im_start|>assistant\nroses<|im_end|>\n<|im_start|>user\nFollow-up: make it rhyme.<|im_end|>\n<|im_start|>assistant\n",
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nFollow-up: and 3+3?<|im_end|>\n<|im_start|>assistant\n",
    ]);
    expect(asked).toHaveLength(4);
    const mathTurn1 = asked.map((r) => (r.body["messages"] as { content: string }[])[1]!.content).find((c) => c.includes("What is 2+2?") && !c.includes("3+3"))!;
    expect(mathTurn1).toContain("[The Start of Reference Answer]\n4\n[The End of Reference Answer]");
    const m = report.tasks[0]!.metrics;
    expect(m["score"]).toMatchObject({ value: 6, n: 4 });
    expect(m["score:turn1"]!.value).toBe(8);
    expect(m["score:turn2"]!.value).toBe(4);
    expect(m["score:math"]!.value).toBe(6);
    expect(report.examples["mt_bench"]![1]).toMatchObject({ id: "111", output: ["4", "6"], gold: ["4", "6"] });
  });
});
