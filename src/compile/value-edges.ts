import type { ZodType } from "zod";
import type { SourceFile } from "../diagnostics/source.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";
import { deepMarker } from "../stages/schema.js";
import type { ValueFunction } from "../stages/registry.js";
import type * as A from "../syntax/ast.js";
import { recordOf, showShape } from "../types/types.js";
import { checkEdge } from "./edges.js";
import { typeOf, type Elab, type Val } from "./elaboration.js";
import type { Json } from "../core/ir.js";

/**
 * The edges of a value function call (`mmlu(mmlu_test, dev: mmlu_dev)`): the stages its parameters refer to have the
 * types its schema names, and the fields it reads (`multiple_choice(data, question: prompt_text)`) exist in its
 * `data` dataset's record type. The stages become inputs of the stage the value is a parameter of.
 */
export function checkValueEdges(
  el: Elab,
  vf: ValueFunction,
  refs: ReadonlyMap<string, { val: Val & { t: "stage" }; at: A.Span }>,
  argAt: ReadonlyMap<string, A.Span>,
  parsed: Readonly<Record<string, Json>>,
  file: SourceFile,
): boolean {
  const shape = vf.params.shape as Record<string, ZodType>;
  let ok = true;
  for (const [key, { val, at }] of refs) {
    const m = shape[key] ? deepMarker(shape[key]!) : undefined;
    if (m?.kind === "ref" && !checkEdge(el, val, typeOf(m.type), new Map(), file, at, `parameter \`${key}\` of \`${vf.name}\``)) ok = false;
  }
  const data = refs.get("data");
  const rec = data ? recordOf(data.val.ty) : undefined;
  if (!ok || !vf.fields || !data || !rec || rec.k !== "record" || rec.open) return ok;
  for (const { param, field } of vf.fields(parsed)) {
    if (rec.fields.has(field)) continue;
    // Reported at the argument that names the field (a default value: at the data).
    const where = argAt.get(param) ?? data.at;
    el.err("E041", `${rec.name} has no field \`${field}\` (\`${param}\` of \`${vf.name}\` reads it from \`${data.val.id}\`)`, file, where, [hintDidYouMean(field, rec.fields.keys()), `${rec.name} is ${showShape(rec)}`].filter(Boolean).join(" "));
    ok = false;
  }
  return ok;
}
