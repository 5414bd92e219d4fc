import type { StageImpl } from "../../core/stage.js";
import { templateImpls } from "./templates.js";

/** Templates: chat formats, Jinja chat templates, prompt templates, Flan template sets, rendering. The implementations of this family's kinds (declared in kinds.ts), by kind name. */
export const impls: Record<string, StageImpl> = { ...templateImpls };
