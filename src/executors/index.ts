import { LocalProcessExecutor } from "./local.js";
import type { ProcessExecutor } from "./process.js";
import type { Profile } from "./profile.js";
import { SlurmExecutor } from "./slurm.js";

const shared = new Map<string, ProcessExecutor>();
let active: Profile | undefined;

/**
 * The profile this itp runs under (`--profile NAME`): it names the default executor and the Slurm executor's
 * settings. Set once by the CLI before anything runs; the executors made before are dropped.
 */
export function useProfile(p: Profile | undefined): void {
  active = p;
  shared.clear();
}

export function activeProfile(): Profile | undefined {
  return active;
}

/** The executor a stage runs on when it names none: the profile's, else local. */
export function defaultExecutorName(): string {
  return active?.executor ?? "local";
}

/**
 * The process executor of a name, one per itp process: the local one holds this machine's GPUs, so every stage of a
 * run draws its devices from the same pool; the Slurm one takes its settings from the profile. No name: the
 * profile's executor. Names are those of AVAILABLE_EXECUTORS (`itp check` refuses others).
 */
export function processExecutor(name = defaultExecutorName()): ProcessExecutor {
  let ex = shared.get(name);
  if (!ex) {
    if (name === "local") ex = new LocalProcessExecutor();
    else if (name === "slurm") ex = new SlurmExecutor(active ? slurmSettings(active) : {});
    else throw new Error(`no executor named \`${name}\` in this version of itp`);
    shared.set(name, ex);
  }
  return ex;
}

function slurmSettings(p: Profile) {
  return {
    ...(p.partition !== undefined ? { partition: p.partition } : {}),
    ...(p.account !== undefined ? { account: p.account } : {}),
    ...(p.qos !== undefined ? { qos: p.qos } : {}),
    ...(p.constraint !== undefined ? { constraint: p.constraint } : {}),
    ...(p.sbatch !== undefined ? { sbatch: p.sbatch } : {}),
    ...(p.setup !== undefined ? { setup: p.setup } : {}),
    ...(p.python !== undefined ? { python: p.python } : {}),
    ...(p.cpus_per_gpu !== undefined ? { cpusPerGpu: p.cpus_per_gpu } : {}),
    ...(p.rendezvous_port !== undefined ? { rendezvousPort: p.rendezvous_port } : {}),
    ...(p.poll_seconds !== undefined ? { pollMs: p.poll_seconds * 1000 } : {}),
  };
}
