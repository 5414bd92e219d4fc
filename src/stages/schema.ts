import { z } from "zod";

/**
 * Markers on parameter schemas that the checker needs beyond zod's own validation: a parameter that names a field
 * of the input record type, one that refers to another stage (a model, a template, a dataset), one that takes a
 * value built by a value function (`take(50_000)`, `mmlu(shots: 5)`), and one that may hold a `secret()`.
 */
export type ParamMarker =
  | { readonly kind: "field" }
  | { readonly kind: "ref"; readonly type: string }
  | { readonly kind: "value"; readonly category: string }
  | { readonly kind: "secret" };

const markers = new WeakMap<z.ZodType, ParamMarker>();

export const markerOf = (s: z.ZodType): ParamMarker | undefined => markers.get(s);

function mark<S extends z.ZodType>(s: S, m: ParamMarker): S {
  markers.set(s, m);
  return s;
}

/** A field name of the (first) input's record type, written bare: `field: instruction`. */
export const field = () => mark(z.string().min(1), { kind: "field" });

/** A reference to another stage whose output has the given type (`"Model"`, `"Template"`, `"Dataset<T>"`). */
export const ref = (type: string) => mark(z.object({ $ref: z.string() }), { kind: "ref", type });

/** A value made by a value function of the given category (see values.ts). */
export const value = (category: string) => mark(z.looseObject({ fn: z.string() }), { kind: "value", category });

/** A string that may be given as `secret("NAME")` (or `env("NAME")`); never enters cache keys or logs. */
export const secretString = () => mark(z.string(), { kind: "secret" });

/** Strip optional/default/nullable wrappers to reach the schema that carries a marker. */
export function unwrap(s: z.ZodType): z.ZodType {
  let cur: z.ZodType = s;
  for (let i = 0; i < 8; i++) {
    const def = (cur as unknown as { _zod: { def: { type: string; innerType?: z.ZodType } } })._zod.def;
    if ((def.type === "optional" || def.type === "default" || def.type === "nullable" || def.type === "prefault") && def.innerType) cur = def.innerType;
    else break;
  }
  return cur;
}

/** The element schema of an array schema, if it is one. */
export function elementOf(s: z.ZodType): z.ZodType | undefined {
  const def = (unwrap(s) as unknown as { _zod: { def: { type: string; element?: z.ZodType } } })._zod.def;
  return def.type === "array" ? def.element : undefined;
}

/** The marker of a parameter schema, looking through optional/default wrappers and into union options. */
const deepMarkers = new WeakMap<z.ZodType, ParamMarker | null>();

export function deepMarker(s: z.ZodType): ParamMarker | undefined {
  const known = deepMarkers.get(s);
  if (known !== undefined) return known ?? undefined;
  const m = findMarker(s);
  deepMarkers.set(s, m ?? null);
  return m;
}

function findMarker(s: z.ZodType): ParamMarker | undefined {
  const u = unwrap(s);
  const m = markers.get(u);
  if (m) return m;
  const def = (u as unknown as { _zod: { def: { type: string; options?: z.ZodType[] } } })._zod.def;
  if (def.type === "union" && def.options) {
    for (const o of def.options) {
      const om = markers.get(unwrap(o));
      if (om) return om;
    }
  }
  return undefined;
}

let universal: Record<string, z.ZodType> | undefined;
/**
 * Parameters every stage takes besides its own: `retry = backoff(...)`, the stage's retry policy for transient
 * failures (none by default).
 */
export function universalParams(): Record<string, z.ZodType> {
  return (universal ??= { retry: value("retry_policy").optional().describe("Retry policy for transient failures, e.g. backoff(3); default none.") });
}
