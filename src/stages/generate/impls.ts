import type { StageImpl } from "../../core/stage.js";
import { generateImpls } from "./generate.js";
import { alpacaImpls } from "./alpaca.js";
import { selfInstructImpls } from "./self-instruct.js";
import { evolInstructImpls } from "./evol-instruct.js";
import { selfChatImpls } from "./self-chat.js";
import { backtranslateImpls } from "./backtranslate.js";
import { judgeImpls } from "./judge.js";

/** Generation and the synthetic-data methods built on it, and LLM-as-judge. The implementations of this family's kinds (declared in kinds.ts), by kind name. */
export const impls: Record<string, StageImpl> = { ...generateImpls, ...alpacaImpls, ...selfInstructImpls, ...evolInstructImpls, ...selfChatImpls, ...backtranslateImpls, ...judgeImpls };
