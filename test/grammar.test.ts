// The grammar artifacts stay in step with the parser: syntax diagrams are regenerated, the TextMate grammar is
// valid and highlights what it claims to, and the EBNF reference (grammar/itp.ebnf) names every parser rule.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";
import { describe, expect, it } from "vitest";
import { stageKeywords } from "../src/core/ir.js";
import { parserInstance } from "../src/syntax/parser.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const read = (rel: string): string => readFileSync(join(root, rel), "utf8");

describe("syntax diagrams (grammar/diagrams.html)", () => {
  it("are current: `node scripts/diagrams.mjs --check` passes", () => {
    const r = spawnSync(process.execPath, ["scripts/diagrams.mjs", "--check"], { cwd: root, encoding: "utf8" });
    expect(r.stderr + r.stdout, "run `npm run diagrams` and commit grammar/diagrams.html").not.toMatch(/stale/);
    expect(r.status).toBe(0);
  }, 60_000);

  it("are self-contained (no network resources) and draw a diagram for every parser rule", () => {
    const html = read("grammar/diagrams.html");
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html).not.toMatch(/<(?:script|img|iframe)\b[^>]*\bsrc=|<link\b/i);
    // Run the page's inline scripts against a minimal document: the renderer builds SVG as strings.
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    const div = { innerHTML: "" };
    const document = { getElementById: (id: string) => (id === "diagrams" ? div : null), getElementsByClassName: () => [], getElementsByTagName: () => [] };
    const context = vm.createContext({ document });
    (context as { window?: unknown }).window = context;
    for (const s of scripts) vm.runInContext(s, context);
    const drawn = [...div.innerHTML.matchAll(/<h2 class="diagramHeader">(\w+)<\/h2>/g)].map((m) => m[1]);
    expect(drawn).toEqual(Object.keys(parserInstance().getGAstProductions()));
    expect(div.innerHTML.match(/<svg/g)?.length).toBe(drawn.length);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// TextMate grammar

interface Capture {
  name?: string;
}
interface Rule {
  name?: string;
  match?: string;
  begin?: string;
  end?: string;
  captures?: Record<string, Capture>;
  beginCaptures?: Record<string, Capture>;
  endCaptures?: Record<string, Capture>;
  patterns?: Rule[];
  include?: string;
  repository?: Record<string, Rule>;
}
interface Grammar extends Rule {
  scopeName: string;
  fileTypes: string[];
  patterns: Rule[];
  repository: Record<string, Rule>;
}

const grammar = JSON.parse(read("grammar/itp.tmLanguage.json")) as Grammar;

function* regexSources(rule: Rule, where: string): Generator<[string, string]> {
  for (const key of ["match", "begin", "end"] as const) {
    const src = rule[key];
    if (src !== undefined) yield [`${where}.${key}`, src];
  }
  for (const [i, p] of (rule.patterns ?? []).entries()) yield* regexSources(p, `${where}.patterns[${i}]`);
  for (const [k, r] of Object.entries(rule.repository ?? {})) yield* regexSources(r, `${where}.repository.${k}`);
}

/**
 * A small TextMate tokenizer over JS regexes: enough of the engine (match/begin/end, captures, includes, earliest
 * match wins and ties go to the first pattern, end pattern before the others) to check what a line highlights as.
 * The grammar's regexes are written in the common subset of Oniguruma and JS, so VS Code agrees with this.
 */
class Tokenizer {
  private readonly compiled = new Map<string, RegExp>();
  constructor(private readonly g: Grammar) {}

  private re(src: string): RegExp {
    let r = this.compiled.get(src);
    if (!r) this.compiled.set(src, (r = new RegExp(src, "dg")));
    return r;
  }

  private flatten(patterns: Rule[], seen = new Set<string>()): Rule[] {
    const out: Rule[] = [];
    for (const p of patterns) {
      if (p.include !== undefined) {
        if (p.include === "$self") {
          if (!seen.has("$self")) out.push(...this.flatten(this.g.patterns, new Set([...seen, "$self"])));
          continue;
        }
        const target = this.g.repository[p.include.replace(/^#/, "")];
        if (!target) throw new Error(`unknown include ${p.include}`);
        if (target.match !== undefined || target.begin !== undefined) out.push(target);
        else if (!seen.has(p.include)) out.push(...this.flatten(target.patterns ?? [], new Set([...seen, p.include])));
      } else if (p.match !== undefined || p.begin !== undefined) out.push(p);
      else out.push(...this.flatten(p.patterns ?? [], seen));
    }
    return out;
  }

  /** Scopes of every character of every line. */
  tokenize(text: string): string[][][] {
    const stack: Rule[] = [];
    return text.split("\n").map((line) => {
      const scopes: string[][] = Array.from({ length: line.length }, () => []);
      const base = (): string[] => stack.flatMap((r) => (r.name ? [r.name] : []));
      const paint = (m: RegExpExecArray, name: string | undefined, captures: Record<string, Capture> | undefined, outer: string[]) => {
        for (let i = m.index; i < m.index + m[0].length; i++) scopes[i] = [...outer, ...(name ? [name] : [])];
        for (const [group, cap] of Object.entries(captures ?? {})) {
          const span = m.indices?.[Number(group)];
          if (!span || !cap.name) continue;
          for (let i = span[0]; i < span[1]; i++) scopes[i]!.push(cap.name);
        }
      };
      let pos = 0;
      while (pos <= line.length) {
        const top = stack[stack.length - 1];
        const candidates: { rule: Rule | "end"; m: RegExpExecArray }[] = [];
        const tryRe = (src: string, rule: Rule | "end") => {
          const r = this.re(src);
          r.lastIndex = pos;
          const m = r.exec(line);
          if (m) candidates.push({ rule, m });
        };
        if (top?.end !== undefined) tryRe(top.end, "end");
        for (const p of this.flatten(top ? (top.patterns ?? []) : this.g.patterns)) tryRe((p.match ?? p.begin)!, p);
        if (candidates.length === 0) {
          for (let i = pos; i < line.length; i++) scopes[i] = base();
          break;
        }
        const best = candidates.reduce((a, b) => (b.m.index < a.m.index ? b : a));
        for (let i = pos; i < best.m.index; i++) scopes[i] = base();
        if (best.rule === "end") {
          const closing = stack.pop()!;
          paint(best.m, closing.name, closing.endCaptures ?? closing.captures, base());
        } else if (best.rule.match !== undefined) {
          paint(best.m, best.rule.name, best.rule.captures, base());
        } else {
          paint(best.m, best.rule.name, best.rule.beginCaptures ?? best.rule.captures, base());
          stack.push(best.rule);
        }
        const next = best.m.index + best.m[0].length;
        if (next === pos && best.rule !== "end" && best.rule.begin === undefined) pos++;
        else if (next === pos && best.m.index === line.length) break;
        else pos = next;
      }
      return scopes;
    });
  }
}

const tokenizer = new Tokenizer(grammar);

/**
 * The scopes that every character of the `nth` occurrence of `needle` in `source` has. Word-like ends of the needle
 * only match at word boundaries (so "model" does not find hf_model), unless `inWords`.
 */
function scopesOf(source: string, needle: string, nth = 0, inWords = false): string[] {
  const lines = tokenizer.tokenize(source);
  const escaped = needle.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const word = (c: string | undefined) => !inWords && c !== undefined && /[A-Za-z0-9_]/.test(c);
  const find = new RegExp(`${word(needle[0]) ? "(?<![A-Za-z0-9_])" : ""}${escaped}${word(needle[needle.length - 1]) ? "(?![A-Za-z0-9_])" : ""}`, "g");
  let seen = 0;
  for (const [li, line] of source.split("\n").entries()) {
    for (const m of line.matchAll(find)) {
      if (seen++ !== nth) continue;
      const chars = lines[li]!.slice(m.index, m.index + needle.length);
      return chars.reduce((acc, sc) => acc.filter((x) => sc.includes(x)));
    }
  }
  throw new Error(`${JSON.stringify(needle)} (#${nth}) not in the sample`);
}

const sample = `/// Distil a teacher into a student.
// plain comment
import std/alpaca { load_alpaca, clean as scrub }
import "./common.itp" { Pair }

type Pair = {
  question: string,
  answer?: string
  tags: list<string>
}

model teacher = hf_model("meta/llama") { revision = "main", token = secret("HF_TOKEN") }
dataset raw: Dataset<Pair> = load_alpaca(limit: 52_000) |> scrub { max_len = 2048 }
generate synth = self_instruct(teacher) {
  prompt = """
    Write a question about "x" // not a comment
  """
  timeout = 30s, budget = 1.5h, wait = 200ms
  lr = 2e-5, ok = true, seed = null, host = env("HOST")
  text = "tab\\t quote\\" uni\\u{1F600} bad\\q"
}
mix blend = mix { raw: 0.7, synth: 0.3 }

recipe sft(base: Model, data: Dataset<Pair>, lr: float = 2e-5) -> Model {
  train tuned = lora(base, data) { epochs = 3, model = base, optim.lr = lr }
  output tuned
}
repeat round(2) from { picked: blend } {
  dataset picked = take(prev.picked, n: 5)
}
dataset last = round[2].picked
`;

describe("TextMate grammar (grammar/itp.tmLanguage.json)", () => {
  it("is valid JSON with the expected scope name and file type", () => {
    expect(grammar.scopeName).toBe("source.itp");
    expect(grammar.fileTypes).toEqual(["itp"]);
    expect(Array.isArray(grammar.patterns)).toBe(true);
    const config = JSON.parse(read("grammar/language-configuration.json")) as { comments: { lineComment: string } };
    expect(config.comments.lineComment).toBe("//");
  });

  it("has regexes that compile in JS as written (no Oniguruma-only constructs) and resolvable includes", () => {
    const sources = [...regexSources(grammar, "grammar")];
    expect(sources.length).toBeGreaterThan(20);
    for (const [where, src] of sources) {
      expect(() => new RegExp(src), where).not.toThrow();
      // \A \G \Z \z \h \H, possessive quantifiers and atomic groups mean something else (or nothing) in JS
      expect(src, where).not.toMatch(/\\[AGZzhH]|[*+?}]\+|\(\?>/);
    }
    const includes = JSON.stringify(grammar).match(/"include":"#[^"]+"/g) ?? [];
    for (const inc of includes) expect(grammar.repository, inc).toHaveProperty(inc.slice(12, -1));
  });

  // [needle, occurrence, a scope it must have]
  const expectations: [string, number, string][] = [
    ["/// Distil a teacher into a student.", 0, "comment.block.documentation.itp"],
    ["// plain comment", 0, "comment.line.double-slash.itp"],
    ["import", 0, "keyword.control.import.itp"],
    ["import", 1, "keyword.control.import.itp"],
    ["std/alpaca", 0, "entity.name.namespace.itp"],
    ["as", 0, "keyword.control.as.itp"],
    ["type", 0, "keyword.other.type.itp"],
    ["Pair", 1, "entity.name.type.itp"],
    ["question", 0, "source.itp"],
    ["string", 0, "support.type.primitive.itp"],
    ["?", 0, "keyword.operator.optional.itp"],
    ["list", 0, "support.type.primitive.itp"],
    ["string", 2, "support.type.primitive.itp"],
    ["model", 0, "keyword.other.stage.itp"],
    ["teacher", 1, "entity.name.function.stage.itp"],
    ["hf_model", 0, "entity.name.function.itp"],
    ["revision", 0, "variable.parameter.itp"],
    ["secret", 0, "support.function.builtin.itp"],
    ['"HF_TOKEN"', 0, "string.quoted.double.itp"],
    ["dataset", 0, "keyword.other.stage.itp"],
    ["Dataset", 0, "entity.name.type.itp"],
    ["Pair", 2, "entity.name.type.itp"],
    ["52_000", 0, "constant.numeric.itp"],
    ["|>", 0, "keyword.operator.pipe.itp"],
    ["scrub", 1, "entity.name.function.itp"],
    ["max_len", 0, "variable.parameter.itp"],
    ["generate", 0, "keyword.other.stage.itp"],
    ['"""', 0, "string.quoted.triple.itp"],
    ['Write a question about "x" // not a comment', 0, "string.quoted.triple.itp"],
    ['"""', 1, "string.quoted.triple.itp"],
    ["timeout", 0, "variable.parameter.itp"],
    ["30s", 0, "constant.numeric.duration.itp"],
    ["1.5h", 0, "constant.numeric.duration.itp"],
    ["200ms", 0, "constant.numeric.duration.itp"],
    ["2e-5", 0, "constant.numeric.itp"],
    ["true", 0, "constant.language.boolean.itp"],
    ["null", 0, "constant.language.null.itp"],
    ["env", 0, "support.function.builtin.itp"],
    ["\\t", 0, "constant.character.escape.itp"],
    ['\\"', 0, "constant.character.escape.itp"],
    ["\\u{1F600}", 0, "constant.character.escape.itp"],
    ["\\q", 0, "invalid.illegal.escape.itp"],
    ["mix", 0, "keyword.other.stage.itp"],
    ["mix", 1, "entity.name.function.itp"],
    ["0.7", 0, "constant.numeric.itp"],
    ["recipe", 0, "keyword.other.recipe.itp"],
    ["sft", 0, "entity.name.function.recipe.itp"],
    ["Model", 0, "entity.name.type.itp"],
    ["float", 0, "support.type.primitive.itp"],
    ["->", 0, "keyword.operator.arrow.itp"],
    ["Model", 1, "entity.name.type.itp"],
    ["train", 0, "keyword.other.stage.itp"],
    ["lora", 0, "entity.name.function.itp"],
    ["model", 1, "variable.parameter.itp"],
    ["optim.lr", 0, "variable.parameter.itp"],
    ["output", 0, "keyword.control.output.itp"],
    ["repeat", 0, "keyword.control.repeat.itp"],
    ["round", 0, "entity.name.function.repeat.itp"],
    ["from", 0, "keyword.control.from.itp"],
    ["prev", 0, "variable.language.prev.itp"],
  ];
  it.each(expectations)("highlights %j (#%i) as %s", (needle, nth, scope) => {
    const scopes = scopesOf(sample, needle, nth);
    if (scope === "source.itp") expect(scopes, "no special scope").toEqual([]);
    else expect(scopes).toContain(scope);
  });

  it("treats stage keywords as keywords only at the start of a declaration", () => {
    for (const kw of stageKeywords) {
      expect(scopesOf(`${kw} x = f()`, kw)).toContain("keyword.other.stage.itp");
      expect(scopesOf(`f { ${kw} = 1 }`, kw)).toEqual(["variable.parameter.itp"]);
      expect(scopesOf(`f(${kw}, ${kw}.x)`, kw).filter((x) => x.startsWith("keyword"))).toEqual([]);
    }
    expect(scopesOf("f { output = 1, type = 2 }", "output")).toEqual(["variable.parameter.itp"]);
    expect(scopesOf("f { output = 1, type = 2 }", "type")).toEqual(["variable.parameter.itp"]);
  });

  it("scopes duration units", () => {
    expect(scopesOf("f { t = 200ms }", "200", 0, true)).toEqual(["constant.numeric.duration.itp"]);
    expect(scopesOf("f { t = 200ms }", "ms", 0, true)).toEqual(["constant.numeric.duration.itp", "keyword.other.unit.itp"]);
    expect(scopesOf("f { t = 1.5h }", "h", 0, true)).toContain("keyword.other.unit.itp");
  });

  it("keeps numbers inside names and strings out of number scopes", () => {
    expect(scopesOf("dataset x2 = f(y3)", "2", 0, true)).not.toContain("constant.numeric.itp");
    expect(scopesOf("dataset x2 = f(y3)", "3", 0, true)).toEqual([]);
    expect(scopesOf('f { k = "30s" }', "30s")).toEqual(["string.quoted.double.itp"]);
    expect(scopesOf("f { k = 52_000 }", "52_000")).toEqual(["constant.numeric.itp"]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// EBNF reference vs parser

/**
 * Parser rules whose EBNF production has a different name (everything else matches case-insensitively:
 * parser `stageDecl` is EBNF `StageDecl`).
 */
const ebnfNameOf: Record<string, string> = {
  importDecl: "Import",
  typeExpr: "Type",
};

describe("EBNF reference (grammar/itp.ebnf)", () => {
  const ebnf = read("grammar/itp.ebnf").replace(/\(\*[\s\S]*?\*\)/g, (c) => c.replace(/[^\n]/g, " "));
  const productions = new Map([...ebnf.matchAll(/^\s*([A-Za-z][A-Za-z0-9_]*)\s*=/gm)].map((m) => [m[1]!.toLowerCase(), m[1]!]));
  const parserRules = Object.keys(parserInstance().getGAstProductions());

  it("has a production for every parser rule", () => {
    expect(parserRules.length).toBeGreaterThan(10);
    const missing = parserRules.filter((r) => !productions.has((ebnfNameOf[r] ?? r).toLowerCase()));
    expect(missing, "add these rules to grammar/itp.ebnf (or to the mapping table in this test)").toEqual([]);
  });

  it("maps only parser rules that exist and are named differently", () => {
    for (const [rule, production] of Object.entries(ebnfNameOf)) {
      expect(parserRules, `stale mapping entry ${rule}`).toContain(rule);
      expect(productions.has(rule.toLowerCase()), `${rule} matches an EBNF production directly; drop it from the table`).toBe(false);
      expect(productions.has(production.toLowerCase()), `EBNF production ${production}`).toBe(true);
    }
  });

  it("lists the lexer's stage keywords", () => {
    const m = /^\s*StageKeyword\s*=([^;]*);/m.exec(ebnf);
    expect(m).not.toBeNull();
    expect([...m![1]!.matchAll(/"([^"]+)"/g)].map((x) => x[1])).toEqual([...stageKeywords]);
  });
});
