import type { StageImpl } from "../../core/stage.js";
import { openEvalModel } from "../support/eval-model.js";
import { evaluateImpl } from "./evaluate.js";
import { taskRunners } from "./tasks.js";

/**
 * Evaluation. The implementations of this family's kinds (declared in kinds.ts), by kind name: `evaluate` opens the
 * model of its `model` input (a trained folder through the Python worker, an endpoint, a served model or an ONNX
 * model), every answer through the request cache, and runs the tasks of tasks.ts on it.
 */
export const impls: Record<string, StageImpl> = { evaluate: evaluateImpl((ctx) => openEvalModel(ctx, "model"), taskRunners) };
