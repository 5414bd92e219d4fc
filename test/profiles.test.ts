import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseProfiles } from "../src/executors/profile.js";
import { itp, stackTrace, tempTree } from "./support/cli.js";

// Profiles: where a recipe runs, kept in itp.profiles.yaml next to it and chosen with --profile. `itp check`
// validates the file; run, plan and show take the profile's executor and store; cache keys never see it.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const recipe = `dataset data: Instruction = jsonl("data.jsonl")

dataset few = data |> take(n: 2)

train tuned = sft(few, base: "models/tiny") {
  gpus = 4
  nodes = 2
  memory = "64G"
  time = 2h
}
`;
const data = [1, 2, 3].map((i) => JSON.stringify({ instruction: `q${i}`, input: "", output: `a${i}` })).join("\n") + "\n";

const good = `# Where this lab's recipes run.
cluster:
  executor: slurm
  partition: gpu
  account: lab
  qos: normal
  constraint: a100
  sbatch: ["--exclusive"]
  setup:
    - module load cuda/12.1
    - source /shared/venvs/itp/bin/activate
  python: /shared/venvs/itp/bin/python
  store: shared-store
laptop:
  executor: local
`;

interface JsonDiagnostic {
  file: string | null;
  line: number | null;
  col: number | null;
  code: string;
  message: string;
  hint?: string;
}

const checkJson = (dir: string, args: string[]) => {
  const r = itp(["check", "r.itp", "--json", ...args], { cwd: dir });
  expect(r.stdout + r.stderr).not.toMatch(stackTrace);
  return { code: r.code, diagnostics: (JSON.parse(r.stdout) as { diagnostics: JsonDiagnostic[] }).diagnostics.filter((d) => d.code.startsWith("E09")) };
};

describe("the profile file", () => {
  it("parses every setting, and names the file and profile of each", () => {
    const r = parseProfiles(good, "itp.profiles.yaml");
    expect(r.diagnostics).toEqual([]);
    expect(r.profiles.get("cluster")).toEqual({
      name: "cluster",
      file: "itp.profiles.yaml",
      executor: "slurm",
      partition: "gpu",
      account: "lab",
      qos: "normal",
      constraint: "a100",
      sbatch: ["--exclusive"],
      setup: ["module load cuda/12.1", "source /shared/venvs/itp/bin/activate"],
      python: "/shared/venvs/itp/bin/python",
      store: "shared-store",
    });
    expect(r.profiles.get("laptop")).toEqual({ name: "laptop", file: "itp.profiles.yaml", executor: "local" });
  });

  it("a typo in a setting is an error at `itp check` with the setting it meant, at its line", () => {
    const dir = tempTree({ "r.itp": recipe, "data.jsonl": data, "itp.profiles.yaml": good.replace("  partition: gpu", "  partiton: gpu") });
    dirs.push(dir);
    const r = checkJson(dir, ["--profile", "cluster"]);
    expect(r.code).toBe(1);
    expect(r.diagnostics).toEqual([{ file: "itp.profiles.yaml", line: 4, col: 3, endLine: 4, endCol: 11, severity: "error", code: "E090", message: "profile `cluster`: unknown setting `partiton`", hint: "did you mean `partition`?" }]);
    // The human format points at the line.
    const h = itp(["check", "r.itp", "--profile", "cluster"], { cwd: dir });
    expect(h.code).toBe(1);
    expect(h.stderr).toContain("itp.profiles.yaml:4:3: error[E090]: profile `cluster`: unknown setting `partiton`");
    expect(h.stderr).toContain("did you mean `partition`?");
  });

  it("wrong types, a wrong executor, a missing executor, bad YAML: each an error where it is", () => {
    const cases: [string, RegExp, number][] = [
      [good.replace("  qos: normal", "  qos: [normal]"), /profile `cluster`: `qos`: .*expected string/i, 6],
      [good.replace("  executor: slurm", "  executor: slurn"), /profile `cluster`: `executor`: .*"local"\|"slurm"|profile `cluster`: `executor`: .*local.*slurm/i, 3],
      [good.replace("  executor: local\n", "  python: python3\n"), /profile `laptop`: `executor` is required/, 14],
      [good.replace("  sbatch: [\"--exclusive\"]", "  sbatch: --exclusive"), /profile `cluster`: `sbatch`: .*expected array/i, 8],
      ["cluster: [executor]\n", /profile `cluster`: expected its settings/, 1],
      ["cluster:\n  executor: slurm\n   partition: gpu\n", /profile file: /, 2],
    ];
    for (const [text, message, line] of cases) {
      const dir = tempTree({ "r.itp": recipe, "data.jsonl": data, "itp.profiles.yaml": text });
      dirs.push(dir);
      const r = checkJson(dir, ["--profile", "cluster"]);
      expect(r.code, text).toBe(1);
      expect(r.diagnostics.length, JSON.stringify(r.diagnostics)).toBeGreaterThan(0);
      expect(r.diagnostics[0]!.code).toBe("E090");
      expect(r.diagnostics[0]!.message).toMatch(message);
      expect(r.diagnostics[0]!.line, `${text}\n${JSON.stringify(r.diagnostics)}`).toBe(line);
    }
  });

  it("an unknown profile name is E091 with the closest; a missing file E092; a good one passes", () => {
    const dir = tempTree({ "r.itp": recipe, "data.jsonl": data, "itp.profiles.yaml": good });
    dirs.push(dir);
    const wrong = checkJson(dir, ["--profile", "clustr"]);
    expect(wrong.code).toBe(1);
    expect(wrong.diagnostics).toMatchObject([{ code: "E091", message: "no profile `clustr` in itp.profiles.yaml", hint: "did you mean `cluster`?" }]);
    const missing = checkJson(dir, ["--profile", "cluster", "--profile-file", "nowhere.yaml"]);
    expect(missing.code).toBe(1);
    expect(missing.diagnostics).toMatchObject([{ code: "E092", message: "no profile file nowhere.yaml" }]);
    const ok = itp(["check", "r.itp", "--profile", "cluster"], { cwd: dir });
    expect(ok.code, ok.stderr).toBe(0);
    // run refuses the same way, before anything runs.
    const run = itp(["run", "r.itp", "--profile", "clustr"], { cwd: dir });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("error[E091]: no profile `clustr` in itp.profiles.yaml");
    expect(run.stdout + run.stderr).not.toMatch(stackTrace);
  });
});

describe("a profile decides where stages run, never what they make", () => {
  it("plan shows the sbatch resources under a Slurm profile and the local executor without; cache keys are the same", () => {
    const dir = tempTree({ "r.itp": recipe, "data.jsonl": data, "itp.profiles.yaml": good, "models/tiny/config.json": "{}" });
    dirs.push(dir);
    const onCluster = itp(["plan", "r.itp", "--profile", "cluster", "--json"], { cwd: dir });
    expect(onCluster.stdout + onCluster.stderr).not.toMatch(stackTrace);
    const c = JSON.parse(onCluster.stdout) as { stages: { id: string; key?: string; training?: { lines: string[] } }[] };
    const tuned = c.stages.find((s) => s.id === "tuned")!;
    expect(tuned.training!.lines.find((l) => l.startsWith("runs on:"))).toBe(
      "runs on: slurm: sbatch --nodes=2 --ntasks-per-node=1 --gpus-per-node=4 --mem=65536M --time=0-02:00:00 --partition=gpu --account=lab --qos=normal --constraint=a100 (srun + torchrun, 2 x 4 processes, c10d rendezvous)",
    );
    // The profile's store is where the cluster's stages are kept.
    expect(onCluster.code, onCluster.stderr).toBe(0);
    const local = itp(["plan", "r.itp", "--json"], { cwd: dir });
    const l = JSON.parse(local.stdout) as { stages: { id: string; key?: string; training?: { lines: string[] } }[] };
    // Two nodes cannot run here: an error that says so.
    expect(local.code).toBe(1);
    expect(l.stages.find((s) => s.id === "tuned")!.training!.lines.find((x) => x.startsWith("runs on:"))).toMatch(/^runs on: local: cannot run: 2 nodes requested/);
    expect(Object.fromEntries(l.stages.map((s) => [s.id, s.key]))).toEqual(Object.fromEntries(c.stages.map((s) => [s.id, s.key])));
    const laptop = itp(["plan", "r.itp", "--profile", "laptop", "--json"], { cwd: dir });
    expect(Object.fromEntries((JSON.parse(laptop.stdout) as typeof l).stages.map((s) => [s.id, s.key]))).toEqual(Object.fromEntries(c.stages.map((s) => [s.id, s.key])));
  });

  it("run under a profile uses its store", () => {
    const dir = tempTree({ "r.itp": recipe, "data.jsonl": data, "itp.profiles.yaml": good });
    dirs.push(dir);
    const r = itp(["run", "r.itp", "--profile", "cluster", "--only", "few", "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { log: string }).log).toContain(join(dir, "shared-store"));
    const show = itp(["show", "r.itp", "few", "--profile", "cluster", "--json"], { cwd: dir });
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ records: 2 });
    // Without the profile, the default store (.itp/) has nothing.
    expect(itp(["show", "r.itp", "few"], { cwd: dir }).code).toBe(1);
  });
});
