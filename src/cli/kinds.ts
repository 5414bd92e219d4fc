import { z } from "zod";
import { defaultRegistry } from "../stages/index.js";
import type { StageKind, ValueFunction } from "../stages/registry.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";
import { InputError } from "./host.js";
import { parseVerbArgs } from "./args.js";

const help = `
usage: itp kinds [NAME] [--json]

List the stage kinds and value functions, or document one: its inputs, output and parameters.`;

interface ParamDoc {
  name: string;
  type: string;
  required: boolean;
  default?: unknown;
  doc?: string;
}

function paramDocs(schema: z.ZodObject): ParamDoc[] {
  const shape = schema.shape as Record<string, z.ZodType>;
  return Object.entries(shape).map(([name, s]) => {
    let type = "value";
    let dflt: unknown;
    try {
      const js = z.toJSONSchema(s, { unrepresentable: "any", io: "input" }) as Record<string, unknown>;
      type = describeJson(js);
      dflt = js["default"];
    } catch {
      // Some schemas (refinements over several fields) have no JSON Schema form: the doc string says enough.
    }
    const optional = s.safeParse(undefined).success;
    return { name, type, required: !optional, ...(dflt !== undefined ? { default: dflt } : {}), ...(s.description ? { doc: s.description } : {}) };
  });
}

function describeJson(js: Record<string, unknown>): string {
  if (Array.isArray(js["enum"])) return (js["enum"] as unknown[]).map((v) => JSON.stringify(v)).join(" | ");
  if (Array.isArray(js["anyOf"])) return (js["anyOf"] as Record<string, unknown>[]).map(describeJson).join(" | ");
  const t = js["type"];
  if (t === "array") return `list<${describeJson((js["items"] as Record<string, unknown>) ?? {})}>`;
  if (t === "object") {
    const props = Object.keys((js["properties"] as object) ?? {});
    if (props.length === 1 && props[0] === "$ref") return "stage";
    if (props.includes("duration_ms")) return "duration";
    if (props.includes("fn")) return "value";
    return "record";
  }
  if (t === "integer") return "int";
  if (t === "number") return "float";
  if (t === "boolean") return "bool";
  return typeof t === "string" ? t : "value";
}

function signature(k: StageKind): string {
  const ins = k.inputs.map((i) => `${i.name}${i.optional ? "?" : ""}: ${i.type}${i.variadic ? "..." : ""}`).join(", ");
  return `${k.name}(${ins}) -> ${k.output}`;
}

export async function kindsVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { json: { type: "boolean" } }, help);
  if (!p) return 0;
  const reg = defaultRegistry();
  const name = p.positionals[0];
  if (!name) {
    const stages = [...reg.allStages()];
    const values = [...reg.allValues()];
    if (p.values.json) {
      process.stdout.write(JSON.stringify({ stages: stages.map((k) => ({ name: k.name, category: k.category, signature: signature(k) })), values: values.map((v) => ({ name: v.name, category: v.category })) }) + "\n");
      return 0;
    }
    const byCat = new Map<string, StageKind[]>();
    for (const k of stages) byCat.set(k.category, [...(byCat.get(k.category) ?? []), k]);
    for (const [cat, ks] of byCat) {
      process.stdout.write(`${cat}:\n`);
      for (const k of ks) process.stdout.write(`  ${signature(k)}\n`);
    }
    const vByCat = new Map<string, ValueFunction[]>();
    for (const v of values) vByCat.set(v.category, [...(vByCat.get(v.category) ?? []), v]);
    for (const [cat, vs] of vByCat) process.stdout.write(`values (${cat}): ${vs.map((v) => v.name).join(", ")}\n`);
    process.stdout.write("\nitp kinds NAME documents one.\n");
    return 0;
  }
  const k = reg.stage(name);
  const v = reg.value(name);
  if (!k && !v) throw new InputError(`no stage kind or value function \`${name}\`${(h => (h ? `; ${h}` : ""))(hintDidYouMean(name, [...reg.stageNames(), ...reg.valueNames()]))}`);
  const docs = [k && { kind: "stage", name: k.name, category: k.category, signature: signature(k), doc: k.doc, params: paramDocs(k.params), ...(k.components ? { components: { type: k.components.type, doc: k.components.doc } } : {}) }, v && { kind: "value", name: v.name, category: v.category, doc: v.doc, positional: v.positional, params: paramDocs(v.params) }].filter(Boolean) as Record<string, unknown>[];
  if (p.values.json) {
    process.stdout.write(JSON.stringify(docs) + "\n");
    return 0;
  }
  for (const d of docs) {
    process.stdout.write(`${d["kind"] === "stage" ? d["signature"] : `${d["name"]}(...)  [${d["category"]}]`}\n\n${d["doc"]}\n`);
    const comps = d["components"] as { type: string; doc: string } | undefined;
    if (comps) process.stdout.write(`\ncomponents (stage : rule), each ${comps.type}: ${comps.doc}\n`);
    process.stdout.write("\nparameters:\n");
    for (const pd of d["params"] as ParamDoc[]) {
      const dflt = pd.default !== undefined ? ` = ${JSON.stringify(pd.default)}` : pd.required ? " (required)" : "";
      process.stdout.write(`  ${pd.name}: ${pd.type}${dflt}${pd.doc ? `\n      ${pd.doc}` : ""}\n`);
    }
    process.stdout.write("\n");
  }
  return 0;
}
