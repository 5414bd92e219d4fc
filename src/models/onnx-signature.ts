import type { InferenceSession } from "onnxruntime-node";
import { UserError } from "../core/errors.js";

/**
 * The inputs and outputs a causal LM export must have to be run here (a plain export without a key/value cache):
 *
 *   input   input_ids        int64 or int32   [batch, sequence]          required
 *   input   attention_mask   int64 or int32   [batch, sequence]          optional (1 for real tokens, 0 for padding)
 *   input   position_ids     int64 or int32   [batch, sequence]          optional (0, 1, 2, ...)
 *   output  logits           float32          [batch, sequence, vocab]   other outputs are ignored
 *
 * torch.onnx.export of a model's forward(input_ids[, attention_mask]) with dynamic batch and sequence axes gives
 * this, and so does optimum's `--task text-generation` (not `text-generation-with-past`).
 */
export const SIGNATURE =
  "inputs input_ids [batch, sequence] int64 (required), attention_mask and position_ids [batch, sequence] int64 (optional); " +
  "output logits [batch, sequence, vocab] float32";

export type IdType = "int64" | "int32";

export interface LmSignature {
  readonly input_ids: IdType;
  readonly attention_mask?: IdType;
  readonly position_ids?: IdType;
  /** The vocabulary size when the export fixes it. */
  readonly vocab?: number;
}

const ID_INPUTS = ["input_ids", "attention_mask", "position_ids"] as const;

/** Checks a loaded model against SIGNATURE; every refusal names the input or output and what was found. */
export function checkSignature(session: Pick<InferenceSession, "inputMetadata" | "outputMetadata">, file: string): LmSignature {
  const hint = `expected ${SIGNATURE}`;
  const inputs = new Map(session.inputMetadata.map((m) => [m.name, m]));
  const types: Partial<Record<(typeof ID_INPUTS)[number], IdType>> = {};
  for (const name of ID_INPUTS) {
    const m = inputs.get(name);
    if (!m) continue;
    if (!m.isTensor || (m.type !== "int64" && m.type !== "int32")) {
      throw new UserError(`ONNX model ${file}: input ${name} is ${m.isTensor ? `of type ${m.type}` : "not a tensor"}, expected int64 token ids`, hint);
    }
    if (m.shape.length !== 0 && m.shape.length !== 2) {
      throw new UserError(`ONNX model ${file}: input ${name} has shape [${m.shape.join(", ")}], expected [batch, sequence]`, hint);
    }
    types[name] = m.type;
  }
  if (!types.input_ids) {
    const found = session.inputMetadata.map((m) => m.name).join(", ") || "none";
    throw new UserError(`ONNX model ${file} has no input input_ids (its inputs: ${found})`, hint);
  }
  const extra = session.inputMetadata.map((m) => m.name).filter((n) => !(ID_INPUTS as readonly string[]).includes(n));
  if (extra.length > 0) {
    const cache = extra.some((n) => /past|cache|present/i.test(n));
    throw new UserError(
      `ONNX model ${file} has input${extra.length > 1 ? "s" : ""} ${extra.join(", ")} that the runner does not feed`,
      cache
        ? `this is an export with a key/value cache; export without it (optimum: --task text-generation, not text-generation-with-past; torch: use_cache=False). ${hint}`
        : hint,
    );
  }
  const out = session.outputMetadata.find((m) => m.name === "logits");
  if (!out) {
    const found = session.outputMetadata.map((m) => m.name).join(", ") || "none";
    throw new UserError(`ONNX model ${file} has no output logits (its outputs: ${found})`, hint);
  }
  if (!out.isTensor || out.type !== "float32") {
    const found = out.isTensor ? `of type ${out.type}` : "not a tensor";
    throw new UserError(`ONNX model ${file}: output logits is ${found}, expected float32`, `re-export in float32; ${hint}`);
  }
  if (out.shape.length !== 0 && out.shape.length !== 3) {
    throw new UserError(`ONNX model ${file}: output logits has shape [${out.shape.join(", ")}], expected [batch, sequence, vocab] (logits at every position)`, hint);
  }
  const vocab = out.shape[2];
  return { ...types, input_ids: types.input_ids, ...(typeof vocab === "number" && vocab > 0 ? { vocab } : {}) };
}
