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

describe("where predicates on records read as latin1", () => {
  // Lines of UTF-8 (accents, CJK, an emoji: a surrogate pair, 4 bytes), read as usual and as latin1 (the reader's
  // fast path for lines without \u escapes): every expression gives the same verdicts.
  const lines = [
    { lang: "en", output: "café au lait", tags: ["naïve", "b"], meta: { lang: "fr", note: "été" }, n: 3 },
    { lang: "fr", output: "🙂🙂 ok", tags: [], meta: { lang: "日本" }, n: 12 },
    { lang: "日本", output: "", input: "über", n: -1, s: " 12" },
    { output: "x".repeat(5), input: "", s: "\u00a012", t: "b" },
    { t: "é", output: "aé", tags: ["é", 1] },
    {},
  ].map((r) => Buffer.from(JSON.stringify(r)));
  const exprs = [
    'lang == "en"',
    'lang == "日本"',
    'lang != "日本"',
    'meta.lang == "日本"',
    'meta.note == "été"',
    'output contains "é"',
    'output contains "au"',
    'output startswith "caf"',
    'output startswith "🙂"',
    'output endswith "lait"',
    'output endswith "é"',
    'tags contains "naïve"',
    'tags contains "é"',
    "tags contains 1",
    "len(output) == 12",
    "len(output) == 7",
    "len(output) >= 2",
    "len(tags) == 2",
    'input == ""',
    'input == "" and len(output) >= 5',
    "s > 5",
    "s == 12",
    'lang < "z"',
    't > "a"',
    't >= "é"',
    "n < 5",
    'not (lang == "en") or output contains "🙂"',
  ];
  it("gives the verdicts it gives on the records as decoded", () => {
    for (const e of exprs) {
      const usual = compilePredicate(e);
      const latin1 = compilePredicate(e, "latin1");
      const want = lines.map((l) => usual(JSON.parse(l.toString("utf8"))));
      expect(lines.map((l) => latin1(JSON.parse(l.toString("latin1")))), e).toEqual(want);
    }
  });
});
