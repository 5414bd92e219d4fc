import type { StageImpl } from "../../core/stage.js";
import { dedupImpls } from "./dedup.js";

/** Deduplication: exact, MinHash-LSH, ROUGE-L. The implementations of this family's kinds (declared in kinds.ts), by kind name. */
export const impls: Record<string, StageImpl> = { ...dedupImpls };
