import { afterAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { defaultRegistry } from "../src/stages/index.js";
import { checkedImplementations, implementations } from "../src/stages/impls.js";
import { itp, stackTrace, tempTree } from "./support/cli.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "../src/compile/check.js";
import { diskHost } from "../src/cli/host.js";
import { AVAILABLE_EXECUTORS } from "../src/core/available-executors.js";

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
  const expected: Record<string, string[]> = {
    "pipelines/alpaca.itp": ["E075 evaluate"],
    "pipelines/evol_sft_eval.itp": ["E075 evaluate"],
    "stdlib/evals.itp": ["E075 evaluate"],
  };

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

describe("run, plan and show ask it of the stages they need", () => {
  const recipe = `dataset data: Instruction = jsonl("data.jsonl")

dataset few = data |> take(n: 2)

model base = hf_model(repo: "meta-llama/Llama-2-7b-hf")

dataset sums: MathExample = jsonl("sums.jsonl")

eval scores = evaluate(base) { tasks = [gsm8k(sums, shots: 0)] }
`;
  const data = [1, 2, 3].map((i) => JSON.stringify({ instruction: `q${i}`, input: "", output: `a${i}` })).join("\n") + "\n";

  it("check and a whole run refuse before anything runs; --only runs what does not need it", () => {
    const dir = tempTree({ "r.itp": recipe, "data.jsonl": data, "sums.jsonl": JSON.stringify({ question: "1+1?", answer: "#### 2" }) + "\n" });
    dirs.push(dir);
    const c = itp(["check", "r.itp"], { cwd: dir });
    expect(c.code).toBe(1);
    expect(c.stderr).toContain("error[E075]: stage `scores`: stage kind `evaluate` has no implementation in this version of itp");
    const run = itp(["run", "r.itp", "--json"], { cwd: dir });
    expect(run.code).toBe(1);
    expect((JSON.parse(run.stdout) as { diagnostics: JsonDiagnostic[] }).diagnostics.map((d) => d.code)).toEqual(["E075"]);
    expect(itp(["plan", "r.itp"], { cwd: dir }).code).toBe(1);
    const only = itp(["run", "r.itp", "--only", "few", "--json"], { cwd: dir });
    expect(only.code, only.stderr).toBe(0);
    expect(JSON.parse(only.stdout)).toMatchObject({ ran: 2, failed: 0 });
    const show = itp(["show", "r.itp", "few", "--json"], { cwd: dir });
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ records: 2 });
    // graph and diff look at the recipe without running it.
    expect(itp(["graph", "r.itp"], { cwd: dir }).code).toBe(0);
  });
});
