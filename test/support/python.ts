import { spawnSync } from "node:child_process";

let memo: string | null | undefined;

/**
 * A Python that imports torch, for the tests that run real training processes: ITP_PYTHON when set, else Debian's
 * /usr/bin/python3, else python3 on PATH. Null when none has torch (those tests are skipped, and say why).
 */
export function torchPython(): string | null {
  if (memo !== undefined) return memo;
  for (const p of [process.env["ITP_PYTHON"], "/usr/bin/python3", "python3"]) {
    if (!p) continue;
    const r = spawnSync(p, ["-c", "import torch"], { encoding: "utf8", timeout: 60_000 });
    if (r.status === 0) return (memo = p);
  }
  return (memo = null);
}
