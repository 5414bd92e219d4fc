/**
 * Recipe packages: `import "@org/recipes/tulu" { ... }` resolves through node_modules as Node does (a package
 * installed by npm from a local tarball), and `import "git+...//path.itp#<commit>"` reads a repository at a commit,
 * fetched once into the import cache (over file:// and over git's dumb HTTP protocol from a loopback server).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { parseImportSpec, resolveExports, resolvePackage } from "../src/compile/imports.js";
import { itp, itpAsync, stackTrace, tempTree } from "./support/cli.js";

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

  it("itp lock records the installed version; another version installed later is reported (W005) until locked again", () => {
    const dir = project(recipe);
    npmInstall(dir, pack(recipePackage("1.0.0", 200)));
    const l = itp(["lock", "r.itp"], { cwd: dir });
    expect(l.code).toBe(0);
    expect(l.stdout).toContain("import @acme/recipes -> 1.0.0 (new)");
    expect((JSON.parse(readFileSync(join(dir, "r.itp.lock"), "utf8")) as { imports: unknown[] }).imports).toEqual([{ kind: "package", name: "@acme/recipes", version: "1.0.0" }]);
    expect(itp(["check", "r.itp"], { cwd: dir }).stderr).toBe("");
    npmInstall(dir, pack(recipePackage("1.2.0", 300)));
    const c = itp(["check", "r.itp"], { cwd: dir });
    expect(c.code).toBe(0);
    expect(c.stderr).toMatch(/r\.itp:1:8: warning\[W005\]: package `@acme\/recipes` is 1\.2\.0 here, but the lock records 1\.0\.0/);
    expect(c.stderr).toContain("npm install @acme/recipes@1.0.0");
    const l2 = itp(["lock", "r.itp"], { cwd: dir });
    expect(l2.stdout).toContain("import @acme/recipes -> 1.2.0 (updated from 1.0.0)");
    expect(itp(["check", "r.itp"], { cwd: dir }).stderr).toBe("");
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

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com", GIT_CONFIG_NOSYSTEM: "1" };
const gitIn = (dir: string, ...args: string[]): string => execFileSync("git", args, { cwd: dir, env: gitEnv, encoding: "utf8" }).trim();

/** A recipe repository with one commit of lib/tulu.itp; returns its folder. */
function recipeRepo(maxWords: number): string {
  const dir = tempTree({ "lib/tulu.itp": recipePackage("0", maxWords)["tulu.itp"]!, "README.md": "# recipes\n" });
  gitIn(dir, "init", "--quiet", "-b", "main");
  gitIn(dir, "add", "-A");
  gitIn(dir, "commit", "--quiet", "-m", "one");
  return dir;
}

function commit(repo: string, maxWords: number, message: string): string {
  writeFileSync(join(repo, "lib/tulu.itp"), recipePackage("0", maxWords)["tulu.itp"]!);
  gitIn(repo, "commit", "--quiet", "-am", message);
  return gitIn(repo, "rev-parse", "HEAD");
}

/** git's dumb HTTP protocol: the files of a bare repository (after `git update-server-info`), served as they are. */
class StaticServer {
  readonly requests: string[] = [];
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(root: string): Promise<StaticServer> {
    let self: StaticServer | undefined;
    const server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
      self?.requests.push(path);
      const file = join(root, path);
      if (!file.startsWith(root + "/") || !existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/octet-stream" }).end(readFileSync(file));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    self = new StaticServer(server, `http://127.0.0.1:${port}`);
    return self;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const gitRecipe = (spec: string) => `import "${spec}" { clean }

dataset raw: Instruction = jsonl("data.jsonl")

filter sft = raw |> clean(max_words: 8)
`;

describe("git imports", () => {
  let cache: string;
  const env = () => ({ ITP_IMPORT_CACHE: cache, ITP_OFFLINE: "" });
  beforeEach(() => {
    cache = join(tempTree({}), "import-cache");
  });

  it("over file://, pinned to a commit: fetched once into the cache, checked, run, and recorded by itp lock", () => {
    const repo = recipeRepo(200);
    const sha = gitIn(repo, "rev-parse", "HEAD");
    const dir = project(gitRecipe(`git+file://${repo}//lib/tulu.itp#${sha}`));
    const c = itp(["check", "r.itp"], { cwd: dir, env: env() });
    expect(c.stderr).toBe("");
    expect(c.code).toBe(0);
    expect(readdirSync(cache).length).toBe(1);
    const r = itp(["run", "r.itp", "--store", "st"], { cwd: dir, env: env() });
    expect(r.code).toBe(0);
    expect(itp(["show", "r.itp", "sft", "--store", "st", "--json"], { cwd: dir, env: env() }).stdout).not.toContain("moon");
    // The commit is in the cache: the repository is no longer needed.
    rmSync(repo, { recursive: true });
    expect(itp(["check", "r.itp"], { cwd: dir, env: env() }).code).toBe(0);
    const l = itp(["lock", "r.itp"], { cwd: dir, env: env() });
    expect(l.code).toBe(0);
    expect(l.stdout).toContain(`import file://${repo}#${sha} -> ${sha} (new)`);
    const lock = JSON.parse(readFileSync(join(dir, "r.itp.lock"), "utf8")) as { imports: unknown[] };
    expect(lock.imports).toEqual([{ kind: "git", url: `file://${repo}`, ref: sha, sha }]);
  });

  it("over git's dumb HTTP protocol from a loopback server; a second check asks the server nothing", async () => {
    const repo = recipeRepo(200);
    const sha = gitIn(repo, "rev-parse", "HEAD");
    const served = tempTree({});
    gitIn(served, "clone", "--quiet", "--bare", repo, "recipes.git");
    gitIn(join(served, "recipes.git"), "update-server-info");
    const server = await StaticServer.start(served);
    try {
      const dir = project(gitRecipe(`git+${server.url}/recipes.git//lib/tulu#${sha}`));
      const c = await itpAsync(["check", "r.itp"], { cwd: dir, env: env() });
      expect(c.stderr).toBe("");
      expect(c.code).toBe(0);
      expect(server.requests).toContain("/recipes.git/info/refs");
      const seen = server.requests.length;
      const c2 = await itpAsync(["check", "r.itp"], { cwd: dir, env: env() });
      expect(c2.code).toBe(0);
      expect(server.requests.length).toBe(seen);
      const ran = await itpAsync(["run", "r.itp", "--store", "st"], { cwd: dir, env: env() });
      expect(ran.code).toBe(0);
    } finally {
      await server.stop();
    }
  });

  it("an unpinned import is reported; a moved ref is refused until `itp lock --update`", async () => {
    const repo = recipeRepo(200);
    const first = gitIn(repo, "rev-parse", "HEAD");
    const served = tempTree({});
    const bare = join(served, "recipes.git");
    gitIn(served, "clone", "--quiet", "--bare", repo, "recipes.git");
    gitIn(bare, "update-server-info");
    const server = await StaticServer.start(served);
    try {
      const dir = project(gitRecipe(`git+${server.url}/recipes.git//lib/tulu.itp#main`));
      const run = (...args: string[]) => itpAsync(args, { cwd: dir, env: env() });
      const c = await run("check", "r.itp", "--json");
      expect(c.code).toBe(0);
      const ds = (JSON.parse(c.stdout) as { diagnostics: { code: string; line: number; message: string; hint: string }[] }).diagnostics;
      expect(ds.map((d) => `${d.code}@${d.line}`)).toEqual(["W004@1"]);
      expect(ds[0]!.message).toContain("follows `main`");
      expect(ds[0]!.hint).toContain(`#${first}`);

      const l = await run("lock", "r.itp");
      expect(l.code).toBe(0);
      expect(l.stdout).toContain(`import ${server.url}/recipes.git#main -> ${first} (new)`);
      expect(((await run("check", "r.itp")).stderr)).toBe("");

      // Someone pushes to main.
      const second = commit(repo, 300, "two");
      gitIn(repo, "push", "--quiet", bare, "main");
      gitIn(bare, "update-server-info");
      const moved = await run("check", "r.itp");
      expect(moved.code).toBe(1);
      expect(moved.stderr).toMatch(/r\.itp:1:8: error\[E015\]: `main` of http:\/\/127\.0\.0\.1:\d+\/recipes\.git moved: the lock has [0-9a-f]{12}, it names [0-9a-f]{12} now/);
      expect(moved.stderr).toContain(`itp lock --update r.itp\` accepts ${second}`);
      expect((await run("run", "r.itp", "--store", "st")).code).toBe(1);
      // Plain `itp lock` keeps the locked commit.
      const kept = await run("lock", "r.itp");
      expect(kept.stdout).toContain(`-> ${first} (kept; it names ${second.slice(0, 12)} now)`);
      expect((await run("check", "r.itp")).code).toBe(1);
      const up = await run("lock", "r.itp", "--update");
      expect(up.code).toBe(0);
      expect(up.stdout).toContain(`import ${server.url}/recipes.git#main -> ${second} (updated from ${first.slice(0, 12)})`);
      const ok = await run("check", "r.itp");
      expect(ok.stderr).toBe("");
      expect(ok.code).toBe(0);
      expect((JSON.parse(readFileSync(join(dir, "r.itp.lock"), "utf8")) as { imports: { sha: string }[] }).imports[0]!.sha).toBe(second);
    } finally {
      await server.stop();
    }
  });

  it("a commit not in the repository, a file not in it, an abbreviated commit and a bad spec are clear errors", () => {
    const repo = recipeRepo(200);
    const sha = gitIn(repo, "rev-parse", "HEAD");
    const dir = project(`import "git+file://${repo}//lib/tulu.itp#${"0".repeat(40)}" { clean }
import "git+file://${repo}//lib/missing.itp#${sha}" { clean as c2 }
import "git+file://${repo}//lib/tulu.itp#${sha.slice(0, 8)}" { clean as c3 }
import "git+ftp://example.com/x.git//a.itp#${sha}" { clean as c4 }
import "git+file://${repo}/nothere//lib/tulu.itp#main" { clean as c5 }
`);
    const r = itp(["check", "r.itp", "--json"], { cwd: dir, env: env() });
    expect(r.code).toBe(1);
    const ds = (JSON.parse(r.stdout) as { diagnostics: { code: string; line: number; message: string; hint: string }[] }).diagnostics;
    expect(ds.map((d) => `${d.code}@${d.line}`)).toEqual(["E014@1", "E014@2", "E014@4", "E014@5"]);
    expect(ds[0]!.message).toMatch(/is not in the repository/);
    expect(ds[1]!.message).toMatch(/has no file lib\/missing\.itp at [0-9a-f]{12}/);
    expect(ds[2]!.message).toMatch(/git\+https:\/\//);
    expect(ds[3]!.message).toMatch(/cannot resolve `main`/);
    expect(r.stdout + r.stderr).not.toMatch(stackTrace);
    // The abbreviated commit: a warning with the full commit as the hint (other errors aside).
    const w = itp(["check", "r.itp", "--json"], { cwd: project(gitRecipe(`git+file://${repo}//lib/tulu.itp#${sha.slice(0, 8)}`)), env: env() });
    const wd = (JSON.parse(w.stdout) as { diagnostics: { code: string; message: string; hint: string }[] }).diagnostics;
    expect(wd.map((d) => d.code)).toEqual(["W004"]);
    expect(wd[0]!.message).toContain("abbreviated commit");
    expect(wd[0]!.hint).toContain(`#${sha}`);
  });

  it("itp diff shows a commit bump of a git import, what it changes and what it invalidates", () => {
    const repo = recipeRepo(200);
    const first = gitIn(repo, "rev-parse", "HEAD");
    const second = commit(repo, 300, "longer answers");
    const body = (sha: string) => `import "git+file://${repo}//lib/tulu.itp#${sha}" { clean }

dataset raw: Instruction = jsonl("data.jsonl")

filter sft = raw |> clean()

dataset few = take(sft, n: 2)
`;
    const dir = project(body(second));
    mkdirSync(join(dir, "old"));
    writeFileSync(join(dir, "old/r.itp"), body(first));
    const d = itp(["diff", "old/r.itp", "r.itp"], { cwd: dir, env: env() });
    expect(d.stderr).toBe("");
    expect(d.code).toBe(0);
    expect(d.stdout).toContain(`~ import git+file://${repo}: ${first.slice(0, 12)} -> ${second.slice(0, 12)}\n    stages from it: sft.short, sft\n    invalidated downstream: few`);
    expect(d.stdout).toMatch(/~ sft\.short \(length\)\n    max: 200 -> 300/);
    const j = JSON.parse(itp(["diff", "old/r.itp", "r.itp", "--json"], { cwd: dir, env: env() }).stdout) as { imports: unknown[] };
    expect(j.imports).toEqual([{ name: `git+file://${repo}`, old: first, new: second, stages: ["sft.short", "sft"], invalidated: ["few"] }]);
  });
});

describe("itp diff of a package version bump", () => {
  it("shows the old version (from the old lock) and the new one, and the stages the bump invalidates", () => {
    const dir = project(`${recipe}
dataset few = take(sft, n: 2)
`);
    npmInstall(dir, pack(recipePackage("1.0.0", 200)));
    expect(itp(["lock", "r.itp"], { cwd: dir }).code).toBe(0);
    mkdirSync(join(dir, "old"));
    copyFileSync(join(dir, "r.itp"), join(dir, "old/r.itp"));
    copyFileSync(join(dir, "r.itp.lock"), join(dir, "old/r.itp.lock"));
    npmInstall(dir, pack(recipePackage("2.0.0", 300)));
    expect(itp(["lock", "r.itp"], { cwd: dir }).stdout).toContain("import @acme/recipes -> 2.0.0 (updated from 1.0.0)");
    const d = itp(["diff", "old/r.itp", "r.itp"], { cwd: dir });
    expect(d.stderr).toBe("");
    expect(d.code).toBe(0);
    expect(d.stdout).toBe("itp diff old/r.itp -> r.itp\n~ import @acme/recipes: 1.0.0 -> 2.0.0\n    stages from it: sft.short, sft\n    invalidated downstream: few\n");
  });
});

describe("import specs and package resolution (unit)", () => {
  it("tells files, packages and repositories apart", () => {
    expect(parseImportSpec("./common.itp")).toEqual({ k: "file", path: "./common.itp" });
    expect(parseImportSpec("../x")).toEqual({ k: "file", path: "../x" });
    expect(parseImportSpec("@org/recipes/tulu")).toEqual({ k: "package", name: "@org/recipes", subpath: "tulu" });
    expect(parseImportSpec("recipes/mixes/flan")).toEqual({ k: "package", name: "recipes", subpath: "mixes/flan" });
    expect(parseImportSpec("recipes")).toEqual({ k: "package", name: "recipes", subpath: "" });
    const sha = "a".repeat(40);
    expect(parseImportSpec(`git+https://h/o/r.git//lib/tulu#${sha}`)).toEqual({ k: "git", url: "https://h/o/r.git", path: "lib/tulu.itp", ref: sha, pinned: true });
    expect(parseImportSpec("git+file:///srv/r//a/b.itp#v1.2")).toEqual({ k: "git", url: "file:///srv/r", path: "a/b.itp", ref: "v1.2", pinned: false });
    expect(parseImportSpec("git+https://h/o/r.git//a.itp")).toMatchObject({ k: "git", ref: "HEAD", pinned: false });
    expect(parseImportSpec("@org")).toMatchObject({ k: "invalid" });
    expect(parseImportSpec("recipes/../x")).toMatchObject({ k: "invalid" });
    expect(parseImportSpec("git+https://h/o/r.git//../x.itp#main")).toMatchObject({ k: "invalid" });
    expect(parseImportSpec("https://h/x.itp")).toMatchObject({ k: "invalid" });
  });

  it("resolves exports as Node does: exact keys, the longest pattern, conditions, null", () => {
    const exports = { ".": { itp: "./index.itp", default: "./index.js" }, "./a": "./src/a.itp", "./m/*": "./src/m/*.itp", "./m/deep/*": ["./deep/*.itp"], "./m/hidden": null };
    expect(resolveExports(exports, ".")).toBe("./index.itp");
    expect(resolveExports(exports, "./a")).toBe("./src/a.itp");
    expect(resolveExports(exports, "./m/x")).toBe("./src/m/x.itp");
    expect(resolveExports(exports, "./m/deep/y")).toBe("./deep/y.itp");
    expect(resolveExports(exports, "./m/hidden")).toBeUndefined();
    expect(resolveExports(exports, "./b")).toBeUndefined();
    expect(resolveExports("./only.itp", ".")).toBe("./only.itp");
    expect(resolveExports({ import: "./x.mjs" }, ".")).toBeUndefined();
  });

  it("walks up from the importing folder, skipping node_modules folders, to the root", () => {
    const files = new Map([
      ["/p/node_modules/@o/r/package.json", JSON.stringify({ version: "3.1.0" })],
      ["/p/a/node_modules/@o/r/package.json", JSON.stringify({ version: "1.0.0" })],
    ]);
    const host = { readFile: (p: string) => files.get(p), cwd: "/p" };
    expect(resolvePackage({ name: "@o/r", subpath: "t" }, "a/b", host)).toEqual({ name: "@o/r", version: "1.0.0", root: "a/node_modules/@o/r", path: "a/node_modules/@o/r/t.itp" });
    expect(resolvePackage({ name: "@o/r", subpath: "t.itp" }, "c", host)).toMatchObject({ version: "3.1.0", path: "node_modules/@o/r/t.itp" });
    // From inside a package, its own node_modules folder is not searched as a project folder.
    expect(resolvePackage({ name: "@o/r", subpath: "t" }, "/p/node_modules/@o/x", host)).toMatchObject({ version: "3.1.0" });
    expect(resolvePackage({ name: "@o/none", subpath: "t" }, "a", host)).toMatchObject({ hint: "npm install @o/none" });
  });
});
