import { describe, expect, it } from "vitest";
import { compilePredicate } from "../src/formats/predicate.js";

describe("where predicates", () => {
  const records = [
    { lang: "en", n: 3, output: "hello world", tags: ["a", "b"], meta: { lang: "fr", deep: { x: 1 } } },
    { lang: "de", n: 10, output: "", tags: [], meta: null },
    { n: -1.5, output: "world hello", meta: { lang: "en" } },
    {},
  ];
  const kept = (expr: string) => records.flatMap((r, i) => (compilePredicate(expr)(r) ? [i] : []));

  it("every operator, on present and missing fields", () => {
    expect(kept('lang == "en"')).toEqual([0]);
    expect(kept('lang != "en"')).toEqual([1, 2, 3]);
    expect(kept("n < 3")).toEqual([2]);
    expect(kept("n <= 3")).toEqual([0, 2]);
    expect(kept("n > 3")).toEqual([1]);
    expect(kept("n >= 3")).toEqual([0, 1]);
    expect(kept('output contains "world"')).toEqual([0, 2]);
    expect(kept('tags contains "b"')).toEqual([0]);
    expect(kept('output startswith "hello"')).toEqual([0]);
    expect(kept('output endswith "hello"')).toEqual([2]);
    expect(kept("lang == null")).toEqual([]);
    expect(kept("meta == null")).toEqual([1]);
  });

  it("dotted fields, len, and, or, not, parentheses", () => {
    expect(kept('meta.lang == "fr"')).toEqual([0]);
    expect(kept("meta.deep.x == 1")).toEqual([0]);
    expect(kept("meta.deep.x != 1")).toEqual([1, 2, 3]);
    expect(kept("len(output) >= 11")).toEqual([0, 2]);
    expect(kept("len(tags) == 0")).toEqual([1, 2, 3]);
    expect(kept('lang == "en" or meta.lang == "en"')).toEqual([0, 2]);
    expect(kept('not (lang == "en" or n < 0) and len(output) == 0')).toEqual([1, 3]);
  });

  it("a compiled predicate gives the same verdicts on every call", () => {
    const p = compilePredicate('output contains "o" and n > 0');
    for (let k = 0; k < 3; k++) expect(records.map((r) => p(r))).toEqual([true, false, false, false]);
  });
});
