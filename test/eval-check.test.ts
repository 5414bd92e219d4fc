import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "../src/compile/check.js";
import { diskHost } from "../src/cli/host.js";
import { defaultRegistry } from "../src/stages/index.js";

// Evaluation tasks are values over dataset stages: the datasets (and judges) they name are inputs of the `evaluate`
// stage, and so is the training data of the model it evaluates (for the contamination counts).

const dir = mkdtempSync(join(tmpdir(), "itp-eval-check-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const programOf = (text: string) => {
  const path = join(dir, "r.itp");
  const r = check([path], diskHost(), defaultRegistry(), { sources: new Map([[path, text]]), runnable: false });
  expect(r.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return r.files[0]!.program!;
};

describe("evaluate's inputs", () => {
  it("are the model, every task's datasets and judge, and the training data upstream of the model", () => {
    const p = programOf(`dataset chats: Instruction = jsonl("chats.jsonl")
dataset more: Instruction = jsonl("more.jsonl")
dataset questions: McqExample = jsonl("mmlu.jsonl")
dataset dev: McqExample = jsonl("mmlu_dev.jsonl")
dataset sums: MathExample = jsonl("gsm8k.jsonl")
dataset quiz = jsonl("quiz.jsonl")
model judge = openai_compatible(model: "judge")
train first = sft(chats, base: "models/tiny")
train second = sft(more, base: first)
eval scores = evaluate(second) {
  tasks = [
    mmlu(questions, dev: dev, shots: 5),
    gsm8k(sums, shots: 0),
    multiple_choice(quiz, question: q, choices: options, answer: gold),
    alpaca_eval(jsonl("alpaca_eval.jsonl"), judge: judge),
  ]
}
`);
    const scores = p.stages.get("scores")!;
    expect(scores.inputs.map((i) => `${i.role} <- ${i.from}`)).toEqual([
      "model <- second",
      "param:tasks[0].data <- questions",
      "param:tasks[0].dev <- dev",
      "param:tasks[1].data <- sums",
      "param:tasks[2].data <- quiz",
      expect.stringMatching(/^param:tasks\[3\]\.data <- /),
      "param:tasks[3].judge <- judge",
      // Both training stages' data: the model was fine-tuned twice.
      "train_data:more <- more",
      "train_data:chats <- chats",
    ]);
  });

  it("a model made outside the recipe has no training data here", () => {
    const p = programOf(`model base = hf_model(repo: "meta-llama/Llama-2-7b-hf")
dataset sums: MathExample = jsonl("gsm8k.jsonl")
eval scores = evaluate(base) { tasks = [gsm8k(sums, shots: 0)] }
`);
    expect(p.stages.get("scores")!.inputs.map((i) => i.role)).toEqual(["model", "param:tasks[0].data"]);
  });
});
