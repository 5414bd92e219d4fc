import type { StageImpl } from "../../core/stage.js";
import { sourceImpls } from "./files.js";
import { hubImpls } from "./hub.js";

/** Sources: local files (JSON Lines, JSON, CSV, TSV, Parquet, shards), inline records, Hugging Face datasets. The implementations of this family's kinds (declared in kinds.ts), by kind name. */
export const impls: Record<string, StageImpl> = { ...sourceImpls, ...hubImpls };
