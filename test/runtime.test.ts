import { spawn } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { itp, itpBin, stackTrace, tempTree } from "./support/cli.js";

// The runtime through the CLI, as a user meets it: runs, plans, faults, corruption, interruption, the store.

const rec = (i: number) => JSON.stringify({ i, lang: i % 3 === 0 ? "fr" : "en", text: `record number ${i}` });
const jsonl = (n: number) => Array.from({ length: n }, (_, i) => rec(i)).join("\n") + "\n";

const recipe = `type Rec = {
  i: int
  lang: string
  text: string
}

/// The source.
dataset a: Rec = jsonl("a.jsonl")

dataset en = where(a, expr: "lang == \\"en\\"")

dataset few = take(en, n: 2)

dataset s = sample(a, n: 10, seed: 3)

dataset sh = shuffle(s, seed: 1)

dataset c = concat(few, sh)
`;

interface StageJson {
  id: string;
  status: string;
  reasons?: string[];
  key?: string;
}

function statuses(stages: StageJson[]): Record<string, string> {
  return Object.fromEntries(stages.map((s) => [s.id, s.status]));
}

function runJson(dir: string, store: string, extra: string[] = [], env?: Record<string, string>) {
  const r = itp(["run", "r.itp", "--store", store, "--json", ...extra], { cwd: dir, ...(env ? { env } : {}) });
  let j: { ran: number; cached: number; failed: number; skipped: number; log: string; stages: StageJson[] } | undefined;
  try {
    j = JSON.parse(r.stdout);
  } catch {
    throw new Error(`itp run --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { ...r, j: j! };
}

function planJson(dir: string, store: string, extra: string[] = []): StageJson[] {
  const r = itp(["plan", "r.itp", "--store", store, "--json", ...extra], { cwd: dir });
  expect(r.stderr).toBe("");
  return (JSON.parse(r.stdout) as { stages: StageJson[] }).stages;
}

/** Every file under <store>/objects/ (artifacts stored as files of their own), by relative path, with its bytes. */
function objects(store: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const base = join(store, "objects");
  for (const d of existsSync(base) ? readdirSync(base).sort() : []) for (const f of readdirSync(join(base, d)).sort()) out.set(`${d}/${f}`, readFileSync(join(base, d, f)));
  return out;
}

/** `itp cache verify --json`: every artifact re-hashed, whatever the layout (small ones may be packed); stage -> digest. */
function verified(dir: string, store: string): { code: number | null; corrupt: { stage: string; reason: string }[]; digests: Record<string, string> } {
  const r = itp(["cache", "verify", "--store", store, "--json"], { cwd: dir });
  const j = JSON.parse(r.stdout) as { corrupt: { stage: string; reason: string }[]; intact: { stage: string; digest: string }[] };
  return { code: r.code, corrupt: j.corrupt, digests: Object.fromEntries(j.intact.map((e) => [e.stage, e.digest])) };
}

/** Enough records that the source and `en` are well over any small-artifact threshold (stored as files of their own). */
const N = 20_000;

function expectSameObjects(a: Map<string, Buffer>, b: Map<string, Buffer>): void {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [k, v] of a) expect(b.get(k)!.equals(v), `object ${k} differs`).toBe(true);
}

function showJson(dir: string, store: string, stage: string) {
  const r = itp(["show", "r.itp", stage, "--store", store, "--json"], { cwd: dir });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { path: string; digest: string; key: string; records: number; made: { attempts: number } };
}

describe("determinism and plans", () => {
  const dir = tempTree({ "r.itp": recipe, "a.jsonl": jsonl(N) });

  it("the same recipe, seed and inputs give byte-identical artifacts in two stores", () => {
    const one = runJson(dir, join(dir, "s1"));
    const two = runJson(dir, join(dir, "s2"));
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    expect(one.j.ran).toBe(6);
    expect(two.j.ran).toBe(6);
    const a = objects(join(dir, "s1"));
    expect(a.size).toBeGreaterThanOrEqual(2);
    expectSameObjects(a, objects(join(dir, "s2")));
    // Every artifact, packed or not: the same bytes (verify re-hashes them) under the same digests.
    const v1 = verified(dir, join(dir, "s1"));
    const v2 = verified(dir, join(dir, "s2"));
    expect(v1.code).toBe(0);
    expect(Object.keys(v1.digests).sort()).toEqual(["a", "c", "en", "few", "s", "sh"]);
    expect(v2.digests).toEqual(v1.digests);
  });

  it("a changed parameter marks exactly that stage and its downstream, naming the parameter", () => {
    const store = join(dir, "s1");
    expect(Object.values(statuses(planJson(dir, store)))).toEqual(Array(6).fill("cached"));
    const plan = planJson(dir, store, ["--set", "few.n=1"]);
    expect(statuses(plan)).toEqual({ a: "cached", en: "cached", few: "run", s: "cached", sh: "cached", c: "run" });
    expect(plan.find((s) => s.id === "few")!.reasons).toEqual(["parameter n: 2 -> 1"]);
    expect(plan.find((s) => s.id === "c")!.reasons!.join(" ")).toContain("few");
    const r = runJson(dir, store, ["--set", "few.n=1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.j.stages)).toEqual({ a: "cached", en: "cached", few: "ran", s: "cached", sh: "cached", c: "ran" });
    expect(r.j.stages.find((s) => s.id === "c")).toMatchObject({ records: 11 });
  });

  it("editing the file is the same as --set", () => {
    const edited = tempTree({ "r.itp": recipe.replace("sample(a, n: 10, seed: 3)", "sample(a, n: 10, seed: 4)"), "a.jsonl": jsonl(N) });
    const store = join(dir, "s2");
    const plan = planJson(edited, store);
    expect(statuses(plan)).toEqual({ a: "cached", en: "cached", few: "cached", s: "run", sh: "run", c: "run" });
    expect(plan.find((s) => s.id === "s")!.reasons).toEqual(["parameter seed: 3 -> 4"]);
    const r = runJson(edited, store);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.j.stages)).toEqual({ a: "cached", en: "cached", few: "cached", s: "ran", sh: "ran", c: "ran" });
  });

  it("an edit in place, same size and within the same second, is seen at once", () => {
    const d = tempTree({ "r.itp": recipe, "a.jsonl": jsonl(200) });
    const store = join(d, "s");
    expect(runJson(d, store).code).toBe(0);
    writeFileSync(join(d, "r.itp"), recipe.replace("take(en, n: 2)", "take(en, n: 3)"));
    const plan = planJson(d, store);
    expect(statuses(plan)).toMatchObject({ few: "run", c: "run", en: "cached" });
    expect(plan.find((s) => s.id === "few")!.reasons).toEqual(["parameter n: 2 -> 3"]);
    const r = runJson(d, store);
    expect(statuses(r.j.stages)).toMatchObject({ few: "ran", c: "ran", en: "cached" });
    expect(r.j.stages.find((s) => s.id === "few")).toMatchObject({ records: 3 });
  });

  it("a copy of a recipe (another path) is explained against the store's artifacts; --against names the old one", () => {
    const d = tempTree({ "r.itp": recipe, "a.jsonl": jsonl(200) });
    const store = join(d, "s");
    expect(runJson(d, store).code).toBe(0);
    writeFileSync(join(d, "copy.itp"), recipe.replace("take(en, n: 2)", "take(en, n: 3)"));
    const plan = (args: string[]) => {
      const r = itp(["plan", "copy.itp", "--store", store, "--json", ...args], { cwd: d });
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { stages: StageJson[] }).stages;
    };
    const p = plan([]);
    expect(statuses(p)).toEqual({ a: "cached", en: "cached", few: "run", s: "cached", sh: "cached", c: "run" });
    expect(p.find((s) => s.id === "few")!.reasons).toEqual(["parameter n: 2 -> 3 (against r.itp)"]);
    expect(plan(["--against", "r.itp"]).find((s) => s.id === "few")!.reasons).toEqual(["parameter n: 2 -> 3 (against r.itp)"]);
    // Once the copy has run, it is its own reference; --against still compares with the original.
    expect(itp(["run", "copy.itp", "--store", store], { cwd: d }).code).toBe(0);
    writeFileSync(join(d, "copy.itp"), recipe.replace("take(en, n: 2)", "take(en, n: 4)"));
    expect(plan([]).find((s) => s.id === "few")!.reasons).toEqual(["parameter n: 3 -> 4"]);
    expect(plan(["--against", "r.itp"]).find((s) => s.id === "few")!.reasons).toEqual(["parameter n: 2 -> 4 (against r.itp)"]);
  });

  it("plan prints a doc comment's whole first sentence, across lines", () => {
    const d = tempTree({ "r.itp": recipe.replace("/// The source.", "/// The source: records with an id, a language and a text, e.g. the\n/// fixtures of this test. More text here."), "a.jsonl": jsonl(20) });
    const r = itp(["plan", "r.itp", "--store", join(d, "s")], { cwd: d });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("run     a  // The source: records with an id, a language and a text, e.g. the fixtures of this test.\n");
  });

  it("show prints the artifact's path, records, schema, sample and lineage", () => {
    const store = join(dir, "s1");
    const r = itp(["show", "r.itp", "few", "--store", store], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^few \(take\) : Dataset<Rec>$/m);
    expect(r.stdout).toMatch(/^artifact {2}.*s1\/(objects\/[0-9a-f]{2}\/[0-9a-f]{64}|packs\/\S+)$/m);
    expect(r.stdout).toMatch(/^records {3}2; \d+ bytes$/m);
    expect(r.stdout).toMatch(/^schema {4}\{i: int, lang: string, text: string\}$/m);
    expect(r.stdout).toMatch(/^lineage\n {2}a \(jsonl\) [0-9a-f]{12}, 20000 records\n {2}en \(where\) [0-9a-f]{12}, 13333 records\n/m);
    expect(r.stdout).toContain(`sample (2)\n  ${rec(1)}\n  ${rec(2)}\n`);
    const big = showJson(dir, store, "en");
    expect(big.records).toBe(13333);
    expect(existsSync(join(dir, big.path)) || existsSync(big.path)).toBe(true);
  });

  it("show --dropped lists what a filter dropped, with the reason; verify checks the log too", () => {
    const store = join(dir, "s1");
    const r = itp(["show", "r.itp", "en", "--dropped", "--records", "2", "--store", store], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`en: 6667 dropped (predicate false 6667)\n  [predicate false] ${rec(0)}\n  [predicate false] ${rec(3)}\n  ... and 6665 more (--records N to see more)\n`);
    const j = JSON.parse(itp(["show", "r.itp", "en", "--dropped", "--reason", "predicate", "--store", store, "--json"], { cwd: dir }).stdout);
    expect(j.dropped).toBe(6667);
    expect(j.matching).toBe(6667);
    expect(j.records).toHaveLength(20);
    expect(j.records[19]).toEqual({ reason: "predicate false", record: JSON.parse(rec(57)) });
    // A stage that drops nothing says so.
    expect(itp(["show", "r.itp", "few", "--dropped", "--store", store], { cwd: dir }).stdout).toBe("few: it dropped nothing\n");
    // The log is part of the entry: damaging it makes the entry corrupt (and the next run recomputes it).
    const m = JSON.parse(itp(["show", "r.itp", "en", "--store", store, "--json"], { cwd: dir }).stdout);
    const copy = join(dir, "s-dropped");
    cpSync(store, copy, { recursive: true });
    const entry = readdirSync(join(copy, "entries"), { recursive: true }).map(String).find((f) => f.includes(m.key))!;
    const manifest = JSON.parse(readFileSync(join(copy, "entries", entry), "utf8"));
    const log = join(copy, "objects", manifest.dropped.digest.slice(0, 2), manifest.dropped.digest);
    // The where's input is a stored file: its dropped lines are logged by place, and the log keeps that input.
    expect(manifest.dropped.lines_of).toBe(showJson(dir, store, "a").digest);
    expect(readFileSync(log, "utf8")).toMatch(/^\{"reason":"predicate false","lines":\[\[0,1\],\[3,4\],/);
    writeFileSync(log, readFileSync(log, "utf8").replace("predicate false", "predicate fals3"));
    const v = verified(dir, copy);
    expect(v.corrupt).toEqual([{ stage: "en", reason: "the log of dropped records: data file's digest does not match the manifest", key: m.key }]);
  });

  it("show explains a stage that is not computed yet", () => {
    const r = itp(["show", "r.itp", "few", "--store", join(dir, "empty")], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("`few` has no artifact");
    expect(r.stderr).toContain("itp run r.itp --only few");
    expect(r.stderr).not.toMatch(stackTrace);
  });
});

describe("faults", () => {
  it("(a) a transient fault is retried by the stage's policy: 2 retry events, attempts 3", () => {
    const dir = tempTree({
      "r.itp": `dataset a = jsonl("a.jsonl")\n\ndataset flaky = take(a, n: 5) {\n  retry = backoff(3, initial: 10ms)\n}\n`,
      "a.jsonl": jsonl(100),
    });
    const store = join(dir, "s");
    const r = runJson(dir, store, [], { ITP_FAULTS: "flaky=transient:2" });
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.j.stages)).toEqual({ a: "ran", flaky: "ran" });
    const logs = readdirSync(join(store, "runs")).filter((f) => f.endsWith(".jsonl"));
    expect(logs).toHaveLength(1);
    const events = readFileSync(join(store, "runs", logs[0]!), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { type: string; stage?: string });
    expect(events.filter((e) => e.type === "retry" && e.stage === "flaky")).toHaveLength(2);
    expect(showJson(dir, store, "flaky").made.attempts).toBe(3);
  });

  it("(b) a permanent failure is reported once, skips its downstream, and an independent branch finishes", () => {
    const dir = tempTree({
      "r.itp": `dataset good = jsonl("good.jsonl")\n\ndataset kept = take(good, n: 3)\n\ndataset bad = jsonl("bad.jsonl")\n\ndataset bad1 = take(bad, n: 1)\n\ndataset bad2 = take(bad1, n: 1)\n`,
      "good.jsonl": jsonl(50),
      "bad.jsonl": `${rec(0)}\n${rec(1)}\n{"i": 2, "lang":\n${rec(3)}\n`,
    });
    const store = join(dir, "s");
    const r = itp(["run", "r.itp", "--store", store], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).not.toMatch(stackTrace);
    const mentions = r.stderr.split("\n").filter((l) => l.includes("bad.jsonl"));
    expect(mentions).toHaveLength(1);
    expect(mentions[0]).toMatch(/bad\.jsonl:3: not valid JSON/);
    expect(r.stderr).toMatch(/skipped 2 stages downstream of failures: (bad1, bad2|bad2, bad1)/);
    const j = runJson(dir, store);
    expect(j.code).toBe(1);
    expect(statuses(j.j.stages)).toEqual({ good: "cached", kept: "cached", bad: "failed", bad1: "skipped", bad2: "skipped" });
    expect(showJson(dir, store, "kept").records).toBe(3);
    const v = verified(dir, store);
    expect(v.code).toBe(0);
    expect(Object.keys(v.digests).sort()).toEqual(["good", "kept"]);
  });

  it("(c) a corrupt object is found by verify, recomputed by the next run, byte-identical", () => {
    const dir = tempTree({ "r.itp": recipe, "a.jsonl": jsonl(N) });
    const store = join(dir, "s");
    expect(runJson(dir, store).code).toBe(0);
    const before = objects(store);
    const digests = verified(dir, store).digests;
    const en = showJson(dir, store, "en");
    const obj = join(store, "objects", en.digest.slice(0, 2), en.digest);
    expect(existsSync(obj)).toBe(true);
    const bytes = readFileSync(obj);
    bytes.write("XYZ", 10);
    writeFileSync(obj, bytes);
    const v = itp(["cache", "verify", "--store", store], { cwd: dir });
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(new RegExp(`CORRUPT ${en.key.slice(0, 12)} en: .*digest`));
    expect(v.stdout).toContain("5 intact, 1 corrupt");
    const r = runJson(dir, store);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.j.stages)).toEqual({ a: "cached", en: "ran", few: "cached", s: "cached", sh: "cached", c: "cached" });
    expectSameObjects(before, objects(store));
    const clean = verified(dir, store);
    expect(clean.code).toBe(0);
    expect(clean.corrupt).toEqual([]);
    expect(clean.digests).toEqual(digests);
  });

  it("(c) the same for a small artifact, wherever the store keeps it (a file, or a pack: `path@offset`)", () => {
    const dir = tempTree({ "r.itp": recipe, "a.jsonl": jsonl(N) });
    const store = join(dir, "s");
    expect(runJson(dir, store).code).toBe(0);
    const digests = verified(dir, store).digests;
    const sh = showJson(dir, store, "sh");
    const m = /^(.*)@(\d+)$/.exec(sh.path);
    const file = m ? m[1]! : existsSync(sh.path) ? sh.path : join(dir, sh.path);
    const at = m ? Number(m[2]) : 0;
    const bytes = readFileSync(file);
    bytes.write("XYZ", at + 10);
    writeFileSync(file, bytes);
    const v = verified(dir, store);
    expect(v.code).toBe(1);
    expect(v.corrupt.map((c) => c.stage)).toEqual(["sh"]);
    const r = runJson(dir, store);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.j.stages)).toEqual({ a: "cached", en: "cached", few: "cached", s: "cached", sh: "ran", c: "cached" });
    const clean = verified(dir, store);
    expect(clean.code).toBe(0);
    expect(clean.digests).toEqual(digests);
  });

  it("(d) an unwritable store is a clear error naming it", () => {
    const dir = tempTree({ "r.itp": recipe, "a.jsonl": jsonl(10), "file": "not a folder\n" });
    const store = join(dir, "file", "sub");
    for (const verb of [["run", "r.itp"], ["plan", "r.itp"], ["show", "r.itp", "a"]]) {
      const r = itp([...verb, "--store", store], { cwd: dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot write to the store ${store}`);
      expect(r.stderr + r.stdout).not.toMatch(stackTrace);
    }
    // The cache verbs read a store: one that is not there is named, and not created.
    for (const sub of ["ls", "verify", "gc"]) {
      for (const s of [store, join(dir, "typo")]) {
        const r = itp(["cache", sub, "--store", s], { cwd: dir });
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`no store at ${s}`);
        expect(r.stderr + r.stdout).not.toMatch(stackTrace);
      }
    }
    expect(existsSync(join(dir, "typo"))).toBe(false);
  });

  it("(e) --only runs a stage and its upstream; --force reruns; unknown names get a did-you-mean", () => {
    const dir = tempTree({ "r.itp": recipe, "a.jsonl": jsonl(100) });
    const store = join(dir, "s");
    const only = runJson(dir, store, ["--only", "few"]);
    expect(only.code, only.stderr).toBe(0);
    expect(statuses(only.j.stages)).toEqual({ a: "ran", en: "ran", few: "ran" });
    expect(Object.keys(statuses(planJson(dir, store))).length).toBe(6);
    expect(statuses(planJson(dir, store))).toMatchObject({ few: "cached", s: "run", c: "run" });
    const forced = runJson(dir, store, ["--only", "few", "--force", "en"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(statuses(forced.j.stages)).toEqual({ a: "cached", en: "ran", few: "cached" });
    for (const flag of ["--only", "--force"]) {
      const r = itp(["run", "r.itp", "--store", store, flag, "fwe"], { cwd: dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("no stage `fwe` in r.itp; did you mean `few`?");
      expect(r.stderr).not.toMatch(stackTrace);
    }
  });

  it("(f) SIGINT stops the run cleanly; the next run resumes", async () => {
    const dir = tempTree({
      "r.itp": `dataset big = jsonl("big.jsonl")\n\ndataset en = where(big, expr: "lang == \\"en\\"")\n\ndataset top = take(en, n: 10)\n\ndataset lit = records(items: [{ i: 1 }])\n\ndataset one = take(lit, n: 1)\n`,
      "big.jsonl": jsonl(250_000),
    });
    const store = join(dir, "s");
    const child = spawn(process.execPath, [itpBin, "run", "r.itp", "--store", store], { cwd: dir, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // Interrupt while `en` (the second long stage) runs: the source has finished by then.
    const log = () => {
      const runs = join(store, "runs");
      const f = existsSync(runs) ? readdirSync(runs)[0] : undefined;
      return f ? readFileSync(join(runs, f), "utf8") : "";
    };
    const t0 = Date.now();
    while (!/"type":"stage_started","stage":"en"/.test(log())) {
      if (Date.now() - t0 > 30_000) throw new Error(`the run never started en:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    process.kill(child.pid!, "SIGINT");
    const code = await exited;
    expect(code, stderr).toBe(1);
    expect(stderr).toContain("SIGINT: stopping");
    expect(stderr).not.toMatch(stackTrace);
    expect(readdirSync(join(store, "tmp"))).toEqual([]);
    const v = itp(["cache", "verify", "--store", store, "--json"], { cwd: dir });
    expect(v.code, v.stdout).toBe(0);
    expect(JSON.parse(v.stdout).corrupt).toEqual([]);
    expect(statuses(planJson(dir, store))).toEqual({ big: "cached", en: "run", top: "run", lit: "cached", one: "cached" });
    const r = runJson(dir, store);
    expect(r.code, r.stderr).toBe(0);
    expect(statuses(r.j.stages)).toEqual({ big: "cached", en: "ran", top: "ran", lit: "cached", one: "cached" });
    rmSync(join(dir, "big.jsonl"));
  });
});

describe("cache ls and gc", () => {
  it("ls lists the entries; gc removes an object whose entry is gone", () => {
    const dir = tempTree({ "r.itp": recipe, "a.jsonl": jsonl(N) });
    const store = join(dir, "s");
    expect(runJson(dir, store).code).toBe(0);
    const ls = itp(["cache", "ls", "--store", store], { cwd: dir });
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain("6 entries in");
    expect(ls.stdout).toMatch(/^[0-9a-f]{12} +r\.itp +few +2 records, \d+ bytes, /m);
    const lsj = JSON.parse(itp(["cache", "ls", "--store", store, "--json"], { cwd: dir }).stdout) as { entries: { key: string; stage: string }[] };
    expect(lsj.entries.map((e) => e.stage).sort()).toEqual(["a", "c", "en", "few", "s", "sh"]);
    const objectsBefore = objects(store).size;
    const en = showJson(dir, store, "en");
    unlinkSync(join(store, "entries", en.key.slice(0, 2), `${en.key}.json`));
    const gc = itp(["cache", "gc", "--store", store, "--json"], { cwd: dir });
    expect(gc.code, gc.stderr).toBe(0);
    // The filter's artifact and the object of the records it dropped.
    expect(JSON.parse(gc.stdout)).toMatchObject({ orphans: 2 });
    expect(existsSync(join(store, "objects", en.digest.slice(0, 2), en.digest))).toBe(false);
    expect(objects(store).size).toBe(objectsBefore - 2);
    const after = JSON.parse(itp(["cache", "ls", "--store", store, "--json"], { cwd: dir }).stdout) as { entries: unknown[] };
    expect(after.entries).toHaveLength(5);
    expect(itp(["cache", "verify", "--store", store], { cwd: dir }).code).toBe(0);
    // A where's log of dropped lines by place keeps its input: gone with the source's entry, the object stays.
    const src = showJson(dir, store, "a");
    runJson(dir, store);
    unlinkSync(join(store, "entries", src.key.slice(0, 2), `${src.key}.json`));
    expect(JSON.parse(itp(["cache", "gc", "--store", store, "--json"], { cwd: dir }).stdout)).toMatchObject({ orphans: 0 });
    expect(existsSync(join(store, "objects", src.digest.slice(0, 2), src.digest))).toBe(true);
    expect(itp(["cache", "verify", "--store", store], { cwd: dir }).code).toBe(0);
  });
});
