// npm run bench -- eval [worker_questions]: MMLU-sized log-likelihood work, 14,042 questions x 4 answer letters =
// 56,168 requests, on synthetic text of MMLU's 5-shot length (a header, five solved questions and the question, about
// 2,300 characters: MMLU's 5-shot prompts average about 600 tokens), for two models under evaluation:
//
// - endpoint: an `openai_compatible` model (kind completions) against the stand-in server
//   (test/support/standin-server.mjs) in a process of its own on loopback, which answers each `echo: true, logprobs:
//   1, max_tokens: 0` request with the prompt's tokens, their log-probabilities from a fixed hash table and their
//   text offsets. Every request of the full set goes through the whole path the evaluate stage takes: the request
//   cache (a fresh one: every request is sent, every answer stored), the OpenAI client (concurrency 64), the server,
//   the answer's parsing and the continuation located by text offsets. Measured whole: `mmlu_endpoint_s`.
// - worker: a trained model folder scored by the Python evaluation worker (itp_trainer evaluate, CPU, torch's
//   threads) on the tiny random Llama of the tests (byte tokenizer, 2 layers, hidden 48, context 1024: the prompts
//   are cut to their last 1,023 tokens). A subset of `worker_questions` questions (default 100) is measured after
//   the worker has started; `mmlu_worker_s` is that time extrapolated to 14,042 questions (the start is printed on
//   its own, and the line before the summary says how many questions were measured). On the tiny model the time is
//   the attention over 1,024-token rows (the worker computes it in causal blocks of queries, and the last layer only
//   at the positions read); on a real model it is the model's forward passes.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { runEnd } from "../../src/core/run-end.js";
import type { InputArtifact } from "../../src/core/stage.js";
import { cachedEvalModel } from "../../src/generate/eval-cache.js";
import { endpointEvalModel } from "../../src/generate/eval-endpoint.js";
import type { LoglikRequest } from "../../src/generate/eval-model.js";
import { RequestCache } from "../../src/runtime/request-cache.js";
import { evalModel } from "../../src/stages/support/eval-model.js";
import { makeCtx } from "../support/stage-ctx.js";

const QUESTIONS = 14_042;
const root = resolve(import.meta.dirname ?? ".", "../../..");
const repo = existsSync(join(process.cwd(), "test/support/standin-server.mjs")) ? process.cwd() : root;
const workerQuestions = Number(process.argv[2] ?? 100);

/** A deterministic word stream (a fixed vocabulary picked by an LCG), for text of a given length. */
function words(seed: number): (n: number) => string {
  const vocab = ["the", "of", "a", "which", "following", "is", "true", "energy", "cell", "law", "market", "function", "value", "theory", "court", "state", "number", "process", "system", "water", "light", "force", "species", "rate", "price", "model", "signal", "right", "protein", "gene"];
  let s = seed >>> 0;
  return (n) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      out.push(vocab[s % vocab.length]!);
    }
    return out.join(" ");
  };
}

/** Question `q`'s 5-shot prompt: MMLU's header, five solved questions and the question, ending in "Answer:". */
function prompt(q: number): string {
  const w = words(q + 1);
  const one = (answer?: string) => `${w(22)}?\nA. ${w(5)}\nB. ${w(4)}\nC. ${w(6)}\nD. ${w(5)}\nAnswer:${answer ? ` ${answer}\n\n` : ""}`;
  let p = "The following are multiple choice questions (with answers) about high school physics.\n\n";
  for (let s = 0; s < 5; s++) p += one("ABCD"[(q + s) % 4]);
  return p + one();
}

const requests = (n: number): LoglikRequest[] => Array.from({ length: n }, (_, q) => prompt(q)).flatMap((context) => ["A", "B", "C", "D"].map((l) => ({ context, continuation: ` ${l}` })));

async function endpoint(): Promise<number> {
  const child = spawn(process.execPath, [join(repo, "test/support/standin-server.mjs"), "--port", "0", "--name", "bench"], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((res, rej) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (l) => {
      const m = /listening on (\d+)/.exec(l);
      if (m) res(Number(m[1]));
    });
    child.once("exit", (c) => rej(new Error(`the stand-in server exited (${c})`)));
  });
  const cacheDir = mkdtempSync(join(tmpdir(), "itp-bench-eval-"));
  const cache = RequestCache.open(cacheDir);
  try {
    const reqs = requests(QUESTIONS);
    const model = cachedEvalModel(await endpointEvalModel({ kind: "openai_compatible", stage: "bench", params: { model: "bench", base_url: `http://127.0.0.1:${port}/v1`, kind: "completions", concurrency: 64, max_retries: 0 } }), cache);
    const signal = new AbortController().signal;
    const t0 = performance.now();
    // In batches, as the evaluate stage sends them.
    const batch = 4096;
    for (let i = 0; i < reqs.length; i += batch) {
      const out = await model.loglikelihood(reqs.slice(i, i + batch), { signal });
      if (out.some((r) => !Number.isFinite(r.logprob) || r.tokens !== 1)) throw new Error("a bad answer");
    }
    const s = (performance.now() - t0) / 1000;
    console.log(`endpoint: ${reqs.length} requests in ${s.toFixed(1)} s (${(reqs.length / s).toFixed(0)}/s), ${model.counts().sent} sent, mean prompt ${Math.round(reqs.reduce((a, r) => a + r.context.length, 0) / reqs.length)} characters`);
    return s;
  } finally {
    cache.close();
    child.kill("SIGTERM");
    await runEnd();
  }
}

async function worker(): Promise<{ measured: number; full: number }> {
  const py = process.env["ITP_PYTHON"] ?? "/usr/bin/python3";
  process.env["ITP_PYTHON"] = py;
  const dir = join(repo, "node_modules/.cache/itp-bench/eval-model");
  if (!existsSync(join(dir, "config.json"))) {
    mkdirSync(join(dir, ".."), { recursive: true });
    const r = spawnSync(py, [join(repo, "src/trainer/tests/eval_fixture.py"), "build", dir], { stdio: "inherit" });
    if (r.status !== 0) throw new Error("cannot build the tiny model (eval_fixture.py build)");
  }
  const folder: InputArtifact = { stage: "bench", digest: "0".repeat(64), records: null, path: dir, tree: true, read: () => { throw new Error("a folder"); }, json: async () => ({}), bytes: () => Readable.from([]) };
  const { ctx } = makeCtx({}, {});
  const t0 = performance.now();
  const model = await evalModel(folder, ctx, { maxLength: 1024, batchTokens: 16_384 });
  const started = (performance.now() - t0) / 1000;
  try {
    const reqs = requests(workerQuestions);
    const t1 = performance.now();
    const out = await model.loglikelihood(reqs, { signal: ctx.signal });
    const s = (performance.now() - t1) / 1000;
    if (out.some((r) => !Number.isFinite(r.logprob))) throw new Error("a bad answer");
    const full = (s * QUESTIONS) / workerQuestions;
    console.log(`worker: started in ${started.toFixed(1)} s; ${reqs.length} requests (${workerQuestions} questions) in ${s.toFixed(2)} s; extrapolated to ${QUESTIONS} questions: ${full.toFixed(0)} s`);
    return { measured: s, full };
  } finally {
    await model.close();
    await runEnd();
  }
}

const e = await endpoint();
const w = await worker();
// The endpoint's number is measured on all 14,042 questions; the worker's is not: say so beside the summary.
console.log(`mmlu_worker_s is extrapolated: ${workerQuestions} of ${QUESTIONS} questions measured in ${w.measured.toFixed(2)} s, times ${(QUESTIONS / workerQuestions).toFixed(2)}`);
console.log(`bench eval: mmlu_endpoint_s=${e.toFixed(1)} mmlu_worker_s=${w.full.toFixed(0)} examples=${QUESTIONS}`);
