import type { StageImpl } from "../runtime/impl.js";
import type { Registry } from "./registry.js";
import { alpacaImpls } from "./generate/alpaca.js";
import { backtranslateImpls } from "./generate/backtranslate.js";
import { converterImpls } from "./convert/converters.js";
import { evolInstructImpls } from "./generate/evol-instruct.js";
import { exportImpls } from "./export/export.js";
import { filterImpls } from "./filter/filters.js";
import { generateImpls } from "./generate/generate.js";
import { hubImpls } from "./sources/hub.js";
import { judgeImpls } from "./generate/judge.js";
import { mixImpls } from "./mix/mix.js";
import { modelImpls } from "./model/handles.js";
import { selfChatImpls } from "./generate/self-chat.js";
import { selfInstructImpls } from "./generate/self-instruct.js";
import { sourceImpls } from "./sources/files.js";
import { templateImpls } from "./template/templates.js";
import { transformImpls } from "./transform/transforms.js";

/**
 * The implementations of the stage kinds, by kind name. Loaded only by the commands that run things, so
 * `itp check` never pays for them.
 */
export function implementations(): Map<string, StageImpl> {
  return new Map(Object.entries({ ...sourceImpls, ...hubImpls, ...transformImpls, ...converterImpls, ...filterImpls, ...mixImpls, ...templateImpls, ...exportImpls, ...modelImpls, ...generateImpls, ...alpacaImpls, ...selfInstructImpls, ...evolInstructImpls, ...selfChatImpls, ...backtranslateImpls, ...judgeImpls }));
}

/** Kinds of the registry that have an implementation, checked against the registry (a typo here is a bug). */
export function checkedImplementations(registry: Registry): Map<string, StageImpl> {
  const impls = implementations();
  for (const k of impls.keys()) if (!registry.stage(k)) throw new Error(`implementation for unknown stage kind ${k}`);
  return impls;
}
