import { describe, expect, it } from "vitest";
import { asScores, mean, meanStderr, meanWithStderr, sampleStddev } from "../src/stages/eval/stderr.js";

describe("standard errors (lm-eval's mean_stderr)", () => {
  it("is the sample standard deviation over sqrt(n)", () => {
    // [2, 4, 4, 4, 5, 5, 7, 9]: mean 5, squared deviations sum to 32, sample variance 32/7.
    const xs = [2, 4, 4, 4, 5, 5, 7, 9];
    expect(mean(xs)).toBe(5);
    expect(sampleStddev(xs)).toBeCloseTo(Math.sqrt(32 / 7), 14);
    expect(meanStderr(xs)).toBeCloseTo(Math.sqrt(32 / 7) / Math.sqrt(8), 14);
    expect(meanWithStderr(asScores([true, false, true, true]))).toEqual({ value: 0.75, stderr: 0.25, n: 4 });
  });

  it("is undefined (NaN) below two values, as the reference's n - 1 makes it", () => {
    expect(mean([])).toBeNaN();
    expect(meanStderr([1])).toBeNaN();
    expect(meanStderr([1, 1])).toBe(0);
  });
});
