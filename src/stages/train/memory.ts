/**
 * GPU memory of a training job, per device, estimated before it runs: weights, gradients, optimizer states and
 * activations for the method and precision. The usual figures: full fine-tuning with AdamW in mixed precision is
 * ~16 bytes per parameter before activations (bf16 weights and gradients, fp32 master weights and two moments);
 * LoRA keeps the frozen base in bf16 (2 bytes per parameter) and trains a small number of adapter parameters;
 * QLoRA stores the base in 4-bit NormalFloat (0.5 byte per parameter) plus the double-quantized block constants.
 * Activations follow Korthikanti et al. (2022): ~34 bytes x sequence x hidden size per layer and sequence without
 * recomputation; with gradient checkpointing, each layer's input (2 bytes x sequence x hidden) and one layer
 * recomputed at a time. The loss adds the logits: fp32, with their gradient, over the vocabulary.
 */

/** A Llama-family architecture, as config.json gives it. */
export interface ModelShape {
  readonly hidden: number;
  readonly intermediate: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly vocab: number;
  readonly tied: boolean;
  readonly qkvBias: boolean;
}

/** A model's size: its architecture when its config is at hand, else only a parameter count (from its name). */
export interface ModelSize {
  readonly params: number;
  readonly shape?: ModelShape;
  /** Where the size comes from, in words: `config.json of models/tiny`, `the name "Llama-2-7b-hf"`. */
  readonly source: string;
}

export type Method = "sft" | "lora" | "qlora" | "dpo";

export interface JobShape {
  readonly method: Method;
  readonly precision: "bf16" | "fp16" | "fp32";
  readonly optimizer: "adamw" | "adafactor";
  readonly gpus: number;
  readonly microBatch: number;
  readonly maxLength: number;
  readonly gradientCheckpointing: boolean;
  readonly lora?: { readonly r: number; readonly targetModules: readonly string[] };
  readonly bits?: 4 | 8;
}

export interface MemoryEstimate {
  /** Bytes per device, by part. */
  readonly weights: number;
  readonly gradients: number;
  readonly optimizer: number;
  readonly activations: number;
  /** CUDA context, allocator slack, communication buffers. */
  readonly overhead: number;
  readonly total: number;
  readonly trainableParams: number;
  /** `FSDP over 4 GPUs`, `DDP (a replica per GPU)`, `one device`. */
  readonly sharding: string;
}

const GiB = 1024 ** 3;
export const OVERHEAD_BYTES = 1 * GiB;

/** Parameters of a Llama-family model from its shape (embeddings, attention, MLP, norms, head). */
export function paramsOf(s: ModelShape): number {
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const attn = s.hidden * q + 2 * s.hidden * kv + q * s.hidden + (s.qkvBias ? q + 2 * kv : 0);
  const mlp = 3 * s.hidden * s.intermediate;
  const layer = attn + mlp + 2 * s.hidden;
  return s.vocab * s.hidden * (s.tied ? 1 : 2) + s.layers * layer + s.hidden;
}

/** The shape of a Hugging Face config.json of the Llama family (Llama, Mistral, Qwen2), or undefined. */
export function shapeOf(config: Record<string, unknown>): ModelShape | undefined {
  const n = (k: string) => (typeof config[k] === "number" ? (config[k] as number) : undefined);
  const hidden = n("hidden_size");
  const intermediate = n("intermediate_size");
  const layers = n("num_hidden_layers");
  const heads = n("num_attention_heads");
  const vocab = n("vocab_size");
  if (!hidden || !intermediate || !layers || !heads || !vocab) return undefined;
  const type = String(config["model_type"] ?? "");
  return {
    hidden,
    intermediate,
    layers,
    heads,
    kvHeads: n("num_key_value_heads") ?? heads,
    headDim: n("head_dim") ?? hidden / heads,
    vocab,
    tied: config["tie_word_embeddings"] === true,
    qkvBias: config["attention_bias"] === true || type === "qwen2",
  };
}

/** A parameter count read from a model's name (`Llama-2-7b-hf` 7e9, `Qwen2-0.5B` 5e8), or undefined. */
export function paramsFromName(name: string): number | undefined {
  const m = /(?:^|[^A-Za-z0-9.])(\d+(?:\.\d+)?)([bBmM])(?![A-Za-z0-9])/.exec(name.split("/").pop() ?? name);
  if (!m) return undefined;
  return Number(m[1]) * (m[2]!.toLowerCase() === "b" ? 1e9 : 1e6);
}

/** Adapter parameters of LoRA: r x (in + out) for every target module of every layer. */
export function loraParams(s: ModelShape, r: number, targets: readonly string[]): number {
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const dims: Record<string, [number, number]> = {
    q_proj: [s.hidden, q],
    k_proj: [s.hidden, kv],
    v_proj: [s.hidden, kv],
    o_proj: [q, s.hidden],
    gate_proj: [s.hidden, s.intermediate],
    up_proj: [s.hidden, s.intermediate],
    down_proj: [s.intermediate, s.hidden],
  };
  let per = 0;
  for (const t of targets) {
    const d = dims[t];
    if (d) per += r * (d[0] + d[1]);
  }
  return per * s.layers;
}

/** A shape for a model known only by its parameter count: Llama-like proportions (d = 128 x layers, I = 8/3 d). */
function guessShape(params: number): ModelShape {
  // Solve 12 L d^2 ~ params with d = 128 L: L = (params / (12 x 128^2))^(1/3).
  const layers = Math.max(1, Math.round(Math.cbrt(params / (12 * 128 * 128))));
  const hidden = 128 * layers;
  return { hidden, intermediate: Math.round((8 / 3) * hidden), layers, heads: Math.max(1, hidden / 128), kvHeads: Math.max(1, hidden / 128), headDim: 128, vocab: 32_000, tied: false, qkvBias: false };
}

/**
 * The estimate per device. Full fine-tuning on several GPUs is sharded with FSDP when a replica would not fit
 * `deviceBytes` (the trainer's rule: DDP when it fits, FSDP otherwise); adapters are trained with DDP.
 */
export function estimateMemory(size: ModelSize, job: JobShape, deviceBytes?: number): MemoryEstimate {
  const shape = size.shape ?? guessShape(size.params);
  const n = size.params;
  const half = job.precision === "fp32" ? 4 : 2;
  const adam = job.optimizer === "adamw";
  // Per trainable parameter: gradient, optimizer states and (mixed precision) an fp32 master copy.
  const master = job.precision === "fp32" ? 0 : 4;
  const states = adam ? 8 : 0; // Adafactor's factored moments are negligible
  let weights: number;
  let trainable: number;
  let frozenWeights: number;
  if (job.method === "lora" || job.method === "qlora") {
    trainable = loraParams(shape, job.lora?.r ?? 16, job.lora?.targetModules ?? ["q_proj", "k_proj", "v_proj", "o_proj"]);
    if (job.method === "qlora") {
      // Linear layers quantized; embeddings, head and norms stay in 16 bits. NF4: 4 bits + one 8-bit constant per
      // block of 64, + one fp32 constant per 256 blocks (double quantization); 8 bits: + one fp32 constant per 64.
      const embed = shape.vocab * shape.hidden * (shape.tied ? 1 : 2);
      const linear = Math.max(0, n - embed);
      const perParam = job.bits === 8 ? 1 + 4 / 64 : 0.5 + 1 / 64 + 4 / (64 * 256);
      frozenWeights = linear * perParam + embed * half;
    } else frozenWeights = n * half;
    weights = frozenWeights + trainable * half;
  } else {
    trainable = n;
    frozenWeights = 0;
    weights = n * half;
  }
  const gradients = trainable * half;
  const optimizer = trainable * (master + states);
  // DPO scores a chosen and a rejected answer per example.
  const seqs = job.microBatch * (job.method === "dpo" ? 2 : 1);
  const tokens = seqs * job.maxLength;
  const perLayerFull = 34 * tokens * shape.hidden;
  const layersPart = job.gradientCheckpointing ? shape.layers * 2 * tokens * shape.hidden + perLayerFull : shape.layers * perLayerFull;
  const logits = tokens * shape.vocab * 8;
  const activations = layersPart + logits;
  let sharding = "one device";
  let shard = 1;
  if (job.gpus > 1) {
    const replica = weights + gradients + optimizer + activations + OVERHEAD_BYTES;
    if ((job.method === "sft" || job.method === "dpo") && (deviceBytes === undefined || replica > deviceBytes)) {
      shard = job.gpus;
      sharding = `FSDP over ${job.gpus} GPUs`;
    } else sharding = `DDP (a replica on each of ${job.gpus} GPUs)`;
  }
  const w = weights / shard;
  const g = gradients / shard;
  const o = optimizer / shard;
  const total = w + g + o + activations + OVERHEAD_BYTES;
  return { weights: w, gradients: g, optimizer: o, activations, overhead: OVERHEAD_BYTES, total, trainableParams: trainable, sharding };
}

/** Bytes in GiB with one decimal (`13.5 GiB`), or MiB below 1 GiB. */
export function showBytes(b: number): string {
  return b >= GiB ? `${(b / GiB).toFixed(1)} GiB` : `${Math.max(1, Math.round(b / 1024 ** 2))} MiB`;
}

/**
 * What would fit a device of `deviceBytes` when this job does not: more GPUs (full fine-tuning, sharded), LoRA,
 * QLoRA, a micro batch of 1, gradient checkpointing; each with its estimate. Empty when nothing would.
 */
export function whatWouldFit(size: ModelSize, job: JobShape, deviceBytes: number): string[] {
  const out: string[] = [];
  const fits = (j: JobShape) => estimateMemory(size, j, deviceBytes).total <= deviceBytes;
  const est = (j: JobShape) => showBytes(estimateMemory(size, j, deviceBytes).total);
  if (job.method === "sft" || job.method === "dpo") {
    for (const g of [2, 4, 8, 16, 32, 64]) {
      if (g <= job.gpus) continue;
      const j = { ...job, gpus: g };
      if (fits(j)) {
        out.push(`gpus = ${g} (${est(j)} per GPU, FSDP)`);
        break;
      }
    }
  }
  if (job.method === "sft") {
    const lora: JobShape = { ...job, method: "lora", lora: { r: 16, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"] } };
    if (fits(lora)) out.push(`lora instead of sft (${est(lora)})`);
  }
  if (job.method === "sft" || job.method === "lora") {
    const q: JobShape = { ...job, method: "qlora", bits: 4, lora: job.lora ?? { r: 16, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"] } };
    if (fits(q)) out.push(`qlora (${est(q)})`);
  }
  if (job.microBatch > 1) {
    const j = { ...job, microBatch: 1 };
    if (fits(j)) out.push(`micro_batch_size = 1 (${est(j)})`);
  }
  if (!job.gradientCheckpointing) {
    const j = { ...job, gradientCheckpointing: true };
    if (fits(j)) out.push(`gradient_checkpointing = true (${est(j)})`);
  }
  return out;
}
