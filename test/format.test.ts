import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { format } from "../src/format/format.js";
import { parse } from "../src/syntax/parser.js";
import { rng } from "./support/fuzz.js";

const fmt = (src: string) => {
  const p = parse(src, "t.itp");
  expect(p.diagnostics).toEqual([]);
  return format(p.module);
};

describe("canonical form", () => {
  it("one stage per block, one parameter per line, comments kept", () => {
    const src = `// Header comment.
import std/alpaca {alpaca_filters,alpaca_prompt as ap}
type Qa={question:string,answer?:string}   // trailing on the type
/// The teacher.
model teacher=openai_compatible{model="gpt-4o-mini" api_key=secret("KEY") timeout=30s}
dataset seeds : Instruction = jsonl( "seeds.jsonl" )
mix m = mix(seed:42){seeds:all   // everything
// flan next
seeds2:take(52_000),}
`;
    expect(fmt(src)).toBe(`// Header comment.
import std/alpaca { alpaca_filters, alpaca_prompt as ap }

type Qa = {
  question: string
  answer?: string
} // trailing on the type

/// The teacher.
model teacher = openai_compatible() {
  model = "gpt-4o-mini"
  api_key = secret("KEY")
  timeout = 30s
}

dataset seeds: Instruction = jsonl("seeds.jsonl")

mix m = mix(seed: 42) {
  seeds: all // everything
  // flan next
  seeds2: take(52_000)
}
`);
  });

  it("breaks long pipelines and argument lists, one item per line", () => {
    const src = `filter clean = raw |> length(field: instruction, unit: "words", min: 4, max: 150) |> rouge_dedup(field: instruction, max: 0.7)`;
    expect(fmt(src)).toBe(`filter clean = raw
  |> length(field: instruction, unit: "words", min: 4, max: 150)
  |> rouge_dedup(field: instruction, max: 0.7)
`);
    const long = `filter b = blocklist(raw, field: instruction, words: ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map"])`;
    expect(fmt(long)).toBe(`filter b = blocklist(
  raw,
  field: instruction,
  words: ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map"],
)
`);
  });

  it("keeps raw strings byte for byte and formats recipes", () => {
    const src = `recipe r(data: Dataset<Instruction>, n: int = 3) -> Dataset<Instruction> { stage p = prompt_template { text = """
    Answer:
      {instruction}
""" } filter a = take(data, n: n) output a }`;
    expect(fmt(src)).toBe(`recipe r(data: Dataset<Instruction>, n: int = 3) -> Dataset<Instruction> {
  stage p = prompt_template() {
    text = """
    Answer:
      {instruction}
"""
  }

  filter a = take(data, n: n)

  output a
}
`);
  });

  it("is idempotent and independent of the original spacing", () => {
    const src = `dataset a = jsonl("a.jsonl") // a
    filter b = a |> take(n: 3)`;
    const once = fmt(src);
    expect(fmt(once)).toBe(once);
  });
});

/**
 * Re-space a file outside strings and comments: random indentation, random runs of spaces around punctuation,
 * blank lines added. Whitespace carries no meaning, so the canonical text must come back.
 */
export function respace(text: string, seed: number): string {
  const r = rng(seed);
  const out: string[] = [];
  let inRaw = false;
  for (const line of text.split("\n")) {
    // Inside a raw (multi-line) string every byte is content: left alone.
    const rawQuotes = (line.match(/"""/g) ?? []).length;
    if (inRaw || rawQuotes % 2 === 1) {
      const wasRaw = inRaw;
      if (rawQuotes % 2 === 1) inRaw = !inRaw;
      if (wasRaw) {
        out.push(line);
        continue;
      }
    }
    if (line.trim() === "") {
      out.push("");
      continue;
    }
    let s = "";
    let inStr = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i]!;
      if (!inStr && c === "/" && line[i + 1] === "/") {
        s += line.slice(i);
        break;
      }
      if (c === '"' && line[i - 1] !== "\\") inStr = !inStr;
      if (!inStr && c === " ") {
        s += " ".repeat(1 + Math.floor(r() * 3));
        continue;
      }
      if (!inStr && "{}()[],=:".includes(c) && r() < 0.5) s += " ".repeat(Math.floor(r() * 2)) + c + " ".repeat(Math.floor(r() * 2));
      else s += c;
    }
    out.push(" ".repeat(Math.floor(r() * 6)) + (r() < 0.2 ? "\t" : "") + s.trimStart());
    // Blank lines are added anywhere but after a comment, where one is meaningful (it detaches the comment).
    if (r() < 0.1 && !line.trim().startsWith("//")) out.push("");
  }
  return out.join("\n");
}

describe("shipped recipes", () => {
  const files = ["pipelines", "stdlib"].flatMap((d) => {
    try {
      return readdirSync(d, { recursive: true }).map(String).filter((f) => f.endsWith(".itp")).map((f) => join(d, f));
    } catch {
      return [];
    }
  });
  it("exist", () => expect(files.length).toBeGreaterThanOrEqual(10));
  it.each(files)("%s: re-indented and re-spaced, formats back to its canonical text", (f) => {
    const canonical = readFileSync(f, "utf8");
    expect(fmt(canonical)).toBe(canonical);
    for (const seed of [1, 2, 3]) {
      const messy = respace(canonical, seed);
      expect(messy).not.toBe(canonical);
      expect(fmt(messy)).toBe(canonical);
    }
  });
});
