import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from "node:path";
import { error, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { IrProgram, IrStage, Json } from "../core/ir.js";
import type { Registry } from "../stages/registry.js";

/**
 * A recipe's effects, computed from the checked program before anything runs (`itp plan` shows them, `itp diff`
 * compares them): the files it reads and writes, the hosts it contacts and which stages contact them, the
 * environment variables and secrets it reads (names only, never values), the GPUs it asks for with an estimate of
 * GPU-hours, and an estimate of what its generation costs where the model's prices are set.
 *
 * The same values are the ground of the safe default (`permissionDiagnostics`): writes outside the recipe's folder
 * and the store, and env() values sent to a host, are refused unless the command line (never a recipe) allows them.
 */

export interface FileEffect {
  /** As the recipe writes it (an env() path: as resolved from the environment). */
  readonly path: string;
  /** Absolute, symlinks resolved as far as the path exists; null when it comes from an env() that is not set. */
  readonly resolved: string | null;
  /** `stage.param` of each stage that reads or writes it. */
  readonly by: string[];
  /** Outside the recipe's folder and the store (an unresolved env() path counts as outside: it cannot be checked). */
  readonly outside: boolean;
  /** Inside the recipe's folder as written, but a symlink leads it outside. */
  readonly through_symlink?: true;
  /** The env() variable the path comes from. */
  readonly env?: string;
}

export interface HostEffect {
  /** `host[:port]`; null for an endpoint given by an env() variable that is not set. */
  readonly host: string | null;
  /** The base URL as resolved, or the endpoint's env() spelled `env("NAME")` when it is not set. */
  readonly url: string;
  /** `model endpoint` or `hub`. */
  readonly what: "model endpoint" | "hub";
  /** The model stages that name the endpoint (empty for the hub). */
  readonly models: string[];
  /** The stages that send requests to it. */
  readonly stages: string[];
}

export interface NameEffect {
  readonly name: string;
  /** `stage.param` of each place it is read. */
  readonly by: string[];
}

export interface GpuEffect {
  readonly stage: string;
  readonly kind: string;
  readonly gpus: number;
  /** Estimated GPU-hours; null when nothing to estimate them from is known. */
  readonly gpu_hours: number | null;
  /** How the estimate was made (or why there is none). */
  readonly basis: string;
}

export interface CostEffect {
  readonly stage: string;
  readonly model: string;
  readonly requests: number | null;
  readonly prompt_tokens: number | null;
  readonly completion_tokens: number | null;
  /** Estimated cost in the unit the model's prices are given in (per 1,000 tokens); null when not estimable. */
  readonly cost: number | null;
  readonly basis: string;
}

export interface Effects {
  readonly writes: FileEffect[];
  readonly reads: FileEffect[];
  readonly hosts: HostEffect[];
  readonly env: NameEffect[];
  readonly secrets: NameEffect[];
  readonly gpus: { readonly stages: GpuEffect[]; readonly total_gpus: number; readonly total_gpu_hours: number | null };
  readonly cost: { readonly stages: CostEffect[]; readonly total: number | null; readonly partial: boolean };
  /** Programs a stage starts from a command line the recipe writes (`serve`'s command), besides itp's own. */
  readonly commands: { readonly stage: string; readonly command: string }[];
}

/** What the pure front end needs to know of the machine; the CLI supplies it. */
export interface EffectContext {
  /** The recipe's folder, absolute (relative paths in a recipe are relative to it). */
  readonly folder: string;
  /** The store's folder, absolute; writes into it are always allowed. */
  readonly store?: string;
  /** The hub's endpoint (`HF_ENDPOINT`); default https://huggingface.co. */
  readonly hubEndpoint?: string;
  /** The real path of an existing path (symlinks resolved); undefined when it does not exist. */
  readonly realpath?: (path: string) => string | undefined;
  /** An environment variable's value, to resolve env() paths and endpoints (only names reach the output). */
  readonly env?: (name: string) => string | undefined;
  /** A stage's output record count when known (plan: from the store), for request estimates. */
  readonly records?: (stage: string) => number | undefined;
  /** What `itp plan` knows of a training stage: the base model's parameter count and the tokens of one epoch. */
  readonly training?: (stage: string) => { readonly params?: number; readonly tokens?: number; readonly tokensUpperBound?: boolean } | undefined;
}

/** What the command line (or a profile) allows beyond the safe default. Recipes cannot widen it. */
export interface Permissions {
  /** Absolute paths (files or folders) that may be written besides the recipe's folder and the store. */
  readonly allowWrite: readonly string[];
  /** Environment variables whose env() values may be sent to a host. */
  readonly allowEnv: readonly string[];
  /** Reads outside the recipe's folder are errors (CI running contributed recipes). */
  readonly denyReadOutside: boolean;
}

export const defaultPermissions: Permissions = { allowWrite: [], allowEnv: [], denyReadOutside: false };

/**
 * Local files each kind reads beyond the registry's `localInputs` (which drive the missing-file warning): models,
 * templates and prompt files. Hub ids for tokenizers are read from the local Hugging Face cache: not listed.
 */
const EXTRA_READS: Readonly<Record<string, (p: Readonly<Record<string, Json>>) => Json[]>> = {
  onnx_model: (p) => [p["path"], p["tokenizer"]].filter(isPathLike),
  hf_model: (p) => [p["repo"], p["tokenizer"]].filter(isPathLike),
  hf_chat_template: (p) => [p["path"]].filter(isPathLike),
  evol_instruct: (p) => [p["prompts"]].filter(isPathLike),
  flan_templates: (p) => (p["templates"] === "std" ? [] : [p["templates"]].filter(isPathLike)),
  sft: (p) => [p["base"]].filter(isPathLike),
  lora: (p) => [p["base"]].filter(isPathLike),
  qlora: (p) => [p["base"]].filter(isPathLike),
  dpo: (p) => [p["base"]].filter(isPathLike),
};

/** Parameters a `tokenizer` may name a file or folder in (`bytes` and hub ids excluded). */
const tokenizerRead = (p: Readonly<Record<string, Json>>): Json[] => {
  const t = p["tokenizer"];
  if (typeof t !== "string" || t === "bytes") return [];
  const hubId = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(t) && !t.endsWith(".json");
  return hubId ? [] : [t];
};

function isPathLike(v: Json | undefined): v is string | { $env: string } {
  return typeof v === "string" || isEnv(v);
}

function isEnv(v: Json | undefined): v is { $env: string } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && typeof v["$env"] === "string" && Object.keys(v).length === 1;
}

/** Parameters of a stage that names a file it writes. */
const WRITES: Readonly<Record<string, readonly string[]>> = { export: ["path"] };

/** Parameters of an endpoint model that stay on this machine or name the endpoint: env() there is never sent. */
const ENDPOINT_LOCAL = new Set(["base_url", "api_key", "concurrency", "rpm", "tpm", "timeout", "connect_timeout", "max_retries", "retry", "price_input", "price_output", "kind"]);
/** Parameters of a hub read that are not sent (the token is the hub's own credential). */
const HUB_LOCAL = new Set(["token", "limit", "on_error", "retry"]);
/** Parameters of a stage that uses an endpoint model that are not sent with its requests. */
const CONSUMER_LOCAL = new Set(["retry"]);

const ENDPOINT_KINDS = new Set(["openai_compatible"]);
const HUB_KINDS = new Set(["hf_dataset"]);
const TRAIN_KINDS = new Set(["sft", "lora", "qlora", "dpo"]);

/** The effects of a checked program (or of the stages of it given). */
export function programEffects(program: IrProgram, registry: Registry, ctx: EffectContext, only?: ReadonlySet<string>): Effects {
  const stages = [...program.stages.values()].filter((s) => !only || only.has(s.id));
  const files = new Files(ctx);
  const writes = new Map<string, FileEffect & { by: string[] }>();
  const reads = new Map<string, FileEffect & { by: string[] }>();
  const add = (into: Map<string, FileEffect & { by: string[] }>, f: FileEffect, by: string) => {
    const k = f.resolved ?? f.path;
    const e = into.get(k);
    if (e) {
      if (!e.by.includes(by)) e.by.push(by);
    } else into.set(k, { ...f, by: [by] });
  };
  const env = new Names();
  const secrets = new Names();
  for (const s of stages) {
    for (const param of WRITES[s.kind] ?? []) {
      const v = s.params[param];
      if (isPathLike(v)) add(writes, files.locate(v), `${s.id}.${param}`);
    }
    const kind = registry.stage(s.kind);
    const readPaths: Json[] = [...(kind?.localInputs?.(s.params) ?? []), ...(EXTRA_READS[s.kind]?.(s.params) ?? []), ...(s.kind !== "onnx_model" && s.kind !== "hf_model" ? tokenizerRead(s.params) : [])];
    for (const v of readPaths) if (isPathLike(v)) add(reads, files.locate(v), `${s.id}.${paramOf(s, v)}`);
    walk(s.params, "", (path, j) => {
      if (typeof j["$env"] === "string") env.add(j["$env"], `${s.id}.${path}`);
      if (typeof j["$secret"] === "string") secrets.add(j["$secret"], `${s.id}.${path}`);
    });
  }
  // A read the recipe's own export produces (an exported file read back) is still a read: both are listed.
  return {
    writes: sortFiles([...writes.values()]),
    reads: sortFiles([...reads.values()]),
    hosts: hostsOf(program, stages, ctx),
    env: env.list(),
    secrets: secrets.list(),
    gpus: gpusOf(stages, ctx),
    cost: costOf(program, stages, ctx),
    commands: stages.filter((s) => s.kind === "serve" && typeof s.params["command"] === "string").map((s) => ({ stage: s.id, command: s.params["command"] as string })),
  };
}

/** The parameter a path came from, for `stage.param` (the first whose value it is). */
function paramOf(s: IrStage, v: Json): string {
  for (const [k, p] of Object.entries(s.params)) if (p === v || (isEnv(p) && isEnv(v) && p.$env === v.$env)) return k;
  return "path";
}

function walk(j: Json, path: string, visit: (path: string, obj: { [k: string]: Json }) => void): void {
  if (j === null || typeof j !== "object") return;
  if (Array.isArray(j)) return j.forEach((x, i) => walk(x, `${path}[${i}]`, visit));
  visit(path, j);
  for (const [k, v] of Object.entries(j)) if (k !== "$env" && k !== "$secret") walk(v, path ? `${path}.${k}` : k, visit);
}

class Names {
  private readonly m = new Map<string, string[]>();
  add(name: string, by: string) {
    const l = this.m.get(name) ?? [];
    if (!l.includes(by)) l.push(by);
    this.m.set(name, l);
  }
  list(): NameEffect[] {
    return [...this.m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, by]) => ({ name, by }));
  }
}

function sortFiles(fs: FileEffect[]): FileEffect[] {
  return fs.sort((a, b) => Number(b.outside) - Number(a.outside) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Where paths lead: absolute, through symlinks as far as they exist, and whether that is inside the folder or store. */
class Files {
  private readonly roots: string[];
  constructor(private readonly ctx: EffectContext) {
    this.roots = [ctx.folder, ...(ctx.store ? [ctx.store] : [])].flatMap((r) => {
      const real = this.real(r);
      return real === r ? [r] : [r, real];
    });
  }

  /** The real path of `abs`: its longest existing ancestor's real path, then the rest as written. */
  real(abs: string): string {
    if (!this.ctx.realpath) return abs;
    let head = abs;
    const rest: string[] = [];
    for (;;) {
      const r = this.ctx.realpath(head);
      if (r !== undefined) return rest.length ? join(r, ...rest.reverse()) : r;
      const up = dirname(head);
      if (up === head) return abs;
      rest.push(head.slice(up.length).replace(/^[/\\]+/, ""));
      head = up;
    }
  }

  inside(abs: string): boolean {
    return this.roots.some((r) => within(abs, r));
  }

  locate(v: string | { $env: string }): FileEffect {
    let path: string;
    let fromEnv: string | undefined;
    if (typeof v === "string") path = v;
    else {
      fromEnv = v.$env;
      const val = this.ctx.env?.(v.$env);
      if (val === undefined || val === "") return { path: `env("${v.$env}")`, resolved: null, by: [], outside: true, env: v.$env };
      path = val;
    }
    const abs = isAbsolute(path) ? normalize(path) : resolve(this.ctx.folder, path);
    const real = this.real(abs);
    const lexicallyInside = this.inside(abs);
    const inside = lexicallyInside && this.inside(real);
    return { path, resolved: real, by: [], outside: !inside, ...(lexicallyInside && !inside ? { through_symlink: true as const } : {}), ...(fromEnv ? { env: fromEnv } : {}) };
  }
}

/** Whether `p` is `root` or below it. */
export function within(p: string, root: string): boolean {
  const rel = relative(root, p);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

function endpointUrl(s: IrStage, ctx: EffectContext): { url: string; host: string | null } {
  const b = s.params["base_url"];
  let url: string | undefined;
  let shown: string;
  if (typeof b === "string") url = shown = b;
  else if (isEnv(b)) {
    url = ctx.env?.(b.$env) || undefined;
    shown = url ?? `env("${b.$env}")`;
  } else shown = url = "https://api.openai.com/v1";
  let host: string | null = null;
  if (url !== undefined) {
    try {
      host = new URL(url).host;
    } catch {
      host = url;
    }
  }
  return { url: shown, host };
}

function hostsOf(program: IrProgram, stages: readonly IrStage[], ctx: EffectContext): HostEffect[] {
  const byKey = new Map<string, HostEffect & { models: string[]; stages: string[] }>();
  const ids = new Set(stages.map((s) => s.id));
  for (const m of program.stages.values()) {
    if (!ENDPOINT_KINDS.has(m.kind)) continue;
    const users = stages.filter((s) => s.inputs.some((i) => i.from === m.id)).map((s) => s.id);
    if (!ids.has(m.id) && users.length === 0) continue;
    const { url, host } = endpointUrl(m, ctx);
    const key = `endpoint\0${host ?? url}`;
    const e = byKey.get(key) ?? { host, url, what: "model endpoint" as const, models: [], stages: [] };
    e.models.push(m.id);
    for (const u of users) if (!e.stages.includes(u)) e.stages.push(u);
    byKey.set(key, e);
  }
  const hub = stages.filter((s) => HUB_KINDS.has(s.kind)).map((s) => s.id);
  if (hub.length > 0) {
    const url = ctx.hubEndpoint ?? "https://huggingface.co";
    let host: string | null = url;
    try {
      host = new URL(url).host;
    } catch {
      // shown as given
    }
    byKey.set("hub", { host, url, what: "hub", models: [], stages: hub });
  }
  return [...byKey.values()].map((h) => ({ ...h, stages: h.stages.sort() }));
}

function durationHours(v: Json | undefined): number | undefined {
  if (v && typeof v === "object" && !Array.isArray(v) && typeof v["duration_ms"] === "number") return v["duration_ms"] / 3_600_000;
  return undefined;
}

/**
 * Sustained training throughput assumed per GPU for the estimate: 100 TFLOP/s (a third of an A100's bf16 peak, a
 * tenth of an H100's). Training FLOPs: 6·N·T for full fine-tuning (forward and backward; Kaplan et al. 2020), 4·N·T
 * for LoRA and QLoRA (no weight gradients of the frozen base), 8·N·T for DPO (the policy's 6 plus the reference
 * model's forward pass), with N the base model's parameters and T the tokens over all epochs.
 */
export const ASSUMED_FLOPS_PER_GPU = 100e12;
const FLOPS_PER_PARAM_TOKEN: Readonly<Record<string, number>> = { sft: 6, lora: 4, qlora: 4, dpo: 8 };

function gpusOf(stages: readonly IrStage[], ctx: EffectContext): Effects["gpus"] {
  const out: GpuEffect[] = [];
  for (const s of stages) {
    if (TRAIN_KINDS.has(s.kind)) {
      const gpus = typeof s.params["gpus"] === "number" ? s.params["gpus"] : 1;
      const epochs = typeof s.params["epochs"] === "number" ? s.params["epochs"] : 1;
      const t = ctx.training?.(s.id);
      const limit = durationHours(s.params["time"]);
      let hours: number | null = null;
      let basis: string;
      if (gpus === 0) {
        hours = 0;
        basis = "trains on the CPU";
      } else if (t?.params !== undefined && t.tokens !== undefined) {
        const flops = FLOPS_PER_PARAM_TOKEN[s.kind]! * t.params * t.tokens * epochs;
        hours = flops / ASSUMED_FLOPS_PER_GPU / 3600;
        basis = `${FLOPS_PER_PARAM_TOKEN[s.kind]}·N·T FLOPs at ${ASSUMED_FLOPS_PER_GPU / 1e12} TFLOP/s per GPU; N = ${fmtCount(t.params)} parameters, T = ${fmtCount(Math.round(t.tokens * epochs))} tokens${t.tokensUpperBound ? " (at most: examples × max_length)" : ""}`;
        if (limit !== undefined && hours > gpus * limit) {
          hours = gpus * limit;
          basis += `; capped by its time limit (${gpus} × ${fmtNum(limit)} h)`;
        }
      } else if (limit !== undefined) {
        hours = gpus * limit;
        basis = `at most: ${gpus} GPU${gpus === 1 ? "" : "s"} × its time limit of ${fmtNum(limit)} h`;
      } else basis = "not estimated: the base model's size or the data's tokens are not known yet (itp plan knows them once its input is computed; or set `time`)";
      out.push({ stage: s.id, kind: s.kind, gpus, gpu_hours: hours === null ? null : round(hours, 2), basis });
    } else if (s.kind === "serve") {
      const gpus = typeof s.params["gpus"] === "number" ? s.params["gpus"] : 1;
      out.push({ stage: s.id, kind: s.kind, gpus, gpu_hours: null, basis: "a server for the run's duration: not estimated" });
    }
  }
  const known = out.filter((g) => g.gpu_hours !== null);
  return {
    stages: out,
    total_gpus: out.reduce((n, g) => Math.max(n, g.gpus), 0),
    total_gpu_hours: out.length === 0 ? 0 : known.length === out.length ? round(known.reduce((n, g) => n + g.gpu_hours!, 0), 2) : null,
  };
}

/**
 * The estimate of generation cost, where the model's `price_input` / `price_output` (per 1,000 tokens) are set.
 * Requests: from the stage's parameters and its input's record count (known to `itp plan` once the input is
 * computed): one per record (distill, backtranslate, quality_filter, judge pointwise), two per record (judge
 * pairwise), n per record (generate), records × rounds × (1 + answer + eliminate) (evol_instruct), records × turns ×
 * 2 (self_chat), target / per_call (generate_alpaca), 2 × target (self_instruct: instructions and instances), target
 * (generate without input). Prompt tokens per request: the stage's prompt text (prompt, system, rubric,
 * user_prompt; 1,000 characters for a built-in prompt) at 4 characters a token, plus 150 tokens for the record or
 * examples filled in. Completion tokens: max_tokens, an upper bound. Evaluation stages are not estimated.
 */
export const ASSUMED_FILL_TOKENS = 150;
export const BUILTIN_PROMPT_CHARS = 1000;

function costOf(program: IrProgram, stages: readonly IrStage[], ctx: EffectContext): Effects["cost"] {
  const out: CostEffect[] = [];
  for (const s of stages) {
    const ref = s.params["model"];
    const modelId = ref && typeof ref === "object" && !Array.isArray(ref) && typeof ref["$ref"] === "string" ? ref["$ref"] : undefined;
    const m = modelId ? program.stages.get(modelId) : undefined;
    if (!m || !ENDPOINT_KINDS.has(m.kind)) continue;
    const pin = m.params["price_input"];
    const pout = m.params["price_output"];
    if (typeof pin !== "number" && typeof pout !== "number") continue;
    const base = { stage: s.id, model: m.id };
    const requests = requestsOf(s, ctx);
    if (typeof requests === "string") {
      out.push({ ...base, requests: null, prompt_tokens: null, completion_tokens: null, cost: null, basis: requests });
      continue;
    }
    const promptChars = ["prompt", "system", "rubric", "user_prompt"].reduce((n, k) => n + (typeof s.params[k] === "string" ? (s.params[k] as string).length : 0), 0);
    const perPrompt = Math.ceil((promptChars > 0 ? promptChars : BUILTIN_PROMPT_CHARS) / 4) + ASSUMED_FILL_TOKENS;
    const maxTokens = typeof s.params["max_tokens"] === "number" ? s.params["max_tokens"] : typeof m.params["max_tokens"] === "number" ? m.params["max_tokens"] : 1024;
    const prompt = requests.n * perPrompt;
    const completion = requests.n * maxTokens;
    const cost = (prompt * (typeof pin === "number" ? pin : 0) + completion * (typeof pout === "number" ? pout : 0)) / 1000;
    out.push({
      ...base,
      requests: requests.n,
      prompt_tokens: prompt,
      completion_tokens: completion,
      cost: round(cost, 4),
      basis: `${fmtCount(requests.n)} requests (${requests.how}) × (~${perPrompt} prompt tokens + at most ${maxTokens} completion tokens)`,
    });
  }
  const known = out.filter((c) => c.cost !== null);
  return { stages: out, total: known.length > 0 || out.length === 0 ? round(known.reduce((n, c) => n + c.cost!, 0), 4) : null, partial: known.length < out.length };
}

/** Requests a generation stage sends, or why that is not known yet. */
function requestsOf(s: IrStage, ctx: EffectContext): { n: number; how: string } | string {
  const p = s.params;
  const num = (k: string, d: number) => (typeof p[k] === "number" ? (p[k] as number) : d);
  const data = s.inputs.find((i) => i.role === "data" || i.role === "seeds");
  const records = data ? ctx.records?.(data.from) : undefined;
  const need = (f: (r: number) => { n: number; how: string }) => (records !== undefined ? f(records) : `not estimated: the records of \`${data?.from ?? "its input"}\` are known once it is computed`);
  switch (s.kind) {
    case "generate":
      if (!s.inputs.some((i) => i.role === "data")) return { n: num("target", 1), how: "target" };
      return need((r) => ({ n: r * num("n", 1), how: `${fmtCount(r)} records × n ${num("n", 1)}` }));
    case "self_instruct":
      return { n: 2 * num("target", 52_000), how: "2 × target: instructions and instances" };
    case "generate_alpaca":
      return { n: Math.ceil(num("target", 52_000) / num("per_call", 20)), how: "target / per_call" };
    case "evol_instruct": {
      const per = 1 + (p["answer"] !== false ? 1 : 0) + (p["eliminate"] !== false ? 1 : 0);
      return need((r) => ({ n: r * num("rounds", 4) * per, how: `${fmtCount(r)} records × ${num("rounds", 4)} rounds × ${per}` }));
    }
    case "self_chat":
      return need((r) => ({ n: r * num("turns", 3) * 2, how: `${fmtCount(r)} records × ${num("turns", 3)} turns × 2` }));
    case "judge":
      return need((r) => ({ n: r * (p["mode"] === "pairwise" ? 2 : 1), how: `${fmtCount(r)} records${p["mode"] === "pairwise" ? " × 2 orders" : ""}` }));
    case "distill":
    case "backtranslate":
    case "quality_filter":
      return need((r) => ({ n: r, how: `${fmtCount(r)} records` }));
    default:
      return "not estimated for this kind of stage";
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function fmtNum(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}

function fmtCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  return n.toLocaleString("en-US");
}

/**
 * The safe default, over a program's effects: a write outside the recipe's folder and the store (E080), an env()
 * value placed in what is sent to a host (E081), one credential sent to two hosts (E083: a recipe that names your
 * OpenAI key as the credential of another host), and with `denyReadOutside` a read outside the folder (E082), each
 * refused unless the permissions allow exactly it. Only the command line (and a profile) give permissions: nothing
 * in a recipe, imported or not, can widen them.
 */
export function permissionDiagnostics(program: IrProgram, effects: Effects, ctx: EffectContext, perms: Permissions): Diagnostic[] {
  const out: Diagnostic[] = [];
  const allowedWrite = (f: FileEffect) => f.resolved !== null && perms.allowWrite.some((a) => within(f.resolved!, a) || within(f.resolved!, realOf(a, ctx)));
  const rangeOf = (by: string) => program.stages.get(stageOf(by, program))?.range;
  for (const w of effects.writes) {
    if (!w.outside || allowedWrite(w)) continue;
    for (const by of w.by) {
      const stage = stageOf(by, program);
      const param = by.slice(stage.length + 1);
      const where =
        w.resolved === null
          ? `\`${param}\` comes from env("${w.env}"), which is not set, so where it writes cannot be checked`
          : w.through_symlink
            ? `\`${param}\` is \`${w.path}\`, which a symlink leads to ${w.resolved}`
            : `\`${param}\` is \`${w.path}\`${w.resolved !== w.path ? ` (${w.resolved})` : ""}`;
      out.push(
        error(
          "E080",
          `stage \`${stage}\` would write outside the recipe's folder (${ctx.folder}) and the store: ${where}`,
          rangeOf(by),
          w.resolved === null ? `set ${w.env} to a path inside the recipe's folder` : `write inside the recipe's folder (a relative path without ..), or allow this destination: --allow-write ${w.resolved}`,
        ),
      );
    }
  }
  for (const leak of sentEnv(program, ctx)) {
    if (perms.allowEnv.includes(leak.name)) continue;
    const s = program.stages.get(leak.stage)!;
    out.push(
      error(
        "E081",
        leak.via
          ? `stage \`${leak.stage}\` puts the value of env("${leak.name}") in \`${leak.param}\`, which reaches the requests \`${leak.via}\` sends to ${leak.to}`
          : `stage \`${leak.stage}\` would send the value of env("${leak.name}") to ${leak.to}: it is in \`${leak.param}\`, part of what is sent`,
        s.range,
        `env() values are kept out of requests so that a recipe cannot send your environment anywhere (only an endpoint's base_url and credentials may come from it); if this one is meant to be sent, allow it: --allow-env ${leak.name}`,
      ),
    );
  }
  for (const [name, uses] of credentialHosts(program, ctx)) {
    if (uses.size < 2 || perms.allowEnv.includes(name)) continue;
    const list = [...uses].map(([host, stage]) => `${host} (\`${stage}\`)`);
    const second = [...uses.values()][1]!;
    out.push(
      error(
        "E083",
        `the credential ${name} is sent to ${uses.size} hosts: ${list.join(", ")}; a credential goes to its own endpoint only`,
        program.stages.get(second)?.range,
        `give each endpoint its own secret, or, if these hosts share the credential, allow it: --allow-env ${name}`,
      ),
    );
  }
  if (perms.denyReadOutside) {
    for (const r of effects.reads) {
      if (!r.outside) continue;
      for (const by of r.by) {
        out.push(
          error(
            "E082",
            `stage \`${stageOf(by, program)}\` reads \`${r.path}\`${r.resolved !== null && r.resolved !== r.path ? ` (${r.resolved})` : ""}, outside the recipe's folder (${ctx.folder}), and --deny-read-outside is set`,
            rangeOf(by),
            "copy the file into the recipe's folder, or run without --deny-read-outside",
          ),
        );
      }
    }
  }
  return out;
}

/** Each credential (secret() or env() in api_key, token) by name: the hosts it is sent to, with the first stage. */
function credentialHosts(program: IrProgram, ctx: EffectContext): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  const note = (v: Json | undefined, host: string, stage: string) => {
    const name = v && typeof v === "object" && !Array.isArray(v) ? (typeof v["$secret"] === "string" ? v["$secret"] : typeof v["$env"] === "string" ? v["$env"] : undefined) : undefined;
    if (name === undefined) return;
    const m = out.get(name) ?? new Map<string, string>();
    if (!m.has(host)) m.set(host, stage);
    out.set(name, m);
  };
  for (const s of program.stages.values()) {
    if (ENDPOINT_KINDS.has(s.kind)) {
      const { host, url } = endpointUrl(s, ctx);
      note(s.params["api_key"], host ?? url, s.id);
    } else if (HUB_KINDS.has(s.kind)) {
      const hub = ctx.hubEndpoint ?? "https://huggingface.co";
      let host = hub;
      try {
        host = new URL(hub).host;
      } catch {
        // shown as given
      }
      note(s.params["token"], host, s.id);
    }
  }
  return out;
}

function realOf(p: string, ctx: EffectContext): string {
  return ctx.realpath?.(p) ?? p;
}

/** The stage of a `stage.param` (stage ids contain dots: the longest id that prefixes it). */
function stageOf(by: string, program: IrProgram): string {
  let best = by.slice(0, by.lastIndexOf("."));
  for (let i = by.indexOf("."); i > 0; i = by.indexOf(".", i + 1)) {
    const id = by.slice(0, i);
    if (program.stages.has(id)) best = id;
  }
  return best;
}

/** env() values that a stage places in what it sends to a host: its requests, a hub query. */
export function sentEnv(program: IrProgram, ctx: EffectContext): { stage: string; param: string; name: string; to: string; via?: string }[] {
  const out: { stage: string; param: string; name: string; to: string; via?: string }[] = [];
  const endpointName = (m: IrStage) => {
    const { host, url } = endpointUrl(m, ctx);
    return `the endpoint of \`${m.id}\` (${host ?? url})`;
  };
  for (const s of program.stages.values()) {
    let to: string | undefined;
    let local: ReadonlySet<string> = CONSUMER_LOCAL;
    if (ENDPOINT_KINDS.has(s.kind)) {
      to = endpointName(s);
      local = ENDPOINT_LOCAL;
    } else if (HUB_KINDS.has(s.kind)) {
      to = `the hub (${ctx.hubEndpoint ?? "https://huggingface.co"})`;
      local = HUB_LOCAL;
    } else {
      const m = s.inputs.map((i) => program.stages.get(i.from)).find((u) => u && ENDPOINT_KINDS.has(u.kind));
      if (m) to = endpointName(m);
    }
    if (!to) continue;
    for (const [k, v] of Object.entries(s.params)) {
      if (local.has(k)) continue;
      walk(v, k, (path, j) => {
        if (typeof j["$env"] === "string") out.push({ stage: s.id, param: path, name: j["$env"], to: to! });
      });
    }
    // What flows into the requests from upstream: records and templates made with env() values (a record's field,
    // a template's text) are sent as the prompt. Models upstream are checked as what they are; paths stay local.
    const seen = new Set<string>();
    const up = s.inputs.map((i) => i.from);
    while (up.length > 0) {
      const id = up.pop()!;
      const u = program.stages.get(id);
      if (!u || seen.has(id) || u.category === "model") continue;
      seen.add(id);
      up.push(...u.inputs.map((i) => i.from));
      if (HUB_KINDS.has(u.kind)) continue;
      for (const [k, v] of Object.entries(u.params)) {
        if (UPSTREAM_LOCAL.has(k)) continue;
        walk(v, k, (path, j) => {
          if (typeof j["$env"] === "string" && !out.some((o) => o.stage === u.id && o.param === path)) out.push({ stage: u.id, param: path, name: j["$env"], to: to!, via: s.id });
        });
      }
    }
  }
  return out;
}

/** Parameters of a stage upstream of a request whose values do not enter the records or texts sent. */
const UPSTREAM_LOCAL = new Set(["path", "dir", "pattern", "tokenizer", "prompts", "templates", "retry", "limit", "on_error", "executor", "partition", "seed"]);

/** What changed in a recipe's effects between two versions: what `itp diff` shows first. */
export interface EffectsDiff {
  readonly hosts: { readonly added: HostEffect[]; readonly removed: HostEffect[] };
  /** Writes and reads outside the recipe's folder and the store that are new (or gone). */
  readonly writes_outside: { readonly added: FileEffect[]; readonly removed: FileEffect[] };
  readonly reads_outside: { readonly added: FileEffect[]; readonly removed: FileEffect[] };
  readonly env: { readonly added: string[]; readonly removed: string[] };
  readonly secrets: { readonly added: string[]; readonly removed: string[] };
  readonly commands: { readonly added: Effects["commands"]; readonly removed: Effects["commands"] };
  readonly gpus: { readonly old: number; readonly new: number } | null;
}

export function diffEffects(o: Effects, n: Effects): EffectsDiff {
  const hostKey = (h: HostEffect) => `${h.what}\0${h.host ?? h.url}`;
  const fileKey = (f: FileEffect) => f.resolved ?? f.path;
  const delta = <T>(a: readonly T[], b: readonly T[], key: (x: T) => string) => {
    const ak = new Set(a.map(key));
    const bk = new Set(b.map(key));
    return { added: b.filter((x) => !ak.has(key(x))), removed: a.filter((x) => !bk.has(key(x))) };
  };
  const names = (a: readonly NameEffect[], b: readonly NameEffect[]) => {
    const d = delta(a, b, (x) => x.name);
    return { added: d.added.map((x) => x.name), removed: d.removed.map((x) => x.name) };
  };
  return {
    hosts: delta(o.hosts, n.hosts, hostKey),
    writes_outside: delta(o.writes.filter((f) => f.outside), n.writes.filter((f) => f.outside), fileKey),
    reads_outside: delta(o.reads.filter((f) => f.outside), n.reads.filter((f) => f.outside), fileKey),
    env: names(o.env, n.env),
    secrets: names(o.secrets, n.secrets),
    commands: delta(o.commands, n.commands, (c) => `${c.stage}\0${c.command}`),
    gpus: o.gpus.total_gpus !== n.gpus.total_gpus ? { old: o.gpus.total_gpus, new: n.gpus.total_gpus } : null,
  };
}

export function effectsDiffEmpty(d: EffectsDiff): boolean {
  return [d.hosts, d.writes_outside, d.reads_outside, d.env, d.secrets, d.commands].every((x) => x.added.length === 0 && x.removed.length === 0) && d.gpus === null;
}
