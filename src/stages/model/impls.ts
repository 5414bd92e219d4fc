import type { StageImpl } from "../../core/stage.js";
import { modelImpls } from "./handles.js";
import { serveImpl } from "./serve.js";

/** Model handles and served models. The implementations of this family's kinds (declared in kinds.ts), by kind name. */
export const impls: Record<string, StageImpl> = { ...modelImpls, serve: serveImpl };
