import type { StageImpl } from "../../core/stage.js";
import { filterImpls } from "./filters.js";

/** Filters: drop records by a rule. The implementations of this family's kinds (declared in kinds.ts), by kind name. */
export const impls: Record<string, StageImpl> = { ...filterImpls };
