import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { itp, itpBin, repoRoot, stackTrace, tempTree } from "./support/cli.js";

const recipe = `type Qa = {
  question: string
  answer: string
}

/// Raw questions and answers.
dataset qa: Qa = jsonl("qa.jsonl")

dataset seeds: Instruction = jsonl("seeds.jsonl")

filter short = seeds |> length(field: instruction, unit: "words", min: 4, max: 150)

mix data = mix(seed: 42) {
  short: take(100)
  seeds: all
}

filter deduped = exact_dedup(data, fields: [instruction])
`;

describe("itp check", () => {
  it("accepts a valid recipe: exit 0, a summary on stdout", () => {
    const dir = tempTree({ "r.itp": recipe.replace('dataset qa: Qa = jsonl("qa.jsonl")\n', ""), "seeds.jsonl": "" });
    const r = itp(["check", "r.itp"], { cwd: dir });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok: 1 file, \d+ stages/);
  });

  it("warns about an unused source but exits 0", () => {
    const dir = tempTree({ "r.itp": recipe });
    const r = itp(["check", "r.itp"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("r.itp:7:9: warning[W001]: dataset `qa` is never used");
  });

  it("prints file:line:col, the source line, a caret and a hint; exit 1; no stack trace", () => {
    const dir = tempTree({ "r.itp": recipe.replace("field: instruction, unit", "field: instrution, unit") });
    const r = itp(["check", "r.itp"], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("r.itp:11:39: error[E041]: Instruction has no field `instrution`");
    expect(r.stderr).toContain("11 | filter short = seeds |> length(field: instrution, unit");
    expect(r.stderr).toMatch(/\n\s+\| {39}\^{10}\n/);
    expect(r.stderr).toMatch(/= hint: did you mean `instruction`\?/);
    expect(r.stderr + r.stdout).not.toMatch(stackTrace);
  });

  it("--json gives the diagnostics contract", () => {
    const dir = tempTree({ "r.itp": recipe.replace("take(100)", "take(-5)") });
    const r = itp(["check", "r.itp", "--json"], { cwd: dir });
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    const d = j.diagnostics.find((x: { code: string }) => x.code === "E032");
    expect(d).toMatchObject({ file: "r.itp", line: 14, col: 15, endLine: 14, endCol: 17, severity: "error", code: "E032" });
    expect(Object.keys(d)).toEqual(expect.arrayContaining(["file", "line", "col", "endLine", "endCol", "severity", "code", "message"]));
  });

  it("checks folders, and reports a missing file clearly", () => {
    const dir = tempTree({ "a/r.itp": recipe, "a/b/s.itp": recipe });
    const ok = itp(["check", "a"], { cwd: dir });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok: 2 files/);
    const missing = itp(["check", "nope.itp"], { cwd: dir });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("error[E010]: cannot read nope.itp");
    expect(missing.stderr).not.toMatch(stackTrace);
  });

  it("--set overrides a parameter, and the override is checked", () => {
    const dir = tempTree({ "r.itp": recipe });
    expect(itp(["check", "r.itp", "--set", "short.max=200"], { cwd: dir }).code).toBe(0);
    const bad = itp(["check", "r.itp", "--set", "short.max=-1", "--json"], { cwd: dir });
    expect(bad.code).toBe(1);
    const d = JSON.parse(bad.stdout).diagnostics.filter((x: { severity: string }) => x.severity === "error");
    expect(d[0]).toMatchObject({ code: "E032", file: "--set short.max" });
    const typo = itp(["check", "r.itp", "--set", "shrot.max=3"], { cwd: dir });
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain("did you mean `short`?");
  });

  it("usage errors exit 2", () => {
    expect(itp([]).code).toBe(2);
    expect(itp(["frobnicate"]).code).toBe(2);
    expect(itp(["check"]).code).toBe(2);
    expect(itp(["check", "x.itp", "--bogus"]).code).toBe(2);
    expect(itp(["graph", "a.itp", "--format", "png"]).code).toBe(2);
    expect(itp(["check", "--help"]).code).toBe(0);
  });
});

describe("itp graph", () => {
  const dir = tempTree({ "r.itp": recipe });
  it("json: nodes with id, kind, type; edges from -> to", () => {
    const r = itp(["graph", "r.itp", "--format", "json"], { cwd: dir });
    expect(r.code).toBe(0);
    const g = JSON.parse(r.stdout);
    expect(g.nodes).toContainEqual({ id: "short", kind: "length", type: "Dataset<Instruction>" });
    expect(g.nodes.find((n: { id: string }) => n.id === "qa")).toMatchObject({ kind: "jsonl", type: "Dataset<Qa>", doc: "Raw questions and answers." });
    expect(g.edges).toEqual(
      expect.arrayContaining([
        { from: "seeds", to: "short", role: "data" },
        { from: "short", to: "data", role: "component:short" },
        { from: "seeds", to: "data", role: "component:seeds" },
        { from: "data", to: "deduped", role: "data" },
      ]),
    );
  });
  it("dot and mermaid", () => {
    const dot = itp(["graph", "r.itp"], { cwd: dir });
    expect(dot.stdout).toMatch(/^digraph itp \{/);
    expect(dot.stdout).toContain('"seeds" -> "short";');
    const mm = itp(["graph", "r.itp", "--format", "mermaid"], { cwd: dir });
    expect(mm.stdout).toMatch(/^flowchart LR\n/);
    expect(mm.stdout).toContain("-->");
  });
});

describe("itp fmt", () => {
  const messy = `dataset   seeds : Instruction=jsonl("seeds.jsonl")   // the seeds
filter short=seeds|>take(n:3)`;
  const canonical = `dataset seeds: Instruction = jsonl("seeds.jsonl") // the seeds

filter short = seeds |> take(n: 3)
`;
  it("--check exits 1 and names the file; --diff shows the change; neither writes", () => {
    const dir = tempTree({ "r.itp": messy });
    const c = itp(["fmt", "--check", "r.itp"], { cwd: dir });
    expect(c.code).toBe(1);
    expect(c.stdout).toContain("r.itp: not formatted");
    const d = itp(["fmt", "--diff", "r.itp"], { cwd: dir });
    expect(d.stdout).toContain("+filter short = seeds |> take(n: 3)");
    expect(d.stdout).toContain("-filter short=seeds|>take(n:3)");
    expect(readFileSync(join(dir, "r.itp"), "utf8")).toBe(messy);
  });
  it("--diff is a patch git apply takes as it is (hunk ranges exact, with and without a final newline)", () => {
    const sixLines = 'dataset seeds: Instruction = jsonl("seeds.jsonl")\n\nfilter short=seeds|>take(n:3)\n\nfilter shorter = short |> take(n: 2)\n// end\n';
    for (const text of [messy, sixLines]) {
      const dir = tempTree({ "r.itp": text });
      const git = (...a: string[]) => execFileSync("git", a, { cwd: dir, encoding: "utf8", env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: dir } });
      git("init", "-q");
      const d = itp(["fmt", "--diff", "r.itp"], { cwd: dir });
      expect(d.code).toBe(0);
      writeFileSync(join(dir, "fmt.diff"), d.stdout);
      git("apply", "--check", "fmt.diff");
      git("apply", "fmt.diff");
      expect(itp(["fmt", "--check", "r.itp"], { cwd: dir }).code).toBe(0);
    }
    const d = itp(["fmt", "--diff", "r.itp"], { cwd: tempTree({ "r.itp": sixLines }) });
    expect(d.stdout).toContain("--- a/r.itp\n+++ b/r.itp\n@@ -1,6 +1,7 @@\n");
  });
  it("rewrites in place, then --check passes", () => {
    const dir = tempTree({ "r.itp": messy });
    expect(itp(["fmt", "r.itp"], { cwd: dir }).code).toBe(0);
    expect(readFileSync(join(dir, "r.itp"), "utf8")).toBe(canonical);
    expect(itp(["fmt", "--check", "r.itp"], { cwd: dir }).code).toBe(0);
  });
  it("refuses a file with syntax errors and leaves it untouched", () => {
    const broken = "dataset a = jsonl(\"a.jsonl\"\nfilter b = a |> take(n: 3)\n";
    const dir = tempTree({ "r.itp": broken });
    const r = itp(["fmt", "r.itp"], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error[E001]");
    expect(r.stderr).toContain("refusing to format");
    expect(readFileSync(join(dir, "r.itp"), "utf8")).toBe(broken);
  });
});

describe("itp diff", () => {
  const newer = recipe.replace("take(100)", "take(80)").replace("max: 150", "max: 120") + `\nfilter final = take(deduped, n: 10)\n`;
  it("reports changed parameters, components, added stages and what they invalidate", () => {
    const dir = tempTree({ "old.itp": recipe, "new.itp": newer });
    const r = itp(["diff", "old.itp", "new.itp"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("+ final (take): Dataset<Instruction>");
    expect(r.stdout).toContain("~ short (length)\n    max: 150 -> 120");
    expect(r.stdout).toContain("~ data (mix)\n    component short: take(n: 100) -> take(n: 80)");
    expect(r.stdout).toContain("invalidated downstream: deduped");
    const j = JSON.parse(itp(["diff", "old.itp", "new.itp", "--json"], { cwd: dir }).stdout);
    expect(j.added).toEqual([{ id: "final", kind: "take", type: "Dataset<Instruction>" }]);
    expect(j.changed.map((c: { id: string }) => c.id)).toEqual(["short", "data"]);
    expect(j.invalidated).toEqual(["deduped"]);
  });
  it("a changed recipe parameter is shown as written (rouge_max) and as the inner parameter it sets (max)", () => {
    const old = 'import std/alpaca { alpaca_filters }\n\ndataset seeds: Instruction = jsonl("s.jsonl")\n\nfilter clean = alpaca_filters(seeds, rouge_max: 0.7)\n';
    const dir = tempTree({ "old.itp": old, "new.itp": old.replace("rouge_max: 0.7", "rouge_max: 0.5") });
    const r = itp(["diff", "old.itp", "new.itp"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("itp diff old.itp -> new.itp\n~ recipe parameter clean.rouge_max: 0.7 -> 0.5 (sets clean.max)\n~ clean (rouge_dedup)\n    max: 0.7 -> 0.5 (from recipe parameter clean.rouge_max)\n");
    const j = JSON.parse(itp(["diff", "old.itp", "new.itp", "--json"], { cwd: dir }).stdout);
    expect(j.recipeParams).toEqual([{ param: "clean.rouge_max", old: 0.7, new: 0.5, sets: ["clean.max"] }]);
    expect(j.changed[0].params).toEqual([{ param: "max", old: 0.7, new: 0.5, from: "clean.rouge_max" }]);
  });

  it("works as git's external diff driver", () => {
    const dir = tempTree({ "r.itp": recipe, ".gitattributes": "*.itp diff=itp\n" });
    const git = (...a: string[]) => execFileSync("git", a, { cwd: dir, encoding: "utf8", env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: dir } });
    git("init", "-q");
    git("config", "user.email", "t@example.com");
    git("config", "user.name", "t");
    git("config", "diff.itp.command", `${process.execPath} ${itpBin} diff`);
    git("add", ".");
    git("commit", "-qm", "v1");
    writeFileSync(join(dir, "r.itp"), newer);
    const out = git("diff");
    expect(out).toContain("itp diff r.itp");
    expect(out).toContain("component short: take(n: 100) -> take(n: 80)");
    expect(out).toContain("+ final (take)");
  });
});

describe("itp diff as git's driver, installed from the checkout", () => {
  it("`npm install -g .` puts itp on the PATH; git diff works in any repository and survives a broken version", () => {
    const prefix = tempTree({});
    execFileSync("npm", ["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", repoRoot], { encoding: "utf8", stdio: "pipe" });
    const dir = tempTree({ "r.itp": recipe, ".gitattributes": "*.itp diff=itp\n" });
    const env = { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: dir, NO_COLOR: "1", PATH: `${join(prefix, "bin")}:${process.env["PATH"]}` };
    const git = (...a: string[]) => execFileSync("git", a, { cwd: dir, encoding: "utf8", env, stdio: "pipe" });
    git("init", "-q");
    git("config", "user.email", "t@example.com");
    git("config", "user.name", "t");
    git("config", "diff.itp.command", "itp diff");
    git("add", ".");
    git("commit", "-qm", "v1");
    writeFileSync(join(dir, "r.itp"), recipe.replace("take(100)", "take(80)"));
    expect(git("diff")).toContain("component short: take(n: 100) -> take(n: 80)");
    // A version that does not parse: a plain text diff and a warning, and git diff still succeeds.
    writeFileSync(join(dir, "r.itp"), recipe.replace("take(100)", "take(80").replace("min: 4", "min: 5"));
    const r = spawnSync("git", ["diff"], { cwd: dir, encoding: "utf8", env });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain("warning: the new version does not check, so this is a plain text diff");
    expect(r.stdout).toContain("itp diff r.itp (text)\n--- a/r.itp\n+++ b/r.itp\n");
    expect(r.stdout).toContain("-  short: take(100)\n+  short: take(80\n");
    expect(r.stdout).toContain("+filter short = seeds |> length(field: instruction, unit: \"words\", min: 5, max: 150)");
  }, 120_000);

  it("two files, one broken: its errors, a warning and the text diff, exit 1", () => {
    const dir = tempTree({ "old.itp": recipe, "new.itp": recipe.replace("take(100)", "take(") });
    const r = itp(["diff", "old.itp", "new.itp"], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("new.itp:");
    expect(r.stderr).toContain("warning: the new version does not check");
    expect(r.stdout).toContain("+  short: take(\n");
  });
});

describe("a local input that does not exist", () => {
  const r2 = 'dataset a = jsonl("data/a.jsonl")\n\ndataset b = jsonl("b.jsonl")\n\ndataset c = concat(a, b)\n';
  it("is a warning at check (exit 0), naming the stage and the file", () => {
    const dir = tempTree({ "r.itp": r2, "b.jsonl": '{"x": 1}\n' });
    const r = itp(["check", "r.itp"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("r.itp:1:1: warning[W002]: input file data/a.jsonl does not exist");
    expect(r.stderr).not.toContain("b.jsonl");
    expect(r.stdout).toMatch(/^ok: 1 file/);
  });
  it("repeated for many stages, shows its first ten, a line for the rest, and every one with --json", () => {
    const text = Array.from({ length: 13 }, (_, i) => `dataset s${i} = jsonl("data/${i}.jsonl")`).join("\n\n") + "\n";
    const dir = tempTree({ "r.itp": text });
    const r = itp(["check", "r.itp"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stderr.match(/warning\[W002\]/g)).toHaveLength(10);
    expect(r.stderr).toContain("input file data/9.jsonl does not exist");
    expect(r.stderr).not.toContain("data/10.jsonl");
    // Each code is cut on its own (the unused datasets are W001), and the count is of all of them.
    expect(r.stderr).toContain("(3 more W002 warnings like these; --json lists every one)\n");
    expect(r.stderr).toContain("(3 more W001 warnings like these; --json lists every one)\n");
    expect(r.stderr.trimEnd().endsWith("26 warnings")).toBe(true);
    const j = itp(["check", "r.itp", "--json"], { cwd: dir });
    expect((JSON.parse(j.stdout) as { diagnostics: { code: string }[] }).diagnostics.filter((d) => d.code === "W002")).toHaveLength(13);
  });
  it("is an error at plan and run, before anything runs (exit 1, no store written)", () => {
    const dir = tempTree({ "r.itp": r2, "b.jsonl": '{"x": 1}\n' });
    for (const verb of ["plan", "run"]) {
      const r = itp([verb, "r.itp", "--store", "st"], { cwd: dir });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain("error[E070]: stage `a` reads data/a.jsonl, which does not exist");
      expect(r.stderr).not.toContain("W002");
      expect(r.stderr + r.stdout).not.toMatch(stackTrace);
    }
    expect(existsSync(join(dir, "st", "refs"))).toBe(false);
    // --only a stage that does not need the file: it runs.
    const only = itp(["run", "r.itp", "--store", "st", "--only", "b"], { cwd: dir });
    expect(only.code, only.stderr).toBe(0);
  });
});

describe("check: fields that stages add", () => {
  const head = 'model m = openai_compatible() {\n  model = "x"\n  base_url = "http://127.0.0.1:1/v1"\n}\n\ndataset d: Instruction = jsonl("d.jsonl")\n\n';
  it("a judge's score and rationale, and set_fields' values, are fields downstream stages may name", () => {
    const dir = tempTree({
      "r.itp":
        head +
        'dataset j = judge(d, model: m, score_field: "quality")\n\ndataset top = length(j, field: "rationale", min: 1)\n\ndataset s = select(top, fields: ["instruction", "quality"])\n\n' +
        'dataset t = set_fields(d, values: { lang: "en", n: 1 })\n\ndataset u = select(t, fields: ["lang", "n"])\n\ndataset e = export(s, path: "s.jsonl")\n\ndataset f = export(u, path: "u.jsonl")\n',
    });
    const r = itp(["check", "r.itp"], { cwd: dir });
    expect(r.stdout + r.stderr).toContain("ok: 1 file");
    expect(r.code).toBe(0);
  });
  it("a field no stage added is still an error", () => {
    const dir = tempTree({ "r.itp": head + 'dataset j = judge(d, model: m)\n\ndataset s = select(j, fields: ["quality"])\n\ndataset e = export(s, path: "s.jsonl")\n' });
    const r = itp(["check", "r.itp"], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain("error[E041]: Instruction has no field `quality`");
  });
});
