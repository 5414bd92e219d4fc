import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadForRun } from "../src/cli/runtime-setup.js";
import { generationOf, plannedMix, readRunEvents, ruleText, stateOf, trainingOf, type RecipeReport } from "../src/report/data.js";
import { gatherReport, gatherRun, runsOf } from "../src/report/gather.js";
import { itp, tempTree } from "./support/cli.js";

// What `itp report` gathers from the store: the pure pieces (run logs, states, mixture plans, request counts,
// training curves), then a real recipe run through the CLI and gathered through the library API.

describe("the pure pieces", () => {
  it("a run log's last outcome per stage; the state from the plan's artifact and that outcome", () => {
    const log = [
      { t: "2026-01-01T00:00:00.000Z", type: "run_started", recipe: "r.itp" },
      { type: "stage_started", stage: "a", key: "k1" },
      { type: "stage_ran", stage: "a", key: "k1", records: 3 },
      { type: "stage_cached", stage: "b", key: "k2" },
      { type: "stage_failed", stage: "c", error: "boom" },
      { type: "stage_skipped", stage: "d", because: "input c failed" },
    ]
      .map((e) => JSON.stringify(e))
      .join("\n");
    // A torn last line (a crash while writing) is skipped.
    const ev = readRunEvents("id1", log + '\n{"type":"stage_ran","sta');
    expect(ev).toMatchObject({ id: "id1", recipe: "r.itp", started: "2026-01-01T00:00:00.000Z", finished: false });
    expect(stateOf("k1", ev.outcomes.get("a"))).toBe("done");
    // The recipe changed since: an artifact under another key was made by an earlier run.
    expect(stateOf("k9", ev.outcomes.get("a"))).toBe("cached");
    expect(stateOf("k2", ev.outcomes.get("b"))).toBe("cached");
    expect(stateOf(undefined, ev.outcomes.get("c"))).toBe("failed");
    expect(stateOf(undefined, ev.outcomes.get("d"))).toBe("not run");
    expect(stateOf(undefined, undefined)).toBe("not run");
    expect(readRunEvents("id2", log + '\n{"type":"run_finished","ran":1,"seconds":2.5}')).toMatchObject({ finished: true, seconds: 2.5 });
    expect(ev.seconds).toBeNull();
  });

  it("planned records per mixture component: counts as written, weights and rates shared out of total", () => {
    const sizes = new Map<string, number | null>([
      ["a", 10],
      ["b", 4],
      ["c", null],
    ]);
    const count = plannedMix({ components: { a: { fn: "take", n: 20 }, b: { fn: "repeat", times: 3 }, c: { fn: "take", n: 5 } } }, sizes, ["a", "b", "c"]);
    expect([...count]).toEqual([
      ["a", 20],
      ["b", 12],
      ["c", 5],
    ]);
    expect([...plannedMix({ components: { a: { fn: "fraction", f: 0.55 }, b: { fn: "all" }, c: { fn: "all" } } }, sizes, ["a", "b", "c"])]).toEqual([
      ["a", 5],
      ["b", 4],
      ["c", null],
    ]);
    expect([...plannedMix({ total: 100, components: { a: { fn: "weight", w: 3 }, b: { fn: "weight", w: 1 } } }, sizes, ["a", "b"])]).toEqual([
      ["a", 75],
      ["b", 25],
    ]);
    // seqio's rates: min(size x scale, maximum) ^ (1 / temperature): min(10, 6) = 6 and 4, of 50.
    expect([...plannedMix({ total: 50, components: { a: { fn: "rate", maximum: 6 }, b: { fn: "rate" } } }, sizes, ["a", "b"])]).toEqual([
      ["a", 30],
      ["b", 20],
    ]);
    expect(ruleText({ fn: "take", n: 20 })).toBe("take(20)");
    expect(ruleText({ fn: "all" })).toBe("all");
    expect(ruleText({ fn: "rate", maximum: 6, temperature: 2 })).toBe("rate(maximum: 6, temperature: 2)");
  });

  it("request counts per model parameter; a training stage's token counts are not requests", () => {
    const rows = generationOf("g", {
      "requests: sent": 7,
      "requests: cached": 2,
      "retries: 429": 3,
      "retries: 5xx": 1,
      "tokens: prompt": 100,
      "tokens: completion": 40,
      cost_usd: 0.0012,
      "judge requests: sent": 5,
      "judge tokens: prompt": 50,
      kept: 9,
    });
    expect(rows).toEqual([
      { stage: "g", role: "model", sent: 7, cached: 2, failed: 0, retries: 4, prompt_tokens: 100, completion_tokens: 40, cost_usd: 0.0012 },
      { stage: "g", role: "judge", sent: 5, cached: 0, failed: 0, retries: 0, prompt_tokens: 50, completion_tokens: 0, cost_usd: null },
    ]);
    expect(generationOf("t", { "tokens: examples": 16, "tokens: tokens": 900, steps: 4 })).toEqual([]);
  });

  it("a training summary's curve keeps the learning rate; a curve from before it was kept reads with none", () => {
    const t = trainingOf("sft", { steps: 2, loss_first: 3, loss_last: 2, loss_curve: [
      [1, 3, 0.001],
      [2, 2, 0.0005],
    ] });
    expect(t).toEqual({ stage: "sft", steps: 2, loss_first: 3, loss_last: 2, tokens_per_s: null, seconds: null, curve: [
      [1, 3, 0.001],
      [2, 2, 0.0005],
    ] });
    expect(trainingOf("old", { loss_curve: [[1, 3]] })!.curve).toEqual([[1, 3, null]]);
    expect(trainingOf("data", undefined)).toBeUndefined();
  });
});

// 12 records: #10 and #11 repeat the instructions of #0 and #1 (exact_dedup drops 2), #3 and #7 answer in one word
// (length min 2 drops 2): 8 left; #5 answers in two (min 3 drops it too). The mix asks 20 of them (it gets 8) and
// all 5 of `b`.
const a = Array.from({ length: 12 }, (_, i) => ({ instruction: `Question number ${i % 10}?`, input: "", output: i === 3 || i === 7 ? "Yes." : i === 5 ? "Answer five." : `The answer ${i}.` }));
const b = Array.from({ length: 5 }, (_, i) => ({ instruction: `Other ${i}?`, input: "", output: `Other answer ${i}.` }));
const recipe = (min: number) => `dataset a: Instruction = jsonl("a.jsonl")
dataset b: Instruction = jsonl("b.jsonl")
filter a_clean = a
  |> exact_dedup(fields: [instruction])
  |> length(field: output, unit: "words", min: ${min})
mix both = mix(seed: 1) {
  a_clean: take(20)
  b: all
}
`;

describe("a recipe's report gathered from the store", () => {
  let dir: string;
  const cwd = process.cwd();
  beforeAll(() => {
    dir = tempTree({ "r.itp": recipe(2), "a.jsonl": a.map((r) => JSON.stringify(r)).join("\n") + "\n", "b.jsonl": b.map((r) => JSON.stringify(r)).join("\n") + "\n" });
  });
  afterAll(() => process.chdir(cwd));

  async function gather(): Promise<RecipeReport> {
    // The recipe is named as `itp run` named it: its path from the working directory.
    process.chdir(dir);
    const loaded = await loadForRun("r.itp", { store: "s" });
    if (typeof loaded === "number") throw new Error("the recipe did not load");
    return gatherReport(loaded.program, loaded);
  }
  const run = (env: Record<string, string> = {}) => itp(["run", "r.itp", "--store", "s"], { cwd: dir, env });

  it("every section's numbers; a second run makes every stage cached; an edit makes the changed part not run; a failure is failed", async () => {
    expect(run().code).toBe(0);
    const r = await gather();
    expect(r.recipe).toBe("r.itp");
    expect(r.run?.finished).toBe(true);
    expect(r.stages.map((s) => [s.id, s.state, s.records])).toEqual([
      ["a", "done", 12],
      ["b", "done", 5],
      ["a_clean.exact_dedup", "done", 10],
      ["a_clean", "done", 8],
      ["both", "done", 13],
    ]);
    for (const s of r.stages) expect(s.ms).toBeGreaterThanOrEqual(0);
    expect(r.stages.find((s) => s.id === "a_clean")!.counts).toEqual({ kept: 8 });
    expect(r.edges).toEqual([
      { from: "a", to: "a_clean.exact_dedup", role: "data" },
      { from: "a_clean.exact_dedup", to: "a_clean", role: "data" },
      { from: "a_clean", to: "both", role: "component:a_clean" },
      { from: "b", to: "both", role: "component:b" },
    ]);
    expect(r.dropped).toEqual([
      { stage: "a_clean.exact_dedup", reason: "duplicate", n: 2 },
      { stage: "a_clean", reason: "too short", n: 2 },
    ]);
    expect(r.mixtures).toEqual([
      {
        stage: "both",
        components: [
          { name: "a_clean", rule: "take(20)", available: 8, planned: 20, actual: 8 },
          { name: "b", rule: "all", available: 5, planned: 5, actual: 5 },
        ],
      },
    ]);
    expect([r.generation, r.training, r.evaluations]).toEqual([[], [], []]);

    expect(run().code).toBe(0);
    expect((await gather()).stages.map((s) => s.state)).toEqual(["cached", "cached", "cached", "cached", "cached"]);

    // A stricter length filter: it and the mix have no artifact for the recipe as it is now.
    writeFileSync(`${dir}/r.itp`, recipe(3));
    const edited = await gather();
    expect(edited.stages.map((s) => [s.id, s.state])).toEqual([
      ["a", "cached"],
      ["b", "cached"],
      ["a_clean.exact_dedup", "cached"],
      ["a_clean", "not run"],
      ["both", "not run"],
    ]);
    expect(edited.stages.find((s) => s.id === "a_clean")!.note).toBe("parameter min: 2 -> 3");
    expect(edited.mixtures[0]!.components[0]).toEqual({ name: "a_clean", rule: "take(20)", available: null, planned: 20, actual: null });

    // The mix fails in the next run: failed, with the error; the filter ran.
    expect(run({ ITP_FAULTS: "both=fail" }).code).toBe(1);
    const failed = await gather();
    expect(failed.stages.map((s) => [s.id, s.state])).toEqual([
      ["a", "cached"],
      ["b", "cached"],
      ["a_clean.exact_dedup", "cached"],
      ["a_clean", "done"],
      ["both", "failed"],
    ]);
    expect(failed.stages.find((s) => s.id === "both")!.note).toBeTruthy();
    expect(failed.dropped.find((d) => d.stage === "a_clean")).toEqual({ stage: "a_clean", reason: "too short", n: 3 });

    // The first run, as it was: what it made, with the parameters it used (the mix's plan from its manifest).
    process.chdir(dir);
    const loaded = await loadForRun("r.itp", { store: "s" });
    if (typeof loaded === "number") throw new Error("the recipe did not load");
    const runs = runsOf(loaded.store, "r.itp");
    expect(runs.map((x) => x.finished)).toEqual([true, true, true]);
    const first = (await gatherRun(loaded.program, loaded.store, "r.itp", runs[2]!.id))!;
    expect(first.run!.id).toBe(runs[2]!.id);
    expect(first.stages.map((s) => [s.id, s.state, s.records])).toEqual([
      ["a", "done", 12],
      ["b", "done", 5],
      ["a_clean.exact_dedup", "done", 10],
      ["a_clean", "done", 8],
      ["both", "done", 13],
    ]);
    expect(first.dropped).toEqual(r.dropped);
    expect(first.mixtures).toEqual(r.mixtures);
    const third = (await gatherRun(loaded.program, loaded.store, "r.itp", runs[0]!.id))!;
    expect(third.stages.map((s) => [s.id, s.state, s.records])).toEqual([
      ["a", "cached", 12],
      ["b", "cached", 5],
      ["a_clean.exact_dedup", "cached", 10],
      ["a_clean", "done", 7],
      ["both", "failed", null],
    ]);
    expect(await gatherRun(loaded.program, loaded.store, "r.itp", "no-such-run")).toBeUndefined();
  });
});
