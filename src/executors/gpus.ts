import { spawnSync } from "node:child_process";

/** The GPUs jobs may use on this machine: device ids as CUDA numbers them, and the memory of each when known. */
export interface MachineGpus {
  readonly ids: readonly string[];
  /** Memory of the smallest device, in MiB (from nvidia-smi); undefined when not known. */
  readonly memoryMb?: number;
  /** Where the list came from, in words (`CUDA_VISIBLE_DEVICES`, `nvidia-smi`, `none found`). */
  readonly source: string;
}

let memo: MachineGpus | undefined;

/**
 * The machine's GPUs: `CUDA_VISIBLE_DEVICES` when it is set (the slots this process was given, by a scheduler or
 * by hand: `""` or `-1` means none), else every device `nvidia-smi -L` lists, else none. Asked once per process.
 */
export function machineGpus(env: NodeJS.ProcessEnv = process.env): MachineGpus {
  if (memo && env === process.env) return memo;
  const found = detect(env);
  if (env === process.env) memo = found;
  return found;
}

function detect(env: NodeJS.ProcessEnv): MachineGpus {
  const visible = env["CUDA_VISIBLE_DEVICES"];
  const smi = nvidiaSmi(env);
  if (visible !== undefined) {
    const ids = visible
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    // CUDA stops at the first invalid id, and -1 hides every device.
    const stop = ids.findIndex((s) => s.startsWith("-"));
    const kept = stop < 0 ? ids : ids.slice(0, stop);
    return { ids: kept, ...(smi?.memoryMb !== undefined && kept.length > 0 ? { memoryMb: smi.memoryMb } : {}), source: "CUDA_VISIBLE_DEVICES" };
  }
  if (smi && smi.count > 0) return { ids: Array.from({ length: smi.count }, (_, i) => String(i)), ...(smi.memoryMb !== undefined ? { memoryMb: smi.memoryMb } : {}), source: "nvidia-smi" };
  return { ids: [], source: "none found (no CUDA_VISIBLE_DEVICES, no nvidia-smi)" };
}

/** Devices and their smallest memory, from `nvidia-smi`; undefined where it is not installed or fails. */
function nvidiaSmi(env: NodeJS.ProcessEnv): { count: number; memoryMb?: number } | undefined {
  const r = spawnSync("nvidia-smi", ["--query-gpu=memory.total", "--format=csv,noheader,nounits"], { encoding: "utf8", timeout: 10_000, env: { ...env, CUDA_VISIBLE_DEVICES: undefined } as NodeJS.ProcessEnv });
  if (r.error || r.status !== 0) return undefined;
  const mems = r.stdout
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isFinite(n) && n > 0);
  return { count: mems.length, ...(mems.length > 0 ? { memoryMb: Math.min(...mems) } : {}) };
}
