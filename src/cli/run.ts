import { Effect, Fiber } from "effect";
import { availableParallelism } from "node:os";
import { machineGpus } from "../executors/gpus.js";
import { LocalExecutor } from "../runtime/executor.js";
import { parseFaults, runProgram } from "../runtime/scheduler.js";
import { UsageError } from "./host.js";
import { applyProfile, profileHelp, profileOptions } from "./profile.js";
import { parseVerbArgs } from "./args.js";
import { PlainReporter, silentReporter, TerminalReporter } from "./progress.js";
import { loadForRun, positiveInt, refuseMissingFiles } from "./runtime-setup.js";
import { permissionHelp, permissionOptions, permissionsFrom } from "./permissions.js";

const help = `
usage: itp run <file> [--only STAGE]... [--force STAGE]... [--set STAGE.PARAM=VALUE]...
                      [--concurrency N] [--store DIR] [--profile NAME [--profile-file PATH]] [--json]
                      [--allow-write PATH]... [--allow-env NAME]... [--deny-read-outside]

Run a recipe. Stages whose artifacts are in the store (default .itp/) are reused; the rest run, as many at once
as the DAG and --concurrency (CPU slots, default: the number of cores) allow. An interrupted run (Ctrl-C, a
crash) keeps every finished stage: run again to resume.
  --only STAGE    run this stage and what it needs (repeatable)
  --force STAGE   rerun this stage even if its artifact is cached (repeatable)
  --store DIR     the store (default .itp/, or the profile's \`store\`)

Before anything runs, the stages' effects are checked against the safe default (see itp plan): a write outside
the recipe's folder and the store, or an env() value in what is sent to a host, stops the run with an error.
${permissionHelp}
${profileHelp}`;

export async function runVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(
    args,
    {
      only: { type: "string", multiple: true },
      force: { type: "string", multiple: true },
      set: { type: "string", multiple: true },
      concurrency: { type: "string" },
      store: { type: "string" },
      json: { type: "boolean" },
      ...permissionOptions,
      ...profileOptions,
    },
    help,
  );
  if (!p) return 0;
  if (p.positionals.length !== 1) throw new UsageError("give exactly one recipe file");
  const concurrency = positiveInt(p.values.concurrency, "--concurrency", availableParallelism());
  const only = p.values.only ?? [];
  const force = p.values.force ?? [];
  const placed = await applyProfile(p.positionals[0]!, p.values, p.values.json ?? false);
  if (typeof placed === "number") return placed;
  const storeDir = p.values.store ?? placed.store;
  const loaded = await loadForRun(p.positionals[0]!, { sets: p.values.set ?? [], ...(storeDir ? { store: storeDir } : {}), json: p.values.json ?? false, stageArgs: [...only, ...force], only, permissions: permissionsFrom(p.values, placed.profile) });
  if (typeof loaded === "number") return loaded;
  const missing = refuseMissingFiles(loaded, only, p.values.json ?? false);
  if (missing !== undefined) return missing;
  const { program, registry, impls, store, recipe, baseDir } = loaded;
  await store.cleanTmp();
  const runId = `${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}`;
  const log = await store.runLog(runId);
  log.event("run_started", { recipe, stages: program.stages.size, concurrency, only, force });
  const reporter = p.values.json ? silentReporter : process.stderr.isTTY ? new TerminalReporter() : new PlainReporter();
  let requestStop: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  const fiber = Effect.runFork(
    runProgram(program, {
      registry,
      impls,
      store,
      executor: new LocalExecutor(),
      recipe,
      baseDir,
      concurrency,
      // GPU slots: this machine's (CUDA_VISIBLE_DEVICES, else nvidia-smi), or ITP_GPUS to say otherwise.
      gpus: process.env["ITP_GPUS"] !== undefined ? Number(process.env["ITP_GPUS"]) : () => machineGpus().ids.length,
      force: new Set(force),
      ...(only.length > 0 ? { only: new Set(only) } : {}),
      reporter,
      log: (type, data) => log.event(type, data),
      faults: parseFaults(process.env["ITP_FAULTS"]),
      stop: stopRequested,
    }),
  );
  // Ctrl-C or a TERM: interrupt the run; in-flight stages stop, their temporary files are removed, finished ones stay.
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${sig}: stopping; finished stages are kept, run again to resume\n`);
    log.event("interrupted", { signal: sig });
    requestStop();
    // A second signal while stopping: leave at once (what is committed stays committed).
    process.once(sig, () => process.exit(130));
  };
  const onInt = () => stop("SIGINT");
  const onTerm = () => stop("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  const exit = await Effect.runPromise(Fiber.await(fiber));
  process.off("SIGINT", onInt);
  process.off("SIGTERM", onTerm);
  const summary = exit._tag === "Success" ? exit.value : undefined;
  log.event("run_finished", summary ? { ran: summary.ran, cached: summary.cached, failed: summary.failed, skipped: summary.skipped, seconds: summary.seconds } : { interrupted: true });
  await log.close();
  if (p.values.json) {
    const stages = summary ? [...summary.outcomes].filter(([, o]) => o.status !== "excluded").map(([id, o]) => ({ id, status: o.status, ...("error" in o ? { error: o.error } : {}), ...("because" in o ? { because: o.because } : {}), ...("manifest" in o ? { key: o.manifest.key, records: o.manifest.output.records } : {}) })) : [];
    process.stdout.write(JSON.stringify({ ran: summary?.ran ?? 0, cached: summary?.cached ?? 0, failed: summary?.failed ?? 0, skipped: summary?.skipped ?? 0, interrupted: !summary || stopping, seconds: summary?.seconds ?? 0, log: log.path, stages }) + "\n");
  }
  return summary && summary.failed === 0 && !stopping ? 0 : 1;
}
