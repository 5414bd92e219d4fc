import type { StageImpl } from "../../core/stage.js";
import { exportImpls } from "./export.js";

/** Export of artifacts to files. The implementations of this family's kinds (declared in kinds.ts), by kind name. */
export const impls: Record<string, StageImpl> = { ...exportImpls };
