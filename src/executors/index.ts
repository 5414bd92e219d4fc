import { LocalProcessExecutor } from "./local.js";
import type { ProcessExecutor } from "./process.js";

const shared = new Map<string, ProcessExecutor>();

/**
 * The process executor of a name, one per itp process: the local one holds this machine's GPUs, so every stage of a
 * run draws its devices from the same pool. Names are those of AVAILABLE_EXECUTORS (`itp check` refuses others).
 */
export function processExecutor(name = "local"): ProcessExecutor {
  let ex = shared.get(name);
  if (!ex) {
    if (name !== "local") throw new Error(`no executor named \`${name}\` in this version of itp`);
    ex = new LocalProcessExecutor();
    shared.set(name, ex);
  }
  return ex;
}
