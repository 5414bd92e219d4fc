import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OnnxCausalLM, type Generation, type OnnxModelOptions } from "../src/models/onnx.js";
import { argmax, logSoftmax, logSumExp, pickToken, seededRandom } from "../src/models/sampling.js";
import { UserError } from "../src/core/errors.js";
import { repoRoot } from "./support/cli.js";

/**
 * The ONNX runner against a real model: scripts/tiny-lm.py trains a tiny byte-level transformer with torch, exports
 * it and writes what torch computes with the same weights (reference.json). Built once per version of the script
 * under node_modules/.cache/itp-test/.
 */
const PYTHON = "/usr/bin/python3";
const SCRIPT = join(repoRoot, "scripts/tiny-lm.py");

interface Reference {
  bos: number;
  eos: number;
  context: number;
  greedy: { prompt: string; max_new_tokens: number; ids: number[] }[];
  scores: { prompt: string; continuation: string; ids: number[]; tokens: number[]; logprob: number; greedy: boolean }[];
}

function buildTinyLm(): string {
  const hash = createHash("sha256").update(readFileSync(SCRIPT)).digest("hex").slice(0, 16);
  const dir = join(repoRoot, "node_modules/.cache/itp-test", `tiny-lm-${hash}`);
  if (existsSync(join(dir, "reference.json"))) return dir;
  const probe = spawnSync(PYTHON, ["-c", "import torch, onnx"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `test/onnx.test.ts builds its model with ${PYTHON} and torch, which are not usable here (${probe.error?.message ?? probe.stderr.trim().split("\n").pop()}): ` +
        "install Debian's python3-torch and python3-onnx (apt-get install -y python3-torch python3-onnx; .ci/run does this on CI)",
    );
  }
  mkdirSync(join(dir, ".."), { recursive: true });
  const r = spawnSync(PYTHON, [SCRIPT, dir], { encoding: "utf8", timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${SCRIPT} failed (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return dir;
}

let dir = "";
let ref: Reference;
const opened: OnnxCausalLM[] = [];
async function load(path: string, options: Partial<OnnxModelOptions> = {}): Promise<OnnxCausalLM> {
  const m = await OnnxCausalLM.load({ path, max_length: 64, threads: 1, ...options }, dir);
  opened.push(m);
  return m;
}
const text = (ids: readonly number[]) => Buffer.from(ids.filter((i) => i < 256)).toString("utf8");

beforeAll(() => {
  dir = buildTinyLm();
  ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8")) as Reference;
}, 600_000);
afterAll(async () => {
  for (const m of opened) await m.close();
});

describe("generation against torch", () => {
  it("greedy decoding gives torch's tokens, text and finish reason", async () => {
    const m = await load("model.onnx");
    expect(m.signature).toEqual({ input_ids: "int64", attention_mask: "int64", vocab: 258 });
    for (const g of ref.greedy) {
      const [out] = await m.generate([g.prompt], { max_tokens: g.max_new_tokens });
      expect(out!.tokens, g.prompt).toEqual(g.ids);
      expect(out!.finish_reason).toBe(g.ids.at(-1) === ref.eos ? "stop" : "length");
      expect(out!.text).toBe(text(g.ids));
      expect(out!.prompt_tokens).toBe(1 + Buffer.byteLength(g.prompt));
    }
    // The model learned its corpus: the continuations are the training sentences (UTF-8 across byte tokens included).
    const texts = Object.fromEntries(ref.greedy.map((g) => [g.prompt, text(g.ids)]));
    expect(texts["the cat"]).toBe(" sat on the mat.");
    expect(texts["the caf"]).toBe("é is open.");
    expect(texts["count: 1 2"]).toBe(" 3 4 5 6 7 8 9");
  });

  it("the export without attention_mask, the one with position_ids and the tokenizer.json give the same results", async () => {
    const prompts = ref.greedy.map((g) => g.prompt);
    const pairs = ref.scores.map((s) => ({ prompt: s.prompt, continuation: s.continuation }));
    const base = await load("model.onnx", { concurrency: 4 });
    const expected = await base.generate(prompts, { max_tokens: 40 });
    const expectedScores = await base.score(pairs);
    const variants = [
      await load("plain", { concurrency: 4 }),
      await load("positions/model.onnx", { concurrency: 4 }),
      await load("model.onnx", { concurrency: 4, tokenizer: "hf" }),
    ];
    expect(variants[0]!.signature).toEqual({ input_ids: "int64", vocab: 258 });
    expect(variants[1]!.signature).toEqual({ input_ids: "int64", attention_mask: "int64", position_ids: "int64", vocab: 258 });
    expect(variants[2]!.tokenizer.source).toMatch(/tokenizer\.json$/);
    expect(variants[2]!.tokenizer.prefix).toEqual([ref.bos]);
    for (const v of variants) {
      expect(await v.generate(prompts, { max_tokens: 40 })).toEqual(expected);
      const scores = await v.score(pairs);
      for (const [i, s] of scores.entries()) {
        expect(s.ids).toEqual(expectedScores[i]!.ids);
        expect(s.logprob).toBeCloseTo(expectedScores[i]!.logprob, 4);
      }
    }
  });

  it("scores are torch's log-probabilities to 1e-4, with the same greedy flags", async () => {
    const m = await load("model.onnx");
    const scores = await m.score(ref.scores.map((s) => ({ prompt: s.prompt, continuation: s.continuation })));
    for (const [i, want] of ref.scores.entries()) {
      const got = scores[i]!;
      expect(got.ids, want.continuation).toEqual(want.ids);
      expect(got.tokens.length).toBe(want.tokens.length);
      for (const [j, t] of got.tokens.entries()) expect(Math.abs(t - want.tokens[j]!), `${want.continuation} token ${j}`).toBeLessThan(1e-4);
      expect(Math.abs(got.logprob - want.logprob)).toBeLessThan(1e-4 * want.tokens.length);
      expect(got.greedy).toBe(want.greedy);
      expect(got.truncated).toBe(false);
    }
    // The fixture has both kinds, so the flag is really compared.
    expect(new Set(ref.scores.map((s) => s.greedy))).toEqual(new Set([true, false]));
    // Whitespace ending the prompt moved to the continuation, as lm-eval-harness does.
    const moved = ref.scores.find((s) => s.prompt.endsWith(" "))!;
    expect(text(moved.ids)).toBe(` ${moved.continuation}`);
  });
});

describe("batching", () => {
  const prompts = ["the cat", "", "count: 1 2", "the fox hid in", "the bird", "the caf", "the dog ran", "the "];

  it("batches (with or without attention_mask) give what one sequence at a time gives, greedy and sampled", async () => {
    for (const path of ["model.onnx", "plain"]) {
      const one = await load(path, { concurrency: 1 });
      const many = await load(path, { concurrency: 3 });
      const seeds = prompts.map((_, i) => 100 + i);
      for (const params of [{ max_tokens: 30 }, { max_tokens: 30, temperature: 1.2, top_p: 0.95, seeds }]) {
        const single: Generation[] = [];
        for (const [i, p] of prompts.entries()) single.push((await one.generate([p], { ...params, ...("seeds" in params ? { seeds: [seeds[i]!] } : {}) }))[0]!);
        const finished: number[] = [];
        const batched = await many.generate(prompts, { ...params, onResult: (i) => void finished.push(i) });
        expect(batched, `${path} ${JSON.stringify(params)}`).toEqual(single);
        expect([...finished].sort((a, b) => a - b)).toEqual(prompts.map((_, i) => i));
      }
      const pairs = ref.scores.map((s) => ({ prompt: s.prompt, continuation: s.continuation }));
      const singleScores = [];
      for (const p of pairs) singleScores.push((await one.score([p]))[0]!);
      const batchScores = await many.score(pairs);
      for (const [i, s] of batchScores.entries()) {
        expect(s.greedy).toBe(singleScores[i]!.greedy);
        for (const [j, t] of s.tokens.entries()) expect(Math.abs(t - singleScores[i]!.tokens[j]!)).toBeLessThan(1e-5);
      }
    }
  });
});

describe("concurrent requests", () => {
  it("complete() calls in flight together share batches and give what one call at a time gives", async () => {
    const m = await load("model.onnx", { concurrency: 4 });
    const prompts = ["the cat", "the ", "count: 1 2", "the bird", "the caf", ""];
    const params = (i: number) => ({ temperature: 0.9, seed: 10 + i, max_tokens: 30 });
    const alone: Generation[] = [];
    for (const [i, p] of prompts.entries()) alone.push(await m.complete(p, params(i)));
    expect(await Promise.all(prompts.map((p, i) => m.complete(p, params(i))))).toEqual(alone);
    // A request's seed is that of generate's seed list.
    expect(await m.generate(prompts, { temperature: 0.9, seeds: prompts.map((_, i) => 10 + i), max_tokens: 30 })).toEqual(alone);
    // A request queued as the loop finishes (from a result's callback) still runs.
    const chained = await m.complete("the cat", { max_tokens: 3 }).then(() => m.complete("the dog", { max_tokens: 40 }));
    expect(chained.text).toBe(" ran to the log.");
  });

  it("an abort fails its own request only", async () => {
    const m = await load("model.onnx", { concurrency: 4 });
    const ctl = new AbortController();
    const a = m.complete("the cat", { signal: ctl.signal, max_tokens: 40 });
    const b = m.complete("the dog", { max_tokens: 40 });
    ctl.abort(new Error("stage interrupted"));
    await expect(a).rejects.toThrow("stage interrupted");
    expect((await b).text).toBe(" ran to the log.");
  });
});

describe("sampling", () => {
  it("is deterministic for a seed, differs across seeds, and follows the training distribution", async () => {
    const m = await load("model.onnx", { concurrency: 4 });
    const prompts = Array.from({ length: 24 }, () => "the ");
    const a = await m.generate(prompts, { temperature: 1, seed: 7, max_tokens: 30 });
    const b = await m.generate(prompts, { temperature: 1, seed: 7, max_tokens: 30 });
    const c = await m.generate(prompts, { temperature: 1, seed: 8, max_tokens: 30 });
    expect(b).toEqual(a);
    expect(c.map((g) => g.text)).not.toEqual(a.map((g) => g.text));
    // Prompts of one call draw from different streams: more than one subject comes up.
    const subjects = a.map((g) => g.text.split(" ")[0]!);
    const known = subjects.filter((s) => ["cat", "dog", "bird", "fox", "café"].includes(s));
    expect(new Set(known).size).toBeGreaterThan(1);
    expect(known.length).toBeGreaterThan(subjects.length * 0.8);
    // A seed list makes a prompt's result independent of its place in the call.
    const seeded = await m.generate(["the ", "the cat"], { temperature: 1, seeds: [5, 6], max_tokens: 30 });
    const swapped = await m.generate(["the cat", "the "], { temperature: 1, seeds: [6, 5], max_tokens: 30 });
    expect([swapped[1], swapped[0]]).toEqual(seeded);
  });

  it("a tiny top_p is greedy decoding, whatever the temperature and seed", async () => {
    const m = await load("model.onnx", { concurrency: 4 });
    const prompts = ref.greedy.map((g) => g.prompt);
    const greedy = await m.generate(prompts, { max_tokens: 40 });
    for (const seed of [1, 2, 3]) expect(await m.generate(prompts, { max_tokens: 40, temperature: 1.5, top_p: 1e-6, seed })).toEqual(greedy);
  });

  it("a high temperature leaves the corpus; a penalty changes greedy decoding", async () => {
    const m = await load("model.onnx", { concurrency: 4 });
    const hot = await m.generate(Array.from({ length: 8 }, () => "the cat"), { temperature: 2, seed: 1, max_tokens: 20 });
    expect(hot.some((g) => g.text !== " sat on the mat.")).toBe(true);
    const [plain] = await m.generate(["count: 1 2"], { max_tokens: 20 });
    const [penalized] = await m.generate(["count: 1 2"], { max_tokens: 20, presence_penalty: 8 });
    expect(plain!.text).toBe(" 3 4 5 6 7 8 9");
    // The space between the numbers is penalized after its first use.
    expect(penalized!.text).not.toBe(plain!.text);
  });
});

describe("stopping", () => {
  it("at the first stop string, left out of the text; EOS and limits give their finish reasons", async () => {
    const m = await load("model.onnx");
    const [mat] = await m.generate(["the cat"], { stop: ["mat"] });
    expect(mat).toMatchObject({ text: " sat on the ", finish_reason: "stop" });
    expect(text(mat!.tokens)).toBe(" sat on the mat"); // the token that completed the stop string is counted
    const [first] = await m.generate(["the cat"], { stop: [" the", "on"] });
    expect(first).toMatchObject({ text: " sat ", finish_reason: "stop" });
    const [none] = await m.generate(["the cat"], { stop: ["zebra"] });
    expect(none).toMatchObject({ text: " sat on the mat.", finish_reason: "stop", tokens: [...Buffer.from(" sat on the mat."), ref.eos] });
    const [short] = await m.generate(["the cat"], { max_tokens: 5 });
    expect(short).toMatchObject({ text: " sat ", finish_reason: "length" });
    expect(short!.tokens).toHaveLength(5);
  });

  it("at the context length; a prompt that leaves no room is a UserError", async () => {
    const m = await load("model.onnx", { max_length: 12 });
    const [out] = await m.generate(["the cat"]);
    // BOS + 7 prompt bytes + 4 generated = 12.
    expect(out).toMatchObject({ text: " sat", finish_reason: "length", prompt_tokens: 8 });
    await expect(m.generate(["the cat sat on"])).rejects.toThrow(/prompt 0 has 15 tokens, which leaves no room to generate within max_length 12/);
    const [scored] = await m.score([{ prompt: "the cat sat on the", continuation: " mat." }]);
    expect(scored!.truncated).toBe(true);
    await expect(m.score([{ prompt: "x", continuation: "a".repeat(12) }])).rejects.toThrow(/continuation has 12 tokens; max_length 12 leaves no room/);
    await expect(m.score([{ prompt: "x", continuation: "" }])).rejects.toThrow(/score pair 0: the continuation "" has no tokens/);
  });

  it("a max_length beyond the model's context fails in onnxruntime as a UserError naming the batch", async () => {
    const m = await load("model.onnx", { max_length: 100 });
    const e = await m.generate(["the cat ".repeat(8)]).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(UserError);
    // The learned position table has 64 rows: position 64 is out of range.
    expect((e as UserError).message).toMatch(/ONNX model .*model\.onnx failed on a batch of 1 sequence of 65 tokens: /);
    expect((e as UserError).hint).toMatch(/is max_length \(100\) within the model's context length\?/);
  });

  it("an aborted signal stops the call", async () => {
    const m = await load("model.onnx");
    const ctl = new AbortController();
    ctl.abort(new Error("interrupted"));
    await expect(m.generate(["the cat"], { signal: ctl.signal })).rejects.toThrow("interrupted");
  });
});

describe("errors", () => {
  async function refusal(path: string, options: Partial<OnnxModelOptions> = {}): Promise<UserError> {
    try {
      await load(path, options);
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      return e as UserError;
    }
    throw new Error(`${path} was accepted`);
  }

  it("a wrong signature names the input or output and what was expected", async () => {
    const cases: [string, RegExp][] = [
      ["bad/no-input-ids.onnx", /has no input input_ids \(its inputs: tokens\)/],
      ["bad/kv-cache.onnx", /has input past_key_values\.0\.key that the runner does not feed/],
      ["bad/float-input-ids.onnx", /input input_ids is of type float32, expected int64 token ids/],
      ["bad/no-logits.onnx", /has no output logits \(its outputs: scores\)/],
      ["bad/logits-rank2.onnx", /output logits has shape \[batch, 258\], expected \[batch, sequence, vocab\]/],
    ];
    for (const [path, message] of cases) {
      const e = await refusal(path, { tokenizer: "." });
      expect(e.message).toMatch(message);
      expect(e.message).toContain(join(dir, path));
      expect(e.hint).toMatch(/input_ids \[batch, sequence\] int64/);
    }
    expect((await refusal("bad/kv-cache.onnx", { tokenizer: "." })).hint).toMatch(/key\/value cache; export without it/);
    const small = await refusal("bad/small-vocab.onnx", { tokenizer: "." });
    expect(small.message).toMatch(/uses id 256 \(start of sequence\) but ONNX model .*small-vocab\.onnx has 100 logits/);
  });

  it("a missing or broken model file, or a missing or bad tokenizer", async () => {
    expect((await refusal("nowhere.onnx")).message).toMatch(/ONNX model .*nowhere\.onnx does not exist/);
    expect((await refusal("hf")).message).toMatch(/no model\.onnx in .*hf/);
    expect((await refusal("bad")).hint).toMatch(/the folder has .*no-logits\.onnx.*: give the file as path/);
    const broken = await refusal("reference.json", { tokenizer: "." });
    expect(broken.message).toMatch(/cannot load ONNX model .*reference\.json: .*Protobuf parsing failed/);
    expect(broken.hint).toMatch(/is it an ONNX file\?/);
    // A folder of its own with a copy of the model and no tokenizer, then bad byte configs.
    const lone = mkdtempSync(join(tmpdir(), "itp-onnx-"));
    copyFileSync(join(dir, "plain/model.onnx"), join(lone, "model.onnx"));
    expect((await refusal(lone)).message).toMatch(/no tokenizer in .*: expected tokenizer\.json or byte_tokenizer\.json/);
    writeFileSync(join(lone, "byte_tokenizer.json"), JSON.stringify({ type: "bytes", eos_token_id: 10 }));
    expect((await refusal(lone)).message).toMatch(/special token id 10 collides with a byte/);
    writeFileSync(join(lone, "byte_tokenizer.json"), JSON.stringify({ type: "bytes", eos_token_id: "257" }));
    expect((await refusal(lone)).message).toMatch(/byte_tokenizer\.json: eos_token_id: /);
    writeFileSync(join(lone, "byte_tokenizer.json"), "{ not json");
    expect((await refusal(lone)).message).toMatch(/byte_tokenizer\.json is not valid JSON/);
    writeFileSync(join(lone, "byte_tokenizer.json"), JSON.stringify({ type: "bytes", eos_token_id: 257 }));
    const ok = await load(lone);
    expect(ok.tokenizer.prefix).toEqual([]);
    // Without BOS an empty prompt starts from the end-of-sequence token, which the model never saw first: still runs.
    expect((await ok.generate([""], { max_tokens: 3 }))[0]!.prompt_tokens).toBe(1);
    rmSync(lone, { recursive: true, force: true });
  });

  it("bad sampling parameters", async () => {
    const m = await load("model.onnx");
    await expect(m.generate(["x"], { temperature: -1 })).rejects.toThrow(/temperature must be a number >= 0/);
    await expect(m.generate(["x"], { top_p: 0 })).rejects.toThrow(/top_p must be in \(0, 1\]/);
    await expect(m.generate(["x"], { max_tokens: 0 })).rejects.toThrow(/max_tokens must be a positive integer/);
    await expect(m.generate(["x", "y"], { seeds: [1] })).rejects.toThrow(/1 seeds for 2 prompts/);
  });
});

describe("sampling primitives", () => {
  it("log-softmax is stable for large logits and sums to one", () => {
    const row = new Float32Array([1000, 1001, 999, -1e30]);
    const lp = logSoftmax(row);
    expect(lp.every((v) => Number.isFinite(v) || v === -Infinity)).toBe(true);
    let total = 0;
    for (const v of lp) total += Math.exp(v);
    expect(total).toBeCloseTo(1, 12);
    expect(lp[1]! - lp[0]!).toBeCloseTo(1, 12);
    expect(logSumExp(new Float64Array([0, 0]))).toBeCloseTo(Math.LN2, 15);
    expect(argmax(new Float32Array([1, 3, 3, 2]))).toBe(1);
  });

  it("the PRNG is seeded, per stream, and uniform", () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(seededRandom(42, 1)()).not.toBe(seededRandom(42, 0)());
    expect(seededRandom(2 ** 40)()).not.toBe(seededRandom(2 ** 40 + 2 ** 32)());
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it("draws follow softmax(logits / T) and stay inside the top-p nucleus", () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const row = new Float64Array(probs.map(Math.log));
    const freq = (params: { temperature: number; top_p: number }, n = 20_000) => {
      const r = seededRandom(3);
      const counts = [0, 0, 0, 0];
      for (let i = 0; i < n; i++) counts[pickToken(row, params, r)]!++;
      return counts.map((c) => c / n);
    };
    const full = freq({ temperature: 1, top_p: 1 });
    for (const [i, p] of probs.entries()) expect(Math.abs(full[i]! - p)).toBeLessThan(0.015);
    // top_p 0.7: tokens 0 and 1 (0.5 + 0.3 reaches 0.7), renormalized to 5:3.
    const nucleus = freq({ temperature: 1, top_p: 0.7 });
    expect(nucleus[2]).toBe(0);
    expect(nucleus[3]).toBe(0);
    expect(Math.abs(nucleus[0]! - 5 / 8)).toBeLessThan(0.015);
    // Temperature 0.5 squares the probabilities (renormalized).
    const sharp = freq({ temperature: 0.5, top_p: 1 });
    const z = probs.reduce((s, p) => s + p * p, 0);
    for (const [i, p] of probs.entries()) expect(Math.abs(sharp[i]! - (p * p) / z)).toBeLessThan(0.015);
    expect(pickToken(row, { temperature: 0, top_p: 1 }, () => 0.99)).toBe(0);
    // The penalty applies per generated token: token 0 penalized below token 1 flips greedy.
    expect(pickToken(row, { temperature: 0, top_p: 1, presence_penalty: 1 }, () => 0, new Map([[0, 1]]))).toBe(1);
    expect(pickToken(row, { temperature: 0, top_p: 1, frequency_penalty: 0.2 }, () => 0, new Map([[0, 1]]))).toBe(0);
    expect(pickToken(row, { temperature: 0, top_p: 1, frequency_penalty: 0.2 }, () => 0, new Map([[0, 3]]))).toBe(1);
  });
});

describe("an onnx_model in a recipe", () => {
  it("`generate` with an onnx_model writes torch's greedy continuations; a rerun answers from the request cache", () => {
    const work = mkdtempSync(join(tmpdir(), "itp-onnx-recipe-"));
    const prompts = ref.greedy.filter((g) => g.prompt !== "").slice(0, 3);
    writeFileSync(join(work, "prompts.jsonl"), prompts.map((g) => JSON.stringify({ prompt: g.prompt })).join("\n") + "\n");
    writeFileSync(
      join(work, "r.itp"),
      `model lm = onnx_model() {
  path = ${JSON.stringify(join(dir, "model.onnx"))}
  tokenizer = ${JSON.stringify(dir)}
  max_length = 64
  concurrency = 2
}

dataset prompts = jsonl("prompts.jsonl")

dataset continued = generate(prompts, model: lm) {
  prompt = "{prompt}"
  temperature = 0
  max_tokens = 40
  output_field = "continuation"
}
`,
    );
    const cli = (args: string[]) => spawnSync(process.execPath, [join(repoRoot, "bin/itp.js"), ...args], { cwd: work, encoding: "utf8" });
    const run = cli(["run", "r.itp", "--store", "s"]);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const shown = JSON.parse(cli(["show", "r.itp", "continued", "--store", "s", "--json", "--records", "10"]).stdout) as { sample: { prompt: string; continuation: string }[]; counts: Record<string, number> };
    // The text parser trims the answer; the model's answers are the greedy continuations.
    expect(shown.sample).toEqual(prompts.map((g) => ({ prompt: g.prompt, continuation: text(g.ids).trim() })));
    expect(shown.counts["requests: sent"]).toBe(prompts.length);
    expect(shown.counts["tokens: completion"]).toBe(prompts.reduce((a, g) => a + g.ids.length, 0));
    const again = cli(["run", "r.itp", "--store", "s", "--force", "continued"]);
    expect(again.status, again.stderr).toBe(0);
    const counts = (JSON.parse(cli(["show", "r.itp", "continued", "--store", "s", "--json"]).stdout) as { counts: Record<string, number> }).counts;
    expect(counts["requests: cached"]).toBe(prompts.length);
    expect(counts["requests: sent"]).toBeUndefined();
    rmSync(work, { recursive: true, force: true });
  }, 120_000);
});
