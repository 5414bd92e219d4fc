import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import type { IrProgram, IrStage, Json } from "../../core/ir.js";
import { defaultExecutorName } from "../../executors/index.js";
import type { ProcessExecutor, ProcessResources } from "../../executors/process.js";
import { estimateMemory, paramsFromName, paramsOf, shapeOf, showBytes, whatWouldFit, type JobShape, type Method, type ModelSize } from "./memory.js";

/** How much memory one GPU has, and where that figure comes from (`--gpu-memory`, `nvidia-smi`). */
export interface DeviceMemory {
  readonly bytes: number;
  readonly source: string;
}

export interface TrainingPlan {
  readonly stage: string;
  /** Lines for `itp plan`, under the stage. */
  readonly lines: readonly string[];
  readonly memory?: { readonly perDevice: number; readonly device?: DeviceMemory; readonly model: string };
  /** Set when the job cannot run as asked: it does not fit the GPUs, or this machine lacks them. */
  readonly error?: { readonly message: string; readonly hint?: string };
}

/** The executor a training stage runs on: its `executor` parameter, else the profile's, else local. */
export const executorOf = (p: Readonly<Record<string, Json>>): string => (typeof p["executor"] === "string" ? p["executor"] : defaultExecutorName());

/** A training stage's job resources, as the process executors take them. */
export function jobResources(p: Readonly<Record<string, Json>>): ProcessResources {
  const time = p["time"];
  const ms = time && typeof time === "object" && !Array.isArray(time) && typeof time["duration_ms"] === "number" ? time["duration_ms"] : undefined;
  const mem = typeof p["memory"] === "string" ? parseMemory(p["memory"]) : undefined;
  return {
    gpus: typeof p["gpus"] === "number" ? p["gpus"] : 1,
    nodes: typeof p["nodes"] === "number" ? p["nodes"] : 1,
    ...(mem !== undefined ? { memoryMb: Math.ceil(mem / 2 ** 20) } : {}),
    ...(ms !== undefined ? { timeMs: ms } : {}),
  };
}

export const TRAIN_METHODS: ReadonlySet<string> = new Set(["sft", "lora", "qlora", "dpo"]);

/** The job's resources and shape, from a training stage's resolved parameters. */
export function jobShape(kind: Method, p: Readonly<Record<string, Json>>): JobShape {
  return {
    method: kind,
    precision: (p["precision"] as JobShape["precision"]) ?? "bf16",
    optimizer: (p["optimizer"] as JobShape["optimizer"]) ?? "adamw",
    gpus: Number(p["gpus"] ?? 1),
    microBatch: Number(p["micro_batch_size"] ?? 1),
    maxLength: Number(p["max_length"] ?? 2048),
    gradientCheckpointing: p["gradient_checkpointing"] !== false,
    ...(kind === "lora" || kind === "qlora" ? { lora: { r: Number(p["r"] ?? 16), targetModules: (p["target_modules"] as string[] | undefined) ?? ["q_proj", "k_proj", "v_proj", "o_proj"] } } : {}),
    ...(kind === "qlora" ? { bits: (Number(p["bits"] ?? 4) === 8 ? 8 : 4) as 4 | 8 } : {}),
  };
}

/**
 * The base model's size: a local Hugging Face directory's config.json (exact), else a parameter count in the hub
 * id (`Llama-2-7b-hf`: 7B). A base given as a stage is followed: an `hf_model`'s repo, a training stage's base.
 */
export function baseModelSize(program: IrProgram, stage: IrStage, baseDir: string): ModelSize | undefined {
  const seen = new Set<string>();
  let base: Json | undefined = stage.params["base"];
  for (;;) {
    if (typeof base === "string") return sizeOfModel(base, baseDir);
    const ref = base && typeof base === "object" && !Array.isArray(base) ? base["$ref"] : undefined;
    if (typeof ref !== "string" || seen.has(ref)) return undefined;
    seen.add(ref);
    const up = program.stages.get(ref);
    if (!up) return undefined;
    if (up.kind === "hf_model") base = up.params["repo"];
    else if (TRAIN_METHODS.has(up.kind)) base = up.params["base"];
    else return undefined;
  }
}

function sizeOfModel(name: string, baseDir: string): ModelSize | undefined {
  const dir = isAbsolute(name) ? name : resolve(baseDir, name);
  const config = join(dir, "config.json");
  if (existsSync(config)) {
    try {
      const shape = shapeOf(JSON.parse(readFileSync(config, "utf8")) as Record<string, unknown>);
      if (shape) return { params: paramsOf(shape), shape, source: `config.json of ${name}` };
    } catch {
      // not readable as a config: fall back to the name
    }
  }
  const params = paramsFromName(name);
  return params ? { params, source: `its name, "${name}"` } : undefined;
}

/** Parameters in words: `6.74B`, `120.5M`, `4.2K`. */
export function showParams(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/**
 * What `itp plan` says about a training stage before it runs: its resources, the tokens it will see (an upper
 * bound from the input's record count while the tokens are not prepared), where it runs, and its GPU memory per
 * device against the device's memory. A job that cannot fit is an error naming what would.
 */
export function planTraining(
  program: IrProgram,
  stage: IrStage,
  o: { baseDir: string; executor: ProcessExecutor; device?: DeviceMemory; inputRecords?: number; tokens?: number },
): TrainingPlan {
  const p = stage.params;
  const job = jobShape(stage.kind as Method, p);
  const lines: string[] = [];
  const batch = Number(p["batch_size"] ?? 1);
  const perStep = job.microBatch * Math.max(1, job.gpus);
  const accum = p["grad_accum"] !== undefined ? Number(p["grad_accum"]) : batch / perStep;
  const method = job.method === "qlora" ? `qlora (${job.bits}-bit base)` : job.method;
  lines.push(
    `resources: ${job.gpus === 0 ? "CPU" : `${job.gpus} GPU${job.gpus === 1 ? "" : "s"}`}; ${method}, ${job.precision}, ${job.optimizer}; batch ${batch} = micro batch ${job.microBatch} x ${Math.max(1, job.gpus)} device${job.gpus > 1 ? "s" : ""} x ${Number.isInteger(accum) ? accum : accum.toFixed(2)} accumulation; max_length ${job.maxLength}${job.gradientCheckpointing ? ", gradient checkpointing" : ""}`,
  );
  const epochs = Number(p["epochs"] ?? 1);
  if (o.tokens !== undefined) lines.push(`tokens: ${Math.round(o.tokens * epochs).toLocaleString("en-US")} (${o.tokens.toLocaleString("en-US")} per epoch x ${epochs} epochs)`);
  else if (o.inputRecords !== undefined) {
    const examples = o.inputRecords;
    lines.push(`tokens: at most ${Math.round(examples * job.maxLength * epochs).toLocaleString("en-US")} (${examples.toLocaleString("en-US")} examples x max_length ${job.maxLength} x ${epochs} epochs; exact once the data is tokenized)`);
  } else lines.push("tokens: known once its data is computed");
  const where = o.executor.describe({ stage: stage.id, resources: jobResources(p), ...(typeof p["partition"] === "string" ? { partition: p["partition"] } : {}) });
  lines.push(`runs on: ${where.join("; ")}`);
  const cannot = where.find((w) => w.includes("cannot run"));
  let error: TrainingPlan["error"];
  if (cannot) error = { message: `stage \`${stage.id}\`: ${cannot.replace(/^local: cannot run: /, "")}`, hint: 'set gpus to what this machine has (gpus = 0 trains on the CPU), or send the job to a cluster (executor = "slurm")' };
  const size = baseModelSize(program, stage, o.baseDir);
  if (!size) {
    lines.push("memory: not estimated (the base model's size is unknown: no local config.json, no size in its name)");
    return { stage: stage.id, lines, ...(error ? { error } : {}) };
  }
  const est = estimateMemory(size, job, o.device?.bytes);
  const parts = `weights ${showBytes(est.weights)}, gradients ${showBytes(est.gradients)}, optimizer ${showBytes(est.optimizer)}, activations ${showBytes(est.activations)}, overhead ${showBytes(est.overhead)}`;
  const model = `${showParams(size.params)} parameters (from ${size.source}), ${showParams(est.trainableParams)} trained`;
  lines.push(`memory per ${job.gpus === 0 ? "process (CPU)" : "GPU"}: ~${showBytes(est.total)} (${parts}); ${model}${job.gpus > 1 ? `; ${est.sharding}` : ""}`);
  if (job.gpus > 0) {
    if (!o.device) lines.push("GPU memory: unknown here (no GPU found); give it with --gpu-memory (e.g. 80G) to check the fit");
    else {
      lines.push(`GPU memory: ${showBytes(o.device.bytes)} per device (${o.device.source})`);
      if (est.total > o.device.bytes && !error) {
        const fits = whatWouldFit(size, job, o.device.bytes);
        error = {
          message: `stage \`${stage.id}\` needs ~${showBytes(est.total)} per GPU, more than the ${showBytes(o.device.bytes)} of a device (${o.device.source})`,
          hint: fits.length > 0 ? `what would fit: ${fits.join("; ")}` : "nothing smaller fits this device: use GPUs with more memory",
        };
      }
    }
  }
  return { stage: stage.id, lines, memory: { perDevice: est.total, ...(o.device ? { device: o.device } : {}), model: size.source }, ...(error ? { error } : {}) };
}

/** A memory size as `--gpu-memory` takes it: `80G`, `80GB`, `24GiB`, `81920M` (binary units). */
export function parseMemory(text: string): number | undefined {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT])(?:i?B)?\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = { K: 1, M: 2, G: 3, T: 4 }[m[2]!.toUpperCase() as "K" | "M" | "G" | "T"];
  return Number(m[1]) * 1024 ** unit;
}
