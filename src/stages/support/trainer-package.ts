import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Where the trainer package (itp_trainer) lives: `src/trainer` beside the sources, or beside `dist/` in a build, or
 * in the repository above a benchmark's bundle (node_modules/.cache/itp-bench/, scripts/bench.mjs).
 */
export function trainerRoot(): string {
  const here = fileURLToPath(new URL(".", import.meta.url));
  for (const c of [resolve(here, "../../trainer"), resolve(here, "../src/trainer"), resolve(here, "../../src/trainer"), resolve(here, "../../../src/trainer")]) if (existsSync(join(c, "itp_trainer"))) return c;
  throw new Error(`the trainer package (itp_trainer) is not found next to ${here}`);
}
