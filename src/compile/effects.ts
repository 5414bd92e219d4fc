import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from "node:path";
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

export { defaultPermissions, type CostEffect, type EffectContext, type Effects, type FileEffect, type GpuEffect, type HostEffect, type NameEffect, type Permissions } from "./effect-types.js";
import { EXTRA_READS, HUB_KINDS, ENDPOINT_KINDS, WRITES, isEnv, isPathLike, tokenizerRead, type EffectContext, type Effects, type FileEffect, type HostEffect, type NameEffect } from "./effect-types.js";
import { costOf, gpusOf } from "./effect-estimates.js";

/** The effects of a checked program (or of the stages of it given). */
export function programEffects(program: IrProgram, registry: Registry, ctx: EffectContext, only?: ReadonlySet<string>): Effects {
  const stages = [...program.stages.values()].filter((s) => !only || only.has(s.id));
  const { writes, reads } = stageFileEffects(stages, registry, ctx);
  const env = new Names();
  const secrets = new Names();
  for (const s of stages) {
    walk(s.params, "", (path, j) => {
      if (typeof j["$env"] === "string") env.add(j["$env"], `${s.id}.${path}`);
      if (typeof j["$secret"] === "string") secrets.add(j["$secret"], `${s.id}.${path}`);
    });
  }
  // A read the recipe's own export produces (an exported file read back) is still a read: both are listed.
  return {
    writes,
    reads,
    hosts: hostsOf(program, stages, ctx),
    env: env.list(),
    secrets: secrets.list(),
    gpus: gpusOf(stages, ctx),
    cost: costOf(program, stages, ctx),
    commands: stages.filter((s) => s.kind === "serve" && typeof s.params["command"] === "string").map((s) => ({ stage: s.id, command: s.params["command"] as string })),
  };
}

/**
 * Only the files a program writes and, when `reads` is asked for (`--deny-read-outside`), reads: what the safe
 * default checks before every run and check, without the hosts, names and estimates that only `plan` and `diff`
 * show. Locating a read costs a real path per input file, and a Flan-sized recipe has thousands.
 */
export function fileEffects(program: IrProgram, registry: Registry, ctx: EffectContext, want: { reads: boolean }): Pick<Effects, "writes" | "reads"> {
  return stageFileEffects([...program.stages.values()], registry, ctx, want.reads);
}

function stageFileEffects(stages: readonly IrStage[], registry: Registry, ctx: EffectContext, withReads = true): Pick<Effects, "writes" | "reads"> {
  const files = new Files(ctx);
  // `seen` beside each `by`: thousands of stages can read one file (a tokenizer), and a list scan per stage is quadratic.
  const writes = new Map<string, FileEffect & { by: string[]; seen: Set<string> }>();
  const reads = new Map<string, FileEffect & { by: string[]; seen: Set<string> }>();
  const add = (into: Map<string, FileEffect & { by: string[]; seen: Set<string> }>, f: FileEffect, by: string) => {
    const k = f.resolved ?? f.path;
    const e = into.get(k);
    if (!e) into.set(k, { ...f, by: [by], seen: new Set([by]) });
    else if (!e.seen.has(by)) {
      e.seen.add(by);
      e.by.push(by);
    }
  };
  const listed = (m: Map<string, FileEffect & { by: string[]; seen: Set<string> }>): FileEffect[] => sortFiles([...m.values()].map(({ seen: _, ...f }) => f));
  for (const s of stages) {
    for (const param of WRITES[s.kind] ?? []) {
      const v = s.params[param];
      if (isPathLike(v)) add(writes, files.locate(v), `${s.id}.${param}`);
    }
    if (!withReads) continue;
    const kind = registry.stage(s.kind);
    const readPaths: Json[] = [...(kind?.localInputs?.(s.params) ?? []), ...(EXTRA_READS[s.kind]?.(s.params) ?? []), ...(s.kind !== "onnx_model" && s.kind !== "hf_model" ? tokenizerRead(s.params) : [])];
    for (const v of readPaths) if (isPathLike(v)) add(reads, files.locate(v), `${s.id}.${paramOf(s, v)}`);
  }
  return { writes: listed(writes), reads: listed(reads) };
}

/** The parameter a path came from, for `stage.param` (the first whose value it is). */
function paramOf(s: IrStage, v: Json): string {
  for (const [k, p] of Object.entries(s.params)) if (p === v || (isEnv(p) && isEnv(v) && p.$env === v.$env)) return k;
  return "path";
}

export function walk(j: Json, path: string, visit: (path: string, obj: { [k: string]: Json }) => void): void {
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

  /** Real paths asked for, by path: a Flan-sized recipe's two thousand files share a few folders. */
  private readonly reals = new Map<string, string | undefined>();

  private realpath(p: string): string | undefined {
    if (this.reals.has(p)) return this.reals.get(p);
    const r = this.ctx.realpath!(p);
    this.reals.set(p, r);
    return r;
  }

  /** The real path of `abs`: its longest existing ancestor's real path, then the rest as written. */
  real(abs: string): string {
    if (!this.ctx.realpath) return abs;
    let head = abs;
    const rest: string[] = [];
    for (;;) {
      const r = this.realpath(head);
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
  // The common case without path.relative: `p` below `root` as written (both absolute, as the callers give them).
  if (p === root || (p.startsWith(root) && (root.endsWith(sep) || p[root.length] === sep) && !p.includes(`${sep}..`))) return true;
  const rel = relative(root, p);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

export function endpointUrl(s: IrStage, ctx: EffectContext): { url: string; host: string | null } {
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

