import { describe, expect, it } from "vitest";
import { diffReports, renderDiff, renderExamples, renderReport, selectExamples } from "../src/cli/report.js";
import { meanMetric, REPORT_FORMAT, type Report } from "../src/stages/eval/report.js";

// Reports as `itp show` prints them and as `itp report-diff` compares them.

const report = (acc: number[], strict: number[]): Report => ({
  format: REPORT_FORMAT,
  model: "sft",
  template: "none (plain prompts)",
  tasks: [
    {
      name: "quiz",
      task: "multiple_choice",
      params: {},
      primary: "acc",
      metrics: { acc: meanMetric(acc), acc_norm: meanMetric(acc.map((x) => 1 - x)) },
      items: acc.length,
      limited: false,
      contamination: { ngram: 13, items: acc.length, contaminated: 1, training_data: ["chats"] },
    },
    { name: "sums", task: "generate_and_check", params: {}, primary: "acc", metrics: { acc: meanMetric(strict) }, items: strict.length, limited: true, contamination: { unavailable: "the training data of the model is not in this recipe" } },
  ],
  examples: {
    quiz: acc.map((x, i) => ({ id: String(i), prompt: `Q${i}`, output: { logprobs: [-1, -2] }, extracted: "a", gold: x ? "a" : "b", passed: x === 1 })),
    sums: strict.map((x, i) => ({ id: String(i), prompt: `S${i}`, output: "4", passed: x === 1 })),
  },
});

describe("a report as text", () => {
  it("a table of every metric with its standard error and count, then items and contamination", () => {
    expect(renderReport(report([1, 0, 1, 1], [1, 0]))).toBe(
      [
        "model     sft",
        "template  none (plain prompts)",
        "task  metric     value  stderr  n",
        "quiz  acc       0.7500  0.2500  4",
        "      acc_norm  0.2500  0.2500  4",
        "sums  acc       0.5000  0.5000  2",
        "items and contamination",
        "  quiz: 4 items; 1/4 items share a 13-gram with chats",
        "  sums: 2 items (cut by limit); the training data of the model is not in this recipe",
        "",
      ].join("\n"),
    );
  });

  it("examples, of one task, the failed ones", () => {
    const r = report([1, 0, 1, 0], [1, 1]);
    expect(selectExamples(r, {}).length).toBe(6);
    const failed = selectExamples(r, { failed: true });
    expect(failed.map((f) => `${f.task}#${f.example.id}`)).toEqual(["quiz#1", "quiz#3"]);
    expect(selectExamples(r, { task: "sums", failed: true })).toEqual([]);
    expect(renderExamples(failed.slice(0, 1))).toBe(['--- quiz #1 FAILED', 'prompt:    "Q1"', 'output:    {"logprobs":[-1,-2]}', 'extracted: "a"', 'gold:      "b"', ""].join("\n"));
  });
});

describe("two reports compared", () => {
  it("metric by metric: the change, its standard error sqrt(se1^2 + se2^2), and whether it is beyond it", () => {
    const a = report([1, 0, 1, 0, 1, 0, 1, 0], [0, 0]);
    const b = report([1, 1, 1, 1, 1, 1, 1, 0], [0, 1]);
    const changes = diffReports(a, b);
    const acc = changes.find((c) => c.task === "quiz" && c.metric === "acc")!;
    const se = Math.sqrt(meanMetric([1, 0, 1, 0, 1, 0, 1, 0]).stderr! ** 2 + meanMetric([1, 1, 1, 1, 1, 1, 1, 0]).stderr! ** 2);
    expect(acc.change).toBeCloseTo(0.375, 12);
    expect(acc.stderr).toBeCloseTo(se, 12);
    expect(acc.beyond_stderr).toBe(0.375 > se);
    // sums: the old run's accuracy has no spread (0 and 0: stderr 0), the new one 0.5.
    const sums = changes.find((c) => c.task === "sums")!;
    expect(sums).toMatchObject({ change: 0.5, stderr: 0.5, beyond_stderr: false });
    const text = renderDiff(changes);
    expect(text.split("\n")[0]).toBe("task  metric       old     new   change  stderr  beyond stderr");
    expect(text).toContain("quiz  acc       0.5000  0.8750  +0.3750");
  });

  it("a task or metric on one side only is shown with (none)", () => {
    const a = report([1, 0], [1, 0]);
    const b: Report = { ...a, tasks: [a.tasks[0]!] };
    const changes = diffReports(a, b);
    expect(changes.find((c) => c.task === "sums")).toMatchObject({ new: null, change: null, beyond_stderr: null });
    expect(renderDiff(changes)).toMatch(/sums\s+acc\s+0\.5000\s+\(none\)\s+-\s+-\s+-/);
  });
});
