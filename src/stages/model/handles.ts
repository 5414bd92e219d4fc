import type { StageImpl } from "../../core/stage.js";
import { resolveParams } from "../../core/params.js";
import { onnxFile, type ModelArtifact } from "../../generate/backend.js";
import { asyncImpl } from "../support/records.js";

/**
 * Model stages produce a handle, not weights: the model's kind and parameters (env() resolved, secrets left as
 * references), which the stages that use it connect with. The handle's digest is the model's identity in the cache
 * keys of those stages.
 */
const handle: StageImpl = asyncImpl(async (ctx, out) => {
  const artifact: ModelArtifact = { kind: ctx.stage.kind, stage: ctx.stage.id, params: resolveParams(ctx.stage.params, "keep") };
  await out.writeValue(artifact);
});

export const modelImpls: Record<string, StageImpl> = {
  openai_compatible: handle,
  // The weights are the identity: editing the .onnx file reruns what used the model.
  onnx_model: { ...handle, files: (p) => [onnxFile(String(p["path"]))] },
  hf_model: handle,
};
