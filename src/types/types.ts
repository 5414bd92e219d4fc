/**
 * The type language of recipes: scalars, lists, record types, and what stages produce
 * (Dataset<T>, Model, Report, Template). Pure values; printing gives one canonical form.
 */
export type Ty =
  | { readonly k: "scalar"; readonly name: "string" | "int" | "float" | "bool" | "duration" | "any" }
  | { readonly k: "list"; readonly of: Ty }
  | { readonly k: "record"; readonly name: string; readonly fields: ReadonlyMap<string, Field>; readonly open: boolean }
  | { readonly k: "dataset"; readonly of: Ty }
  | { readonly k: "model" }
  | { readonly k: "report" }
  | { readonly k: "template" }
  | { readonly k: "var"; readonly name: string }
  | { readonly k: "union"; readonly options: readonly Ty[] };

export interface Field {
  readonly ty: Ty;
  readonly optional: boolean;
}

export const scalar = (name: "string" | "int" | "float" | "bool" | "duration" | "any"): Ty => ({ k: "scalar", name });
export const list = (of: Ty): Ty => ({ k: "list", of });
export const dataset = (of: Ty): Ty => ({ k: "dataset", of });
export const MODEL: Ty = { k: "model" };
export const REPORT: Ty = { k: "report" };
export const TEMPLATE: Ty = { k: "template" };

export function record(name: string, fields: Record<string, Ty | [Ty, "optional"]>, open = false): Ty {
  const m = new Map<string, Field>();
  for (const [k, v] of Object.entries(fields)) m.set(k, Array.isArray(v) ? { ty: v[0], optional: true } : { ty: v, optional: false });
  return { k: "record", name, fields: m, open };
}

export function show(t: Ty): string {
  switch (t.k) {
    case "scalar":
      return t.name;
    case "list":
      return `list<${show(t.of)}>`;
    case "record":
      return t.name;
    case "dataset":
      return `Dataset<${show(t.of)}>`;
    case "model":
      return "Model";
    case "report":
      return "Report";
    case "template":
      return "Template";
    case "var":
      return t.name;
    case "union":
      return t.options.map(show).join(" | ");
  }
}

/** The record type's full shape, for messages: `{instruction: string, input?: string, output: string}`. */
export function showShape(t: Ty): string {
  if (t.k !== "record") return show(t);
  return `{${[...t.fields].map(([n, f]) => `${n}${f.optional ? "?" : ""}: ${show(f.ty)}`).join(", ")}}`;
}

export type Bindings = Map<string, Ty>;

/**
 * Whether a value of type `actual` can flow where `expected` is wanted. Records are structural: every required
 * field of the expected type must be present (an open record, e.g. raw JSON, is accepted anywhere).
 * Type variables in `expected` are bound on first use.
 */
export function assignable(actual: Ty, expected: Ty, b: Bindings = new Map()): boolean {
  if (expected.k === "var") {
    const bound = b.get(expected.name);
    if (bound) return assignable(actual, bound, b);
    b.set(expected.name, actual);
    return true;
  }
  if (expected.k === "union") return expected.options.some((o) => assignable(actual, o, new Map(b)) && assignable(actual, o, b));
  if (actual.k === "union") return actual.options.every((o) => assignable(o, expected, b));
  if (expected.k === "scalar" && expected.name === "any") return true;
  if (actual.k === "scalar" && actual.name === "any") return true;
  switch (expected.k) {
    case "scalar":
      return actual.k === "scalar" && (actual.name === expected.name || (expected.name === "float" && actual.name === "int"));
    case "list":
      return actual.k === "list" && assignable(actual.of, expected.of, b);
    case "dataset":
      return actual.k === "dataset" && assignable(actual.of, expected.of, b);
    case "record": {
      if (actual.k !== "record") return false;
      if (actual.open) return true;
      if (actual.name === expected.name) return true;
      for (const [name, f] of expected.fields) {
        const a = actual.fields.get(name);
        if (!a) {
          if (f.optional) continue;
          return false;
        }
        if (!assignable(a.ty, f.ty, b)) return false;
      }
      return true;
    }
    default:
      return actual.k === expected.k;
  }
}

export function substitute(t: Ty, b: Bindings): Ty {
  switch (t.k) {
    case "var":
      return b.get(t.name) ?? t;
    case "list":
      return list(substitute(t.of, b));
    case "dataset":
      return dataset(substitute(t.of, b));
    case "union":
      return { k: "union", options: t.options.map((o) => substitute(o, b)) };
    default:
      return t;
  }
}

/** The record type carried by a dataset type, if known. */
export function recordOf(t: Ty): Ty | undefined {
  return t.k === "dataset" && t.of.k === "record" ? t.of : undefined;
}
