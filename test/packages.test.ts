/**
 * Recipe packages: `import "@org/recipes/tulu" { ... }` resolves through node_modules as Node does (a package
 * installed by npm from a local tarball), and `import "git+...//path.itp#<commit>"` reads a repository at a commit,
 * fetched once into the import cache (over file:// and over git's dumb HTTP protocol from a loopback server).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { itp, stackTrace, tempTree } from "./support/cli.js";

/** A recipe library as a team would publish it: package.json and .itp files. */
function recipePackage(version: string, maxWords: number, extra: Record<string, unknown> = {}): Record<string, string> {
  return {
    "package.json": JSON.stringify({ name: "@acme/recipes", version, files: ["**/*.itp"], ...extra }),
    "tulu.itp": `/// The team's cleanup: short answers only, no repeated instructions.
recipe clean(data: Dataset<Instruction>, max_words: int = ${maxWords}) -> Dataset<Instruction> {
  filter short = data |> length(field: output, unit: "words", min: 1, max: max_words)
  filter unique = short |> exact_dedup(fields: [instruction])

  output unique
}
`,
  };
}

/** `npm pack` the package into a tarball, as a registry would serve it. */
function pack(files: Record<string, string>): string {
  const dir = tempTree(files);
  const name = execFileSync("npm", ["pack", "--silent"], { cwd: dir, encoding: "utf8" }).trim().split("\n").pop()!;
  return join(dir, name);
}

function npmInstall(project: string, tarball: string): void {
  const r = spawnSync("npm", ["install", "--no-save", "--offline", "--no-audit", "--no-fund", tarball], { cwd: project, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
}

const records = [
  { instruction: "Name a colour.", input: "", output: "Blue." },
  { instruction: "Name a colour.", input: "", output: "Red." },
  { instruction: "Explain tides.", input: "", output: "The moon's gravity pulls the oceans into two bulges that the earth turns under, twice a day." },
  { instruction: "Say hi.", input: "", output: "Hi." },
];

const project = (recipe: string): string =>
  tempTree({
    "package.json": JSON.stringify({ name: "team-sft", private: true }),
    "data.jsonl": records.map((r) => JSON.stringify(r)).join("\n") + "\n",
    "r.itp": recipe,
  });

const recipe = `import "@acme/recipes/tulu" { clean }

dataset raw: Instruction = jsonl("data.jsonl")

filter sft = raw |> clean(max_words: 8)
`;

describe("package imports through node_modules", () => {
  it("a package installed from a tarball is imported, checked and run", () => {
    const dir = project(recipe);
    npmInstall(dir, pack(recipePackage("1.0.0", 200)));
    const c = itp(["check", "r.itp"], { cwd: dir });
    expect(c.stderr).toBe("");
    expect(c.code).toBe(0);
    // The package's recipe becomes stages of this one.
    const g = JSON.parse(itp(["graph", "r.itp", "--format", "json"], { cwd: dir }).stdout) as { nodes: { id: string; kind: string }[] };
    expect(g.nodes.map((n) => `${n.id}:${n.kind}`)).toEqual(["raw:jsonl", "sft.short:length", "sft:exact_dedup"]);
    const r = itp(["run", "r.itp", "--store", "st"], { cwd: dir });
    expect(r.stderr).not.toMatch(stackTrace);
    expect(r.code).toBe(0);
    const show = itp(["show", "r.itp", "sft", "--store", "st", "--json"], { cwd: dir });
    expect(show.stdout).toContain("Say hi.");
    // max_words: 8 reached the package's filter: the long answer is gone, and one "Name a colour." is left.
    expect(show.stdout).not.toContain("moon");
    expect(show.stdout.split("Name a colour.").length - 1).toBe(1);
  });

  it("resolves from the importing file's folder upwards, the nearest node_modules first", () => {
    const dir = project("");
    mkdirSync(join(dir, "recipes/nested"), { recursive: true });
    writeFileSync(join(dir, "recipes/nested/r.itp"), recipe.replace('"data.jsonl"', '"../../data.jsonl"'));
    npmInstall(dir, pack(recipePackage("1.0.0", 200)));
    const c = itp(["check", "recipes/nested/r.itp"], { cwd: dir });
    expect(c.stderr).toBe("");
    expect(c.code).toBe(0);
    // A nearer node_modules (a different version) wins, as in Node.
    const near = tempTree(recipePackage("2.0.0", 300));
    mkdirSync(join(dir, "recipes/node_modules/@acme"), { recursive: true });
    execFileSync("cp", ["-r", near, join(dir, "recipes/node_modules/@acme/recipes")]);
    writeFileSync(join(dir, "recipes/node_modules/@acme/recipes/tulu.itp"), recipePackage("2.0.0", 300)["tulu.itp"]!.replace("exact_dedup", "exact_dedup_typo"));
    const c2 = itp(["check", "recipes/nested/r.itp"], { cwd: dir });
    expect(c2.code).toBe(1);
    expect(c2.stderr).toMatch(/recipes\/node_modules\/@acme\/recipes\/tulu\.itp:\d+:\d+: error\[E022\]/);
    // From another working directory, the same files resolve.
    const c3 = itp(["check", "nested/r.itp"], { cwd: join(dir, "recipes") });
    expect(c3.stderr).toMatch(/node_modules\/@acme\/recipes\/tulu\.itp:\d+:\d+: error\[E022\]/);
  });

  it("honours package.json `exports`: a mapped path resolves, an unexported one is an error naming what is exported", () => {
    const files = { ...recipePackage("1.1.0", 200, { exports: { "./tulu": "./src/tulu.itp", "./mixes/*": { itp: "./src/mixes/*.itp" }, "./internal/*": null } }) };
    files["src/tulu.itp"] = files["tulu.itp"]!;
    files["src/mixes/small.itp"] = files["tulu.itp"]!.replace("recipe clean", "recipe small");
    files["src/internal/x.itp"] = files["tulu.itp"]!;
    delete files["tulu.itp"];
    const dir = project(`import "@acme/recipes/tulu" { clean }
import "@acme/recipes/mixes/small" { small }

dataset raw: Instruction = jsonl("data.jsonl")

filter sft = raw |> clean(max_words: 8)

filter sft2 = raw |> small()
`);
    npmInstall(dir, pack(files));
    const c = itp(["check", "r.itp"], { cwd: dir });
    expect(c.stderr).toBe("");
    expect(c.code).toBe(0);
    writeFileSync(join(dir, "bad.itp"), 'import "@acme/recipes/internal/x" { clean }\nimport "@acme/recipes/src/tulu" { clean as c2 }\n');
    const bad = itp(["check", "bad.itp"], { cwd: dir });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/bad\.itp:1:8: error\[E013\]: package `@acme\/recipes` \(1\.1\.0\) does not export `\.\/internal\/x`/);
    expect(bad.stderr).toMatch(/bad\.itp:2:8: error\[E013\]: package `@acme\/recipes` \(1\.1\.0\) does not export `\.\/src\/tulu`/);
    expect(bad.stderr).toContain("hint: its package.json `exports` lists: @acme/recipes/tulu, @acme/recipes/mixes/*");
    expect(bad.stderr).not.toMatch(stackTrace);
  });

  it("a missing package, a missing file in a package, and a bare file name are clear errors (exit 1)", () => {
    const dir = project(`import "@acme/recipes/tulu" { clean }
import "@acme/recipes/tulu2" { clean as c2 }
import "common.itp" { x }
`);
    writeFileSync(join(dir, "common.itp"), "dataset x: Instruction = jsonl(\"data.jsonl\")\n");
    const r = itp(["check", "r.itp", "--json"], { cwd: dir });
    expect(r.code).toBe(1);
    const ds = (JSON.parse(r.stdout) as { diagnostics: { code: string; line: number; message: string; hint: string }[] }).diagnostics;
    expect(ds.map((d) => [d.code, d.line])).toEqual([
      ["E013", 1],
      ["E013", 2],
      ["E013", 3],
    ]);
    expect(ds[0]!.message).toMatch(/package `@acme\/recipes` is not installed/);
    expect(ds[0]!.hint).toBe("npm install @acme/recipes");
    expect(ds[2]!.hint).toBe('a file next to this one is imported as "./common.itp"');

    npmInstall(dir, pack(recipePackage("1.0.0", 200)));
    const r2 = itp(["check", "r.itp"], { cwd: dir });
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/r\.itp:2:8: error\[E013\]: package `@acme\/recipes` \(1\.0\.0\) has no file tulu2\.itp/);
    expect(r2.stderr).not.toMatch(/r\.itp:1:8/);
    expect(r2.stderr).not.toMatch(stackTrace);
  });
});
