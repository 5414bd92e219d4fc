import type { z } from "zod";
import { error } from "../diagnostics/diagnostic.js";
import type { SourceFile } from "../diagnostics/source.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";
import { deepMarker, universalParams } from "../stages/schema.js";
import type { StageKind } from "../stages/registry.js";
import type * as A from "../syntax/ast.js";
import { hasEnv, type Ctx, type Elab, type Env, type OverrideValue, type Spot, type Val } from "./elaboration.js";
import type { IrInput, Json } from "../core/ir.js";

/** A `mix` component: `stage : rule` in the call's block. */
export interface Component {
  readonly key: string;
  readonly val: Val;
  rule: Json;
  readonly at: A.Span;
  readonly ruleAt: A.Span;
}

/**
 * A stage call with its arguments, block entries and overrides bound to the kind's inputs, parameters and
 * components: the result of the binding phase, handed to parameter validation and edge typing.
 */
export interface BoundCall {
  readonly kind: StageKind;
  readonly call: A.Call;
  /** The file the call is written in. */
  readonly file: SourceFile;
  readonly id: string;
  /** The kind's parameters with the universal ones; and the kind's own names, in declaration order. */
  readonly shape: Record<string, z.ZodType>;
  readonly paramKeys: readonly string[];
  /** Positional inputs in order: a piped dataset first. */
  readonly inputs: { val: Val; at: A.Span }[];
  /** Parameter values as written (stage references as `{ $ref: id }`). */
  readonly params: Record<string, Json>;
  /** Where each parameter's value was written: errors about the value are reported there. */
  readonly spans: Map<string, Spot>;
  /** Parameters given through env()/secret(): validated at run time. */
  readonly envKeys: Set<string>;
  /** Parameters set from a recipe parameter (`max = rouge_max`): param -> `instance.recipe_param`. */
  readonly fromRecipe: Map<string, string>;
  /** Parameters whose value had an error of its own: left out of validation, so the others are still checked. */
  readonly failedKeys: Set<string>;
  /** Stage references inside parameter values (`param:model`). */
  readonly refInputs: IrInput[];
  /** By key: a Flan-scale sub-mixture has thousands of components. */
  readonly components: Map<string, Component>;
  /** Whether an error was reported while binding. */
  bad: boolean;
}

const shapes = new WeakMap<StageKind, Record<string, z.ZodType>>();
/** A kind's parameters, plus those every stage takes (`retry`). */
function shapeWithUniversal(kind: StageKind): Record<string, z.ZodType> {
  let s = shapes.get(kind);
  if (!s) shapes.set(kind, (s = { ...universalParams(), ...(kind.params.shape as Record<string, z.ZodType>) }));
  return s;
}

const paramKeysOf = new WeakMap<StageKind, string[]>();
function keysOf(kind: StageKind): string[] {
  let k = paramKeysOf.get(kind);
  if (!k) paramKeysOf.set(kind, (k = Object.keys(kind.params.shape)));
  return k;
}

/**
 * The binding phase of a stage call: positional arguments (stage outputs are inputs, plain values fill parameters
 * in declaration order), named arguments, block entries and components, then the overrides written at a recipe
 * instantiation and on the command line. Each value is evaluated where it was written.
 */
export function bindStageCall(el: Elab, kind: StageKind, c: A.Call, env: Env, ctx: Ctx, id: string, piped?: Val): BoundCall {
  const b = new CallBinder(el, kind, c, env, ctx, id);
  if (piped) b.bound.inputs.push({ val: piped, at: c.callee });
  b.arguments();
  b.blockEntries();
  b.recipeOverrides();
  b.commandLineOverrides();
  return b.bound;
}

class CallBinder {
  readonly bound: BoundCall;
  private readonly inputNames: string[];

  constructor(
    private readonly el: Elab,
    kind: StageKind,
    private readonly c: A.Call,
    private readonly env: Env,
    private readonly ctx: Ctx,
    id: string,
  ) {
    this.inputNames = kind.inputs.map((i) => i.name);
    this.bound = {
      kind,
      call: c,
      file: env.mod.ast.file,
      id,
      shape: shapeWithUniversal(kind),
      paramKeys: keysOf(kind),
      inputs: [],
      params: {},
      spans: new Map(),
      envKeys: new Set(),
      fromRecipe: new Map(),
      failedKeys: new Set(),
      refInputs: [],
      components: new Map(),
      bad: false,
    };
  }

  private setParam(key: string, expr: A.Expr, at: A.Span, valueEnv: Env): void {
    const b = this.bound;
    if (key in b.params) {
      this.el.err("E021", `parameter \`${key}\` is set twice`, b.file, at, "remove one of them");
      return;
    }
    const s = b.shape[key]!;
    const v = this.el.expr(expr, valueEnv, this.ctx.sub(), deepMarker(s), s);
    const origin = expr.type === "Reference" && expr.path.length === 1 ? valueEnv.locals?.origins.get(expr.path[0]!.text) : undefined;
    b.spans.set(key, origin ?? { file: valueEnv.mod.ast.file, span: at });
    if (v.t === "error") {
      b.bad = true;
      b.failedKeys.add(key);
      return;
    }
    const json: Json = v.t === "json" ? v.v : { $ref: v.id };
    b.params[key] = json;
    const name = expr.type === "Reference" && expr.path.length === 1 ? expr.path[0]!.text : undefined;
    const locals = valueEnv.locals;
    if (name !== undefined && v.t === "json" && locals?.recipe.params.some((p) => p.name.text === name)) b.fromRecipe.set(key, `${locals.instanceId}.${name}`);
    collectRefs(json, key, b.refInputs);
    if (hasEnv(json)) b.envKeys.add(key);
  }

  private unknownParam(key: string, at: A.Span): void {
    const { kind, paramKeys, file } = this.bound;
    this.el.err("E030", `\`${kind.name}\` has no parameter \`${key}\``, file, at, hintDidYouMean(key, [...paramKeys, ...this.inputNames]) ?? `its parameters: ${paramKeys.join(", ") || "none"}`);
    this.bound.bad = true;
  }

  /** Positional arguments: stage outputs are inputs; plain values fill parameters in declaration order. */
  arguments(): void {
    const { kind, shape, paramKeys, params, inputs, file } = this.bound;
    let nextParam = 0;
    for (const a of this.c.args) {
      if (a.name) {
        const key = a.name.text;
        if (key in shape) this.setParam(key, a.value, a.name, this.env);
        else if (this.inputNames.includes(key)) inputs.push({ val: this.el.expr(a.value, this.env, this.ctx.sub()), at: a.value });
        else this.unknownParam(key, a.name);
        continue;
      }
      if (a.value.type === "Literal" || a.value.type === "List" || a.value.type === "Record") {
        while (nextParam < paramKeys.length && paramKeys[nextParam]! in params) nextParam++;
        const key = paramKeys[nextParam];
        if (key === undefined) {
          this.el.err("E030", `\`${kind.name}\` takes no more values`, file, a.value, paramKeys.length ? `name the parameter: \`${paramKeys[0]}: ...\`` : "remove the argument");
          this.bound.bad = true;
        } else this.setParam(key, a.value, a.value, this.env);
        continue;
      }
      inputs.push({ val: this.el.expr(a.value, this.env, this.ctx.sub()), at: a.value });
    }
  }

  /** `name = value` (a parameter or a named input) and `stage : rule` (a component) in the call's block. */
  blockEntries(): void {
    const { kind, shape, file } = this.bound;
    for (const en of this.c.block?.entries ?? []) {
      const key = en.key.map((k) => k.text).join(".");
      if (en.op === ":") {
        this.component(en, key);
        continue;
      }
      if (en.key.length > 1 || en.quoted) {
        this.el.err("E030", `\`${key}\` is not a parameter of \`${kind.name}\``, file, en.key[0]!, "dotted keys override a recipe's inner stages; this is a stage");
        this.bound.bad = true;
        continue;
      }
      if (key in shape) this.setParam(key, en.value, en.key[0]!, this.env);
      else if (this.inputNames.includes(key)) {
        const v = this.el.expr(en.value, this.env, this.ctx.sub());
        if (v.t === "json") {
          this.el.err("E040", `input \`${key}\` of \`${kind.name}\` needs a stage, got a plain value`, file, en.value, "refer to a dataset or model stage by name");
          this.bound.bad = true;
        } else this.bound.inputs.push({ val: v, at: en.value });
      } else this.unknownParam(key, en.key[0]!);
    }
  }

  private component(en: A.Entry, key: string): void {
    const { kind, file, components } = this.bound;
    if (!kind.components) {
      this.el.err("E030", `\`${kind.name}\` takes no components (\`name : rule\`)`, file, en.key[0]!, "set parameters with `=`: `name = value`");
      this.bound.bad = true;
      return;
    }
    if (en.quoted || en.key.length > 1) {
      this.el.err("E020", `a component is a stage name, not \`${key}\``, file, en.key[0]!);
      this.bound.bad = true;
      return;
    }
    const ref: A.Reference = { type: "Reference", path: en.key, start: en.key[0]!.start, end: en.key[0]!.end };
    const val = this.el.reference(ref, this.env);
    const rule = this.el.expr(en.value, this.env, this.ctx.sub(), deepMarker(kind.components.rule), kind.components.rule);
    if (components.has(key)) this.el.err("E021", `component \`${key}\` appears twice`, file, en.key[0]!, "remove one of them");
    else if (val.t !== "error" && rule.t !== "error") components.set(key, { key, val, rule: rule.t === "json" ? rule.v : { $ref: rule.id }, at: en, ruleAt: en.value });
    else this.bound.bad = true;
  }

  /** Overrides of this inner stage written at the recipe instantiation: `tulu(...) { mixture.seed = 7 }`. */
  recipeOverrides(): void {
    const { kind, shape, paramKeys, components } = this.bound;
    const inner = this.ctx.innerName && this.env.locals?.innerOverrides.get(this.ctx.innerName);
    for (const { entry, env: oenv } of inner || []) {
      const pkey = entry.key.slice(1).map((k) => k.text).join(".");
      const comp = kind.components && components.get(pkey);
      if (comp) {
        const rule = this.el.expr(entry.value, oenv, this.ctx.sub(), deepMarker(kind.components!.rule), kind.components!.rule);
        if (rule.t === "json") comp.rule = rule.v;
        continue;
      }
      if (!(pkey in shape)) {
        this.el.diagnostics.push(error("E030", `\`${this.ctx.innerName}\` (\`${kind.name}\`) has no parameter or component \`${pkey}\``, { file: oenv.mod.ast.file, start: entry.key[1]?.start ?? entry.start, end: entry.key[entry.key.length - 1]!.end }, hintDidYouMean(pkey, [...paramKeys, ...components.keys()]) ?? `its parameters: ${paramKeys.join(", ")}`));
        this.bound.bad = true;
        continue;
      }
      delete this.bound.params[pkey];
      this.setParam(pkey, entry.value, entry.key[1] ?? entry, oenv);
    }
  }

  /** `--set id.param=value`: last, so it wins over everything written in the recipes. */
  commandLineOverrides(): void {
    const { kind, shape, components, id } = this.bound;
    const cli: ReadonlyMap<string, OverrideValue> | undefined = this.el.overrides.get(id);
    for (const [p, o] of cli ?? []) {
      const comp = kind.components && components.get(p);
      if (comp) {
        this.el.usedOverrides.add(`${id}\0${p}`);
        const rule = this.el.expr(o.expr, o.env, this.ctx.sub(), deepMarker(kind.components!.rule), kind.components!.rule);
        if (rule.t === "json") comp.rule = rule.v;
        else this.bound.bad = true;
        continue;
      }
      if (!(p in shape)) continue; // reported as unmatched at the end
      this.el.usedOverrides.add(`${id}\0${p}`);
      delete this.bound.params[p];
      this.setParam(p, o.expr, o.expr, o.env);
    }
  }
}

function collectRefs(j: Json, path: string, out: IrInput[]): void {
  if (j === null || typeof j !== "object") return;
  if (Array.isArray(j)) {
    j.forEach((x, i) => collectRefs(x, `${path}[${i}]`, out));
    return;
  }
  if (typeof j["$ref"] === "string" && Object.keys(j).length === 1) {
    out.push({ role: `param:${path}`, from: j["$ref"] });
    return;
  }
  for (const [k, v] of Object.entries(j)) collectRefs(v, `${path}.${k}`, out);
}
