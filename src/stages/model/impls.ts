import type { StageImpl } from "../../core/stage.js";
import { modelImpls } from "./handles.js";

/** Model handles. The implementations of this family's kinds (declared in kinds.ts), by kind name. */
export const impls: Record<string, StageImpl> = { ...modelImpls };
