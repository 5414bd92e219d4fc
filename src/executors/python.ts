import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { UserError } from "../core/errors.js";

/** A Python interpreter that can run the trainer: its path, and the versions it reported. */
export interface TrainerPython {
  readonly python: string;
  readonly version: string;
  readonly torch: string;
  readonly cuda: boolean;
}

const known = new Map<string, Promise<TrainerPython>>();

const PROBE = "import sys\nimport torch\nprint(sys.version.split()[0], torch.__version__, int(torch.cuda.is_available()))";

const HOW = "set ITP_PYTHON to a Python that has PyTorch: on Debian/Ubuntu, `apt install python3-torch` and ITP_PYTHON=/usr/bin/python3; elsewhere a virtual environment's python with `pip install torch`";

/** Debian's own Python, where `apt install python3-torch` puts torch when `python3` on PATH is another one. */
const SYSTEM_PYTHON = "/usr/bin/python3";

/**
 * The Python that runs training jobs: `ITP_PYTHON`, else `python3`, else (when that one cannot import torch)
 * Debian's /usr/bin/python3; checked once per process to start and to import torch. A clear error otherwise, naming
 * the interpreter, what is missing and how to choose another.
 */
export function trainerPython(env: NodeJS.ProcessEnv = process.env): Promise<TrainerPython> {
  if (env["ITP_PYTHON"]) return probed(env["ITP_PYTHON"], "ITP_PYTHON");
  const first = probed("python3", "the default python3 (ITP_PYTHON is not set)");
  // A pyenv or virtual environment's python3 often shadows the system one that has torch.
  return first.catch((e: unknown) => (existsSync(SYSTEM_PYTHON) ? probed(SYSTEM_PYTHON, "the system python, as python3 cannot import torch").catch(() => Promise.reject(e)) : Promise.reject(e)));
}

function probed(python: string, where: string): Promise<TrainerPython> {
  let p = known.get(python);
  if (!p) {
    p = probe(python, where);
    known.set(python, p);
    p.catch(() => known.delete(python));
  }
  return p;
}

function probe(python: string, where: string): Promise<TrainerPython> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, ["-c", PROBE], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      const code = (e as NodeJS.ErrnoException).code;
      reject(new UserError(`cannot run the trainer's Python \`${python}\` (${where}): ${code === "ENOENT" ? "no such program" : e.message}`, HOW));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) {
        const [version, torch, cuda] = out.trim().split(/\s+/);
        resolve({ python, version: version ?? "?", torch: torch ?? "?", cuda: cuda === "1" });
        return;
      }
      const last = err.trim().split("\n").pop() ?? "";
      const missing = /No module named '?torch/.test(err);
      reject(new UserError(`the trainer's Python \`${python}\` (${where}) ${missing ? "cannot import torch" : `failed to import torch: ${last}`}`, HOW));
    });
  });
}
