import { z } from "zod";
import type { SourceFile } from "../diagnostics/source.js";
import { deepMarker, universalParams, unwrap } from "../stages/schema.js";
import type * as A from "../syntax/ast.js";
import type { Elab, Spot } from "./elaboration.js";
import type { Json } from "../core/ir.js";
import type { BoundCall } from "./stage-call.js";

/** Parameters after validation: zod's output (defaults filled in), env()/secret() values kept as written. */
export type ValidatedParams = Record<string, Json>;

/**
 * The parameter phase: a stage call's bound parameters checked against its kind's zod schema and the universal
 * parameters every stage takes. Values given through env() are known only at run time and are not checked.
 */
export function validateStageParams(el: Elab, call: BoundCall): ValidatedParams | undefined {
  const { kind, params, spans, file, envKeys, failedKeys } = call;
  const at = call.call.callee;
  const kindParams = Object.fromEntries(Object.entries(params).filter(([k]) => !(k in universalParams())));
  const ownValidated = validate(el, kind.params, kindParams, spans, file, at, kind.name, envKeys, failedKeys);
  const universalValidated = validate(el, universalSchema(), Object.fromEntries(Object.entries(params).filter(([k]) => k in universalParams())), spans, file, at, kind.name, envKeys, failedKeys);
  return ownValidated && universalValidated ? { ...ownValidated, ...universalValidated } : undefined;
}

/** Validates an object against a schema, reporting each issue at the value it is about. */
export function validate(
  el: Elab,
  schema: z.ZodObject,
  obj: Record<string, Json>,
  spans: Map<string, Spot>,
  file: SourceFile,
  at: A.Span,
  what: string,
  envKeys: Set<string>,
  failedKeys: Set<string> = new Set(),
): ValidatedParams | undefined {
  // env()/secret() values are resolved at run time: validate the rest, keep them as written.
  const probe: Record<string, Json> = {};
  for (const [k, v] of Object.entries(obj)) if (!envKeys.has(k)) probe[k] = v;
  const shape = schema.shape as Record<string, z.ZodType>;
  const r = schema.safeParse(probe);
  const skip = (k: string) => envKeys.has(k) || failedKeys.has(k);
  const issues = r.success ? [] : r.error.issues.filter((i) => !skip(String(i.path[0])));
  if (issues.length > 0) {
    for (const i of issues) {
      const key = String(i.path[0] ?? "");
      const missing = i.code === "invalid_type" && !(key in probe);
      if (missing) {
        const desc = shape[key]?.description;
        el.err("E031", `\`${what}\` needs parameter \`${key}\``, file, at, desc ? `${key}: ${desc}` : `set it: \`${key} = ...\``);
      } else {
        const where = spans.get(key) ?? { file, span: at };
        const path = i.path.length > 1 ? `${key}${i.path.slice(1).map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("")}` : key;
        el.err("E032", `invalid \`${path}\` for \`${what}\`: ${zodMessage(i, shape[key])}`, where.file, where.span, shape[key]?.description);
      }
    }
    return undefined;
  }
  if (failedKeys.size > 0) return undefined;
  const out = (r.success ? r.data : probe) as Record<string, Json>;
  for (const k of envKeys) {
    if (!(k in obj)) continue; // validated by the other schema (a stage's own parameters, or the universal ones)
    const m = shape[k] ? deepMarker(shape[k]!) : undefined;
    if (isSecret(obj[k]!) && m?.kind !== "secret") {
      const where = spans.get(k) ?? { file, span: at };
      el.err("E061", `\`secret()\` is only for credentials; \`${k}\` of \`${what}\` is not one`, where.file, where.span, "use `env(\"NAME\")` for ordinary values from the environment");
      return undefined;
    }
    out[k] = obj[k]!;
  }
  return out;
}

let universalObject: z.ZodObject | undefined;
const universalSchema = () => (universalObject ??= z.object(universalParams()));

function isSecret(j: Json): boolean {
  if (j === null || typeof j !== "object") return false;
  if (Array.isArray(j)) return j.some(isSecret);
  if ("$secret" in j) return true;
  return Object.values(j).some(isSecret);
}

function isDurationSchema(s: z.ZodType | undefined): boolean {
  const def = s && (unwrap(s) as unknown as { _zod: { def: { type: string; shape?: Record<string, unknown> } } })._zod.def;
  return def?.type === "object" && def.shape !== undefined && "duration_ms" in def.shape;
}

function zodMessage(i: z.core.$ZodIssue, schema?: z.ZodType): string {
  const inp = (i as { input?: unknown }).input;
  const got = inp === undefined ? "" : ` (got ${JSON.stringify(inp)?.slice(0, 60)})`;
  if (i.code === "invalid_type" && i.path.length <= 1 && isDurationSchema(schema)) return `expected a duration such as \`30s\`, \`5m\` or \`2h\`${got}`;
  switch (i.code) {
    case "too_small":
      return `must be ${i.inclusive === false ? "greater than" : "at least"} ${String(i.minimum)}${got}`;
    case "too_big":
      return `must be ${i.inclusive === false ? "less than" : "at most"} ${String(i.maximum)}${got}`;
    case "invalid_value":
      return `must be one of ${i.values.map((v) => JSON.stringify(v)).join(", ")}${got}`;
    case "invalid_type":
      return `expected ${i.expected === "object" ? "a record" : i.expected}${got}`;
    default:
      return i.message + got;
  }
}
