import { existsSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { check } from "../src/compile/check.js";
import { defaultPermissions, programEffects, within, type EffectContext } from "../src/compile/effects.js";
import { diskHost } from "../src/cli/host.js";
import { defaultRegistry } from "../src/stages/index.js";
import { itp, stackTrace, tempTree } from "./support/cli.js";

// A recipe's effects before anything runs (itp plan, --json, itp diff), and the safe default enforced on them by
// check, plan and run: writes outside the recipe's folder and the store (E080), env() values sent to a host (E081),
// reads outside the folder under --deny-read-outside (E082); each allow flag lets exactly its effect through.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tree = (files: Record<string, string>) => {
  const d = tempTree(files);
  dirs.push(d);
  return realpathSync(d);
};
const outsideDir = () => {
  const d = realpathSync(mkdtempSync(join(tmpdir(), "itp-outside-")));
  dirs.push(d);
  return d;
};

interface JsonDiagnostic {
  code: string;
  message: string;
  hint?: string;
  line: number;
  file: string;
}

function checkJson(dir: string, args: string[] = [], env: Record<string, string> = {}) {
  const r = itp(["check", "r.itp", "--json", ...args], { cwd: dir, env });
  expect(r.stdout + r.stderr).not.toMatch(stackTrace);
  const diagnostics = (JSON.parse(r.stdout) as { diagnostics: JsonDiagnostic[] }).diagnostics.filter((d) => d.code.startsWith("E"));
  return { code: r.code, diagnostics };
}

const SEEDS = '{"instruction": "Name a color.", "output": "Blue."}\n';
const exportRecipe = (path: string) => `dataset seeds = jsonl("data/seeds.jsonl")\ndataset out = export(seeds, path: ${JSON.stringify(path)})\n`;

describe("writes outside the recipe's folder and the store are refused (E080)", () => {
  it("an absolute export path: refused by check with where, what and a hint; --allow-write of exactly it lets it through", () => {
    const out = outsideDir();
    const target = join(out, "x.jsonl");
    const dir = tree({ "r.itp": exportRecipe(target), "data/seeds.jsonl": SEEDS });
    const r = checkJson(dir);
    expect(r.code).toBe(1);
    expect(r.diagnostics.map((d) => [d.code, d.file, d.line])).toEqual([["E080", "r.itp", 2]]);
    expect(r.diagnostics[0]!.message).toContain(`stage \`out\` would write outside the recipe's folder (${dir})`);
    expect(r.diagnostics[0]!.message).toContain(target);
    expect(r.diagnostics[0]!.hint).toContain(`--allow-write ${target}`);
    // The human form: file:line:col, exit 1, no stack trace.
    const human = itp(["check", "r.itp"], { cwd: dir });
    expect(human.code).toBe(1);
    expect(human.stderr).toMatch(/r\.itp:2:1: error\[E080\]/);
    expect(checkJson(dir, ["--allow-write", target]).code).toBe(0);
    // A folder allows what is below it; another file of that folder's neighbour does not.
    expect(checkJson(dir, ["--allow-write", out]).code).toBe(0);
    expect(checkJson(dir, ["--allow-write", join(out, "other.jsonl")]).code).toBe(1);
    expect(checkJson(dir, ["--allow-env", "X"]).code).toBe(1);
  });

  it("`../` traversal is refused; a write inside the folder or into the store is not", () => {
    const dir = tree({ "sub/r.itp": exportRecipe("../up.jsonl"), "sub/data/seeds.jsonl": SEEDS });
    const r = itp(["check", "sub/r.itp", "--json"], { cwd: dir });
    expect(r.code).toBe(1);
    const ds = (JSON.parse(r.stdout) as { diagnostics: JsonDiagnostic[] }).diagnostics;
    expect(ds.map((d) => d.code)).toEqual(["E080"]);
    expect(ds[0]!.message).toContain("`../up.jsonl`");
    expect(ds[0]!.message).toContain(join(dir, "up.jsonl"));
    expect(itp(["check", "sub/r.itp", "--allow-write", "up.jsonl"], { cwd: dir }).code).toBe(0);
    // `out/../x.jsonl` stays inside: only where a path leads counts.
    const inside = tree({ "r.itp": exportRecipe("out/../x.jsonl"), "data/seeds.jsonl": SEEDS });
    expect(checkJson(inside).code).toBe(0);
    // The store (.itp/ in the working directory, as check assumes) is not outside.
    const store = tree({ "r.itp": exportRecipe(".itp/exports/x.jsonl"), "data/seeds.jsonl": SEEDS });
    expect(checkJson(store).code).toBe(0);
  });

  it("a symlink leaving the folder is followed and refused; allowing its target lets it through", () => {
    const out = outsideDir();
    const dir = tree({ "r.itp": exportRecipe("out/x.jsonl"), "data/seeds.jsonl": SEEDS });
    symlinkSync(out, join(dir, "out"));
    const r = checkJson(dir);
    expect(r.code).toBe(1);
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E080"]);
    expect(r.diagnostics[0]!.message).toContain(`\`out/x.jsonl\`, which a symlink leads to ${join(out, "x.jsonl")}`);
    const plan = itp(["plan", "r.itp", "--store", "st", "--allow-write", out], { cwd: dir });
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain("out/x.jsonl");
    expect(plan.stdout).toContain("[OUTSIDE the recipe's folder, through a symlink]");
  });

  it("itp run refuses before anything runs, and runs with --allow-write", () => {
    const out = outsideDir();
    const target = join(out, "x.jsonl");
    const dir = tree({ "r.itp": exportRecipe(target), "data/seeds.jsonl": SEEDS });
    const refused = itp(["run", "r.itp", "--store", "st"], { cwd: dir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/error\[E080\]/);
    expect(refused.stdout + refused.stderr).not.toMatch(stackTrace);
    expect(existsSync(target)).toBe(false);
    expect(existsSync(join(dir, "st", "runs"))).toBe(false);
    const ran = itp(["run", "r.itp", "--store", "st", "--allow-write", target], { cwd: dir });
    expect(ran.code, ran.stderr).toBe(0);
    expect(existsSync(target)).toBe(true);
    // A cached program is checked again: the same recipe without the flag is still refused.
    expect(itp(["run", "r.itp", "--store", "st"], { cwd: dir }).code).toBe(1);
    expect(itp(["plan", "r.itp", "--store", "st"], { cwd: dir }).code).toBe(1);
  });

  it("a recipe imported from a package gets no more: its write outside is refused at its own line, and allowed only by the command line", () => {
    const dir = tree({
      "r.itp": 'import "@org/recipes/shared" { leak }\nimport "./lib/local.itp" { leak2 }\ndataset copy = concat(leak, leak2) |> take(1)\n',
      "node_modules/@org/recipes/package.json": JSON.stringify({ name: "@org/recipes", version: "1.0.0" }),
      "node_modules/@org/recipes/shared.itp": 'dataset seeds = jsonl("data/seeds.jsonl")\ndataset leak = export(seeds, path: "../escaped.jsonl")\n',
      "lib/local.itp": 'dataset seeds = jsonl("data/seeds.jsonl")\ndataset leak2 = export(seeds, path: "/var/tmp/itp-escaped.jsonl")\n',
      "data/seeds.jsonl": SEEDS,
    });
    const r = itp(["check", "r.itp", "--json"], { cwd: dir });
    expect(r.code, r.stdout).toBe(1);
    const ds = (JSON.parse(r.stdout) as { diagnostics: JsonDiagnostic[] }).diagnostics.filter((d) => d.code.startsWith("E"));
    expect(ds.map((d) => [d.code, d.file, d.line]).sort()).toEqual([
      ["E080", "lib/local.itp", 2],
      ["E080", "node_modules/@org/recipes/shared.itp", 2],
    ]);
    // Paths are the entry recipe's: the package's `../escaped.jsonl` leaves the folder of r.itp.
    expect(ds.find((d) => d.file.startsWith("node_modules"))!.message).toContain(join(dirname(dir), "escaped.jsonl"));
    expect(itp(["check", "r.itp", "--allow-write", "../escaped.jsonl", "--allow-write", "/var/tmp/itp-escaped.jsonl"], { cwd: dir }).code).toBe(0);
  });
});

const endpointRecipe = (extra: { header?: string; prompt?: string } = {}) => `
model teacher = openai_compatible {
  model = "m"
  base_url = env("TEACHER_URL")
  api_key = secret("TEACHER_KEY")${extra.header ? `\n  headers = { "X-Org": ${extra.header} }` : ""}
}
dataset seeds: Instruction = jsonl("data/seeds.jsonl")
generate answers = generate(seeds) {
  model = teacher
  prompt = ${extra.prompt ?? '"Answer: {instruction}"'}
}
dataset out = export(answers, path: "out/answers.jsonl")
`;

describe("env() values sent to a host are refused (E081)", () => {
  it("an endpoint named by env() and a secret() credential are allowed by default", () => {
    const dir = tree({ "r.itp": endpointRecipe(), "data/seeds.jsonl": SEEDS });
    expect(checkJson(dir).code).toBe(0);
  });

  it("env() in a header: refused; --allow-env of exactly that name lets it through", () => {
    const dir = tree({ "r.itp": endpointRecipe({ header: 'env("ORG_ID")' }), "data/seeds.jsonl": SEEDS });
    const r = checkJson(dir, [], { TEACHER_URL: "http://llm.test:8000/v1" });
    expect(r.code).toBe(1);
    expect(r.diagnostics.map((d) => [d.code, d.line])).toEqual([["E081", 2]]);
    expect(r.diagnostics[0]!.message).toBe('stage `teacher` would send the value of env("ORG_ID") to the endpoint of `teacher` (llm.test:8000): it is in `headers.X-Org`, part of what is sent');
    expect(r.diagnostics[0]!.hint).toContain("--allow-env ORG_ID");
    expect(checkJson(dir, ["--allow-env", "ORG_ID"]).code).toBe(0);
    expect(checkJson(dir, ["--allow-env", "TEACHER_URL"]).code).toBe(1);
    expect(checkJson(dir, ["--allow-write", dir]).code).toBe(1);
  });

  it("env() in a prompt: refused at the stage that sends it; allowing another name does not let it through", () => {
    const dir = tree({ "r.itp": endpointRecipe({ prompt: 'env("SECRET_PROMPT")', header: 'env("ORG_ID")' }), "data/seeds.jsonl": SEEDS });
    const r = checkJson(dir);
    expect(r.diagnostics.map((d) => [d.code, d.message.match(/`(\w+)` would send the value of env\("(\w+)"\)/)?.slice(1).join(" ")])).toEqual([
      ["E081", "teacher ORG_ID"],
      ["E081", "answers SECRET_PROMPT"],
    ]);
    const onlyOrg = checkJson(dir, ["--allow-env", "ORG_ID"]);
    expect(onlyOrg.diagnostics.map((d) => d.message)).toEqual([expect.stringContaining('env("SECRET_PROMPT")')]);
    expect(checkJson(dir, ["--allow-env", "ORG_ID", "--allow-env", "SECRET_PROMPT"]).code).toBe(0);
  });

  it("env() in records or a template that flow into a prompt is refused where it is written", () => {
    const dir = tree({
      "r.itp": `model teacher = openai_compatible { model = "m"  base_url = "http://llm.test/v1" }
dataset seeds: Instruction = records([{ instruction: env("LEAKED"), output: "b" }])
dataset local: Instruction = jsonl(path: env("DATA_FILE"))
dataset both = concat(seeds, local)
generate a = distill(both) { model = teacher }
dataset out = export(a, path: "o.jsonl")
`,
    });
    const r = checkJson(dir, [], { DATA_FILE: "data/seeds.jsonl" });
    // The path from env() is not sent (only the file's records): only the record's field is refused.
    expect(r.diagnostics.map((d) => [d.code, d.line, d.message])).toEqual([
      ["E081", 2, 'stage `seeds` puts the value of env("LEAKED") in `items[0].instruction`, which reaches the requests `a` sends to the endpoint of `teacher` (llm.test)'],
    ]);
    expect(checkJson(dir, ["--allow-env", "LEAKED"], { DATA_FILE: "data/seeds.jsonl" }).code).toBe(0);
  });

  it("env() in a hub query is refused; plan and run refuse it too", () => {
    const dir = tree({ "r.itp": 'dataset d = hf_dataset(repo: env("WHICH_REPO"), revision: "0123456789abcdef0123456789abcdef01234567")\ndataset out = export(d, path: "d.jsonl")\n' });
    const r = checkJson(dir);
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E081"]);
    expect(r.diagnostics[0]!.message).toContain("to the hub");
    expect(r.diagnostics[0]!.message).toContain("`repo`");
    const plan = itp(["plan", "r.itp", "--store", "st"], { cwd: dir, env: { WHICH_REPO: "org/x" } });
    expect(plan.code).toBe(1);
    expect(plan.stderr).toMatch(/error\[E081\]/);
    expect(itp(["run", "r.itp", "--store", "st"], { cwd: dir, env: { WHICH_REPO: "org/x" } }).stderr).toMatch(/error\[E081\]/);
    expect(checkJson(dir, ["--allow-env", "WHICH_REPO"]).code).toBe(0);
  });
});

describe("one credential sent to two hosts is refused (E083)", () => {
  const twoHosts = (second: string) => `
model ours = openai_compatible { model = "m"  base_url = "http://llm.test/v1"  api_key = secret("OPENAI_API_KEY") }
model theirs = openai_compatible { model = "m"  base_url = "${second}"  api_key = secret("OPENAI_API_KEY") }
dataset seeds: Instruction = jsonl("data/seeds.jsonl")
generate a = distill(seeds) { model = ours }
generate b = distill(a) { model = theirs }
dataset out = export(b, path: "out/b.jsonl")
`;

  it("a recipe that names your key as another host's credential is refused; the same host twice is not", () => {
    const dir = tree({ "r.itp": twoHosts("http://collector.test/v1"), "data/seeds.jsonl": SEEDS });
    const r = checkJson(dir);
    expect(r.code).toBe(1);
    expect(r.diagnostics.map((d) => [d.code, d.line])).toEqual([["E083", 3]]);
    expect(r.diagnostics[0]!.message).toBe("the credential OPENAI_API_KEY is sent to 2 hosts: llm.test (`ours`), collector.test (`theirs`); a credential goes to its own endpoint only");
    expect(checkJson(dir, ["--allow-env", "OPENAI_API_KEY"]).code).toBe(0);
    expect(checkJson(dir, ["--allow-env", "OTHER_KEY"]).code).toBe(1);
    const same = tree({ "r.itp": twoHosts("http://llm.test/v2"), "data/seeds.jsonl": SEEDS });
    expect(checkJson(same).code).toBe(0);
  });
});

describe("commands a recipe runs", () => {
  it("serve's command line is listed in the plan's effects", () => {
    const dir = tree({
      "r.itp": `model base = hf_model(repo: "models/tiny")
model served = serve(base) { command = "python3 -c print(1) {port}" }
dataset seeds: Instruction = jsonl("data/seeds.jsonl")
generate a = distill(seeds) { model = served }
`,
      "data/seeds.jsonl": SEEDS,
    });
    const registry = defaultRegistry();
    const path = join(dir, "r.itp");
    const program = check([path], diskHost(), registry, { runnable: false }).files[0]!.program!;
    const e = programEffects(program, registry, { folder: dir });
    expect(e.commands).toEqual([{ stage: "served", command: "python3 -c print(1) {port}" }]);
    expect(e.reads.map((f) => f.path)).toEqual(["data/seeds.jsonl", "models/tiny"]);
    expect(e.hosts).toEqual([]);
  });
});

describe("reads outside the folder: marked, and errors under --deny-read-outside (E082)", () => {
  it("marked in the plan, allowed by default, refused with --deny-read-outside", () => {
    const out = outsideDir();
    const dir = tree({ "r.itp": `dataset seeds = jsonl(${JSON.stringify(join(out, "seeds.jsonl"))})\ndataset local = jsonl("data/seeds.jsonl")\ndataset both = concat(seeds, local)\ndataset x = export(both, path: "x.jsonl")\n`, "data/seeds.jsonl": SEEDS });
    writeFileSync(join(out, "seeds.jsonl"), SEEDS);
    expect(checkJson(dir).code).toBe(0);
    const plan = itp(["plan", "r.itp", "--store", "st"], { cwd: dir });
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain(`${join(out, "seeds.jsonl")}  [OUTSIDE the recipe's folder]  <- seeds.path`);
    expect(plan.stdout).toContain("data/seeds.jsonl  <- local.path");
    const denied = checkJson(dir, ["--deny-read-outside"]);
    expect(denied.code).toBe(1);
    expect(denied.diagnostics.map((d) => [d.code, d.line])).toEqual([["E082", 1]]);
    expect(denied.diagnostics[0]!.message).toContain("--deny-read-outside");
    const run = itp(["run", "r.itp", "--store", "st", "--deny-read-outside"], { cwd: dir });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/error\[E082\]/);
    expect(existsSync(join(dir, "x.jsonl"))).toBe(false);
  });
});

describe("permissions in a profile (itp.profiles.yaml, chosen with --profile)", () => {
  it("allow_write, allow_env and deny_read_outside act as the flags, only for the profile chosen", () => {
    const out = outsideDir();
    const dir = tree({
      "r.itp": `${endpointRecipe({ header: 'env("ORG_ID")' })}dataset far = export(seeds, path: ${JSON.stringify(join(out, "far.jsonl"))})\n`,
      "data/seeds.jsonl": SEEDS,
      "itp.profiles.yaml": `trusted:\n  executor: local\n  allow_write: [${JSON.stringify(out)}]\n  allow_env: [ORG_ID]\nci:\n  executor: local\n  deny_read_outside: true\n  allow_write: ["../${out.split("/").pop()}"]\n  allow_env: [ORG_ID]\n`,
    });
    expect(checkJson(dir).diagnostics.map((d) => d.code).sort()).toEqual(["E080", "E081"]);
    expect(checkJson(dir, ["--profile", "trusted"]).code).toBe(0);
    // ci: the relative allow_write is the profile file's folder's neighbour, the same folder as above.
    expect(checkJson(dir, ["--profile", "ci"]).code).toBe(0);
    const plan = itp(["plan", "r.itp", "--store", "st", "--profile", "trusted"], { cwd: dir, env: { TEACHER_URL: "http://llm.test/v1", ORG_ID: "org-1" } });
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(`${join(out, "far.jsonl")}  [OUTSIDE the recipe's folder]  <- far.path`);
    // The ci profile denies reads outside: a recipe reading outside is refused under it.
    const reader = tree({
      "r.itp": `dataset seeds = jsonl(${JSON.stringify(join(out, "far.jsonl"))})\ndataset x = export(seeds, path: "x.jsonl")\n`,
      "itp.profiles.yaml": "ci:\n  executor: local\n  deny_read_outside: true\n",
    });
    writeFileSync(join(out, "far.jsonl"), SEEDS);
    expect(checkJson(reader).code).toBe(0);
    expect(checkJson(reader, ["--profile", "ci"]).diagnostics.map((d) => d.code)).toEqual(["E082"]);
    // A bad setting is the profile's own error, with the file and the key.
    const bad = tree({ "r.itp": exportRecipe("x.jsonl"), "data/seeds.jsonl": SEEDS, "itp.profiles.yaml": "p:\n  executor: local\n  allow_env: [\"not a name\"]\n" });
    expect(checkJson(bad, ["--profile", "p"]).diagnostics.map((d) => d.code)).toEqual(["E090"]);
  });
});

describe("itp plan --json: the effects in full", () => {
  it("two endpoints, one hub dataset, one export, one secret", () => {
    const dir = tree({
      "r.itp": `
model teacher = openai_compatible {
  model = "gpt-test"
  base_url = "http://127.0.0.1:1/v1"
  price_input = 0.15
  price_output = 0.6
}
model judge_model = openai_compatible {
  model = "judge"
  base_url = env("JUDGE_URL")
  api_key = secret("JUDGE_KEY")
}
dataset seeds: Instruction = hf_dataset(repo: "org/seeds", revision: "0123456789abcdef0123456789abcdef01234567")
generate gen = generate_alpaca(seeds) {
  model = teacher
  target = 40
  per_call = 20
}
generate judged = judge(gen) { model = judge_model }
dataset out = export(judged, path: "out/judged.jsonl")
`,
    });
    const r = itp(["plan", "r.itp", "--store", "st", "--json"], { cwd: dir, env: { JUDGE_URL: "http://judge.test:8080/v1", HF_ENDPOINT: "http://hub.test:9000" } });
    expect(r.code, r.stderr).toBe(0);
    const { effects } = JSON.parse(r.stdout) as { effects: unknown };
    expect(effects).toEqual({
      writes: [{ path: "out/judged.jsonl", resolved: join(dir, "out/judged.jsonl"), by: ["out.path"], outside: false }],
      reads: [],
      hosts: [
        { host: "127.0.0.1:1", url: "http://127.0.0.1:1/v1", what: "model endpoint", models: ["teacher"], stages: ["gen"] },
        { host: "judge.test:8080", url: "http://judge.test:8080/v1", what: "model endpoint", models: ["judge_model"], stages: ["judged"] },
        { host: "hub.test:9000", url: "http://hub.test:9000", what: "hub", models: [], stages: ["seeds"] },
      ],
      env: [{ name: "JUDGE_URL", by: ["judge_model.base_url"] }],
      secrets: [{ name: "JUDGE_KEY", by: ["judge_model.api_key"] }],
      gpus: { stages: [], total_gpus: 0, total_gpu_hours: 0 },
      cost: {
        // 40 / 20 = 2 requests; a built-in prompt of ~1,000 characters (250 tokens) + 150 filled in; max_tokens 3072.
        stages: [{ stage: "gen", model: "teacher", requests: 2, prompt_tokens: 800, completion_tokens: 6144, cost: 3.8064, basis: "2 requests (target / per_call) × (~400 prompt tokens + at most 3072 completion tokens)" }],
        total: 3.8064,
        partial: false,
      },
      commands: [],
    });
    const human = itp(["plan", "r.itp", "--store", "st"], { cwd: dir, env: { JUDGE_URL: "http://judge.test:8080/v1", HF_ENDPOINT: "http://hub.test:9000" } });
    expect(human.stdout).toContain("    judge.test:8080 (model endpoint http://judge.test:8080/v1: judge_model)  <- judged\n");
    expect(human.stdout).toContain("    hub.test:9000 (the hub)  <- seeds\n");
    expect(human.stdout).toContain("    JUDGE_KEY  <- judge_model.api_key\n");
    expect(human.stdout).toContain("    gen (teacher): ~3.8064: 2 requests");
  });
});

describe("itp diff: effect changes first", () => {
  it("a new host and a new write outside the folder are shown at the top, and in --json", () => {
    const v1 = `model teacher = openai_compatible { model = "m"  base_url = "http://a.test/v1" }
dataset seeds: Instruction = jsonl("data/seeds.jsonl")
generate answers = distill(seeds) { model = teacher }
dataset out = export(answers, path: "out/a.jsonl")
`;
    const v2 = v1.replace("http://a.test/v1", "http://b.test:81/v1").replace("out/a.jsonl", "/tmp/itp-diff-elsewhere/a.jsonl");
    const dir = tree({ "v1.itp": v1, "v2.itp": v2, "data/seeds.jsonl": SEEDS });
    const r = itp(["diff", "v1.itp", "v2.itp"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines.slice(0, 6)).toEqual([
      "itp diff v1.itp -> v2.itp",
      "effects:",
      "+ host b.test:81 (model endpoint http://b.test:81/v1: teacher)  <- answers",
      "- host a.test (model endpoint http://a.test/v1: teacher)  <- answers",
      "+ write outside the recipe's folder: /tmp/itp-diff-elsewhere/a.jsonl  <- out.path",
      "~ teacher (openai_compatible)",
    ]);
    const j = JSON.parse(itp(["diff", "v1.itp", "v2.itp", "--json"], { cwd: dir }).stdout) as { effects: { hosts: { added: { host: string }[]; removed: { host: string }[] } } };
    expect(j.effects.hosts.added.map((h) => h.host)).toEqual(["b.test:81"]);
    expect(j.effects.hosts.removed.map((h) => h.host)).toEqual(["a.test"]);
  });
});

describe("the library API", () => {
  const registry = defaultRegistry();
  const compile = (text: string, folder: string) => {
    const path = join(folder, "r.itp");
    const r = check([path], diskHost(), registry, { sources: new Map([[path, text]]), runnable: false });
    return { r, program: r.files[0]?.program };
  };

  it("check() enforces the permissions it is given, and only then", () => {
    const folder = outsideDir();
    const text = exportRecipe("/elsewhere/x.jsonl");
    expect(compile(text, folder).r.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const path = join(folder, "r.itp");
    const ctx = (): EffectContext => ({ folder });
    const refused = check([path], diskHost(), registry, { sources: new Map([[path, text]]), runnable: false, permissions: { allow: defaultPermissions, context: ctx } });
    expect(refused.diagnostics.filter((d) => d.severity === "error").map((d) => d.code)).toEqual(["E080"]);
    expect(refused.files[0]!.program).toBeUndefined();
    const allowed = check([path], diskHost(), registry, { sources: new Map([[path, text]]), runnable: false, permissions: { allow: { ...defaultPermissions, allowWrite: ["/elsewhere"] }, context: ctx } });
    expect(allowed.files[0]!.program).toBeDefined();
  });

  it("GPU-hours: a training stage's time limit bounds them, the plan's size and tokens estimate them", () => {
    const folder = outsideDir();
    const { program } = compile(
      `dataset d: Instruction = jsonl("d.jsonl")
train a = sft(base: "models/tiny") { data = d  gpus = 2  time = 3h }
train b = lora(base: "models/tiny") { data = d  gpus = 4  epochs = 2 }
`,
      folder,
    );
    const ctx: EffectContext = { folder, training: (id) => (id === "b" ? { params: 7e9, tokens: 1e8 } : undefined) };
    const e = programEffects(program!, registry, ctx);
    expect(e.gpus.stages.map((g) => [g.stage, g.gpus, g.gpu_hours])).toEqual([
      ["a", 2, 6],
      // 4 · 7e9 · 2e8 FLOPs at 100 TFLOP/s = 5.6e18 / 1e14 s = 15.56 GPU-hours.
      ["b", 4, 15.56],
    ]);
    expect(e.gpus.total_gpu_hours).toBe(21.56);
    expect(e.gpus.total_gpus).toBe(4);
    expect(e.reads.map((f) => [f.path, f.by])).toEqual([
      ["d.jsonl", ["d.path"]],
      ["models/tiny", ["a.base", "b.base"]],
    ]);
    // Without the plan's figures, b is not estimated and the total is unknown.
    expect(programEffects(program!, registry, { folder }).gpus.total_gpu_hours).toBeNull();
  });
});

describe("within", () => {
  it("is inside only below the root, by path components, whatever `..` says", () => {
    expect(within("/a/b", "/a/b")).toBe(true);
    expect(within("/a/b/c.jsonl", "/a/b")).toBe(true);
    expect(within("/a/b/c/d", "/a/b/")).toBe(true);
    expect(within("/a/bc", "/a/b")).toBe(false);
    expect(within("/a/b/../c", "/a/b")).toBe(false);
    expect(within("/a/b/../b/c", "/a/b")).toBe(true);
    expect(within("/a", "/a/b")).toBe(false);
    expect(within("/a/b/..c/d", "/a/b")).toBe(true);
  });
});
