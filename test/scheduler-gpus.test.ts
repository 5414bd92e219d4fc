import { Effect } from "effect";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { afterAll, describe, expect, it } from "vitest";
import { silentReporter } from "../src/cli/progress.js";
import { check } from "../src/compile/check.js";
import type { StageImpl } from "../src/core/stage.js";
import { LocalExecutor } from "../src/runtime/executor.js";
import { runProgram } from "../src/runtime/scheduler.js";
import { Store } from "../src/runtime/store.js";
import { Registry } from "../src/stages/registry.js";

// The machine's GPUs are asked for (nvidia-smi, a process) only when a stage needs GPUs: a data-only run never pays for it.
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const registry = new Registry().addStage({ name: "job", category: "model", doc: "A value.", inputs: [], output: "Model", params: z.object({ gpus: z.number().int().default(0) }), version: "1" });
const impls = new Map<string, StageImpl>([
  [
    "job",
    {
      run: (ctx, out) => Effect.promise(() => out.writeValue({ gpus: ctx.params["gpus"] })),
      resources: (params) => ({ gpu: Number(params["gpus"]) }),
    },
  ],
]);

async function run(text: string) {
  const dir = mkdtempSync(join(tmpdir(), "itp-gpus-"));
  dirs.push(dir);
  const path = join(dir, "r.itp");
  writeFileSync(path, text);
  const r = check([path], { readFile: (p) => (p === path ? text : undefined), stdRoot: dir }, registry);
  expect(r.diagnostics).toEqual([]);
  let asked = 0;
  const store = await Store.open(join(dir, "store"));
  const summary = await Effect.runPromise(
    runProgram(r.files[0]!.program!, { registry, impls, store, executor: new LocalExecutor(), recipe: "r.itp", baseDir: dir, concurrency: 2, gpus: () => (asked++, 1), force: new Set(), reporter: silentReporter }),
  );
  return { summary, asked };
}

describe("GPU slots", () => {
  it("are not looked up for a run whose stages need none", async () => {
    const { summary, asked } = await run("model a = job()\n\nmodel b = job()\n");
    expect([summary.ran, summary.failed, asked]).toEqual([2, 0, 0]);
  });

  it("are looked up once, when the first stage needs them, and bound what runs", async () => {
    const { summary, asked } = await run("model a = job(gpus: 1)\n\nmodel b = job(gpus: 1)\n\nmodel c = job(gpus: 2)\n");
    expect(asked).toBe(1);
    expect([summary.ran, summary.failed]).toEqual([2, 1]);
    const c = summary.outcomes.get("c")!;
    expect(c.status).toBe("failed");
    expect("error" in c ? c.error : "").toBe("needs 2 GPU(s); this machine has 1");
  });
});
