import { Duration, Effect } from "effect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TransientError, UserError } from "../src/core/errors.js";
import { Semaphore } from "../src/models/concurrency.js";
import { closeSharedClients, OpenAIClient, openaiConfig, RequestFailed, sharedClient, RequestRejected, RequestStats, type OpenAIConfig, type RetryEvent } from "../src/models/openai.js";
import { chatBody, completionBody, parseAnswer, MalformedAnswer, type Sampling, type SamplingDefaults } from "../src/models/openai-wire.js";
import { RateLimiter } from "../src/models/rate-limit.js";
import { retryAfterMs, retryDelay, retryPolicyOf, seededRandom, type RetryPolicy } from "../src/models/retry.js";
import { fault, faultRate, faultScript, startOpenAIServer, type OpenAIServer } from "./support/openai-server.js";

/** Fast retries for tests: a few ms of backoff instead of seconds. */
const FAST: RetryPolicy = { maxRetries: 3, initialMs: 5, maxMs: 50, multiplier: 2, jitter: true, respectRetryAfter: true };

let server: OpenAIServer;
const clients: OpenAIClient[] = [];

function client(over: Partial<OpenAIConfig> = {}): OpenAIClient {
  const c = new OpenAIClient({ model: "test-model", baseUrl: server.url, concurrency: 8, timeoutMs: 5_000, retry: FAST, ...over });
  clients.push(c);
  return c;
}

const hello = { messages: [{ role: "user", content: "Say hello to the world" }] };

/** The rejection of a promise (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection, got an answer");
}

beforeAll(async () => {
  server = await startOpenAIServer({ recordArrivals: true, contextTokens: 100 });
});
afterEach(async () => {
  server.setFaults(undefined);
  server.reset();
  await Promise.all(clients.splice(0).map((c) => c.close()));
});
afterAll(() => server.close());

describe("answers", () => {
  it("chat: the answer, its usage and the model, read from /v1/chat/completions", async () => {
    const c = client();
    const a = await c.chat(hello);
    expect(a.choices).toEqual([{ text: "Say hello to the world", finish_reason: "stop" }]);
    expect(a.usage).toEqual({ prompt_tokens: 6, completion_tokens: 5 });
    expect(a.model).toBe("test-model");
    expect(a.retries).toBe(0);
    expect(server.stats.outcomes).toEqual({ ok: 1 });
    expect(c.stats.counts()).toEqual({ requests: 1, "tokens: prompt": 6, "tokens: completion": 5 });
  });

  it("completions: n choices in index order, max_tokens and stop applied by the server", async () => {
    const c = client();
    const a = await c.complete({ prompt: "one two three four five", n: 3, max_tokens: 3 });
    expect(a.choices.map((x) => [x.text, x.finish_reason])).toEqual([
      ["one two three", "length"],
      ["[1] one two", "length"],
      ["[2] one two", "length"],
    ]);
    expect(a.usage).toEqual({ prompt_tokens: 5, completion_tokens: 9 });
    const b = await c.complete({ prompt: "alpha beta. gamma", stop: ["."] });
    expect(b.choices[0]).toEqual({ text: "alpha beta", finish_reason: "stop" });
  });

  it("sends the model's defaults, a request's own values over them, and leaves out what is unset", async () => {
    const bodies: Record<string, unknown>[] = [];
    const s = await startOpenAIServer({ answer: (r) => (bodies.push(r.body), "ok") });
    try {
      // A trailing slash on base_url and a query string (Azure's api-version) are kept in the right place.
      const c = new OpenAIClient({ model: "m", baseUrl: `${s.url}/`, concurrency: 1, timeoutMs: 5_000, defaults: { temperature: 0.7, max_tokens: 64, seed: 3 }, headers: { "x-team": "data" } });
      clients.push(c);
      await c.chat({ ...hello, temperature: 0, stop: [] });
      await c.complete({ prompt: "p", n: 2, top_p: 0.5, stop: ["\n"], extra: { top_k: 5 } });
      expect(bodies[0]).toEqual({ model: "m", messages: hello.messages, temperature: 0, max_tokens: 64, seed: 3 });
      expect(bodies[1]).toEqual({ model: "m", prompt: "p", temperature: 0.7, top_p: 0.5, max_tokens: 64, stop: ["\n"], seed: 3, n: 2, top_k: 5 });
      expect(c.chatBody({ ...hello, temperature: 0, stop: [] })).toBe(JSON.stringify(bodies[0]));
    } finally {
      await s.close();
    }
  });

  it("request bodies are the text JSON.stringify gives for the request object (cache keys digest them), whatever the mix of fields", () => {
    // The reference: the body as an object, members in the documented order, extras merged last.
    const reference = (head: Record<string, unknown>, d: SamplingDefaults, r: Sampling, chat: boolean): string => {
      const b: Record<string, unknown> = { ...head };
      const put = (k: string, v: unknown) => v !== undefined && (b[k] = v);
      put("temperature", r.temperature ?? d.temperature);
      put("top_p", r.top_p ?? d.top_p);
      put("max_tokens", r.max_tokens ?? d.max_tokens);
      if (r.stop && r.stop.length > 0) b["stop"] = r.stop;
      put("seed", r.seed ?? d.seed);
      if (r.n !== undefined && r.n !== 1) b["n"] = r.n;
      if (r.presence_penalty) b["presence_penalty"] = r.presence_penalty;
      if (r.frequency_penalty) b["frequency_penalty"] = r.frequency_penalty;
      if (r.logprobs !== undefined) {
        if (chat) {
          b["logprobs"] = true;
          if (r.logprobs > 0) b["top_logprobs"] = r.logprobs;
        } else b["logprobs"] = r.logprobs;
      }
      if (r.extra) Object.assign(b, r.extra);
      return JSON.stringify(b);
    };
    const random = seededRandom(5);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const stops = [undefined, [], ["\n"], ["END", "\"q\""]];
    const defaults: SamplingDefaults[] = [{}, { temperature: 0.7, max_tokens: 64, seed: 3 }, { top_p: 0.9, seed: 0 }];
    const messages = [[{ role: "user", content: "héllo \"world\" \u2028 ✓" }], [{ role: "system", content: "Be brief" }, { role: "user", content: "x\ny" }]];
    for (let i = 0; i < 2000; i++) {
      const r: Sampling = {
        temperature: pick([undefined, 0, 0.7, 1.25, -0]),
        top_p: pick([undefined, 1, 0.5]),
        max_tokens: pick([undefined, 16, 1024]),
        stop: pick(stops),
        seed: pick([undefined, 0, 42]),
        n: pick([undefined, 1, 3]),
        presence_penalty: pick([undefined, 0, 0.5]),
        frequency_penalty: pick([undefined, 0, -1]),
        logprobs: pick([undefined, undefined, 0, 2]),
        extra: pick([undefined, undefined, undefined, { top_k: 5 }, { temperature: 2, repetition_penalty: 1.1 }]),
      };
      const d = pick(defaults);
      const m = pick(messages);
      // Twice in a row: the second call may reuse what the first computed.
      for (let k = 0; k < 2; k++) {
        expect(chatBody("m", d, { ...r, messages: m })).toBe(reference({ model: "m", messages: m }, d, r, true));
        expect(completionBody("c", d, { ...r, prompt: m[0]!.content })).toBe(reference({ model: "c", prompt: m[0]!.content }, d, r, false));
      }
    }
    // A stop list or defaults changed in place between two calls are seen.
    const stop = ["a"];
    const d: { temperature?: number } = { temperature: 0.5 };
    const first = chatBody("m", d, { ...hello, stop });
    stop.push("b");
    d.temperature = 1;
    expect(chatBody("m", d, { ...hello, stop })).toBe(JSON.stringify({ model: "m", ...hello, temperature: 1, stop: ["a", "b"] }));
    expect(first).toBe(JSON.stringify({ model: "m", ...hello, temperature: 0.5, stop: ["a"] }));
  });

  it("generate: one user message (and the system one) on chat models, the prompt on completions models", async () => {
    const chat = client();
    const a = await chat.generate("Name a color", { system: "Be brief" });
    expect(a.choices[0]!.text).toBe("Name a color");
    const comp = client({ endpoint: "completions" });
    const b = await comp.generate("Name a shape", { max_tokens: 1 });
    expect(b.choices[0]).toEqual({ text: "Name", finish_reason: "length" });
  });

  it("logprobs: chat's logprobs/top_logprobs and completions' logprobs, normalized to one shape", async () => {
    const c = client();
    const a = await c.chat({ messages: [{ role: "user", content: "red green" }], logprobs: 2 });
    const lp = a.choices[0]!.logprobs!;
    expect(lp.map((t) => t.token)).toEqual(["red", " green"]);
    expect(lp[0]!.top!.map((t) => t.token)).toEqual(["red", "red~1"]);
    expect(lp[0]!.top![0]!.logprob).toBe(lp[0]!.logprob);
    expect(lp[0]!.top![1]!.logprob).toBe(lp[0]!.logprob! - 1);
    const b = await c.complete({ prompt: "red green", logprobs: 3 });
    const lq = b.choices[0]!.logprobs!;
    expect(lq.map((t) => [t.token, t.logprob])).toEqual(lp.map((t) => [t.token, t.logprob]));
    expect(lq[1]!.top!.map((t) => t.token)).toEqual([" green", " green~1", " green~2"]);
    // Built when first read, the same on every read, and written out as JSON like any choice.
    expect(b.choices[0]!.logprobs).toBe(lq);
    expect(JSON.parse(JSON.stringify(b.choices[0]))).toEqual({ text: b.choices[0]!.text, finish_reason: b.choices[0]!.finish_reason, logprobs: JSON.parse(JSON.stringify(lq)) });
    // Without the option, no logprobs field at all.
    expect((await c.chat(hello)).choices[0]).not.toHaveProperty("logprobs");
    const zero = await c.chat({ ...hello, logprobs: 0 });
    expect(zero.choices[0]!.logprobs!.every((t) => t.top!.length === 0 && typeof t.logprob === "number")).toBe(true);
  });

  it("reads choices by index when the server sends them out of order; refuses an answer without choices", () => {
    const raw = JSON.stringify({ choices: [{ index: 1, text: "b", finish_reason: "stop" }, { index: 0, text: "a", finish_reason: "length" }] });
    expect(parseAnswer("completions", raw, 0).choices.map((c) => c.text)).toEqual(["a", "b"]);
    expect(parseAnswer("completions", raw, 0).usage).toBeUndefined();
    expect(() => parseAnswer("chat", '{"choices":[]}', 0)).toThrow(MalformedAnswer);
    expect(() => parseAnswer("chat", '{"choices":[{"text":"x"}]}', 0)).toThrow(/choice 0 has no message content/);
    expect(parseAnswer("chat", '{"choices":[{"index":0,"message":{"content":null},"finish_reason":"tool_calls"}]}', 0).choices[0]).toEqual({ text: "", finish_reason: "tool_calls" });
  });
});

describe("retries", () => {
  const cases: [string, ReturnType<typeof fault.status>, keyof RequestStats["retries"], string][] = [
    ["429", fault.tooMany(), "429", "429"],
    ["500", fault.status(500), "5xx", "500"],
    ["503", fault.status(503, "overloaded"), "5xx", "503"],
    ["a dropped connection", fault.drop, "connection", "drop"],
    ["a truncated body", fault.truncated, "connection", "truncated"],
    ["malformed JSON in a 200", fault.malformed, "malformed", "malformed"],
    ["a hang (headers timeout)", fault.hang, "timeout", "hang"],
  ];
  for (const [what, f, cause, outcome] of cases) {
    it(`${what}: retried with backoff, then the answer; counted as retries: ${cause}`, async () => {
      server.setFaults(faultScript([f, f]));
      const events: RetryEvent[] = [];
      const c = client({ timeoutMs: 300, onRetry: (e) => events.push(e) });
      const a = await c.chat(hello);
      expect(a.choices[0]!.text).toBe("Say hello to the world");
      expect(a.retries).toBe(2);
      expect(server.stats.outcomes).toEqual({ [outcome]: 2, ok: 1 });
      expect(c.stats.retries[cause]).toBe(2);
      expect(c.stats.counts()[`retries: ${cause}`]).toBe(2);
      expect(c.stats.attempts).toBe(3);
      expect(events.map((e) => [e.cause, e.retry])).toEqual([
        [cause, 1],
        [cause, 2],
      ]);
      expect(events[0]!.message).toMatch(new RegExp(`^POST http://127\\.0\\.0\\.1:${server.port}/v1/chat/completions: `));
      expect(events.every((e) => e.delayMs >= 0 && e.delayMs <= 50)).toBe(true);
    });
  }

  it("gives up after max_retries with a transient error naming the endpoint, the status, the server's message and what to do", async () => {
    server.setFaults(() => fault.status(503, "the engine is overloaded"));
    const c = client();
    const e = await rejection(c.complete({ prompt: "x" }));
    expect(e).toBeInstanceOf(RequestFailed);
    expect(e).toBeInstanceOf(TransientError);
    expect(e.message).toBe(
      `POST http://127.0.0.1:${server.port}/v1/completions: 503 Service Unavailable: the engine is overloaded (gave up after 3 retries; the server keeps failing: check its logs, or retry the run later)`,
    );
    expect(server.stats.received).toBe(4);
    expect(c.stats.counts()).toEqual({ requests: 1, "requests: failed": 1, "retries: 5xx": 3 });
  });

  it("connection refused is retried, then reported", async () => {
    const s = await startOpenAIServer();
    const url = s.url;
    await s.close();
    const c = client({ baseUrl: url, retry: { ...FAST, maxRetries: 1 } });
    const e = await rejection(c.chat(hello));
    expect(e).toBeInstanceOf(RequestFailed);
    expect(e.message).toMatch(/ECONNREFUSED.*gave up after 1 retry; check that the server is up/);
    expect(c.stats.retries.connection).toBe(1);
  });

  it("a run of requests through random faults all succeed, each fault counted once", async () => {
    server.setFaults(faultRate(0.3, [fault.tooMany(), fault.status(502), fault.drop, fault.malformed, fault.truncated], 7));
    const c = client({ retry: { ...FAST, maxRetries: 10 } });
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => c.complete({ prompt: `item ${i}` })));
    expect(answers.map((a) => a.choices[0]!.text)).toEqual(Array.from({ length: 200 }, (_, i) => `item ${i}`));
    const o = server.stats.outcomes;
    const r = c.stats.retries;
    expect(o["ok"]).toBe(200);
    expect(r["429"]).toBe(o["429"]);
    expect(r["5xx"]).toBe(o["502"]);
    expect(r.connection).toBe((o["drop"] ?? 0) + (o["truncated"] ?? 0));
    expect(r.malformed).toBe(o["malformed"]);
    expect(r["429"] + r["5xx"] + r.connection + r.malformed).toBeGreaterThan(40);
    expect(c.stats.attempts).toBe(server.stats.received);
  });

  it("honors Retry-After in seconds, as an HTTP date, and retry-after-ms", async () => {
    const c = client({ retry: { ...FAST, maxMs: 10_000 } });
    const timed = async () => {
      const t0 = performance.now();
      await c.chat(hello);
      return performance.now() - t0;
    };
    server.setFaults(faultScript([fault.tooMany("1")]));
    const seconds = await timed();
    expect(seconds).toBeGreaterThanOrEqual(990);
    expect(seconds).toBeLessThan(1_600);
    server.reset();
    server.setFaults(faultScript([fault.tooMany(undefined, 300)]));
    const millis = await timed();
    expect(millis).toBeGreaterThanOrEqual(295);
    expect(millis).toBeLessThan(900);
    server.reset();
    // An HTTP date has whole seconds: 2 s ahead means a wait in (1 s, 2 s].
    server.setFaults(faultScript([fault.tooMany(new Date(Date.now() + 2_000).toUTCString())]));
    const date = await timed();
    expect(date).toBeGreaterThanOrEqual(900);
    expect(date).toBeLessThan(2_600);
    // retry-after-ms wins over Retry-After when both are sent (OpenAI sends both).
    server.reset();
    server.setFaults(faultScript([{ kind: "status", status: 429, retryAfter: "5", retryAfterMs: 100 }]));
    expect(await timed()).toBeLessThan(1_000);
  });

  it("a Retry-After longer than the policy's max is cut to max; respect_retry_after = false ignores it", async () => {
    server.setFaults(faultScript([fault.tooMany("30")]));
    const t0 = performance.now();
    await client({ retry: { ...FAST, maxMs: 200 } }).chat(hello);
    expect(performance.now() - t0).toBeLessThan(1_000);
    server.reset();
    server.setFaults(faultScript([fault.tooMany("30")]));
    const t1 = performance.now();
    await client({ retry: { ...FAST, maxMs: 100_000, respectRetryAfter: false } }).chat(hello);
    expect(performance.now() - t1).toBeLessThan(1_000);
  });

  it("retry delays: full jitter under min(max, initial x multiplier^k), seeded; Retry-After parsed in its three forms", () => {
    const p: RetryPolicy = { maxRetries: 5, initialMs: 100, maxMs: 1_000, multiplier: 2, jitter: true, respectRetryAfter: true };
    const a = seededRandom(9);
    const b = seededRandom(9);
    for (let k = 0; k < 8; k++) {
      const d = retryDelay(p, k, undefined, a);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(Math.min(1_000, 100 * 2 ** k));
      expect(retryDelay(p, k, undefined, b)).toBe(d);
    }
    expect(retryDelay({ ...p, jitter: false }, 2, undefined, a)).toBe(400);
    expect(retryDelay(p, 0, 5_000, a)).toBe(1_000);
    expect(retryAfterMs({ "retry-after": "2" })).toBe(2_000);
    expect(retryAfterMs({ "retry-after": "0.5" })).toBe(500);
    expect(retryAfterMs({ "retry-after": "Wed, 21 Oct 2015 07:28:10 GMT" }, Date.parse("Wed, 21 Oct 2015 07:28:00 GMT"))).toBe(10_000);
    expect(retryAfterMs({ "retry-after": "Wed, 21 Oct 2015 07:28:10 GMT" }, Date.parse("Wed, 21 Oct 2015 08:00:00 GMT"))).toBe(0);
    expect(retryAfterMs({ "retry-after-ms": "250.5", "retry-after": "9" })).toBe(250.5);
    expect(retryAfterMs({ "retry-after": "soon" })).toBeUndefined();
    expect(retryAfterMs({})).toBeUndefined();
  });

  it("the policy comes from backoff(...) when given, else from max_retries", () => {
    expect(retryPolicyOf(undefined, 2)).toEqual({ maxRetries: 2, initialMs: 1_000, maxMs: 60_000, multiplier: 2, jitter: true, respectRetryAfter: true });
    expect(retryPolicyOf({ fn: "backoff", max_retries: 8, initial: { duration_ms: 2_000 }, jitter: false }, 2)).toEqual({
      maxRetries: 8,
      initialMs: 2_000,
      maxMs: 60_000,
      multiplier: 2,
      jitter: false,
      respectRetryAfter: true,
    });
  });
});

describe("refusals", () => {
  it("401: fails at once, names the endpoint and the status, and never shows the key (even when the server echoes it)", async () => {
    const key = "sk-test-9f8e7d6c5b4a";
    const s = await startOpenAIServer({ apiKey: "sk-the-right-one" });
    const events: RetryEvent[] = [];
    try {
      const c = new OpenAIClient({ model: "m", baseUrl: s.url, apiKey: key, concurrency: 2, timeoutMs: 5_000, retry: FAST, onRetry: (e) => events.push(e) });
      clients.push(c);
      const e = await rejection(c.chat(hello));
      expect(e).toBeInstanceOf(RequestRejected);
      expect(e).toBeInstanceOf(UserError);
      expect(e).not.toBeInstanceOf(TransientError);
      expect(e.message).toBe(`POST http://127.0.0.1:${s.port}/v1/chat/completions: 401 Unauthorized: Incorrect API key provided: <api_key>`);
      expect((e as RequestRejected).hint).toMatch(/check the secret given as api_key/);
      expect((e as RequestRejected).status).toBe(401);
      expect(s.stats.received).toBe(1);
      // Nowhere: message, hint, stack, enumerable fields, counts, retry events.
      const everything = [e.message, (e as UserError).hint, e.stack, JSON.stringify(e), String(e), JSON.stringify(c.stats), JSON.stringify(c.stats.counts()), JSON.stringify(events)].join("\n");
      expect(everything).not.toContain(key);
      expect(everything).not.toContain("9f8e7d6c5b4a");
      // The right key is sent as a bearer token.
      const ok = new OpenAIClient({ model: "m", baseUrl: s.url, apiKey: "sk-the-right-one", concurrency: 2, timeoutMs: 5_000, retry: FAST });
      clients.push(ok);
      expect((await ok.chat(hello)).choices[0]!.text).toBe("Say hello to the world");
      // No key at all: a hint that says so.
      const none = new OpenAIClient({ model: "m", baseUrl: s.url, concurrency: 2, timeoutMs: 5_000, retry: FAST });
      clients.push(none);
      const e2 = await rejection(none.chat(hello));
      expect((e2 as UserError).hint).toMatch(/no api_key is set/);
    } finally {
      await s.close();
    }
  });

  it("400: not retried, the server's explanation kept", async () => {
    const c = client();
    const e = await rejection(c.complete({ prompt: "word ".repeat(150) }));
    expect(e).toBeInstanceOf(RequestRejected);
    expect(e.message).toBe(
      `POST http://127.0.0.1:${server.port}/v1/completions: 400 Bad Request: This model's maximum context length is 100 tokens. However, your messages resulted in 150 tokens.`,
    );
    expect((e as UserError).hint).toMatch(/fits the model's context/);
    expect(server.stats.received).toBe(1);
    expect(c.stats.counts()).toEqual({ requests: 1, "requests: failed": 1 });
  });

  it("403 and 404 are not retried either; 404 hints at base_url's /v1", async () => {
    server.setFaults(faultScript([fault.status(403, "not allowed")]));
    expect(await rejection(client().chat(hello))).toBeInstanceOf(RequestRejected);
    expect(server.stats.received).toBe(1);
    const c = client({ baseUrl: server.url.replace(/\/v1$/, "") });
    const e = await rejection(c.chat(hello));
    expect(e.message).toBe(`POST http://127.0.0.1:${server.port}/chat/completions: 404 Not Found: no route POST /chat/completions`);
    expect((e as UserError).hint).toMatch(/base_url \(it usually ends in \/v1\)/);
  });

  it("a base_url that is not a URL is the user's error", () => {
    expect(() => new OpenAIClient({ model: "m", baseUrl: "localhost:8000/v1", concurrency: 1, timeoutMs: 1_000 })).toThrow(UserError);
    expect(() => new OpenAIClient({ model: "m", baseUrl: "not a url", concurrency: 1, timeoutMs: 1_000 })).toThrow(/base_url "not a url" is not a URL/);
  });
});

describe("limits", () => {
  it("concurrency: the server never sees more than N requests at once, and sees N", async () => {
    server.setFaults(() => fault.slow(30));
    const c = client({ concurrency: 4 });
    await Promise.all(Array.from({ length: 40 }, (_, i) => c.chat({ messages: [{ role: "user", content: `q${i}` }] })));
    expect(server.stats.maxInFlight).toBe(4);
    expect(server.stats.outcomes["ok"]).toBe(40);
  });

  it("a request waiting out a retry gives its permit back", async () => {
    server.setFaults(faultScript([fault.tooMany(undefined, 400)]));
    const c = client({ concurrency: 1, retry: { ...FAST, maxMs: 1_000 } });
    const first = c.chat(hello);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    await c.chat(hello); // runs while the first one waits
    expect(performance.now() - t0).toBeLessThan(300);
    await first;
  });

  it("rpm: 1,200 requests per minute held to within 5% over 5 s, evenly spaced from the start", async () => {
    const c = client({ concurrency: 16, rpm: 1_200 });
    await Promise.all(Array.from({ length: 101 }, (_, i) => c.complete({ prompt: `p${i}` })));
    const t = server.stats.arrivals;
    expect(t.length).toBe(101);
    const span = t[100]! - t[0]!;
    const rpm = (100 / span) * 60_000;
    expect(Math.abs(rpm - 1_200) / 1_200).toBeLessThan(0.05);
    // No burst: no one-second window, the first one included, holds more than 20 requests (+1 for the window's edge);
    // a bucket that starts full would send its capacity at once. Timer lateness on a busy machine is allowed for.
    for (let i = 0; i + 21 < t.length; i++) expect(t[i + 21]! - t[i]!).toBeGreaterThanOrEqual(1_000);
  });

  it("tpm: the tokens the server counts stay at the limit (the estimate is corrected by the reported usage)", async () => {
    const c = client({ concurrency: 2, tpm: 60_000 });
    const prompt = "word ".repeat(40).trim();
    const answers = await Promise.all(Array.from({ length: 25 }, () => c.complete({ prompt, max_tokens: 40 })));
    const t = server.stats.arrivals;
    const perRequest = answers[0]!.usage!.prompt_tokens + answers[0]!.usage!.completion_tokens; // 80
    expect(perRequest).toBe(80);
    // Tokens of the requests started before the last one, over the time they took: 1,000 tokens per second.
    const rate = (perRequest * (t.length - 1)) / ((t[t.length - 1]! - t[0]!) / 1000);
    expect(rate).toBeGreaterThan(900);
    expect(rate).toBeLessThan(1_100);
  });

  it("the limiter reserves evenly spaced starts and the semaphore serves in arrival order", async () => {
    const l = new RateLimiter(600, undefined);
    const waits = Array.from({ length: 5 }, () => l.reserve(0));
    waits.forEach((w, i) => expect(w).toBeCloseTo(i * 100, 0));
    const s = new Semaphore(1);
    expect(s.tryAcquire()).toBe(true);
    const order: number[] = [];
    const ac = new AbortController();
    const p1 = s.acquire().then(() => order.push(1));
    const p2 = s.acquire(ac.signal).catch(() => order.push(-2));
    const p3 = s.acquire().then(() => order.push(3));
    ac.abort();
    expect(s.tryAcquire()).toBe(false); // waiters first
    s.release();
    await p1;
    await p2;
    s.release();
    await p3;
    expect(order).toEqual([-2, 1, 3]);
    s.release();
    expect(s.inUse).toBe(0);
  });
});

describe("cancellation", () => {
  it("an AbortSignal stops a request in flight, and one waiting for a permit", async () => {
    server.setFaults(() => fault.hang);
    const c = client({ concurrency: 1 });
    const ac = new AbortController();
    const flying = c.chat(hello, { signal: ac.signal });
    const waiting = c.chat(hello, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 50));
    expect(server.stats.inFlight).toBe(1);
    ac.abort(new Error("stop"));
    expect((await rejection(flying)).message).toBe("stop");
    expect((await rejection(waiting)).message).toBe("stop");
    await new Promise((r) => setTimeout(r, 50));
    expect(server.stats.inFlight).toBe(0); // the connection was closed, not left hanging
    expect(server.stats.received).toBe(1);
  });

  it("an AbortSignal also ends a wait between retries, with the signal's reason", async () => {
    server.setFaults(() => fault.tooMany(undefined, 5_000));
    const c = client({ retry: { ...FAST, maxMs: 10_000 } });
    const ac = new AbortController();
    const t0 = performance.now();
    const p = c.chat(hello, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error("cancelled by the user")), 100);
    expect((await rejection(p)).message).toBe("cancelled by the user");
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(server.stats.received).toBe(1);
  });

  it("from an Effect: Effect.tryPromise hands over a signal, so interrupting the fiber aborts the request", async () => {
    const c = client();
    const call = (content: string) => Effect.tryPromise({ try: (signal) => c.chat({ messages: [{ role: "user", content }] }, { signal }), catch: (e) => e as Error });
    expect((await Effect.runPromise(call("via effect"))).choices[0]!.text).toBe("via effect");
    server.setFaults(() => fault.hang);
    const r = await Effect.runPromise(call("never").pipe(Effect.timeoutOption(Duration.millis(100))));
    expect(r._tag).toBe("None");
    await new Promise((r) => setTimeout(r, 50));
    expect(server.stats.inFlight).toBe(0);
  });
});

describe("configuration and counts", () => {
  it("openaiConfig reads an openai_compatible stage's resolved parameters", () => {
    const cfg = openaiConfig({
      model: "gpt-4o-mini",
      base_url: "http://h:8000/v1",
      api_key: "sk-x",
      headers: { "x-a": "b" },
      kind: "completions",
      concurrency: 32,
      rpm: 500,
      timeout: { duration_ms: 30_000 },
      max_retries: 2,
      retry: { fn: "backoff", max_retries: 7 },
      temperature: 0.2,
      seed: 5,
    });
    expect(cfg).toMatchObject({ model: "gpt-4o-mini", baseUrl: "http://h:8000/v1", apiKey: "sk-x", endpoint: "completions", concurrency: 32, rpm: 500, tpm: undefined, timeoutMs: 30_000, connectTimeoutMs: 10_000, seed: 5 });
    expect(cfg.retry!.maxRetries).toBe(7);
    expect(cfg.defaults).toEqual({ temperature: 0.2, seed: 5 });
  });

  it("stages that share a model share one client, so its limits hold across them", async () => {
    let made = 0;
    const make = () => (made++, { model: "m", baseUrl: server.url, concurrency: 2, timeoutMs: 5_000 });
    const a = sharedClient("teacher", make);
    expect(sharedClient("teacher", make)).toBe(a);
    expect(sharedClient("judge", make)).not.toBe(a);
    expect(made).toBe(2);
    await a.chat(hello);
    await closeSharedClients();
    expect(sharedClient("teacher", make)).not.toBe(a);
    await closeSharedClients();
  });

  it("a stage's own stats count its calls alone, beside the client's", async () => {
    server.setFaults(faultScript([fault.status(500)]));
    const c = client();
    const mine = new RequestStats();
    await c.chat(hello, { stats: mine });
    await c.chat(hello);
    expect(mine.counts()).toEqual({ requests: 1, "retries: 5xx": 1, "tokens: prompt": 6, "tokens: completion": 5 });
    expect(c.stats.counts()).toEqual({ requests: 2, "retries: 5xx": 1, "tokens: prompt": 12, "tokens: completion": 10 });
  });
});
