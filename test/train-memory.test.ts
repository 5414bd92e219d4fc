import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { diskHost } from "../src/cli/host.js";
import { itp, tempTree } from "./support/cli.js";
import { check } from "../src/compile/check.js";
import { LocalProcessExecutor } from "../src/executors/local.js";
import { defaultRegistry } from "../src/stages/index.js";
import { parseMemory, planTraining } from "../src/stages/train/plan.js";
import { estimateMemory, loraParams, paramsFromName, paramsOf, shapeOf, whatWouldFit, type JobShape, type ModelSize } from "../src/stages/train/memory.js";

// Memory estimates against the usual figures for Llama 2 7B (config.json of meta-llama/Llama-2-7b-hf).
const llama2_7b = shapeOf({ model_type: "llama", hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 32000, tie_word_embeddings: false })!;
const size: ModelSize = { params: paramsOf(llama2_7b), shape: llama2_7b, source: "config.json" };
const job: JobShape = { method: "sft", precision: "bf16", optimizer: "adamw", gpus: 1, microBatch: 1, maxLength: 2048, gradientCheckpointing: true };
const GB = 1e9;

describe("GPU memory estimates", () => {
  it("counts Llama 2 7B's parameters (6.74B) and LoRA's adapter on q, k, v, o at r 16 (16.8M)", () => {
    expect(size.params).toBe(6_738_415_616);
    expect(loraParams(llama2_7b, 16, ["q_proj", "k_proj", "v_proj", "o_proj"])).toBe(16_777_216);
    expect(paramsFromName("meta-llama/Llama-2-7b-hf")).toBe(7e9);
    expect(paramsFromName("Qwen/Qwen2-0.5B-Instruct")).toBe(5e8);
    expect(paramsFromName("meta-llama/Meta-Llama-3-70B")).toBe(70e9);
    expect(paramsFromName("models/tiny-llama")).toBeUndefined();
  });

  it("full fine-tuning with AdamW in bf16: 16 bytes per parameter before activations (~108 GB for 7B)", () => {
    const e = estimateMemory(size, job);
    const states = e.weights + e.gradients + e.optimizer;
    expect(states / size.params).toBe(16);
    expect(states / GB).toBeCloseTo(107.8, 1);
    expect(e.sharding).toBe("one device");
    // Sharded over 8 GPUs of 80 GB with FSDP: a replica would not fit, an eighth of the states does.
    const eight = estimateMemory(size, { ...job, gpus: 8 }, 80 * GB);
    expect(eight.sharding).toBe("FSDP over 8 GPUs");
    expect((eight.weights + eight.gradients + eight.optimizer) / GB).toBeCloseTo(13.5, 1);
    expect(eight.total).toBeLessThan(80 * GB);
  });

  it("LoRA: the frozen base in bf16 (~13.5 GB for 7B) and a small trainable part", () => {
    const e = estimateMemory(size, { ...job, method: "lora", lora: { r: 16, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"] } });
    expect(e.trainableParams).toBe(16_777_216);
    expect(e.weights / GB).toBeCloseTo(13.51, 1);
    expect((e.gradients + e.optimizer) / GB).toBeLessThan(0.3);
    expect(e.total / GB).toBeGreaterThan(14);
    expect(e.total / GB).toBeLessThan(20);
  });

  it("QLoRA: ~0.5 byte per parameter plus double quantization (~4 GB of weights for 7B), fits a 16 GB card", () => {
    const e = estimateMemory(size, { ...job, method: "qlora", bits: 4, lora: { r: 16, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"] } });
    const linear = size.params - 2 * 32000 * 4096;
    // 4-bit weights and their block constants: 0.516 byte per linear parameter; embeddings and head in bf16.
    expect(e.weights - e.trainableParams * 2 - 2 * 32000 * 4096 * 2).toBeCloseTo(linear * (0.5 + 1 / 64 + 4 / 16384), -3);
    expect(e.weights / GB).toBeGreaterThan(3.4);
    expect(e.weights / GB).toBeLessThan(4.0);
    expect(e.total / GB).toBeLessThan(16);
  });

  it("activations: gradient checkpointing and the micro batch change them, the logits count", () => {
    const on = estimateMemory(size, job).activations;
    const off = estimateMemory(size, { ...job, gradientCheckpointing: false }).activations;
    const four = estimateMemory(size, { ...job, microBatch: 4 }).activations;
    expect(off).toBeGreaterThan(5 * on);
    expect(four).toBeCloseTo(4 * on, -3);
    // DPO: a chosen and a rejected sequence per example.
    expect(estimateMemory(size, { ...job, method: "dpo" }).activations).toBeCloseTo(2 * on, -3);
  });

  it("names what would fit a device that the job does not", () => {
    const fits = whatWouldFit(size, job, 80 * GB);
    expect(fits[0]).toMatch(/^gpus = 2 \(\d+\.\d GiB per GPU, FSDP\)$/);
    expect(fits.some((f) => f.startsWith("lora instead of sft"))).toBe(true);
    expect(fits.some((f) => f.startsWith("qlora"))).toBe(true);
    // On a 24 GB card: LoRA (~15 GB) and QLoRA.
    const small = whatWouldFit(size, { ...job, microBatch: 2 }, 24 * GB);
    expect(small.some((f) => f.startsWith("lora instead of sft"))).toBe(true);
    expect(small.some((f) => f.startsWith("gpus = "))).toBe(true);
  });
});

describe("planTraining: what `itp plan` says about a training stage", () => {
  const recipe = (body: string) => `dataset data: Instruction = jsonl("data.jsonl")

${body}
`;
  const programOf = (text: string, dir: string) => {
    const path = join(dir, "r.itp");
    const r = check([path], diskHost(), defaultRegistry(), { sources: new Map([[path, text]]), runnable: false });
    expect(r.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    return r.files[0]!.program!;
  };
  const dir = mkdtempSync(join(tmpdir(), "itp-plan-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "models/small"), { recursive: true });
  writeFileSync(join(dir, "models/small/config.json"), JSON.stringify({ model_type: "llama", hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 32000 }));
  const eightyGiB = { bytes: 80 * 1024 ** 3, source: "--gpu-memory 80G" };

  it("a 7B full fine-tune on one 80 GiB GPU is an error naming what would fit; resources, tokens and where it runs are shown", () => {
    const program = programOf(recipe(`train tuned = sft(data, base: "models/small") { gpus = 1, max_length = 1024, epochs = 2 }`), dir);
    const t = planTraining(program, program.stages.get("tuned")!, { baseDir: dir, executor: new LocalProcessExecutor({ gpus: ["0"] }), device: eightyGiB, inputRecords: 1000 });
    expect(t.lines[0]).toBe("resources: 1 GPU; sft, bf16, adamw; batch 128 = micro batch 1 x 1 device x 128 accumulation; max_length 1024, gradient checkpointing");
    expect(t.lines[1]).toBe("tokens: at most 2,048,000 (1,000 examples x max_length 1024 x 2 epochs; exact once the data is tokenized)");
    expect(t.lines[2]).toBe("runs on: local: 1 GPU of 1 (devices 0)");
    expect(t.lines[3]).toMatch(/^memory per GPU: ~10\d\.\d GiB \(weights 12\.6 GiB, gradients 12\.6 GiB, optimizer 75\.3 GiB, activations .*\); 6\.74B parameters \(from config\.json of models\/small\), 6\.74B trained$/);
    expect(t.error?.message).toMatch(/^stage `tuned` needs ~10\d\.\d GiB per GPU, more than the 80\.0 GiB of a device \(--gpu-memory 80G\)$/);
    expect(t.error?.hint).toMatch(/^what would fit: gpus = 2 \(.* per GPU, FSDP\); lora instead of sft \(.*\); qlora \(.*\)$/);
  });

  it("LoRA and QLoRA of the same model fit; a base known only by its hub name is estimated from the name", () => {
    const program = programOf(recipe(`model base = hf_model(repo: "meta-llama/Llama-2-7b-hf")
train a = lora(data, base: base) { gpus = 1 }
train b = qlora(data, base: "meta-llama/Llama-2-7b-hf") { gpus = 1 }`), dir);
    const ex = new LocalProcessExecutor({ gpus: ["0"] });
    for (const id of ["a", "b"]) {
      const t = planTraining(program, program.stages.get(id)!, { baseDir: dir, executor: ex, device: eightyGiB });
      expect(t.error, id).toBeUndefined();
      expect(t.lines.find((l) => l.startsWith("memory per GPU"))).toContain('7.00B parameters (from its name, "meta-llama/Llama-2-7b-hf")');
      expect(t.lines).toContain("tokens: known once its data is computed");
    }
  });

  it("more GPUs than the machine has is an error; with no GPU memory known, the fit is not checked and it says so", () => {
    const program = programOf(recipe(`train tuned = sft(data, base: "models/small") { gpus = 4 }`), dir);
    const t = planTraining(program, program.stages.get("tuned")!, { baseDir: dir, executor: new LocalProcessExecutor({ gpus: ["0", "1"] }) });
    expect(t.error?.message).toBe("stage `tuned`: 4 GPUs requested; this machine has 2 (0,1)");
    expect(t.lines).toContain("GPU memory: unknown here (no GPU found); give it with --gpu-memory (e.g. 80G) to check the fit");
    expect(t.lines.find((l) => l.startsWith("memory per GPU"))).toMatch(/; FSDP over 4 GPUs$/);
    expect(parseMemory("80G")).toBe(80 * 1024 ** 3);
    expect(parseMemory("24GiB")).toBe(24 * 1024 ** 3);
    expect(parseMemory("lots")).toBeUndefined();
  });
});

describe("itp plan on training stages", () => {
  it("shows resources, tokens, where it runs and memory; a job that does not fit --gpu-memory is an error naming what fits", () => {
    const dir = tempTree({
      "r.itp": `dataset data: Instruction = jsonl("data.jsonl")\n\ntrain tuned = sft(data, base: "models/small") { gpus = 0 }\n\ntrain big = sft(data, base: "models/small") { gpus = 1 }\n`,
      "data.jsonl": '{"instruction": "a", "output": "b"}\n',
      "models/small/config.json": JSON.stringify({ model_type: "llama", hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 32000 }),
    });
    const cpu = itp(["plan", "r.itp", "--only", "tuned", "--store", "s"], { cwd: dir });
    expect(cpu.code, cpu.stderr).toBe(0);
    expect(cpu.stdout).toContain("resources: CPU; sft, bf16, adamw;");
    expect(cpu.stdout).toContain("runs on: local: CPU, 1 process");
    expect(cpu.stdout).toMatch(/memory per process \(CPU\): ~\d+\.\d GiB/);
    const big = itp(["plan", "r.itp", "--only", "big", "--store", "s", "--gpu-memory", "80G"], { cwd: dir, env: { CUDA_VISIBLE_DEVICES: "0" } });
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(/itp plan: error: stage `big` needs ~10\d\.\d GiB per GPU, more than the 80\.0 GiB of a device \(--gpu-memory 80G\)\n {2}hint: what would fit: gpus = 2 /);
    expect(itp(["plan", "r.itp", "--gpu-memory", "lots", "--store", "s"], { cwd: dir }).code).toBe(2);
  });
});
