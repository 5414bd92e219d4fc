import { spawnSync } from "node:child_process";
import { cpSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadTokenizer } from "../src/models/onnx-tokenizer.js";
import { promptIds } from "../src/models/loglik-tokens.js";
import { itp, repoRoot, stackTrace, tempTree } from "./support/cli.js";
import { torchPython } from "./support/python.js";

// A model the recipe trains generates for the data stages (Humpback's backward model and self-curation, SPIN's
// previous iteration): `distill` and `quality_filter` with `model = <a train stage>`, answered by the Python worker.
// The answers are the trained model's greedy continuations of the prompt rendered with its own chat template
// (Tulu's, from the tiny model's tokenizer_config.json), checked against test/support/greedy.py, which runs the
// whole sequence through the model at every step (no cache, no batch); every answer is cached, so a forced rerun
// sends nothing.

const py = torchPython();
const TINY = join(repoRoot, "pipelines/models/tiny-llama");
const TRAINER = join(repoRoot, "src/trainer");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const alpaca = readFileSync(join(repoRoot, "pipelines/data/quickstart/alpaca_sample.jsonl"), "utf8");

const RECIPE = `dataset data: Instruction = jsonl("data.jsonl")

dataset few = take(data, n: 16)

train tuned = sft(few, base: "tiny") {
  gpus = 0
  epochs = 4
  batch_size = 4
  max_length = 96
  precision = "fp32"
  seed = 7
  lr = 3e-3
}

dataset questions = take(data, n: 5)

dataset answered = distill(questions) {
  model = tuned
  temperature = 0
  max_tokens = 6
}

filter curated = quality_filter(questions) {
  model = tuned
  min_score = 1
  max_tokens = 4
}
`;

interface ShowJson {
  path: string;
  records: number;
  digest: string;
  counts: Record<string, number>;
  sample: Record<string, unknown>[];
}

function show(dir: string, stage: string): ShowJson {
  const r = itp(["show", "r.itp", stage, "--store", "s", "--json", "--records", "100"], { cwd: dir, env: { ITP_PYTHON: py! } });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ShowJson;
}

describe.skipIf(!py)("a trained model generates for the data stages", () => {
  it("distill and quality_filter run on the trained model: its greedy answers to its own chat template; a rerun sends nothing", async () => {
    const dir = tempTree({ "data.jsonl": alpaca, "r.itp": RECIPE });
    dirs.push(dir);
    cpSync(TINY, join(dir, "tiny"), { recursive: true });
    const r = itp(["run", "r.itp", "--store", "s"], { cwd: dir, env: { ITP_PYTHON: py! } });
    expect(r.stdout + r.stderr).not.toMatch(stackTrace);
    expect(r.code, r.stdout + r.stderr).toBe(0);

    const answered = show(dir, "answered");
    expect(answered.counts["requests: sent"]).toBe(5);
    const model = join(dir, show(dir, "tuned").path);
    const tok = await loadTokenizer(model);
    const questions = alpaca.trim().split("\n").slice(0, 5).map((l) => JSON.parse(l) as { instruction: string; input?: string });
    const expected: { instruction: string; output: string }[] = [];
    for (const q of questions) {
      const user = q.input ? `${q.instruction}\n\n${q.input}` : q.instruction;
      // Tulu's format with the generation prompt, as open-instruct writes it.
      const prompt = `<|user|>\n${user}\n<|assistant|>\n`;
      const g = spawnSync(py!, [join(repoRoot, "test/support/greedy.py"), TRAINER, model, JSON.stringify(promptIds(tok, prompt)), "6", String(tok.eos[0])], { encoding: "utf8", timeout: 120_000 });
      expect(g.status, g.stderr).toBe(0);
      const tokens = (JSON.parse(g.stdout) as { tokens: number[] }).tokens;
      const text = tok.decode(tokens.at(-1) === tok.eos[0] ? tokens.slice(0, -1) : tokens).trim();
      // distill drops an empty answer (counted), as it does any teacher's.
      if (text !== "") expected.push({ instruction: q.instruction, output: text });
    }
    // The trained model says something (its data's first words), so the comparison compares answers.
    expect(expected.length).toBeGreaterThan(2);
    expect(answered.sample.map((s) => ({ instruction: s["instruction"], output: s["output"] }))).toEqual(expected);
    expect(answered.records + (answered.counts["dropped: empty answer"] ?? 0)).toBe(5);

    const curated = show(dir, "curated");
    expect(curated.counts["requests: sent"]).toBe(5);
    // Every record is rated or dropped as unreadable: the tiny model seldom writes a score.
    const rated = Object.entries(curated.counts).filter(([k]) => k.startsWith("rated ")).reduce((n, [, v]) => n + v, 0);
    expect(rated + (curated.counts["dropped: unreadable score"] ?? 0)).toBe(5);

    // Forced reruns: every answer from the request cache, the same bytes.
    const again = itp(["run", "r.itp", "--store", "s", "--force", "answered", "--force", "curated"], { cwd: dir, env: { ITP_PYTHON: py! } });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    const answered2 = show(dir, "answered");
    expect(answered2.digest).toBe(answered.digest);
    expect(answered2.counts["requests: cached"]).toBe(5);
    expect(answered2.counts["requests: sent"]).toBeUndefined();
    expect(show(dir, "curated").counts["requests: sent"]).toBeUndefined();
  }, 240_000);
});
