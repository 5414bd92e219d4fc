import { z } from "zod";
import { ref, value } from "../schema.js";
import { dataInput, duration, memory, natInt, posInt, seed, lazyEntries } from "../common.js";
import type { StageKind } from "../registry.js";

/**
 * Training: jobs with resource requests (GPUs, memory, time) sent to an executor (a local subprocess or Slurm).
 * Checkpoints are artifacts; a retried job resumes from its last checkpoint. The output is the trained Model.
 *
 * Defaults follow Tulu 2's SFT recipe where it states them (lr 2e-5, linear schedule, warmup ratio 0.03, weight
 * decay 0, 3 epochs, effective batch 128); other defaults are marked "our choice".
 */
const base = () =>
  z
    .union([z.string().min(1), ref("Model")])
    .describe("Base model: a hub model id or local directory (\"meta-llama/Llama-2-7b-hf\"), or a stage whose output is a Model (hf_model, or an earlier training stage).");

function common(d: { lr: number; lrSource: string; epochs: number; batch: number; batchSource: string; maxLength: number }) {
  return {
    base: base(),
    epochs: z.number().positive().max(1000).default(d.epochs).describe(`Passes over the data; a fraction is allowed (default ${d.epochs}).`),
    lr: z.number().positive().lt(1).default(d.lr).describe(`Peak learning rate (default ${d.lr}: ${d.lrSource}).`),
    batch_size: posInt().default(d.batch).describe(`Effective batch size in examples: micro_batch_size x grad_accum x GPUs (default ${d.batch}: ${d.batchSource}).`),
    micro_batch_size: posInt().default(1).describe("Examples per device per forward pass (default 1: our choice)."),
    grad_accum: posInt().optional().describe("Gradient accumulation steps; default batch_size / (micro_batch_size x GPUs), which must divide evenly."),
    max_length: posInt().default(d.maxLength).describe(`Longest sequence in tokens; longer examples are truncated (default ${d.maxLength}: our choice; Tulu 2: 8192, Alpaca: 512).`),
    warmup_ratio: z.number().min(0).lt(1).default(0.03).describe("Share of the steps spent warming up the learning rate (default 0.03: Tulu 2)."),
    weight_decay: z.number().min(0).default(0).describe("Weight decay (default 0: Tulu 2; LIMA: 0.1)."),
    schedule: z.enum(["linear", "cosine", "constant"]).default("linear").describe("Learning-rate schedule after warmup (default linear: Tulu 2)."),
    optimizer: z.enum(["adamw", "adafactor"]).default("adamw").describe("Optimizer (Flan: adafactor)."),
    adam_betas: z.tuple([z.number().gt(0).lt(1), z.number().gt(0).lt(1)]).default([0.9, 0.999]).describe("AdamW betas (LIMA: [0.9, 0.95])."),
    max_grad_norm: z.number().positive().default(1).describe("Gradient clipping norm."),
    precision: z.enum(["bf16", "fp16", "fp32"]).default("bf16").describe("Training precision."),
    gradient_checkpointing: z.boolean().default(true).describe("Recompute activations to save memory."),
    gpus: natInt().default(1).describe("GPUs requested per node (0: CPU)."),
    nodes: posInt().optional().describe("Nodes the job spans (one torchrun per node, meeting at a rendezvous); more than 1 needs a cluster executor. Default 1."),
    memory: memory().optional().describe("Host memory requested, e.g. \"64G\"; default the executor's."),
    time: duration().optional().describe("Wall-clock limit of the job, e.g. 24h; default the executor's."),
    executor: z.enum(["local", "slurm"]).optional().describe("Where the job runs; default the profile's executor (`--profile`), else local."),
    partition: z.string().min(1).optional().describe("Slurm partition."),
    checkpoint_every: posInt().optional().describe("Save a checkpoint every this many optimizer steps; default once per epoch."),
    retry: value("retry_policy").optional().describe("Job retry policy, e.g. backoff(2); a retried job resumes from its last checkpoint. Default: no retry."),
    seed: seed("Seed of data order, initialization of new weights and dropout."),
    export_onnx: z.boolean().default(false).describe("Also write model.onnx into the output model, so `onnx_model` (and generation, judging) can run it locally."),
  };
}

const sftData = () =>
  dataInput("Dataset<Chat | Instruction | Text>", "Training examples: chats and instructions are rendered with the template; text is trained on as is.");

function sftShape(d: Parameters<typeof common>[0]) {
  return {
    ...common(d),
    template: ref("Template").optional().describe("How chats and instructions become text (and where the loss is masked); default the base model's own chat template (hf_chat_template), else tulu."),
    loss_on: z.enum(["assistant", "all"]).default("assistant").describe("Tokens that carry the loss: assistant responses only (Tulu, Alpaca) or every token."),
    packing: z.boolean().default(false).describe("Pack several examples into one sequence of max_length."),
  };
}

const SFT = { lr: 2e-5, lrSource: "Tulu 2, Alpaca", epochs: 3, batch: 128, batchSource: "Tulu 2, Alpaca", maxLength: 2048 };
const LORA = { ...SFT, lr: 1e-4, lrSource: "our choice" };

function loraShape() {
  return {
    r: posInt().default(16).describe("LoRA rank (default 16: our choice)."),
    alpha: z.number().positive().default(32).describe("LoRA alpha; the update is scaled by alpha / r (default 32: our choice)."),
    dropout: z.number().min(0).lt(1).default(0.05).describe("Dropout on the LoRA input (default 0.05: our choice)."),
    target_modules: z
      .array(z.string().min(1))
      .min(1)
      .default(["q_proj", "k_proj", "v_proj", "o_proj"])
      .describe("Names of the linear modules that get adapters."),
    merge: z.boolean().default(true).describe("Merge the adapters into the base weights in the output model."),
  };
}

export function trainStages(): StageKind[] {
  return lazyEntries<StageKind>([
    {
      name: "sft",
      category: "train",
      doc: "Full-parameter supervised fine-tuning.",
      inputs: [sftData()],
      output: "Model",
      params: () => z.object(sftShape(SFT)),
      version: "2",
    },
    {
      name: "lora",
      category: "train",
      doc: "Supervised fine-tuning of low-rank adapters (LoRA) on a frozen base.",
      inputs: [sftData()],
      output: "Model",
      params: () => z.object({ ...sftShape(LORA), ...loraShape() }),
      version: "2",
    },
    {
      name: "qlora",
      category: "train",
      doc: "LoRA on a base quantized to 4 or 8 bits (QLoRA: NF4 with double quantization at 4 bits).",
      inputs: [sftData()],
      output: "Model",
      params: () => z.object({
        ...sftShape(LORA),
        ...loraShape(),
        bits: z.union([z.literal(4), z.literal(8)]).default(4).describe("Quantization of the frozen base: 4 or 8 bits."),
      }),
      version: "2",
    },
    {
      name: "dpo",
      category: "train",
      doc: "Direct preference optimization on (prompt, chosen, rejected) examples against a frozen reference model.",
      inputs: [dataInput("Dataset<Preference | PreferencePair>", "Preference examples.")],
      output: "Model",
      params: () => z.object({
        ...common({ lr: 5e-7, lrSource: "Tulu 2 DPO", epochs: 3, batch: 32, batchSource: "our choice", maxLength: 2048 }),
        beta: z.number().positive().default(0.1).describe("KL penalty strength (default 0.1: our choice, the common setting)."),
        reference: ref("Model").optional().describe("Reference model; default the base."),
        template: ref("Template").optional().describe("How prompts and answers become text; default the base model's own chat template, else tulu."),
      }),
      version: "2",
    },
  ]);
}
