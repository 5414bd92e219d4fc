import { error, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { IrProgram, IrStage, Json } from "../core/ir.js";
import { CONSUMER_LOCAL, ENDPOINT_KINDS, ENDPOINT_LOCAL, HUB_KINDS, HUB_LOCAL, type EffectContext, type Effects, type FileEffect, type Permissions } from "./effect-types.js";
import { endpointUrl, walk, within } from "./effects.js";

// The safe default over a recipe's effects: what is refused before anything runs unless the command line allows it.


/**
 * The safe default, over a program's effects: a write outside the recipe's folder and the store (E080), an env()
 * value placed in what is sent to a host (E081), one credential sent to two hosts (E083: a recipe that names your
 * OpenAI key as the credential of another host), and with `denyReadOutside` a read outside the folder (E082), each
 * refused unless the permissions allow exactly it. Only the command line (and a profile) give permissions: nothing
 * in a recipe, imported or not, can widen them.
 */
export function permissionDiagnostics(program: IrProgram, effects: Pick<Effects, "writes" | "reads">, ctx: EffectContext, perms: Permissions): Diagnostic[] {
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

