import type { StageImpl } from "../../core/stage.js";
import { mixImpls } from "./mix.js";

/** Mixing datasets by count, fraction, weight or rate. The implementations of this family's kinds (declared in kinds.ts), by kind name. */
export const impls: Record<string, StageImpl> = { ...mixImpls };
