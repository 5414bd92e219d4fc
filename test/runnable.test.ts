import { afterAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { defaultRegistry } from "../src/stages/index.js";
import { checkedImplementations, implementations } from "../src/stages/impls.js";
import { join } from "node:path";
import { check } from "../src/compile/check.js";
import { checkRunnable } from "../src/compile/runnable.js";
import { AVAILABLE_EXECUTORS } from "../src/core/available-executors.js";
import { diskHost } from "../src/cli/host.js";
import { Registry } from "../src/stages/registry.js";
import { itp, repoRoot, stackTrace, tempTree } from "./support/cli.js";
import { tmpdir } from "node:os";

// A recipe that passes `itp check` can run: a stage kind without an implementation (E075) or an executor that does
// not exist (E076) is an error before anything runs. `run`, `plan` and `show` ask it only of the stages they need.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("which kinds can run", () => {
  it("every declared kind has an implementation or says `implemented: false`, never both", () => {
    const registry = defaultRegistry();
    const impls = implementations();
    for (const kind of registry.allStages()) expect(impls.has(kind.name), kind.name).toBe(kind.implemented !== false);
    expect(() => checkedImplementations(registry)).not.toThrow();
  });
});

interface JsonDiagnostic {
  severity: string;
  file: string;
  line: number;
  code: string;
  message: string;
}

const checkJson = (paths: string[], cwd?: string) => {
  const r = itp(["check", ...paths, "--json"], cwd ? { cwd } : {});
  expect(r.stdout + r.stderr).not.toMatch(stackTrace);
  return { code: r.code, diagnostics: (JSON.parse(r.stdout) as { diagnostics: JsonDiagnostic[] }).diagnostics };
};

describe("an executor this build lacks", () => {
  it("is E076 at the first stage that asks for it, with the count of the others", () => {
    const path = join(tmpdir(), "e076.itp");
    const text = `dataset data: Instruction = jsonl("d.jsonl")
train a = sft(data, base: "m") { executor = "slurm" }
train b = sft(data, base: "m") { executor = "slurm" }
`;
    const run = (executors: ReadonlySet<string>) => check([path], diskHost(), defaultRegistry(), { sources: new Map([[path, text]]), executors }).diagnostics.filter((d) => d.severity === "error");
    expect(run(new Set(["local"])).map((d) => [d.code, d.message])).toEqual([["E076", "stage `a` (and 1 other stage): executor `slurm` is not available in this version of itp (available: local)"]]);
    expect(run(AVAILABLE_EXECUTORS)).toEqual([]);
  });
});

describe("the shipped recipes", () => {
  // The recipes that cannot pass `itp check` in this version, and why: each names a stage kind this version cannot
  // run. Everything else in pipelines/ and stdlib/ passes. When a kind gets its implementation, its entries go.
  const expected: Record<string, string[]> = {};

  it("fail `itp check` exactly where a kind or executor is missing, and nowhere else", () => {
    const r = checkJson(["pipelines", "stdlib"]);
    const got: Record<string, string[]> = {};
    // Warnings (a missing local data file, W002) are another matter: errors only.
    for (const d of r.diagnostics.filter((x) => x.severity === "error")) {
      expect(["E075", "E076"], `${d.file}:${d.line}: ${d.message}`).toContain(d.code);
      const what = d.code === "E075" ? /stage kind `([a-z_]+)`/.exec(d.message)![1] : /executor `([a-z_]+)`/.exec(d.message)![1];
      (got[d.file] ??= []).push(`${d.code} ${what}`);
    }
    // Diagnostics of stdlib modules are reported where they are, whichever entry imported them (once).
    const norm = (m: Record<string, string[]>) => Object.fromEntries(Object.entries(m).map(([f, v]) => [f, [...new Set(v)].sort()]));
    expect(norm(got)).toEqual(norm(expected));
    expect(r.code).toBe(Object.keys(expected).length > 0 ? 1 : 0);
  });
});

// No kind of this version lacks its implementation, so E075 is shown on a registry where one does (`evaluate`
// declared `implemented: false`), through the library's check: the same code path as `itp check`.
function registryWithout(kindName: string): Registry {
  const base = defaultRegistry();
  const r = new Registry();
  for (const k of base.allStages()) r.addStage(k.name === kindName ? { ...k, implemented: false } : k);
  for (const v of base.allValues()) r.addValue(v);
  return r;
}

describe("a kind without an implementation (E075)", () => {
  const recipe = `dataset data: Instruction = jsonl("data.jsonl")

dataset few = data |> take(n: 2)

model base = hf_model(repo: "meta-llama/Llama-2-7b-hf")

dataset sums: MathExample = jsonl("sums.jsonl")

eval scores = evaluate(base) { tasks = [gsm8k(sums, shots: 0)] }

eval again = evaluate(base) { tasks = [gsm8k(sums, shots: 0, limit: 1)] }
`;
  const path = join(repoRoot, "test", "e075-unit.itp");
  const registry = registryWithout("evaluate");
  const checkWith = (reg: Registry) => check([path], diskHost(), reg, { sources: new Map([[path, recipe]]) });

  it("check refuses the recipe once per kind, at its first stage, with the count and a hint", () => {
    const r = checkWith(registry);
    const errors = r.diagnostics.filter((d) => d.severity === "error");
    expect(errors.map((d) => d.code)).toEqual(["E075"]);
    expect(errors[0]!.message).toBe("stage `scores` (and 1 other stage): stage kind `evaluate` has no implementation in this version of itp, so the recipe cannot run");
    expect(recipe.slice(0, errors[0]!.range!.start).split("\n").length, "reported on the line of `scores`").toBe(9);
    expect(errors[0]!.hint).toContain("--only STAGE");
    expect(r.files[0]!.program).toBeUndefined();
    // The same recipe with every kind implemented checks, and a check that does not ask whether it runs (graph, diff) passes.
    expect(checkWith(defaultRegistry()).diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    expect(check([path], diskHost(), registry, { sources: new Map([[path, recipe]]), runnable: false }).diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  });

  it("run asks it only of the stages it needs (`--only few` does not need `evaluate`)", () => {
    const program = check([path], diskHost(), registry, { sources: new Map([[path, recipe]]), runnable: false }).files[0]!.program!;
    const only = (ids: string[]) => checkRunnable({ entry: program.entry, stages: new Map([...program.stages].filter(([id]) => ids.includes(id))) }, registry, AVAILABLE_EXECUTORS);
    expect(only(["data", "few"])).toEqual([]);
    expect(only(["sums", "base", "again"]).map((d) => [d.code, d.message.split(":")[0]])).toEqual([["E075", "stage `again`"]]);
  });

  it("checkedImplementations refuses a registry that disagrees with the implementations, either way", () => {
    expect(() => checkedImplementations(registry)).toThrow("stage kind evaluate has an implementation but is declared `implemented: false`");
    const extra = registryWithout("none");
    extra.addStage({ ...defaultRegistry().stage("take")!, name: "not_built" });
    expect(() => checkedImplementations(extra)).toThrow("stage kind not_built has no implementation: declare it `implemented: false`");
  });
});

describe("evaluate is runnable", () => {
  const recipe = `model base = hf_model(repo: "meta-llama/Llama-2-7b-hf")

dataset sums: MathExample = jsonl("sums.jsonl")

eval scores = evaluate(base) { tasks = [gsm8k(sums, shots: 0)] }
`;
  it("check and plan accept a recipe that evaluates", () => {
    const dir = tempTree({ "r.itp": recipe, "sums.jsonl": JSON.stringify({ question: "1+1?", answer: "#### 2" }) + "\n" });
    dirs.push(dir);
    const c = itp(["check", "r.itp"], { cwd: dir });
    expect(c.code, c.stderr).toBe(0);
    const plan = itp(["plan", "r.itp"], { cwd: dir });
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain("scores");
  });
});
