import { processExecutor } from "../executors/index.js";
import { machineGpus } from "../executors/gpus.js";
import { planProgram } from "../runtime/plan.js";
import { baseModelSize, executorOf, parseMemory, planTraining, TRAIN_METHODS, type DeviceMemory, type TrainingPlan } from "../stages/train/plan.js";
import { programEffects } from "../compile/effects.js";
import { neededStages } from "../runtime/scheduler.js";
import { renderEffects } from "./effects-render.js";
import { effectContext, permissionHelp, permissionOptions, permissionsFrom } from "./permissions.js";
import { resolve } from "node:path";
import { displayPath, UsageError } from "./host.js";
import { applyProfile, profileHelp, profileOptions } from "./profile.js";
import { parseVerbArgs } from "./args.js";
import { loadForRun, refuseMissingFiles } from "./runtime-setup.js";

const help = `
usage: itp plan <file> [--only STAGE]... [--force STAGE]... [--set STAGE.PARAM=VALUE]... [--against OLD.itp]
                       [--gpu-memory SIZE]
                       [--store DIR] [--profile NAME [--profile-file PATH]] [--json]
                       [--allow-write PATH]... [--allow-env NAME]... [--deny-read-outside]

For each stage: cached (a verified artifact exists for its cache key) or run, and why: which component of the key
differs from the stage's last artifact (a parameter with its old and new value, an input, a file, the
implementation version). The last artifact is this recipe's; for a stage this recipe never ran (a copy, a
renamed recipe), the newest of a stage with that name and kind from any recipe in the store. For each training
stage to run: its resources, the tokens it will see, where it runs, and an estimate of its GPU memory per device;
a job that does not fit its GPUs is an error naming what would fit.
  --against OLD.itp   explain against the last artifacts of another recipe (as run from this folder)
  --gpu-memory SIZE   memory of one GPU (80G, 24GiB) to check the fit against; default the GPUs of this machine

Then the effects of the stages (--json: "effects"), before anything runs: files written and read (paths outside
the recipe's folder and the store marked, symlinks followed), hosts contacted (model endpoints, the hub) and the
stages that contact them, environment variables and secrets read (names only), GPUs and estimated GPU-hours of
training stages, and the estimated generation cost where a model sets price_input/price_output. The safe
default refuses a write outside the recipe's folder and the store, and an env() value in what is sent to a host
(an endpoint's base_url and credentials excepted):
${permissionHelp}
${profileHelp}`;

export async function planVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { only: { type: "string", multiple: true }, force: { type: "string", multiple: true }, set: { type: "string", multiple: true }, store: { type: "string" }, against: { type: "string" }, json: { type: "boolean" }, "gpu-memory": { type: "string" }, ...permissionOptions, ...profileOptions }, help);
  if (!p) return 0;
  if (p.positionals.length !== 1) throw new UsageError("give exactly one recipe file");
  const only = p.values.only ?? [];
  const force = p.values.force ?? [];
  const placed = await applyProfile(p.positionals[0]!, p.values, p.values.json ?? false);
  if (typeof placed === "number") return placed;
  const storeDir = p.values.store ?? placed.store;
  const loaded = await loadForRun(p.positionals[0]!, { sets: p.values.set ?? [], ...(storeDir ? { store: storeDir } : {}), json: p.values.json ?? false, stageArgs: [...only, ...force], only, permissions: permissionsFrom(p.values, placed.profile) });
  if (typeof loaded === "number") return loaded;
  const missing = refuseMissingFiles(loaded, only, p.values.json ?? false);
  if (missing !== undefined) return missing;
  const against = p.values.against !== undefined ? displayPath(resolve(p.values.against)) : undefined;
  const plan = await planProgram(loaded.program, { ...loaded, force: new Set(force), ...(only.length > 0 ? { only: new Set(only) } : {}), ...(against !== undefined ? { against } : {}) });
  const shown = plan.filter((s) => s.status !== "excluded");
  // This machine's GPUs are asked for (a process) only when a training stage is to be planned.
  let device: DeviceMemory | undefined | null = p.values["gpu-memory"] !== undefined ? deviceMemory(p.values["gpu-memory"]) : null;
  const byId = new Map(plan.map((s) => [s.id, s]));
  const training = new Map<string, TrainingPlan>();
  for (const s of shown) {
    if (s.status === "cached" || !TRAIN_METHODS.has(s.kind)) continue;
    const stage = loaded.program.stages.get(s.id)!;
    const data = stage.inputs.find((i) => i.role === "data");
    const records = data ? byId.get(data.from)?.manifest?.output.records : undefined;
    if (device === null) device = deviceMemory(p.values["gpu-memory"]);
    training.set(s.id, planTraining(loaded.program, stage, { baseDir: loaded.baseDir, executor: processExecutor(executorOf(stage.params)), ...(device ? { device } : {}), ...(typeof records === "number" ? { inputRecords: records } : {}) }));
  }
  const errors = [...training.values()].filter((t) => t.error);
  const recordsOf = (id: string) => {
    const r = byId.get(id)?.manifest?.output.records;
    return typeof r === "number" ? r : undefined;
  };
  const effects = programEffects(loaded.program, loaded.registry, effectContext(p.positionals[0]!, storeDir ?? ".itp", {
    records: recordsOf,
    training: (id) => {
      const stage = loaded.program.stages.get(id);
      const data = stage?.inputs.find((i) => i.role === "data");
      const records = data ? recordsOf(data.from) : undefined;
      const size = stage ? baseModelSize(loaded.program, stage, loaded.baseDir) : undefined;
      const maxLength = typeof stage?.params["max_length"] === "number" ? stage.params["max_length"] : 2048;
      return { ...(size ? { params: size.params } : {}), ...(records !== undefined ? { tokens: records * maxLength, tokensUpperBound: true } : {}) };
    },
  }), neededStages(loaded.program, only.length > 0 ? new Set(only) : undefined));
  if (p.values.json) {
    const train = (id: string) => {
      const t = training.get(id);
      return t ? { training: { lines: t.lines, ...(t.memory ? { memory_per_device: Math.round(t.memory.perDevice), ...(t.memory.device ? { device_memory: Math.round(t.memory.device.bytes), device_memory_from: t.memory.device.source } : {}) } : {}), ...(t.error ? { error: t.error } : {}) } } : {};
    };
    process.stdout.write(JSON.stringify({ stages: shown.map((s) => ({ id: s.id, kind: s.kind, status: s.status, reasons: s.reasons, ...(s.key ? { key: s.key } : {}), ...train(s.id) })), effects }) + "\n");
  } else {
    for (const s of shown) {
      const doc = summary(loaded.program.stages.get(s.id)?.doc);
      process.stdout.write(`${s.status.padEnd(7)} ${s.id}${doc ? `  // ${doc}` : ""}\n`);
      for (const r of s.reasons) process.stdout.write(`          ${r}\n`);
      for (const l of training.get(s.id)?.lines ?? []) process.stdout.write(`          ${l}\n`);
    }
    const n = (st: string) => shown.filter((s) => s.status === st).length;
    process.stdout.write(`${n("run")} to run, ${n("cached")} cached${n("blocked") ? `, ${n("blocked")} blocked` : ""}\n`);
    process.stdout.write(renderEffects(effects).join("\n") + "\n");
  }
  for (const t of errors) process.stderr.write(`itp plan: error: ${t.error!.message}\n${t.error!.hint ? `  hint: ${t.error!.hint}\n` : ""}`);
  return plan.some((s) => s.status === "blocked") || errors.length > 0 ? 1 : 0;
}

/** The memory of one GPU: --gpu-memory, else this machine's (the smallest of its GPUs), else unknown. */
function deviceMemory(flag: string | undefined): DeviceMemory | undefined {
  if (flag !== undefined) {
    const bytes = parseMemory(flag);
    if (bytes === undefined || bytes <= 0) throw new UsageError(`--gpu-memory takes a size such as 80G or 24GiB, not '${flag}'`);
    return { bytes, source: `--gpu-memory ${flag}` };
  }
  const gpus = machineGpus();
  return gpus.memoryMb !== undefined ? { bytes: gpus.memoryMb * 1024 ** 2, source: `nvidia-smi, ${gpus.ids.length} GPU${gpus.ids.length === 1 ? "" : "s"}` } : undefined;
}

/** A doc comment's first sentence (its lines joined), never cut inside one. */
export function summary(doc: string | undefined): string | undefined {
  if (!doc) return undefined;
  const para = doc.split(/\n\s*\n/)[0]!.replace(/\s*\n\s*/g, " ").trim();
  // A sentence ends at . ! or ? before a capital or the end ("e.g. the" goes on).
  const end = /[.!?](?=\s+[A-Z]|$)/.exec(para);
  return end ? para.slice(0, end.index + 1) : para;
}
