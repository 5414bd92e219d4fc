import type { StageImpl } from "../../core/stage.js";
import { transformImpls } from "./transforms.js";

/** Transforms: take, sample, shuffle, where, rename, select, split, concat, caps. The implementations of this family's kinds (declared in kinds.ts), by kind name. */
export const impls: Record<string, StageImpl> = { ...transformImpls };
