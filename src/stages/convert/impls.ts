import type { StageImpl } from "../../core/stage.js";
import { converterImpls } from "./converters.js";

/** Converters between record types. The implementations of this family's kinds (declared in kinds.ts), by kind name. */
export const impls: Record<string, StageImpl> = { ...converterImpls };
