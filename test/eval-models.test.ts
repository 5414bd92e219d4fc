import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserError } from "../src/core/errors.js";
import { runEnd } from "../src/core/run-end.js";
import type { InputArtifact } from "../src/core/stage.js";
import type { ModelArtifact } from "../src/generate/backend.js";
import { cachedEvalModel } from "../src/generate/eval-cache.js";
import { endpointEvalModel } from "../src/generate/eval-endpoint.js";
import type { EvalModel, GenRequest, LoglikRequest } from "../src/generate/eval-model.js";
import { onnxEvalModel } from "../src/generate/eval-onnx.js";
import { RequestCache } from "../src/runtime/request-cache.js";
import { evalModel } from "../src/stages/support/eval-model.js";
import { repoRoot } from "./support/cli.js";
import { startOpenAIServer } from "./support/openai-server.js";
import { torchPython } from "./support/python.js";
import { makeCtx } from "./support/stage-ctx.js";

/**
 * The models under evaluation (src/generate/eval-*.ts, src/stages/support/eval-model.ts) on an MMLU-shaped set:
 * a tiny random Llama built by src/trainer/tests/eval_fixture.py (a Hugging Face folder and its ONNX export) scored
 * by the Python worker and by onnxruntime-node, both checked against what torch computes in the fixture's
 * `reference` mode (one sequence at a time, float64 log-softmax, no batching, no cache); an endpoint checked against
 * a loopback server that answers `echo` with log-probabilities of a fixed bigram table; the request cache.
 */
const PY = torchPython();
const TRAINER = join(repoRoot, "src/trainer");
const FIXTURE = join(TRAINER, "tests/eval_fixture.py");

// MMLU's shape: a subject header, the question, lettered choices, "Answer:"; the prediction is the letter with the
// highest log-likelihood. Ten fixed items.
const ITEMS: { q: string; choices: [string, string, string, string]; gold: number }[] = [
  { q: "What is 2 + 3?", choices: ["4", "5", "6", "7"], gold: 1 },
  { q: "Which planet is closest to the sun?", choices: ["Venus", "Earth", "Mercury", "Mars"], gold: 2 },
  { q: "H2O is the formula of", choices: ["water", "salt", "sugar", "air"], gold: 0 },
  { q: "The capital of France is", choices: ["Rome", "Madrid", "Berlin", "Paris"], gold: 3 },
  { q: "How many sides has a hexagon?", choices: ["5", "6", "7", "8"], gold: 1 },
  { q: "Which gas do plants take in?", choices: ["oxygen", "carbon dioxide", "helium", "neon"], gold: 1 },
  { q: "What is the square root of 81?", choices: ["7", "8", "9", "10"], gold: 2 },
  { q: "Who wrote Hamlet?", choices: ["Shakespeare", "Dickens", "Austen", "Joyce"], gold: 0 },
  { q: "The freezing point of water in Celsius is", choices: ["0", "10", "32", "100"], gold: 0 },
  { q: "Which is a prime number?", choices: ["4", "6", "9", "11"], gold: 3 },
];
const LETTERS = ["A", "B", "C", "D"];
const prompt = (it: (typeof ITEMS)[number]) =>
  `The following are multiple choice questions (with answers) about general knowledge.\n\n${it.q}\n${it.choices.map((c, i) => `${LETTERS[i]}. ${c}`).join("\n")}\nAnswer:`;
const MMLU: LoglikRequest[] = ITEMS.flatMap((it) => LETTERS.map((l) => ({ context: prompt(it), continuation: ` ${l}` })));
// Longer continuations (the choices' text; one context ending in a space, which moves to the continuation).
const EXTRA: LoglikRequest[] = [
  { context: prompt(ITEMS[1]!), continuation: " Mercury" },
  { context: prompt(ITEMS[5]!), continuation: " carbon dioxide" },
  { context: "The capital of France is ", continuation: "Paris" },
];
const LOGLIK = [...MMLU, ...EXTRA];
const GEN_PROMPTS = ["Question: What is 2 + 3?\nAnswer:", "The capital of France is", "x"];

interface Reference {
  loglik: { logprob: number; greedy: boolean; tokens: number }[];
  generate: number[][];
}

let dir = "";
let ref: Reference;

function python(args: string[]): string {
  const r = spawnSync(PY!, [FIXTURE, ...args], { encoding: "utf8", timeout: 600_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
  if (r.status !== 0) throw new Error(`${FIXTURE} ${args[0]} failed (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The fixture model, built once per version of the trainer's model sources. */
function build(): string {
  const hash = createHash("sha256");
  hash.update(readFileSync(FIXTURE));
  for (const f of ["model.py", "hf_io.py", "onnx_export.py"]) hash.update(readFileSync(join(TRAINER, "itp_trainer", f)));
  const d = join(repoRoot, "node_modules/.cache/itp-test", `eval-models-${hash.digest("hex").slice(0, 16)}`);
  if (existsSync(join(d, "model.onnx"))) return d;
  mkdirSync(join(d, ".."), { recursive: true });
  python(["build", d]);
  return d;
}

/** The greedy continuation's text as the byte tokenizer decodes it (special tokens left out). */
const bytesText = (ids: readonly number[]) => Buffer.from(ids.filter((i) => i < 256)).toString("utf8");

const signal = new AbortController().signal;

function treeInput(path: string): InputArtifact {
  return { stage: "sft", digest: "f".repeat(64), records: null, path, tree: true, read: () => { throw new Error("a folder"); }, json: async () => { throw new Error("a folder"); }, bytes: () => Readable.from([]) };
}

/** Accuracy as MMLU scores it: the letter of highest log-likelihood against the gold one. */
function accuracy(logprobs: readonly number[]): number {
  let right = 0;
  ITEMS.forEach((it, i) => {
    const four = logprobs.slice(4 * i, 4 * i + 4);
    if (four.indexOf(Math.max(...four)) === it.gold) right++;
  });
  return right / ITEMS.length;
}

function expectMatchesTorch(got: readonly { logprob: number; greedy: boolean; tokens: number }[]): void {
  expect(got).toHaveLength(ref.loglik.length);
  got.forEach((g, i) => {
    const want = ref.loglik[i]!;
    expect(Math.abs(g.logprob - want.logprob), `request ${i}: ${g.logprob} vs ${want.logprob}`).toBeLessThan(1e-4);
    expect(g.greedy, `request ${i} greedy`).toBe(want.greedy);
    expect(g.tokens, `request ${i} tokens`).toBe(want.tokens);
  });
  expect(accuracy(got.map((g) => g.logprob))).toBe(accuracy(ref.loglik.map((r) => r.logprob)));
}

/** Generation requests: greedy, 12 tokens; then each with a stop sequence taken from the middle of torch's answer. */
function genRequests(): { plain: GenRequest[]; stopped: GenRequest[]; expected: string[] } {
  const plain = GEN_PROMPTS.map((p) => ({ prompt: p, stop: [], max_tokens: 12, temperature: 0 }));
  const expected: string[] = [];
  const stopped = GEN_PROMPTS.map((p, i) => {
    const text = bytesText(ref.generate[i]!);
    const stop = text.slice(4, 6);
    expected.push(text.slice(0, text.indexOf(stop)));
    return { prompt: p, stop: [stop, "\u0000never"], max_tokens: 12, temperature: 0 };
  });
  return { plain, stopped, expected };
}

async function checkGeneration(m: EvalModel): Promise<void> {
  const { plain, stopped, expected } = genRequests();
  const a = await m.generate(plain, { signal });
  a.forEach((g, i) => {
    const ids = ref.generate[i]!;
    expect(g.text, GEN_PROMPTS[i]).toBe(bytesText(ids));
    expect(g.completion_tokens).toBe(ids.length);
    expect(g.finish_reason).toBe(ids.at(-1) === 257 ? "stop" : "length");
  });
  const b = await m.generate(stopped, { signal });
  b.forEach((g, i) => {
    expect(g.text, `stop ${JSON.stringify(stopped[i]!.stop[0])}`).toBe(expected[i]);
    expect(g.finish_reason).toBe("stop");
    expect(g.completion_tokens).toBeLessThanOrEqual(12);
  });
}

beforeAll(() => {
  if (!PY) return;
  process.env["ITP_PYTHON"] ??= PY;
  dir = build();
  const reqs = join(mkdtempSync(join(tmpdir(), "itp-eval-ref-")), "requests.json");
  writeFileSync(reqs, JSON.stringify({ loglik: LOGLIK.map((r) => [r.context, r.continuation]), generate: GEN_PROMPTS.map((p) => [p, 12]) }));
  ref = JSON.parse(python(["reference", dir, reqs])) as Reference;
}, 600_000);
afterAll(() => runEnd());

describe.skipIf(!PY)("a trained model (a folder) scored by the Python worker", () => {
  it("gives torch's log-likelihoods, greedy flags and MMLU accuracy to 1e-4; generates with a KV cache and stop sequences", async () => {
    const { ctx } = makeCtx({}, {});
    const m = await evalModel(treeInput(dir), ctx, { threads: 1, batchTokens: 700, genBatch: 2 });
    try {
      expect(m.loglik).toBe(true);
      expect(m.chat).toBe(false);
      expect(m.describe).toMatch(/^`sft` \(trained model f{12}\)$/);
      const seen: number[] = [];
      const got = await m.loglikelihood(LOGLIK, { signal, onResult: (i) => seen.push(i) });
      expectMatchesTorch(got);
      expect(seen.sort((x, y) => x - y)).toEqual(LOGLIK.map((_, i) => i));
      await checkGeneration(m);
      // Sampling: the request's seed decides the text, whatever the batch.
      const sample = { prompt: "The capital", stop: [], max_tokens: 8, temperature: 1, seed: 3 };
      const [s1] = await m.generate([sample], { signal });
      const [, s2] = await m.generate([{ ...sample, seed: 4 }, sample], { signal });
      expect(s2!.text).toBe(s1!.text);
    } finally {
      await m.close();
    }
  }, 120_000);

  it("a folder without a tokenizer is a user error that names it", async () => {
    const { ctx } = makeCtx({}, {});
    const empty = mkdtempSync(join(tmpdir(), "itp-eval-empty-"));
    const e = await evalModel(treeInput(empty), ctx).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toMatch(/no tokenizer in/);
  });
});

describe.skipIf(!PY)("an onnx_model scored by onnxruntime-node", () => {
  it("gives torch's log-likelihoods, greedy flags and MMLU accuracy to 1e-4; generates with stop sequences", async () => {
    const artifact: ModelArtifact = { kind: "onnx_model", stage: "onnx", params: { path: dir, max_length: 1024, threads: 1, concurrency: 4 } };
    const m = await onnxEvalModel(artifact, repoRoot);
    expect(m.loglik).toBe(true);
    expectMatchesTorch(await m.loglikelihood(LOGLIK, { signal }));
    await checkGeneration(m);
  }, 120_000);
});

/**
 * A loopback completions server whose "model" is a bigram table over characters: log P(c | p) is the log-softmax of
 * a fixed hash of (p, c) over the 128 ASCII characters. Tokens are words with their leading whitespace; a token's
 * log-probability is the sum over its characters, its top-1 alternative is itself when every character is the
 * table's argmax. It answers `echo` with the prompt's tokens and their `text_offset`s.
 */
const BIGRAM: number[][] = Array.from({ length: 128 }, (_, p) => {
  const logit = (q: number) => ((Math.imul(p * 131 + q, 2654435761) >>> 0) % 1000) / 250;
  let z = 0;
  for (let q = 0; q < 128; q++) z += Math.exp(logit(q));
  return Array.from({ length: 128 }, (_, c) => logit(c) - Math.log(z));
});
const bigramLogprob = (p: number, c: number): number => BIGRAM[p]![c]!;
const bigramArgmax = (p: number): number => BIGRAM[p]!.indexOf(Math.max(...BIGRAM[p]!));

interface EchoServer {
  url: string;
  bodies: Record<string, unknown>[];
  close(): Promise<void>;
}

async function echoServer(logprobs = true): Promise<EchoServer> {
  const bodies: Record<string, unknown>[] = [];
  const server: Server = createServer((req, res) => {
    let data = "";
    req.on("data", (c: Buffer) => (data += c.toString("utf8")));
    req.on("end", () => {
      const body = JSON.parse(data) as { prompt: string };
      bodies.push(body);
      const text = body.prompt;
      const tokens = text.match(/\s*\S+/g) ?? [];
      let offset = 0;
      const text_offset: number[] = [];
      const token_logprobs: (number | null)[] = [];
      const top_logprobs: (Record<string, number> | null)[] = [];
      for (const [k, t] of tokens.entries()) {
        text_offset.push(offset);
        let lp = 0;
        let greedy = true;
        for (let j = 0; j < t.length; j++) {
          const at = offset + j;
          if (at === 0) continue;
          const prev = text.charCodeAt(at - 1);
          lp += bigramLogprob(prev, t.charCodeAt(j));
          if (bigramArgmax(prev) !== t.charCodeAt(j)) greedy = false;
        }
        offset += t.length;
        token_logprobs.push(k === 0 ? null : lp);
        top_logprobs.push(k === 0 ? null : greedy ? { [t]: lp } : { "<other>": lp + 0.5 });
      }
      const choice = { index: 0, text, finish_reason: "length", logprobs: logprobs ? { tokens, token_logprobs, top_logprobs, text_offset } : null };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ choices: [choice], usage: { prompt_tokens: tokens.length, completion_tokens: 0 } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/v1`, bodies, close: () => new Promise((r) => server.close(() => r())) };
}

/** What the bigram table gives a continuation after its context, computed here character by character. */
function expectedBigram(r: LoglikRequest): { logprob: number; greedy: boolean } {
  const text = r.context + r.continuation;
  const start = r.context.trimEnd().length;
  let logprob = 0;
  let greedy = true;
  for (let i = start; i < text.length; i++) {
    logprob += bigramLogprob(text.charCodeAt(i - 1), text.charCodeAt(i));
    if (bigramArgmax(text.charCodeAt(i - 1)) !== text.charCodeAt(i)) greedy = false;
  }
  return { logprob, greedy };
}

const endpoint = (url: string, kind: "chat" | "completions" = "completions", stage = "api", concurrency = 8): ModelArtifact => ({ kind: "openai_compatible", stage, params: { model: "tiny", base_url: url, kind, max_retries: 0, concurrency } });

describe("an openai_compatible endpoint", () => {
  it("log-likelihoods by completions with echo and logprobs, the continuation located by text offsets", async () => {
    const s = await echoServer();
    try {
      const m = await endpointEvalModel(endpoint(s.url));
      expect(m.loglik).toBe(true);
      const got = await m.loglikelihood(LOGLIK, { signal });
      got.forEach((g, i) => {
        const want = expectedBigram(LOGLIK[i]!);
        expect(Math.abs(g.logprob - want.logprob), `request ${i}`).toBeLessThan(1e-9);
        expect(g.greedy).toBe(want.greedy);
      });
      // " carbon dioxide" is two words; "Paris" after "is " (the space moved to it) one.
      expect(got.slice(-3).map((g) => g.tokens)).toEqual([1, 2, 1]);
      expect(s.bodies[0]).toEqual({ model: "tiny", prompt: LOGLIK[0]!.context + LOGLIK[0]!.continuation, temperature: 0, max_tokens: 0, logprobs: 1, echo: true });
      expect(s.bodies.at(-1)!["prompt"]).toBe("The capital of France is Paris");
    } finally {
      await s.close();
    }
  });

  it("a call keeps twice the concurrency in flight: answers in order, each told once; an abort stops the requests not yet sent", async () => {
    const s = await echoServer();
    try {
      const m = await endpointEvalModel(endpoint(s.url, "completions", "api-width", 2));
      const reqs = Array.from({ length: 24 }, (_, i) => LOGLIK[i % LOGLIK.length]!);
      const told: number[] = [];
      const got = await m.loglikelihood(reqs, { signal, onResult: (i) => told.push(i) });
      got.forEach((g, i) => expect(Math.abs(g.logprob - expectedBigram(reqs[i]!).logprob)).toBeLessThan(1e-9));
      expect(told.sort((a, b) => a - b)).toEqual(reqs.map((_, i) => i));
      const ctl = new AbortController();
      const sent = s.bodies.length;
      let answered = 0;
      const onResult = () => {
        if (++answered === 4) ctl.abort(new Error("stop"));
      };
      const e = await m.loglikelihood(reqs, { signal: ctl.signal, onResult }).catch((x: unknown) => x);
      expect((e as Error).message).toBe("stop");
      expect(s.bodies.length - sent).toBeLessThan(reqs.length);
    } finally {
      await s.close();
    }
  });

  it("an endpoint that answers without log-probabilities, or a chat endpoint, is a clear user error", async () => {
    const s = await echoServer(false);
    try {
      const m = await endpointEvalModel(endpoint(s.url));
      const e = await m.loglikelihood(MMLU.slice(0, 2), { signal }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).message).toBe("`api` (tiny at " + s.url + ") answered a log-likelihood request without log-probabilities of the prompt");
      expect((e as UserError).hint).toMatch(/echo: true/);
      const chat = await endpointEvalModel(endpoint(s.url, "chat", "gpt"));
      expect(chat.loglik).toBe(false);
      expect(chat.chat).toBe(true);
      const c = await chat.loglikelihood(MMLU.slice(0, 1), { signal }).catch((x: unknown) => x);
      expect(c).toBeInstanceOf(UserError);
      expect((c as Error).message).toMatch(/is a chat endpoint, which cannot give log-probabilities/);
    } finally {
      await s.close();
    }
  });

  it("generates by chat or completions with stop sequences", async () => {
    const s = await startOpenAIServer({ answer: (r) => `${r.content} then more. STOP and after` });
    try {
      const comp = await endpointEvalModel(endpoint(s.url, "completions", "c1"));
      const [a] = await comp.generate([{ prompt: "Q: hi", stop: ["STOP"], max_tokens: 50, temperature: 0 }], { signal });
      expect(a).toEqual({ text: "Q: hi then more. ", finish_reason: "stop", completion_tokens: 4 });
      const chat = await endpointEvalModel(endpoint(s.url, "chat", "c2"));
      const [b] = await chat.generate([{ messages: [{ role: "user", content: "hello" }], stop: ["."], max_tokens: 2, temperature: 0 }], { signal });
      expect(b).toEqual({ text: "hello then", finish_reason: "length", completion_tokens: 2 });
    } finally {
      await s.close();
    }
  });
});

describe("the request cache in front of a model", () => {
  it("a second call sends nothing; duplicates are sent once; answers of a failed batch are kept", async () => {
    const s = await echoServer();
    const cacheDir = mkdtempSync(join(tmpdir(), "itp-eval-cache-"));
    try {
      const cache = RequestCache.open(cacheDir);
      const m = cachedEvalModel(await endpointEvalModel(endpoint(s.url, "completions", "cached")), cache);
      const reqs = [...MMLU.slice(0, 8), MMLU[0]!];
      const first = await m.loglikelihood(reqs, { signal });
      expect(s.bodies).toHaveLength(8);
      expect(first[8]).toEqual(first[0]);
      const second = await m.loglikelihood(reqs, { signal });
      expect(s.bodies).toHaveLength(8);
      expect(second).toEqual(first);
      expect(m.counts()).toEqual({ cached: 9, sent: 8 });
      cache.close();
      // A new process's cache (the same folder) knows them too; only the new requests go out.
      const again = RequestCache.open(cacheDir);
      const m2 = cachedEvalModel(await endpointEvalModel(endpoint(s.url, "completions", "cached")), again);
      await m2.loglikelihood(MMLU.slice(0, 12), { signal });
      expect(s.bodies).toHaveLength(12);
      again.close();
    } finally {
      await s.close();
    }
  });

  it("a batch that fails part-way keeps the answers that arrived: the rerun asks only for the rest", async () => {
    let served = 0;
    const s = await startOpenAIServer({
      answer: (r) => {
        served++;
        return `answer to ${r.content}`;
      },
      faults: (r) => (r.content.includes("fail") ? { kind: "status", status: 400 } : undefined),
    });
    try {
      const cache = RequestCache.open(mkdtempSync(join(tmpdir(), "itp-eval-cache-")));
      // One request at a time, in order: "one" and "two" are answered before "fail" fails the batch.
      const model = await endpointEvalModel(endpoint(s.url, "completions", "partial", 1));
      const reqs: GenRequest[] = ["one", "two", "fail", "three"].map((p) => ({ prompt: p, stop: [], max_tokens: 8, temperature: 0 }));
      const m = cachedEvalModel(model, cache);
      await expect(m.generate(reqs, { signal })).rejects.toThrow(/400/);
      const answered = served;
      expect(answered).toBe(2);
      const fixed = reqs.map((r) => (r.prompt === "fail" ? { ...r, prompt: "four" } : r));
      const out = await cachedEvalModel(model, cache).generate(fixed, { signal });
      expect(out.map((o) => o.text)).toEqual(["answer to one", "answer to two", "answer to four", "answer to three"]);
      expect(served - answered).toBe(4 - answered);
      cache.close();
    } finally {
      await s.close();
    }
  });
});
