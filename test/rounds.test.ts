/**
 * `repeat` blocks: rounds unrolled at check time into stages with stable names (`grown.round[2].picked`), used by
 * plan, graph, diff, run and `--set`; the parsers agree on them and the formatter keeps them.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { diskHost } from "../src/cli/host.js";
import { check } from "../src/compile/check.js";
import { parseOverride } from "../src/compile/overrides.js";
import { format } from "../src/format/format.js";
import { defaultRegistry } from "../src/stages/index.js";
import { fastParse } from "../src/syntax/fast-parser.js";
import { parse } from "../src/syntax/parser.js";
import { itp, tempTree } from "./support/cli.js";

const recipe = (rounds: number) => `recipe grow(seed_data: Dataset<Json>, rounds: int = ${rounds}) -> Dataset<Json> {
  dataset base = take(seed_data, n: 5)

  /// Each round keeps three records of the previous round's data, next to the base.
  repeat round(rounds) from { data: base } {
    dataset picked = take(prev.data, n: 3)

    dataset data = concat(base, picked)
  }

  dataset final = round.last.data

  output final
}

dataset seeds = records(items: [{ i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }])

dataset grown = grow(seeds)

dataset first_round = take(seeds, n: 1) |> concat(grown)

repeat halve(3) from { x: seeds } {
  dataset x = take(prev.x, n: 2)
}

dataset second = take(halve[2].x, n: 1)
`;

interface PlanStage {
  id: string;
  status: string;
  reasons: string[];
}

/** Each stage's parameters, through the library's check (what `run` elaborates). */
const params = (text: string, ...sets: string[]): Map<string, Record<string, unknown>> => {
  const path = "/virtual/r.itp";
  const overrides = sets.map((s) => parseOverride(s).override!);
  const r = check([path], diskHost(), defaultRegistry(), { sources: new Map([[path, text]]), runnable: false, overrides });
  expect(r.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return new Map([...r.files[0]!.program!.stages.values()].map((s) => [s.id, s.params as Record<string, unknown>]));
};

const plan = (dir: string, ...args: string[]) => {
  const r = itp(["plan", "r.itp", "--json", ...args], { cwd: dir });
  expect(r.stderr).toBe("");
  return (JSON.parse(r.stdout) as { stages: PlanStage[] }).stages;
};

describe("repeat blocks", () => {
  it("unroll into named rounds: round k reads round k-1 through prev, round 1 reads `from`", () => {
    const dir = tempTree({ "r.itp": recipe(2) });
    const j = JSON.parse(itp(["graph", "r.itp", "--json"], { cwd: dir }).stdout) as { nodes: { id: string }[]; edges: { from: string; to: string }[] };
    expect(j.nodes.map((n) => n.id).sort()).toEqual(
      ["seeds", "grown.base", "grown.round[1].picked", "grown.round[1].data", "grown.round[2].picked", "grown.round[2].data", "first_round.take", "first_round", "halve[1].x", "halve[2].x", "halve[3].x", "second"].sort(),
    );
    const edges = j.edges.map((e) => `${e.from} -> ${e.to}`);
    expect(edges).toContain("grown.base -> grown.round[1].picked"); // from { data: base }
    expect(edges).toContain("grown.round[1].data -> grown.round[2].picked"); // prev.data
    expect(edges).toContain("grown.round[2].data -> first_round"); // round.last.data is the recipe's output
    expect(edges).toContain("seeds -> halve[1].x");
    expect(edges).toContain("halve[2].x -> halve[3].x");
    expect(edges).toContain("halve[2].x -> second");
  });

  it("--set changes the number of rounds (a recipe parameter) and one round's parameter", () => {
    const dir = tempTree({ "r.itp": recipe(2) });
    const three = plan(dir, "--set", "grown.rounds=3").map((s) => s.id);
    expect(three).toContain("grown.round[3].data");
    const p = params(recipe(2), "grown.round[2].picked.n=1");
    expect(p.get("grown.round[2].picked")).toMatchObject({ n: 1 });
    expect(p.get("grown.round[1].picked")).toMatchObject({ n: 3 });
    const bad = itp(["plan", "r.itp", "--set", "grown.round[4].picked.n=1"], { cwd: dir });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/no stage `grown\.round\[4\]\.picked`/);
  });

  it("an instantiation's override of a round's stage applies in every round", () => {
    const p = params(recipe(2).replace("dataset grown = grow(seeds)", "dataset grown = grow(seeds) { picked.n = 2 }"));
    expect([p.get("grown.round[1].picked")?.["n"], p.get("grown.round[2].picked")?.["n"]]).toEqual([2, 2]);
  });

  it("run: every round computed once, a rerun fully cached; records flow round to round", () => {
    const dir = tempTree({ "r.itp": recipe(2) });
    const first = itp(["run", "r.itp", "--store", "st"], { cwd: dir });
    expect(first.code).toBe(0);
    expect(first.stdout + first.stderr).toMatch(/ran 12, cached 0, failed 0/);
    const again = itp(["run", "r.itp", "--store", "st"], { cwd: dir });
    expect(again.stdout + again.stderr).toMatch(/ran 0, cached 12, failed 0/);
    // base keeps 4 records; round 1: 3 picked + 4 = 7; round 2: 3 + 4 = 7; first_round: 1 + 7.
    const show = itp(["show", "r.itp", "first_round", "--store", "st", "--json"], { cwd: dir });
    expect(JSON.parse(show.stdout)).toMatchObject({ records: 8 });
  });

  it("itp diff of a changed round count lists the added round's stages and what they invalidate", () => {
    const dir = tempTree({ "old.itp": recipe(2), "new.itp": recipe(3) });
    const r = itp(["diff", "old.itp", "new.itp"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("+ grown.round[3].picked (take)");
    expect(r.stdout).toContain("+ grown.round[3].data (concat)");
    expect(r.stdout).toMatch(/~ first_round \(concat\)\n {4}input data\[1\]: grown\.round\[2\]\.data -> grown\.round\[3\]\.data/);
  });

  it("the fast parser and the Chevrotain parser build the same tree; the formatter is idempotent", () => {
    const text = recipe(2);
    const quick = fastParse(text);
    const reference = parse(text, "r.itp", { fast: false });
    expect(reference.diagnostics).toEqual([]);
    expect(quick).toBeDefined();
    const noFile = (k: string, v: unknown) => (k === "file" || k === "doc" ? undefined : v);
    expect(JSON.stringify({ i: quick!.imports, d: quick!.decls }, noFile)).toBe(JSON.stringify({ i: reference.module.imports, d: reference.module.decls }, noFile));
    const once = format(reference.module);
    // The repeat blocks and the round references come out as written (the record list is broken up as usual).
    for (const part of [text.slice(text.indexOf("  /// Each round"), text.indexOf("  dataset final")), text.slice(text.indexOf("repeat halve"))]) expect(once).toContain(part);
    expect(format(parse(once, "r.itp").module)).toBe(once);
  });

  it("the repeat block's doc comment is kept, and the grammar files know the keywords", () => {
    const m = parse(recipe(2), "r.itp").module;
    const r = m.decls.find((d) => d.type === "RecipeDecl")!;
    expect(r.type === "RecipeDecl" && r.repeats?.[0]?.doc).toBe("Each round keeps three records of the previous round's data, next to the base.");
    const root = join(import.meta.dirname, "..");
    expect(readFileSync(join(root, "grammar/itp.ebnf"), "utf8")).toMatch(/RepeatDecl\s*=\s*"repeat"/);
    expect(readFileSync(join(root, "grammar/itp.tmLanguage.json"), "utf8")).toMatch(/repeat/);
    expect(readFileSync(join(root, "grammar/diagrams.html"), "utf8")).toMatch(/repeatDecl|RepeatDecl/);
  });
});
