import { readFile } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { hintDidYouMean } from "../../diagnostics/suggest.js";
import type { StageContext, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import { FLAN_VARIANTS } from "./kinds.js";
import { asyncImpl, checkAbort, dataInput, mapRecords, unitHash } from "../support/records.js";
import anli from "../../../stdlib/flan_templates/anli.json" with { type: "json" };
import boolq from "../../../stdlib/flan_templates/boolq.json" with { type: "json" };
import copa from "../../../stdlib/flan_templates/copa.json" with { type: "json" };
import rte from "../../../stdlib/flan_templates/rte.json" with { type: "json" };
import sst2 from "../../../stdlib/flan_templates/sst2.json" with { type: "json" };
import translation from "../../../stdlib/flan_templates/translation.json" with { type: "json" };
import xsum from "../../../stdlib/flan_templates/xsum.json" with { type: "json" };

/**
 * Flan-style instruction templates (Flan 2021 / the Flan Collection's `templates.py` and `few_shot_templates.py`,
 * in shape, not in text). A template set maps a task to its templates; a template is
 * `{inputs, targets, variants?, inputs_prefix?, targets_prefix?, x_y_delimiter?, example_separator?}`:
 * - `{field}` is the record's field, `{{` and `}}` are literal braces; a field the record lacks is an error, as with
 *   Python's `str.format`, so a typo in a template does not silently produce empty prompts;
 * - `{options_}` is the answer options, from the record's `options` list, as "OPTIONS:\n- a\n- b". The no-options
 *   variants leave it out, together with the whitespace before it;
 * - few-shot prompts are the exemplars and then the example itself, each `inputs_prefix + inputs + x_y_delimiter +
 *   targets_prefix + targets` (the example's own ends after targets_prefix, right-stripped), separated by
 *   `example_separator`; the defaults are Flan's FewShotPattern's: "", "", "\n\n", "\n\n\n";
 * - `variants` restricts a template to some of zs_opt, zs_noopt, fs_opt, fs_noopt.
 * The sets that ship with itp (stdlib/flan_templates, `templates = "std"`) were written for itp in Flan's shape;
 * Flan's own texts are not copied.
 */
export type FlanVariant = (typeof FLAN_VARIANTS)[number];

type Segment = { readonly text: string } | { readonly field: string } | { readonly options: true };

export interface FlanTemplate {
  /** 1-based number of the template in its task's list, for messages. */
  readonly n: number;
  readonly inputs: { readonly opt: readonly Segment[]; readonly noopt: readonly Segment[] };
  readonly targets: readonly Segment[];
  readonly variants?: readonly FlanVariant[];
  readonly inputsPrefix: string;
  readonly targetsPrefix: string;
  readonly xyDelimiter: string;
  readonly exampleSeparator: string;
}

export type TemplateSets = ReadonlyMap<string, readonly FlanTemplate[]>;

/** A templates file that cannot be used, or an example a template cannot fill (the caller adds where). */
export class FlanTemplateError extends Error {}

/** The name of the built-in sets in the `templates` parameter. */
export const STD_TEMPLATES = "std";

/** Parse `{field}` placeholders; `{{`/`}}` are literal braces. */
function segments(text: string, where: string): Segment[] {
  const out: Segment[] = [];
  let lit = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if ((c === "{" || c === "}") && text[i + 1] === c) {
      lit += c;
      i++;
    } else if (c === "{") {
      const close = text.indexOf("}", i);
      const name = close < 0 ? "" : text.slice(i + 1, close);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        throw new FlanTemplateError(`${where}: ${close < 0 ? `unclosed "{" at offset ${i}` : `"{${name}}" at offset ${i} is not a field name`} (write {{ and }} for literal braces)`);
      }
      if (lit) out.push({ text: lit });
      lit = "";
      out.push(name === "options_" ? { options: true } : { field: name });
      i = close;
    } else if (c === "}") {
      throw new FlanTemplateError(`${where}: unmatched "}" at offset ${i} (write }} for a literal brace)`);
    } else {
      lit += c;
    }
  }
  if (lit) out.push({ text: lit });
  return out;
}

/** The segments without the options placeholder and the whitespace before it (after it, when nothing precedes it). */
function withoutOptions(segs: readonly Segment[]): Segment[] {
  const out: Segment[] = [];
  for (let k = 0; k < segs.length; k++) {
    const s = segs[k]!;
    if (!("options" in s)) {
      out.push(s);
      continue;
    }
    const prev = out[out.length - 1];
    if (prev && "text" in prev) out[out.length - 1] = { text: prev.text.replace(/\s+$/u, "") };
    const next = segs[k + 1];
    if (out.every((x) => "text" in x && x.text === "") && next && "text" in next) {
      out.push({ text: next.text.replace(/^\s+/u, "") });
      k++;
    }
  }
  return out.filter((s) => !("text" in s) || s.text !== "");
}

const TEMPLATE_KEYS = new Set(["inputs", "targets", "variants", "inputs_prefix", "targets_prefix", "x_y_delimiter", "example_separator"]);

/** Read template sets from parsed JSON, checking every template (`file` names the source in messages). */
export function parseTemplateSets(json: unknown, file: string): Map<string, FlanTemplate[]> {
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new FlanTemplateError(`${file}: expected a JSON object {task: [templates]}`);
  const sets = new Map<string, FlanTemplate[]>();
  for (const [task, list] of Object.entries(json)) {
    if (!Array.isArray(list) || list.length === 0) throw new FlanTemplateError(`${file}: task "${task}": expected a non-empty list of templates`);
    sets.set(
      task,
      list.map((t, k) => {
        const where = `${file}: task "${task}", template ${k + 1}`;
        if (t === null || typeof t !== "object" || Array.isArray(t)) throw new FlanTemplateError(`${where}: expected an object {inputs, targets}`);
        const o = t as Record<string, unknown>;
        const unknown = Object.keys(o).filter((key) => !TEMPLATE_KEYS.has(key));
        if (unknown.length > 0) throw new FlanTemplateError(`${where}: unknown key ${unknown.map((u) => `\`${u}\``).join(", ")}; a template has ${[...TEMPLATE_KEYS].join(", ")}`);
        const str = (key: string, dflt?: string): string => {
          const v = o[key] ?? dflt;
          if (typeof v !== "string") throw new FlanTemplateError(`${where}: \`${key}\` ${v === undefined ? "is missing" : "is not a string"}`);
          return v;
        };
        const inputs = segments(str("inputs"), `${where}, inputs`);
        const targets = segments(str("targets"), `${where}, targets`);
        if (targets.some((s) => "options" in s)) throw new FlanTemplateError(`${where}: {options_} belongs in inputs, not targets`);
        const variants = o["variants"];
        if (variants !== undefined && (!Array.isArray(variants) || variants.length === 0 || variants.some((v) => !(FLAN_VARIANTS as readonly unknown[]).includes(v)))) {
          throw new FlanTemplateError(`${where}: \`variants\` must be a non-empty list of ${FLAN_VARIANTS.join(", ")}`);
        }
        return {
          n: k + 1,
          inputs: { opt: inputs, noopt: withoutOptions(inputs) },
          targets,
          ...(variants !== undefined ? { variants: variants as FlanVariant[] } : {}),
          inputsPrefix: str("inputs_prefix", ""),
          targetsPrefix: str("targets_prefix", ""),
          xyDelimiter: str("x_y_delimiter", "\n\n"),
          exampleSeparator: str("example_separator", "\n\n\n"),
        };
      }),
    );
  }
  return sets;
}

let std: TemplateSets | undefined;

/** itp's own template sets (stdlib/flan_templates), part of the implementation: changing them changes its version. */
export function stdTemplateSets(): TemplateSets {
  std ??= new Map(
    Object.entries({ anli, boolq, copa, rte, sst2, translation, xsum }).flatMap(([file, json]) => [...parseTemplateSets(json, `stdlib/flan_templates/${file}.json`)]),
  );
  return std;
}

/** "OPTIONS:\n- a\n- b", Flan's options block. */
export function optionsBlock(options: readonly string[]): string {
  return `OPTIONS:\n${options.map((o) => `- ${o}`).join("\n")}`;
}

const describeValue = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "object" ? "an object" : typeof v);

function fill(segs: readonly Segment[], r: RecordValue): string {
  let out = "";
  for (const s of segs) {
    if ("text" in s) {
      out += s.text;
    } else if ("field" in s) {
      const v = r[s.field];
      if (typeof v === "string") out += v;
      else if (typeof v === "number" || typeof v === "boolean") out += String(v);
      else if (v === undefined) {
        const has = Object.keys(r).map((k) => `\`${k}\``).join(", ") || "no fields";
        throw new FlanTemplateError(`has no field \`${s.field}\` (the template uses {${s.field}}; the record has ${has})`);
      } else throw new FlanTemplateError(`has field \`${s.field}\` holding ${describeValue(v)}, not text`);
    } else {
      const o = r["options"];
      if (!Array.isArray(o) || o.length === 0 || o.some((x) => typeof x !== "string" && typeof x !== "number")) {
        throw new FlanTemplateError(o === undefined ? "has no `options` list, which {options_} needs in the variants with options" : "has `options` that is not a non-empty list of strings");
      }
      out += optionsBlock(o.map(String));
    }
  }
  return out;
}

/** One example under one template: zero-shot, or few-shot after the exemplars. */
export function renderFlan(t: FlanTemplate, variant: FlanVariant, r: RecordValue, exemplars: readonly RecordValue[] = []): { instruction: string; output: string } {
  const inputs = variant.endsWith("_noopt") ? t.inputs.noopt : t.inputs.opt;
  const output = fill(t.targets, r);
  if (!variant.startsWith("fs_")) return { instruction: fill(inputs, r), output };
  const shots = exemplars.map((e, k) => {
    try {
      return t.inputsPrefix + fill(inputs, e) + t.xyDelimiter + t.targetsPrefix + fill(t.targets, e);
    } catch (err) {
      if (err instanceof FlanTemplateError) throw new FlanTemplateError(`exemplar ${k + 1} ${err.message}`);
      throw err;
    }
  });
  const self = (t.inputsPrefix + fill(inputs, r) + t.xyDelimiter + t.targetsPrefix).replace(/\s+$/u, "");
  return { instruction: [...shots, self].join(t.exampleSeparator), output };
}

/** Independent draws for one example: stream 0 is `unitHash(seed, index)` itself. */
function draw(seed: number, index: number, stream: number): number {
  return stream === 0 ? unitHash(seed, index) : unitHash(Math.floor(unitHash(seed, -stream) * 4294967296), index);
}

const STREAM_VARIANT = 1;
const STREAM_POOL = 2;
const STREAM_SHOTS = 3;

/** Per task, the candidates for exemplars: a seeded sample of at most this many records (memory: tasks x this). */
const POOL_SIZE = 64;

interface Pooled {
  readonly i: number;
  readonly k: number;
  readonly r: RecordValue;
}

/** `n` distinct exemplars from the pool for example `i`, never the example itself (a partial Fisher-Yates shuffle). */
function pickExemplars(pool: readonly Pooled[], i: number, n: number, seed: number): Pooled[] {
  const idx = pool.filter((p) => p.i !== i);
  const out: Pooled[] = [];
  for (let j = 0; j < n && j < idx.length; j++) {
    const k = j + Math.floor(draw(seed, i, STREAM_SHOTS + j) * (idx.length - j));
    [idx[j], idx[k]] = [idx[k]!, idx[j]!];
    out.push(idx[j]!);
  }
  return out;
}

async function loadSets(ctx: StageContext): Promise<TemplateSets> {
  const path = String(ctx.params["templates"]);
  if (path === STD_TEMPLATES) return stdTemplateSets();
  const abs = isAbsolute(path) ? path : resolve(ctx.baseDir, path);
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch (e) {
    throw new UserError(
      `${ctx.stage.id}: cannot read the templates file ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      `paths are relative to the recipe's folder; templates = "${STD_TEMPLATES}" uses itp's own sets`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${ctx.stage.id}: the templates file ${path} is not valid JSON (${(e as Error).message})`);
  }
  try {
    return parseTemplateSets(json, path);
  } catch (e) {
    if (e instanceof FlanTemplateError) throw new UserError(`${ctx.stage.id}: ${e.message}`);
    throw e;
  }
}

export const flanTemplatesImpl: StageImpl = asyncImpl(
  async (ctx, out) => {
    const sets = await loadSets(ctx);
    const fixedTask = ctx.params["task"] as string | undefined;
    const variants = (ctx.params["variants"] as FlanVariant[] | undefined) ?? [...FLAN_VARIANTS];
    const shots = (ctx.params["shots"] as number | undefined) ?? 3;
    const seed = (ctx.params["seed"] as number | undefined) ?? 42;
    const where = (i: number) => `${ctx.stage.id}: record ${i + 1}`;
    const known = () => {
      const names = [...sets.keys()].sort();
      return names.length <= 20 ? names.join(", ") : `${names.slice(0, 20).join(", ")}, ... (${names.length} in all)`;
    };
    const taskOf = (r: RecordValue, i: number): string => {
      const task = fixedTask ?? r["task"];
      if (typeof task !== "string") {
        throw new UserError(`${where(i)}: has no \`task\` field to choose its templates`, "set `task` on the stage to use one template set for every record");
      }
      if (!sets.has(task)) {
        throw new UserError(`${fixedTask !== undefined ? ctx.stage.id : where(i)}: no templates for task "${task}"; the templates have ${known()}`, hintDidYouMean(task, sets.keys()));
      }
      return task;
    };
    if (fixedTask !== undefined) taskOf({}, 0);

    // Exemplar pools, one pass ahead, only when a few-shot variant is in use.
    const pools = new Map<string, Pooled[]>();
    if (variants.some((v) => v.startsWith("fs_"))) {
      const poolSeed = Math.floor(draw(seed, 0, STREAM_POOL) * 4294967296);
      let i = 0;
      for await (const r of dataInput(ctx).read()) {
        const task = taskOf(r, i);
        let pool = pools.get(task);
        if (!pool) pools.set(task, (pool = []));
        pool.push({ i, k: unitHash(poolSeed, i), r });
        // Keep the POOL_SIZE smallest keys (a seeded sample of the task's records), trimming as it grows.
        if (pool.length >= 2 * POOL_SIZE) pools.set(task, pool.sort((a, b) => a.k - b.k || a.i - b.i).slice(0, POOL_SIZE));
        if (++i % 4096 === 0) checkAbort(ctx);
      }
      for (const [task, pool] of pools) pools.set(task, pool.sort((a, b) => a.k - b.k || a.i - b.i).slice(0, POOL_SIZE));
    }

    const perVariant = new Map<FlanVariant, number>();
    let short = 0;
    await mapRecords(ctx, out, (r, i) => {
      const task = taskOf(r, i);
      const variant = variants[Math.floor(draw(seed, i, STREAM_VARIANT) * variants.length)]!;
      const candidates = sets.get(task)!.filter((t) => !t.variants || t.variants.includes(variant));
      if (candidates.length === 0) {
        throw new UserError(`${where(i)}: task "${task}" has no template for the variant ${variant}`, "allow it in some template's `variants`, or leave it out of the stage's `variants`");
      }
      const t = candidates[Math.floor(draw(seed, i, 0) * candidates.length)]!;
      const exemplars = variant.startsWith("fs_") ? pickExemplars(pools.get(task) ?? [], i, shots, seed) : [];
      if (variant.startsWith("fs_") && exemplars.length < shots) short++;
      perVariant.set(variant, (perVariant.get(variant) ?? 0) + 1);
      try {
        return renderFlan(t, variant, r, exemplars.map((e) => e.r));
      } catch (e) {
        if (!(e instanceof FlanTemplateError)) throw e;
        const which = exemplars.length > 0 ? ` (its exemplars are records ${exemplars.map((x) => x.i + 1).join(", ")})` : "";
        throw new UserError(`${where(i)} (task "${task}", template ${t.n}, ${variant}): ${e.message}${which}`);
      }
    });
    let total = 0;
    for (const v of FLAN_VARIANTS) {
      const n = perVariant.get(v);
      if (n) ctx.count(`variant: ${v}`, n);
      total += n ?? 0;
    }
    ctx.count("kept", total);
    if (short) ctx.count(`few-shot with fewer than ${shots} exemplars`, short);
  },
  { files: (p) => (p["templates"] === STD_TEMPLATES || typeof p["templates"] !== "string" ? [] : [p["templates"]]) },
);
