// npm run bench -- train-gpu [--seconds N] [--no-compile] [--skip-transformers]: runs test/bench/train-gpu.py (the
// trainer on a ~1B Llama-shaped model on one GPU against a plain transformers loop; its header says what each side
// does). The script needs only Python, PyTorch and transformers, so on a GPU machine without Node run it directly:
// `python3 test/bench/train-gpu.py`. Python: ITP_PYTHON, else /usr/bin/python3 where it exists, else python3.
// Where no CUDA GPU exists it prints that and exits 0.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const python = process.env["ITP_PYTHON"] ?? (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
const r = spawnSync(python, [join("test", "bench", "train-gpu.py"), ...process.argv.slice(2)], { stdio: "inherit" });
if (r.error) {
  console.error(`cannot run ${python}: ${r.error.message} (set ITP_PYTHON to a Python with torch)`);
  process.exit(1);
}
process.exit(r.status ?? 1);
