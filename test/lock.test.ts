/**
 * `itp lock`: hub reads at a branch, a tag or no revision are resolved to commits against a real loopback hub and
 * kept in `<recipe>.itp.lock`; check, plan and run use the locked commits until `itp lock --update`; `itp check`
 * warns about reads that are neither pinned nor locked, and `itp diff` shows what a new lock changes.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { itpAsync, repoRoot, stackTrace, tempTree } from "./support/cli.js";
import { HubServer } from "./support/hub-server.js";

const A = "a".repeat(40);
const B = "b".repeat(40);
const M1 = "1".repeat(40);

const recipe = `dataset latest = hf_dataset(repo: "acme/notes", split: "train")

dataset tagged = hf_dataset(repo: "acme/notes", split: "train", revision: "v1.0")

dataset pinned = hf_dataset(repo: "acme/notes", split: "train", revision: "${B}")

model base = hf_model(repo: "acme/tiny-model")

dataset first = take(latest, n: 5)

dataset both = concat(tagged, pinned)
`;

describe("itp lock against a loopback hub", () => {
  let hub: HubServer;
  let dir: string;
  let env: Record<string, string>;
  const run = (...args: string[]) => itpAsync(args, { cwd: dir, env });

  beforeAll(async () => {
    hub = await HubServer.start();
    for (const [rev, tag] of [
      [A, "v1"],
      [B, "v2"],
    ] as const) {
      hub.addFile("acme/notes", rev, "README.md", "# notes\n");
      hub.addFile("acme/notes", rev, "data/train.jsonl", `${JSON.stringify({ text: `${tag} one` })}\n${JSON.stringify({ text: `${tag} two` })}\n`);
    }
    hub.setRef("acme/notes", "main", A);
    hub.setRef("acme/notes", "v1.0", A);
    hub.setRef("acme/tiny-model", "main", M1, "model");
    dir = tempTree({ "r.itp": recipe });
    env = { HF_ENDPOINT: hub.url, ITP_HUB_CACHE: join(dir, "hub-cache"), HF_HUB_OFFLINE: "", ITP_OFFLINE: "" };
  });
  afterAll(async () => hub?.stop());

  it("check warns about each read that is neither pinned nor locked (W003), never about a pinned one", async () => {
    const r = await run("check", "r.itp", "--json");
    expect(r.code).toBe(0);
    const ds = (JSON.parse(r.stdout) as { diagnostics: { code: string; message: string }[] }).diagnostics;
    expect(ds.filter((d) => d.code === "W003").map((d) => d.message.split("`")[1]).sort()).toEqual(["base", "latest", "tagged"]);
  });

  it("writes the lock with each read's commit; check is quiet and the stages read the locked commits", async () => {
    const r = await run("lock", "r.itp");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`dataset acme/notes@main -> ${A} (new)`);
    expect(r.stdout).toContain(`dataset acme/notes@v1.0 -> ${A} (new)`);
    expect(r.stdout).toContain(`model acme/tiny-model@main -> ${M1} (new)`);
    const lock = JSON.parse(readFileSync(join(dir, "r.itp.lock"), "utf8")) as { endpoint: string; entries: unknown[] };
    expect(lock.endpoint).toBe(hub.url);
    expect(lock.entries).toEqual([
      { kind: "dataset", repo: "acme/notes", ref: "main", sha: A },
      { kind: "dataset", repo: "acme/notes", ref: "v1.0", sha: A },
      { kind: "model", repo: "acme/tiny-model", ref: "main", sha: M1 },
    ]);
    const c = await run("check", "r.itp", "--json");
    expect((JSON.parse(c.stdout) as { diagnostics: { code: string }[] }).diagnostics.filter((d) => d.code === "W003")).toEqual([]);
    const g = JSON.parse((await run("graph", "r.itp", "--json")).stdout) as { nodes: { id: string }[] };
    expect(g.nodes.length).toBe(6);
    const ran = await run("run", "r.itp", "--only", "first", "--store", "st");
    expect(ran.code).toBe(0);
    const show = await run("show", "r.itp", "first", "--store", "st", "--json");
    expect(show.stdout).toContain("v1 one");
    // The listing asked for is the locked commit's, not the branch's.
    expect(hub.requestsFor(`/tree/${A}`).length).toBeGreaterThan(0);
    expect(hub.requestsFor("/tree/main")).toEqual([]);
  });

  it("a moved branch changes nothing until `itp lock --update`; then plan reruns what reads it, and diff shows it", async () => {
    hub.setRef("acme/notes", "main", B);
    const again = await run("lock", "r.itp");
    expect(again.stdout).toContain(`dataset acme/notes@main -> ${A} (kept)`);
    const plan = JSON.parse((await run("plan", "r.itp", "--only", "first", "--store", "st", "--json")).stdout) as { stages: { id: string; status: string }[] };
    expect(plan.stages.find((s) => s.id === "first")!.status).toBe("cached");

    // Keep the old version beside the new one, to diff them.
    mkdirSync(join(dir, "old"));
    copyFileSync(join(dir, "r.itp"), join(dir, "old", "r.itp"));
    copyFileSync(join(dir, "r.itp.lock"), join(dir, "old", "r.itp.lock"));

    const up = await run("lock", "r.itp", "--update");
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`dataset acme/notes@main -> ${B} (updated from ${A.slice(0, 12)})`);
    expect(up.stdout).toContain(`dataset acme/notes@v1.0 -> ${A} (unchanged)`);
    const plan2 = JSON.parse((await run("plan", "r.itp", "--only", "first", "--store", "st", "--json")).stdout) as { stages: { id: string; status: string }[] };
    expect(plan2.stages.find((s) => s.id === "first")!.status).toBe("run");
    await run("run", "r.itp", "--only", "first", "--store", "st");
    expect((await run("show", "r.itp", "first", "--store", "st", "--json")).stdout).toContain("v2 one");

    const d = await run("diff", "old/r.itp", "r.itp");
    expect(d.code).toBe(0);
    expect(d.stdout).toContain("~ latest (hf_dataset)");
    expect(d.stdout).toContain(`revision: "${A}" -> "${B}"`);
    expect(d.stdout).toMatch(/invalidated downstream: first/);
    expect(d.stdout).not.toContain("~ tagged");
  });

  it("a lock file that is not one, or made against another hub, is a clear error", async () => {
    const bad = tempTree({ "r.itp": recipe, "r.itp.lock": "<<<<<<< HEAD\n" });
    const r = await itpAsync(["check", "r.itp"], { cwd: bad, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error\[E062\]: r\.itp\.lock: not JSON/);
    expect(r.stderr).toMatch(/itp lock --update/);
    expect(r.stderr).not.toMatch(stackTrace);
    const other = tempTree({ "r.itp": recipe, "r.itp.lock": JSON.stringify({ version: 1, endpoint: "https://elsewhere.example", entries: [] }) });
    const o = await itpAsync(["check", "r.itp"], { cwd: other, env });
    expect(o.code).toBe(1);
    expect(o.stderr).toMatch(/made against https:\/\/elsewhere\.example, but HF_ENDPOINT is http:\/\/127\.0\.0\.1/);
  });

  it("offline, or for a revision the hub does not have, `itp lock` says so and writes nothing", async () => {
    const d2 = tempTree({ "r.itp": recipe });
    const off = await itpAsync(["lock", "r.itp"], { cwd: d2, env: { ...env, ITP_OFFLINE: "1" } });
    expect(off.code).toBe(1);
    expect(off.stderr).toMatch(/needs the hub, and ITP_OFFLINE=1 forbids it/);
    const missing = tempTree({ "r.itp": recipe.replace('revision: "v1.0"', 'revision: "v9"') });
    const m = await itpAsync(["lock", "r.itp"], { cwd: missing, env });
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/v9/);
    expect(m.stderr).not.toMatch(stackTrace);
    expect(existsSync(join(missing, "r.itp.lock"))).toBe(false);
  });
});

describe("the shipped recipes", () => {
  it("carry no placeholder revision", () => {
    const files = ["stdlib", "pipelines"].flatMap((d) => readdirSync(join(repoRoot, d)).filter((f) => f.endsWith(".itp")).map((f) => join(repoRoot, d, f)));
    for (const f of files) expect(readFileSync(f, "utf8"), f).not.toMatch(/0{40}/);
  });
});


