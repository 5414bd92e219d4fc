import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OnnxCausalLM } from "../src/models/onnx.js";
import { repoRoot } from "./support/cli.js";

/**
 * The trainer's ONNX export run by the `onnx_model` runner: src/trainer/tests/onnx_fixture.py writes a tiny random
 * Llama as a Hugging Face directory, exports it with itp_trainer.onnx_export and records what torch computes with
 * the same weights. Built once per version of the trainer's sources under node_modules/.cache/itp-test/.
 */
const PYTHON = process.env["ITP_PYTHON"] ?? "/usr/bin/python3";
const TRAINER = join(repoRoot, "src/trainer");
const FIXTURE = join(TRAINER, "tests/onnx_fixture.py");

interface Reference {
  greedy: { prompt: string; max_new_tokens: number; ids: number[] }[];
  scores: { prompt: string; continuation: string; ids: number[]; tokens: number[]; logprob: number }[];
}

function build(): string {
  const hash = createHash("sha256");
  hash.update(readFileSync(FIXTURE));
  for (const f of ["errors.py", "model.py", "hf_io.py", "lora.py", "quant.py", "onnx_export.py"]) hash.update(readFileSync(join(TRAINER, "itp_trainer", f)));
  const dir = join(repoRoot, "node_modules/.cache/itp-test", `trainer-onnx-${hash.digest("hex").slice(0, 16)}`);
  if (existsSync(join(dir, "reference.json"))) return dir;
  mkdirSync(join(dir, ".."), { recursive: true });
  const r = spawnSync(PYTHON, [FIXTURE, dir], { encoding: "utf8", timeout: 600_000 });
  if (r.error) throw new Error(`cannot run ${PYTHON} (${r.error.message}): set ITP_PYTHON to a Python with torch and onnx`);
  if (r.status !== 0) throw new Error(`${FIXTURE} failed (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return dir;
}

let dir = "";
let ref: Reference;
const opened: OnnxCausalLM[] = [];
async function load(concurrency = 1): Promise<OnnxCausalLM> {
  const m = await OnnxCausalLM.load({ path: join(dir, "model"), max_length: 64, threads: 1, concurrency });
  opened.push(m);
  return m;
}

beforeAll(() => {
  dir = build();
  ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8")) as Reference;
}, 600_000);
afterAll(async () => {
  for (const m of opened) await m.close();
});

describe("the trainer's ONNX export", () => {
  it("has the runner's signature", async () => {
    const m = await load();
    expect(m.signature).toEqual({ input_ids: "int64", attention_mask: "int64", vocab: 258 });
  });

  it("decodes greedily to torch's tokens, one sequence at a time and batched with padding", async () => {
    const prompts = ref.greedy.map((g) => g.prompt);
    for (const m of [await load(1), await load(3)]) {
      const out = await m.generate(prompts, { max_tokens: 12 });
      for (const [i, g] of ref.greedy.entries()) expect(out[i]!.tokens, JSON.stringify(g.prompt)).toEqual(g.ids);
    }
  });

  it("scores continuations with torch's log-probabilities to 1e-4", async () => {
    const m = await load(2);
    const scores = await m.score(ref.scores.map((s) => ({ prompt: s.prompt, continuation: s.continuation })));
    for (const [i, want] of ref.scores.entries()) {
      const got = scores[i]!;
      expect(got.ids).toEqual(want.ids);
      for (const [j, t] of got.tokens.entries()) expect(Math.abs(t - want.tokens[j]!), `${want.continuation} token ${j}`).toBeLessThan(1e-4);
    }
  });
});
