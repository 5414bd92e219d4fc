import { describe, expect, it } from "vitest";
import { fuzz } from "./support/fuzz.js";

describe("fuzzing the shipped recipes", () => {
  it("500 mutants: exit 0 or 1, no stack trace, diagnostics inside the file, formatting stable", async () => {
    const r = await fuzz(500, 20251125);
    const report = r.failures.slice(0, 3).map((f) => `case ${f.seed} (${f.op}) from ${f.source}: ${f.problem}\n---\n${f.text.slice(0, 400)}`);
    expect(report).toEqual([]);
    expect(r.crashes).toBe(0);
  }, 300_000);
});
