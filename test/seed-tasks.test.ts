import { describe, expect, it } from "vitest";
import { defaultRegistry } from "../src/stages/index.js";
import { converterImpls } from "../src/stages/convert/converters.js";
import { nativeConverters } from "../src/types/builtins.js";
import { itp, stackTrace, tempTree } from "./support/cli.js";
import { runImpl } from "./support/stage-ctx.js";

// Self-Instruct's data/seed_tasks.jsonl as published: one task per line, instances under `instances` (these lines
// are written for this test in that shape).
const task = (i: number, instruction: string, instances: { input: string; output: string }[], is_classification = false) =>
  JSON.stringify({ id: `seed_task_${i}`, name: `task_${i}`, instruction, instances, is_classification });
const SEED_FILE =
  [
    task(0, "Is there anything I can eat for a breakfast that doesn't include eggs, yet includes protein, and has roughly 700-1000 calories?", [{ input: "", output: "Yes, a bowl of oats with nuts and yogurt." }]),
    task(1, "What is the relation between the given pairs?", [{ input: "Night : Day :: Right : Left", output: "The relation is opposites." }, { input: "Up : Down", output: "Opposites." }]),
    task(2, "Classify the sentiment of the sentence into positive or negative.", [{ input: "I loved the film.", output: "Positive" }], true),
  ].join("\n") + "\n";

describe("Self-Instruct's seed tasks as published", () => {
  it("seed_task_to_instruction reads each task as Alpaca's generate_instruction.py does: the first instance", async () => {
    const records = SEED_FILE.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const r = await runImpl(converterImpls["seed_task_to_instruction"]!, {}, { data: records });
    expect(r.records).toEqual([
      { instruction: "Is there anything I can eat for a breakfast that doesn't include eggs, yet includes protein, and has roughly 700-1000 calories?", output: "Yes, a bowl of oats with nuts and yogurt." },
      { instruction: "What is the relation between the given pairs?", input: "Night : Day :: Right : Left", output: "The relation is opposites." },
      { instruction: "Classify the sentiment of the sentence into positive or negative.", input: "I loved the film.", output: "Positive" },
    ]);
    await expect(runImpl(converterImpls["seed_task_to_instruction"]!, {}, { data: [{ id: "x", name: "x", instruction: "Do.", instances: [], is_classification: false }] })).rejects.toThrow(/the task has no instance/);
  });

  it("the file feeds a recipe as it is: typed SeedTask, converted, checked and run", () => {
    const dir = tempTree({
      "r.itp": 'dataset tasks: SeedTask = jsonl("seed_tasks.jsonl")\n\ndataset seeds = seed_task_to_instruction(tasks)\n\ndataset out = export(seeds, path: "seeds.jsonl")\n',
      "seed_tasks.jsonl": SEED_FILE,
    });
    expect(itp(["check", "r.itp"], { cwd: dir }).stdout).toMatch(/^ok: 1 file, 3 stages/);
    const r = itp(["run", "r.itp"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/ran {5}seeds \(.*3 records\)/);
  });

  it("typed as Instruction, the error names the record and hints at SeedTask and its converter", () => {
    const dir = tempTree({ "r.itp": 'dataset seeds: Instruction = jsonl("seed_tasks.jsonl")\n\ndataset out = export(seeds, path: "o.jsonl")\n', "seed_tasks.jsonl": SEED_FILE });
    const r = itp(["run", "r.itp"], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("seed_tasks.jsonl:1: field `output` is missing (Instruction needs instruction, input?, output)");
    expect(r.stderr).toContain("these records have the shape of SeedTask: declare the source as `SeedTask` and convert it with `seed_task_to_instruction`");
    expect(r.stderr).not.toMatch(stackTrace);
  });

  it("the natives table of the hint lists exactly the registry's converters between built-in record types", () => {
    const reg = defaultRegistry();
    const named = (t: string) => /^Dataset<(\w+)>$/.exec(t)?.[1];
    const fromRegistry = [...reg.allStages()]
      .filter((s) => s.category === "convert" && s.inputs.length === 1)
      .map((s) => ({ native: named(s.inputs[0]!.type)!, to: named(s.output)!, converter: s.name }))
      .sort((a, b) => a.converter.localeCompare(b.converter));
    expect([...nativeConverters].sort((a, b) => a.converter.localeCompare(b.converter))).toEqual(fromRegistry);
  });
});
