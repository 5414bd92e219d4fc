import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { expect, it } from "vitest";
import { repoRoot } from "./support/cli.js";

/**
 * The trainer's own Python tests (src/trainer/tests, unittest), run with the trainer's Python: ITP_PYTHON, default
 * Debian's /usr/bin/python3 with python3-torch. A failing or erroring Python test fails this test with its output.
 */
const PYTHON = process.env["ITP_PYTHON"] ?? "/usr/bin/python3";

it("the trainer's Python unit tests pass", () => {
  const trainer = join(repoRoot, "src/trainer");
  const r = spawnSync(PYTHON, ["-m", "unittest", "discover", "-s", join(trainer, "tests"), "-t", trainer], {
    cwd: repoRoot,
    encoding: "utf8",
    env: { ...process.env, PYTHONPATH: trainer, PYTHONDONTWRITEBYTECODE: "1" },
    timeout: 900_000,
  });
  if (r.error) throw new Error(`cannot run ${PYTHON}: ${r.error.message} (set ITP_PYTHON to a Python with torch)`);
  const output = `${r.stdout}\n${r.stderr}`;
  if (r.status !== 0) throw new Error(`python -m unittest failed (exit ${r.status ?? r.signal}):\n${output}`);
  // unittest reports "Ran N tests" then "OK" (with skips counted): an empty discovery would be a silent pass.
  const ran = /Ran (\d+) tests?/.exec(output);
  expect(Number(ran?.[1] ?? 0)).toBeGreaterThan(0);
}, 900_000);
