import { Effect } from "effect";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { afterAll, describe, expect, it } from "vitest";
import { silentReporter } from "../src/cli/progress.js";
import { check } from "../src/compile/check.js";
import type { IrProgram } from "../src/core/ir.js";
import { LocalExecutor } from "../src/runtime/executor.js";
import { TransientError } from "../src/core/errors.js";
import type { StageImpl } from "../src/core/stage.js";
import { runProgram, type RunSummary } from "../src/runtime/scheduler.js";
import { Store } from "../src/runtime/store.js";
import { Registry } from "../src/stages/registry.js";
import { itp } from "./support/cli.js";

// Folder artifacts (a trained model is a folder: config, weights, tokenizer): published whole under trees/, named by
// the digest of their listing, verified file by file on every hit, recomputed when damaged; a stage's work folder
// outlives a failed attempt and goes once the artifact is committed.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const registry = new Registry()
  .addStage({ name: "folder", category: "model", doc: "Writes a folder.", inputs: [], output: "Model", params: z.object({ n: z.number().int().default(2), fail_once: z.boolean().default(false) }), version: "1" })
  .addStage({ name: "reads", category: "model", doc: "Reads a folder.", inputs: [{ name: "model", type: "Model", doc: "" }], output: "Model", params: z.object({}), version: "1" });

function setup() {
  const dir = mkdtempSync(join(tmpdir(), "itp-tree-"));
  dirs.push(dir);
  const calls = { folder: 0, attempts: 0, workSeen: [] as string[][], seen: [] as unknown[] };
  const impls = new Map<string, StageImpl>([
    [
      "folder",
      {
        run: (ctx, out) =>
          Effect.tryPromise({
            catch: (e) => e as Error,
            try: async () => {
            calls.attempts++;
            // The work folder keeps what earlier attempts left.
            const work = await ctx.workDir();
            calls.workSeen.push(readdirSync(work).sort());
            writeFileSync(join(work, `attempt-${calls.attempts}`), "");
            if (ctx.params["fail_once"] === true && calls.attempts === 1) throw new TransientError("first attempt fails");
            calls.folder++;
            const t = await out.treeDir();
            writeFileSync(join(t, "config.json"), JSON.stringify({ n: ctx.params["n"] }));
            mkdirSync(join(t, "sub"));
            for (let i = 0; i < Number(ctx.params["n"]); i++) writeFileSync(join(t, "sub", `w${i}.bin`), Buffer.alloc(1000 + i, i));
            },
          }),
      },
    ],
    [
      "reads",
      {
        run: (ctx, out) =>
          Effect.promise(async () => {
            const m = ctx.inputs.get("model")!;
            const seen = { tree: m.tree === true, config: JSON.parse(readFileSync(join(m.path, "config.json"), "utf8")), handle: await m.json() };
            calls.seen.push(seen);
            await out.writeValue(seen);
          }),
      },
    ],
  ]);
  return { dir, store: join(dir, "store"), calls, impls };
}

function compile(dir: string, text: string): IrProgram {
  const path = join(dir, "r.itp");
  writeFileSync(path, text);
  const r = check([path], { readFile: (p) => (p === path ? text : undefined), stdRoot: dir }, registry);
  expect(r.diagnostics).toEqual([]);
  return r.files[0]!.program!;
}

async function run(program: IrProgram, s: ReturnType<typeof setup>, retry = false): Promise<RunSummary> {
  const store = await Store.open(s.store);
  const p = retry ? { ...program, stages: new Map([...program.stages].map(([id, st]) => [id, id === "m" ? { ...st, params: { ...st.params, retry: { fn: "backoff", max_retries: 2, initial: { duration_ms: 1 }, jitter: false } } } : st])) } : program;
  return Effect.runPromise(
    runProgram(p, { registry, impls: s.impls, store, executor: new LocalExecutor(), recipe: "r.itp", baseDir: s.dir, concurrency: 2, gpus: 0, force: new Set(), reporter: silentReporter }),
  );
}

const recipe = `model m = folder(n: 3)

model r = reads(m)
`;

describe("folder (tree) artifacts", () => {
  it("are published whole and read-only, handed downstream as a folder, and reused when intact", async () => {
    const s = setup();
    const program = compile(s.dir, recipe);
    const first = await run(program, s);
    expect([first.ran, first.failed]).toEqual([2, 0]);
    const m = (first.outcomes.get("m") as { manifest: { output: { format: string; digest: string; tree: { files: number; bytes: number } } } }).manifest;
    expect(m.output.format).toBe("tree");
    expect(m.output.tree).toEqual({ files: 4, bytes: 1000 + 1001 + 1002 + '{"n":3}'.length });
    const folder = join(s.store, "trees", m.output.digest.slice(0, 2), m.output.digest);
    expect(readdirSync(folder).sort()).toEqual(["config.json", "sub"]);
    expect(statSync(join(folder, "sub/w1.bin")).mode & 0o222).toBe(0);
    // The listing is an object named by its digest: one line per file.
    const listing = readFileSync(join(s.store, "objects", m.output.digest.slice(0, 2), m.output.digest), "utf8");
    expect(listing.split("\n").filter(Boolean).map((l) => l.split(" ").slice(1).join(" "))).toEqual(["7 config.json", "1000 sub/w0.bin", "1001 sub/w1.bin", "1002 sub/w2.bin"]);
    expect(s.calls.seen).toEqual([{ tree: true, config: { n: 3 }, handle: { kind: "folder", stage: "m", params: { path: folder } } }]);
    // Nothing is left in tmp/, and the work folder went with the commit.
    expect(readdirSync(join(s.store, "tmp"))).toEqual([]);
    expect(existsSync(join(s.store, "work")) ? readdirSync(join(s.store, "work")) : []).toEqual([]);
    const again = await run(program, s);
    expect([again.ran, again.cached]).toEqual([0, 2]);
    expect(s.calls.folder).toBe(1);
    expect(itp(["cache", "verify", "--store", s.store]).code).toBe(0);
  });

  it("a changed, missing or extra file fails verification, and the folder is recomputed", async () => {
    const s = setup();
    const program = compile(s.dir, recipe);
    const first = await run(program, s);
    const digest = (first.outcomes.get("m") as { manifest: { output: { digest: string } } }).manifest.output.digest;
    const folder = join(s.store, "trees", digest.slice(0, 2), digest);
    const damage: [string, () => void, RegExp][] = [
      ["changed", () => (chmodSync(join(folder, "sub/w0.bin"), 0o644), writeFileSync(join(folder, "sub/w0.bin"), Buffer.alloc(1000, 7))), /its folder: sub\/w0\.bin's digest does not match its listing/],
      ["missing", () => rmSync(join(folder, "sub/w2.bin"), { force: true }), /its folder: sub\/w2\.bin is missing/],
      ["extra", () => writeFileSync(join(folder, "sub/extra.bin"), "x"), /its folder: sub\/extra\.bin is not in its listing/],
      ["gone", () => rmSync(folder, { recursive: true, force: true }), /its folder: its folder is missing/],
    ];
    let runs = 1;
    for (const [what, hurt, reason] of damage) {
      hurt();
      const v = itp(["cache", "verify", "--store", s.store, "--json"]);
      expect(v.code, what).toBe(1);
      expect((JSON.parse(v.stdout) as { corrupt: { reason: string }[] }).corrupt[0]!.reason, what).toMatch(reason);
      const rerun = await run(program, s);
      runs++;
      // Recomputed: the same files, the same digest; downstream is reused (its input's digest is unchanged).
      expect([rerun.ran, rerun.cached], what).toEqual([1, 1]);
      expect((rerun.outcomes.get("m") as { manifest: { output: { digest: string } } }).manifest.output.digest).toBe(digest);
      expect(s.calls.folder).toBe(runs);
      expect(itp(["cache", "verify", "--store", s.store]).code, what).toBe(0);
    }
  });

  it("a failed attempt leaves no folder behind; the work folder outlives it, then goes with the commit; gc removes unreferenced folders", async () => {
    const s = setup();
    const program = compile(s.dir, recipe.replace("folder(n: 3)", "folder(n: 3, fail_once: true)"));
    const r = await run(program, s, true);
    expect([r.ran, r.failed]).toEqual([2, 0]);
    // The second attempt saw what the first left in the work folder.
    expect(s.calls.workSeen).toEqual([[], ["attempt-1"]]);
    expect(readdirSync(join(s.store, "work"))).toEqual([]);
    expect(readdirSync(join(s.store, "tmp"))).toEqual([]);
    // A changed parameter makes another folder; the first is unreferenced once its entry is gone.
    const other = compile(s.dir, recipe.replace("folder(n: 3)", "folder(n: 2)"));
    await run(other, s);
    const trees = () => readdirSync(join(s.store, "trees")).flatMap((d) => readdirSync(join(s.store, "trees", d)));
    expect(trees().length).toBe(2);
    rmSync(join(s.store, "entries"), { recursive: true, force: true });
    const gc = itp(["cache", "gc", "--store", s.store, "--json"]);
    expect(gc.code).toBe(0);
    expect(trees().length).toBe(0);
  });
});
