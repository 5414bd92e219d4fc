import { describe, expect, it } from "vitest";
import type * as A from "../src/syntax/ast.js";
import { decodeRawString } from "../src/syntax/literals.js";
import { parse, parseExpression } from "../src/syntax/parser.js";

const valueOf = (src: string) => {
  const r = parseExpression(src, "t");
  expect(r.diagnostics).toEqual([]);
  return r.expr as A.Literal;
};

describe("literals", () => {
  it("numbers with separators and exponents", () => {
    expect(valueOf("52_000").value).toBe(52000);
    expect(valueOf("2e-5").value).toBe(2e-5);
    expect(valueOf("1.5E+3").value).toBe(1500);
    expect(valueOf("-0.25").value).toBe(-0.25);
    expect(valueOf("52_000").raw).toBe("52_000");
  });
  it("durations in milliseconds", () => {
    expect(valueOf("30s").value).toEqual({ duration_ms: 30_000 });
    expect(valueOf("1.5h").value).toEqual({ duration_ms: 5_400_000 });
    expect(valueOf("200ms").value).toEqual({ duration_ms: 200 });
    expect(valueOf("2d").value).toEqual({ duration_ms: 172_800_000 });
  });
  it("strings with escapes", () => {
    expect(valueOf(String.raw`"a\"b\\c\n\t\u{1F600}\u00e9"`).value).toBe('a"b\\c\n\t😀é');
  });
  it("raw strings: no escapes, first newline dropped, common indentation removed", () => {
    expect(decodeRawString('"""\n    Below is\n      an \\n instruction.\n    """')).toBe("Below is\n  an \\n instruction.\n");
    expect(decodeRawString('"""one line"""')).toBe("one line");
  });
  it("booleans and null", () => {
    expect(valueOf("true").value).toBe(true);
    expect(valueOf("null").value).toBe(null);
  });
});

describe("declarations", () => {
  it("keeps every node's source range", () => {
    const src = `dataset seeds: Instruction = jsonl("seeds.jsonl")\n`;
    const { module: m, diagnostics } = parse(src, "t.itp");
    expect(diagnostics).toEqual([]);
    const d = m.decls[0] as A.StageDecl;
    expect(src.slice(d.start, d.end)).toBe(`dataset seeds: Instruction = jsonl("seeds.jsonl")`);
    expect(src.slice(d.name.start, d.name.end)).toBe("seeds");
    expect(src.slice(d.annotation!.start, d.annotation!.end)).toBe("Instruction");
    const call = d.value as A.Call;
    expect(src.slice(call.args[0]!.start, call.args[0]!.end)).toBe(`"seeds.jsonl"`);
  });

  it("keywords are names where a name is expected", () => {
    const { diagnostics, module: m } = parse(`generate g = generate_alpaca(s) { model = teacher\n output = 3 type = "x" }`, "t.itp");
    expect(diagnostics).toEqual([]);
    const call = (m.decls[0] as A.StageDecl).value as A.Call;
    expect(call.block!.entries.map((e) => e.key[0]!.text)).toEqual(["model", "output", "type"]);
  });

  it("pipelines, mix components, recipes, imports and doc comments", () => {
    const src = `import std/alpaca { alpaca_filters as af, alpaca_prompt }
import "./common.itp" { x }
/// Cleaned data.
/// Two lines.
filter clean = raw |> af() |> rouge_dedup(field: instruction, max: 0.7)
mix m = mix(seed: 42) { clean: all, flan: take(50_000) }
recipe r(data: Dataset<Instruction>, n: int = 3) -> Dataset<Instruction> {
  filter a = take(data, n: n)
  output a
}
type T = { a: string, b?: list<int> }
`;
    const { module: m, diagnostics } = parse(src, "t.itp");
    expect(diagnostics).toEqual([]);
    expect(m.imports.map((i) => [i.path, i.std])).toEqual([
      ["std/alpaca", true],
      ["./common.itp", false],
    ]);
    expect(m.imports[0]!.names[0]!.alias?.text).toBe("af");
    const clean = m.decls[0] as A.StageDecl;
    expect(clean.doc).toBe("Cleaned data.\nTwo lines.");
    expect((clean.value as A.Pipeline).steps.map((s) => s.callee.text)).toEqual(["af", "rouge_dedup"]);
    const mix = (m.decls[1] as A.StageDecl).value as A.Call;
    expect(mix.block!.entries.map((e) => [e.key[0]!.text, e.op])).toEqual([
      ["clean", ":"],
      ["flan", ":"],
    ]);
    const r = m.decls[2] as A.RecipeDecl;
    expect(r.params.map((p) => p.name.text)).toEqual(["data", "n"]);
    expect(r.output?.text).toBe("a");
    const t = m.decls[3] as A.TypeDecl;
    expect(t.fields.map((f) => [f.name.text, f.optional])).toEqual([
      ["a", false],
      ["b", true],
    ]);
  });
});

describe("error recovery", () => {
  it("reports several syntax errors in one parse and keeps the declarations around them", () => {
    const src = `dataset a = jsonl("a.jsonl"
dataset b = jsonl("b.jsonl")
filter c = take(b, n: ) 
dataset d = jsonl("d.jsonl")
mix e = mix() { a: all b }
`;
    const { module: m, diagnostics } = parse(src, "t.itp");
    expect(diagnostics.length).toBeGreaterThanOrEqual(3);
    expect(new Set(diagnostics.map((d) => d.code))).toEqual(new Set(["E001"]));
    const lines = diagnostics.map((d) => d.range!.file.position(d.range!.start).line);
    expect(lines).toContain(2);
    expect(lines).toContain(3);
    expect(lines).toContain(5);
    expect(m.decls.some((d) => d.type === "StageDecl" && d.name.text === "d")).toBe(true);
  });

  it("reports an unterminated string and a stray character at their positions", () => {
    const src = `dataset a = jsonl("a.jsonl)\ndataset b = jsonl("b.jsonl") ¤\n`;
    const { diagnostics } = parse(src, "t.itp");
    const at = diagnostics.map((d) => [d.code, d.range!.file.position(d.range!.start)]);
    expect(at).toContainEqual(["E003", { line: 1, col: 19 }]);
    expect(at).toContainEqual(["E002", { line: 2, col: 30 }]);
  });

  it("an error at the end of the file points at the end", () => {
    const src = `mix m = mix() {\n  a: all\n`;
    const { diagnostics } = parse(src, "t.itp");
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]!.message).toMatch(/end of file/);
    expect(diagnostics[0]!.range!.start).toBe(src.length);
  });
});

describe("the grammar itself", () => {
  it("passes Chevrotain's validations (no ambiguity, no left recursion) and the lexer's", async () => {
    const { ItpParser } = await import("../src/syntax/parser.js");
    expect(() => new ItpParser(true)).not.toThrow();
    const { Lexer } = await import("chevrotain");
    const { allTokens } = await import("../src/syntax/lexer.js");
    expect(() => new Lexer(allTokens, { positionTracking: "onlyOffset" })).not.toThrow();
  });
});
