import { describe, expect, it } from "vitest";
import { sbatchScript, slurmTime } from "../src/executors/slurm.js";
import type { ProcessSpec } from "../src/executors/process.js";

// The batch script the Slurm executor submits, line by line: directives from the stage's resources and the
// profile, the profile's setup, and PyTorch's own launcher with a rendezvous across nodes.

const spec = (over: Partial<ProcessSpec> = {}): ProcessSpec => ({
  stage: "tuned",
  python: "python3",
  module: "itp_trainer",
  args: ["train", "--config", "/shared/store/work/k1/config.json"],
  pythonPath: ["/shared/itp/src/trainer"],
  env: {},
  cwd: "/shared/store/work/k1",
  resources: { gpus: 8, nodes: 2, memoryMb: 512 * 1024, timeMs: 36 * 3600_000 + 90_000 },
  logFile: "/shared/store/work/k1/train.log",
  ...over,
});

describe("the sbatch script", () => {
  it("2 nodes x 8 GPUs: directives, profile setup, srun + torchrun with a c10d rendezvous on the first node", () => {
    const script = sbatchScript(spec(), {
      partition: "gpu",
      account: "lab",
      qos: "high",
      constraint: "h100",
      sbatch: ["--exclusive", "#SBATCH --mail-type=END"],
      setup: ["module load cuda/12.1", "source /shared/venvs/itp/bin/activate"],
      python: "/shared/venvs/itp/bin/python",
      cpusPerGpu: 8,
      rendezvousPort: 29400,
    });
    expect(script.split("\n")).toEqual([
      "#!/bin/bash",
      "# itp: stage tuned",
      "#SBATCH --job-name=itp-tuned",
      "#SBATCH --output=/shared/store/work/k1/train.log",
      "#SBATCH --open-mode=append",
      "#SBATCH --nodes=2",
      "#SBATCH --ntasks-per-node=1",
      "#SBATCH --gpus-per-node=8",
      "#SBATCH --cpus-per-task=64",
      "#SBATCH --mem=524288M",
      "#SBATCH --time=1-12:02:00",
      "#SBATCH --partition=gpu",
      "#SBATCH --account=lab",
      "#SBATCH --qos=high",
      "#SBATCH --constraint=h100",
      "#SBATCH --requeue",
      "#SBATCH --exclusive",
      "#SBATCH --mail-type=END",
      "set -e",
      "module load cuda/12.1",
      "source /shared/venvs/itp/bin/activate",
      "export PYTHONPATH=/shared/itp/src/trainer${PYTHONPATH:+:$PYTHONPATH}",
      "export PYTHONUNBUFFERED=1",
      "cd /shared/store/work/k1",
      'head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
      "srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 /shared/venvs/itp/bin/python -m itp_trainer.torchrun --nnodes=$SLURM_NNODES --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=$head:29400 --rdzv_id=$SLURM_JOB_ID -m itp_trainer train --config /shared/store/work/k1/config.json",
      "",
    ]);
  });

  it("one node: the program itself, or torchrun standalone for several processes; the stage's partition wins", () => {
    const one = sbatchScript(spec({ resources: { gpus: 0, nodes: 1 }, env: { ITP_TOKEN: "a b'c" }, partition: "cpu" }), { partition: "gpu" }).split("\n");
    expect(one.filter((l) => l.startsWith("#SBATCH"))).toEqual([
      "#SBATCH --job-name=itp-tuned",
      "#SBATCH --output=/shared/store/work/k1/train.log",
      "#SBATCH --open-mode=append",
      "#SBATCH --nodes=1",
      "#SBATCH --ntasks-per-node=1",
      "#SBATCH --partition=cpu",
      "#SBATCH --requeue",
    ]);
    expect(one).toContain("export ITP_TOKEN='a b'\\''c'");
    expect(one.at(-2)).toBe("exec python3 -m itp_trainer train --config /shared/store/work/k1/config.json");
    const four = sbatchScript(spec({ resources: { gpus: 4, nodes: 1 } }), {}).split("\n");
    expect(four).toContain("#SBATCH --gpus-per-node=4");
    expect(four.at(-2)).toBe("exec python3 -m itp_trainer.torchrun --standalone --nnodes=1 --nproc_per_node=4 -m itp_trainer train --config /shared/store/work/k1/config.json");
  });

  it("time limits in Slurm's D-HH:MM:SS, rounded up to the minute", () => {
    expect(slurmTime(1)).toBe("0-00:01:00");
    expect(slurmTime(90 * 60_000)).toBe("0-01:30:00");
    expect(slurmTime(49 * 3600_000 + 1)).toBe("2-01:01:00");
  });
});
