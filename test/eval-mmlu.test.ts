import { describe, expect, it } from "vitest";
import { mmluAccuracy } from "../src/stages/eval/mmlu-accuracy.js";
import { formatSubject, MMLU_CONTINUATIONS, mmluHeader, mmluPrediction, renderMmluPrompt, type MmluItem } from "../src/stages/eval/mmlu-prompt.js";
import { isMmluSubject, MMLU_SUBJECTS, mmluCategory, mmluSubcategory } from "../src/stages/eval/mmlu-subjects.js";

const dev: MmluItem[] = [
  { question: "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.", choices: ["0", "1", "2", "3"], answer: 1 },
  {
    question:
      "Statement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and K are subgroups of G then HK is a subgroup of G.",
    choices: ["True, True", "False, False", "True, False", "False, True"],
    answer: 1,
  },
];
// Whitespace around the question shows the one difference in how the two styles treat it.
const question: MmluItem = { question: "  Find the degree for the given field extension Q(sqrt(2)) over Q.\n", choices: ["0", "2", "1", "3"], answer: 1 };

describe("MMLU prompt", () => {
  it("renders hendrycks/test's prompt byte for byte (two spaces after 'about', question untouched)", () => {
    // Produced by hendrycks/test evaluate.py's own gen_prompt + format_example (run in Python on these rows).
    expect(renderMmluPrompt("abstract_algebra", dev, question)).toBe(
      "The following are multiple choice questions (with answers) about  abstract algebra.\n\nFind all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\nStatement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and K are subgroups of G then HK is a subgroup of G.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: B\n\n  Find the degree for the given field extension Q(sqrt(2)) over Q.\n\nA. 0\nB. 2\nC. 1\nD. 3\nAnswer:",
    );
    expect(renderMmluPrompt("high_school_government_and_politics", [], question)).toBe(
      "The following are multiple choice questions (with answers) about  high school government and politics.\n\n  Find the degree for the given field extension Q(sqrt(2)) over Q.\n\nA. 0\nB. 2\nC. 1\nD. 3\nAnswer:",
    );
  });

  it("renders lm-evaluation-harness's mmlu prompt byte for byte (one space, question stripped)", () => {
    // From lm-eval's mmlu/_generate_configs.py description and _default_template_yaml doc_to_text, joined as
    // fewshot_context joins them (target delimiter " ", few-shot delimiter "\n\n").
    expect(renderMmluPrompt("abstract_algebra", dev, question, { style: "lm-eval" })).toBe(
      "The following are multiple choice questions (with answers) about abstract algebra.\n\nFind all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\nStatement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and K are subgroups of G then HK is a subgroup of G.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: B\n\nFind the degree for the given field extension Q(sqrt(2)) over Q.\nA. 0\nB. 2\nC. 1\nD. 3\nAnswer:",
    );
    expect(mmluHeader("us_foreign_policy", { style: "lm-eval" })).toBe("The following are multiple choice questions (with answers) about us foreign policy.\n\n");
  });

  it("formats subjects, scores ' A'..' D' and predicts the first argmax", () => {
    expect(formatSubject("college_computer_science")).toBe(" college computer science");
    expect(MMLU_CONTINUATIONS).toEqual([" A", " B", " C", " D"]);
    expect(mmluPrediction([-3.2, -0.4, -1.1, -9])).toBe(1);
    expect(mmluPrediction([-1, -2, -1, -3])).toBe(0);
    expect(() => mmluPrediction([])).toThrow();
    expect(() => renderMmluPrompt("anatomy", [], { question: "q", choices: ["a", "b"], answer: 0 })).toThrow(/4 choices/);
    expect(() => renderMmluPrompt("anatomy", [{ question: "q", choices: ["a", "b", "c", "d"], answer: 7 }], question)).toThrow(/0-3/);
  });
});

describe("MMLU subjects and categories (hendrycks/test categories.py)", () => {
  it("has the 57 subjects in four categories of 18, 13, 12 and 14", () => {
    expect(MMLU_SUBJECTS).toHaveLength(57);
    expect([...MMLU_SUBJECTS].sort()).toEqual(MMLU_SUBJECTS);
    const count = (c: string) => MMLU_SUBJECTS.filter((s) => mmluCategory(s) === c).length;
    expect([count("stem"), count("humanities"), count("social_sciences"), count("other")]).toEqual([18, 13, 12, 14]);
    expect(mmluCategory("anatomy")).toBe("other");
    expect(mmluSubcategory("anatomy")).toBe("health");
    expect(mmluCategory("high_school_statistics")).toBe("stem");
    expect(mmluCategory("professional_law")).toBe("humanities");
    expect(mmluCategory("econometrics")).toBe("social_sciences");
    expect(isMmluSubject("toString")).toBe(false);
    expect(mmluCategory("constructor")).toBeUndefined();
  });
});

describe("MMLU accuracy", () => {
  const r = (subject: string, ...correct: boolean[]) => correct.map((c) => ({ subject, correct: c }));
  const results = [...r("abstract_algebra", true, false, true, true), ...r("college_biology", true, true), ...r("philosophy", false, false, true)];

  it("gives per-subject, per-category and overall accuracy, micro and macro, with standard errors (by hand)", () => {
    const a = mmluAccuracy(results);
    expect(Object.keys(a.subjects)).toEqual(["abstract_algebra", "college_biology", "philosophy"]);
    expect(a.subjects.abstract_algebra).toEqual({ acc: 0.75, stderr: 0.25, n: 4 });
    expect(a.subjects.college_biology).toEqual({ acc: 1, stderr: 0, n: 2 });
    expect(a.subjects.philosophy!.acc).toBeCloseTo(1 / 3, 12);
    expect(a.subjects.philosophy!.stderr).toBeCloseTo(1 / 3, 12);
    const stem = a.categories.stem!;
    expect(stem.micro.acc).toBeCloseTo(5 / 6, 12);
    expect(stem.micro.stderr).toBeCloseTo(1 / 6, 12);
    expect(stem.micro.n).toBe(6);
    expect(stem.macro.acc).toBeCloseTo(0.875, 12);
    expect(stem.macro.stderr).toBeCloseTo(0.125, 12);
    expect(stem.subjects).toBe(2);
    expect(a.categories.humanities!.micro.acc).toBeCloseTo(1 / 3, 12);
    expect(a.categories.social_sciences).toBeUndefined();
    expect(a.overall.micro.acc).toBeCloseTo(2 / 3, 12);
    expect(a.overall.micro.stderr).toBeCloseTo(1 / 6, 12);
    expect(a.overall.macro.acc).toBeCloseTo((0.75 + 1 + 1 / 3) / 3, 12);
    expect(a.overall.macro.stderr).toBeCloseTo(5 / 36, 12);
    expect(a.overall.macro.n).toBe(3);
  });
});
