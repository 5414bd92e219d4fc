// An OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks: /v1/chat/completions, /v1/completions and
// /v1/models, answers from a script (by default an echo of the prompt), n choices, usage, logprobs, an optional API
// key, faults injected by script or by rate (429 with Retry-After, any status, dropped connections, hangs, malformed
// JSON, truncated bodies, slow answers) and counts of what it received. The plain path (no fault, default answer) is
// kept lean, so it answers several thousand requests per second; benchmarks run it in a process of its own
// (`spawnServer`, the bench's own bundle started with `--serve`), so it does not share the client's core.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { mulberry32 } from "../../src/core/random.js";

export type Endpoint = "chat" | "completions";

/** A request as the answer function sees it: the parsed body and the text that was asked (last user message or prompt). */
export interface ServerRequest {
  readonly endpoint: Endpoint;
  readonly body: Record<string, unknown>;
  readonly content: string;
  /** 0-based number of the request, over all routes, in arrival order. */
  readonly seq: number;
}

export type Fault =
  /** An HTTP error status with an OpenAI-style error body; Retry-After (seconds, or an HTTP date) and retry-after-ms when given. */
  | { readonly kind: "status"; readonly status: number; readonly message?: string; readonly retryAfter?: string; readonly retryAfterMs?: number }
  /** The connection is closed without an answer. */
  | { readonly kind: "drop" }
  /** No answer ever (until the client gives up or the server closes). */
  | { readonly kind: "hang" }
  /** 200 with a body that is not JSON. */
  | { readonly kind: "malformed" }
  /** 200 with a Content-Length longer than the bytes sent, then the connection is closed. */
  | { readonly kind: "truncated" }
  /** The normal answer, after a delay. */
  | { readonly kind: "slow"; readonly ms: number };

export const fault = {
  tooMany: (retryAfter?: string, retryAfterMs?: number): Fault => ({ kind: "status", status: 429, message: "Rate limit reached for requests", ...(retryAfter !== undefined ? { retryAfter } : {}), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }),
  status: (status: number, message?: string): Fault => ({ kind: "status", status, ...(message !== undefined ? { message } : {}) }),
  drop: { kind: "drop" } as Fault,
  hang: { kind: "hang" } as Fault,
  malformed: { kind: "malformed" } as Fault,
  truncated: { kind: "truncated" } as Fault,
  slow: (ms: number): Fault => ({ kind: "slow", ms }),
};

export type FaultPlan = (req: ServerRequest) => Fault | undefined;

/** Faults by script: request k (0-based) gets script[k]; requests past the end are answered normally. */
export function faultScript(script: readonly (Fault | undefined)[]): FaultPlan {
  return (r) => script[r.seq];
}

/** Faults by rate: each request fails with probability `rate`, with a kind drawn from `kinds` (seeded, repeatable). */
export function faultRate(rate: number, kinds: readonly Fault[], seed = 1): FaultPlan {
  const random = mulberry32(seed);
  return () => (random() < rate ? kinds[Math.floor(random() * kinds.length)] : undefined);
}

export interface ServerOptions {
  /** The answer text of choice `choice`; default an echo of the request's content (`[i] ` before it for i > 0). */
  readonly answer?: (req: ServerRequest, choice: number) => string;
  /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
  readonly apiKey?: string;
  readonly faults?: FaultPlan;
  /** Keep the arrival time (performance.now()) of each request, for rate measurements. */
  readonly recordArrivals?: boolean;
  /** Prompts longer than this many tokens are refused with 400, as a model's context limit would (default 1e6). */
  readonly contextTokens?: number;
  readonly port?: number;
}

export interface ServerStats {
  /** Requests received on the API routes. */
  received: number;
  inFlight: number;
  maxInFlight: number;
  /** By outcome: `ok`, a status (`429`, `500`, `401`...), `drop`, `hang`, `malformed`, `truncated`. */
  readonly outcomes: Record<string, number>;
  /** Arrival times (ms, performance.now() of the server's process) when recordArrivals is on. */
  readonly arrivals: number[];
}

export interface OpenAIServer {
  /** The base URL clients take: `http://127.0.0.1:PORT/v1`. */
  readonly url: string;
  readonly port: number;
  readonly stats: ServerStats;
  /** Change the fault plan (or remove it) between test steps. */
  setFaults(plan: FaultPlan | undefined): void;
  /** Zero the counts (the request numbering restarts too). */
  reset(): void;
  close(): Promise<void>;
}

const JSON_HEADERS = { "content-type": "application/json" };

export async function startOpenAIServer(options: ServerOptions = {}): Promise<OpenAIServer> {
  let plan = options.faults;
  const answer = options.answer ?? echo;
  const auth = options.apiKey !== undefined ? `Bearer ${options.apiKey}` : undefined;
  const contextTokens = options.contextTokens ?? 1e6;
  const stats: ServerStats = { received: 0, inFlight: 0, maxInFlight: 0, outcomes: {}, arrivals: [] };
  const hung = new Set<ServerResponse>();
  let seq = 0;
  let created = Date.now();

  const count = (outcome: string) => {
    stats.outcomes[outcome] = (stats.outcomes[outcome] ?? 0) + 1;
  };
  const done = () => {
    stats.inFlight--;
  };
  const error = (res: ServerResponse, status: number, message: string, type: string, extra?: Record<string, string>) => {
    const body = JSON.stringify({ error: { message, type, param: null, code: null } });
    res.writeHead(status, { ...JSON_HEADERS, "content-length": Buffer.byteLength(body), ...extra });
    res.end(body);
    count(String(status));
    done();
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "";
    if (req.method === "GET") {
      if (url === "/v1/models") return sendJson(res, { object: "list", data: [{ id: "test-model", object: "model", created, owned_by: "itp-test" }] });
      if (url.startsWith("/stats")) return sendJson(res, url.includes("arrivals") ? stats : { ...stats, arrivals: undefined });
    }
    if (req.method === "POST" && url === "/reset") return (api.reset(), sendJson(res, { reset: true }));
    const endpoint: Endpoint | undefined = url === "/v1/chat/completions" ? "chat" : url === "/v1/completions" ? "completions" : undefined;
    if (req.method !== "POST" || !endpoint) {
      res.writeHead(404, JSON_HEADERS).end(JSON.stringify({ error: { message: `no route ${req.method} ${url}`, type: "invalid_request_error" } }));
      return;
    }
    stats.received++;
    if (options.recordArrivals) stats.arrivals.push(performance.now());
    if (++stats.inFlight > stats.maxInFlight) stats.maxInFlight = stats.inFlight;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (auth !== undefined && req.headers.authorization !== auth) {
        // The real service masks the key it echoes; this one echoes it whole, so tests can check the client redacts.
        const given = req.headers.authorization?.replace(/^Bearer /, "") ?? "";
        return error(res, 401, given ? `Incorrect API key provided: ${given}` : "You didn't provide an API key.", "invalid_request_error");
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      } catch {
        return error(res, 400, "We could not parse the JSON body of your request.", "invalid_request_error");
      }
      const content = requestContent(endpoint, body);
      if (typeof body["model"] !== "string") return error(res, 400, "you must provide a model parameter", "invalid_request_error");
      if (content === undefined) return error(res, 400, endpoint === "chat" ? "'messages' is a required property" : "'prompt' is a required property", "invalid_request_error");
      const r: ServerRequest = { endpoint, body, content, seq: seq++ };
      const f = plan?.(r);
      if (f === undefined) return respond(res, r);
      switch (f.kind) {
        case "status": {
          const headers: Record<string, string> = {};
          if (f.retryAfter !== undefined) headers["retry-after"] = f.retryAfter;
          if (f.retryAfterMs !== undefined) headers["retry-after-ms"] = String(f.retryAfterMs);
          return error(res, f.status, f.message ?? `injected ${f.status}`, f.status === 429 ? "requests" : "server_error", headers);
        }
        case "drop":
          count("drop");
          done();
          return req.socket.destroy();
        case "hang":
          count("hang");
          hung.add(res);
          res.once("close", () => (hung.delete(res), done()));
          return;
        case "malformed": {
          const text = '{"id":"cmpl-x","choices":[{"index":0,"message":{"content":"never fin';
          res.writeHead(200, { ...JSON_HEADERS, "content-length": Buffer.byteLength(text) }).end(text);
          count("malformed");
          return done();
        }
        case "truncated": {
          const text = answerBody(r, answer, contextTokens).body;
          res.writeHead(200, { ...JSON_HEADERS, "content-length": Buffer.byteLength(text) });
          res.write(text.slice(0, text.length >> 1), () => res.destroy());
          count("truncated");
          return done();
        }
        case "slow":
          setTimeout(() => respond(res, r), f.ms);
          return;
      }
    });
  });

  function respond(res: ServerResponse, r: ServerRequest): void {
    const a = answerBody(r, answer, contextTokens);
    if (a.status !== 200) return error(res, a.status, a.body, "invalid_request_error");
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(a.body) });
    res.end(a.body);
    count("ok");
    done();
  }

  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const api: OpenAIServer = {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    stats,
    setFaults(p) {
      plan = p;
    },
    reset() {
      stats.received = 0;
      stats.maxInFlight = stats.inFlight;
      for (const k of Object.keys(stats.outcomes)) delete stats.outcomes[k];
      stats.arrivals.length = 0;
      seq = 0;
      created = Date.now();
    },
    close() {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}

function sendJson(res: ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { ...JSON_HEADERS, "content-length": Buffer.byteLength(body) }).end(body);
}

/** The text a request asks about: the last user message (chat) or the prompt (completions); undefined when missing. */
function requestContent(endpoint: Endpoint, body: Record<string, unknown>): string | undefined {
  if (endpoint === "completions") {
    const p = body["prompt"];
    return typeof p === "string" ? p : Array.isArray(p) && typeof p[0] === "string" ? p[0] : undefined;
  }
  const m = body["messages"];
  if (!Array.isArray(m) || m.length === 0) return undefined;
  for (let i = m.length - 1; i >= 0; i--) {
    const x = m[i] as { role?: unknown; content?: unknown };
    if (x?.role === "user" && typeof x.content === "string") return x.content;
  }
  const last = m[m.length - 1] as { content?: unknown };
  return typeof last?.content === "string" ? last.content : "";
}

function echo(r: ServerRequest, choice: number): string {
  return choice === 0 ? r.content : `[${choice}] ${r.content}`;
}

/** Tokens, as this server counts them: whitespace-separated words (with their leading space). */
function tokensOf(s: string): string[] {
  return s.match(/\s*\S+/g) ?? [];
}

function countTokens(s: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const space = c === 32 || c === 10 || c === 9 || c === 13;
    if (!space && !inWord) n++;
    inWord = !space;
  }
  return n;
}

/** The 200 answer's JSON (or, for a prompt over the context limit, a 400 message). */
function answerBody(r: ServerRequest, answer: (req: ServerRequest, choice: number) => string, contextTokens: number): { status: number; body: string } {
  const b = r.body;
  const promptTokens = r.endpoint === "chat" ? chatTokens(b["messages"] as { content?: unknown }[]) : countTokens(r.content);
  if (promptTokens > contextTokens) return { status: 400, body: `This model's maximum context length is ${contextTokens} tokens. However, your messages resulted in ${promptTokens} tokens.` };
  const n = typeof b["n"] === "number" ? b["n"] : 1;
  const maxTokens = typeof b["max_tokens"] === "number" ? b["max_tokens"] : Infinity;
  const stop = Array.isArray(b["stop"]) ? (b["stop"] as string[]) : typeof b["stop"] === "string" ? [b["stop"]] : [];
  const lp = r.endpoint === "chat" ? (b["logprobs"] === true ? (typeof b["top_logprobs"] === "number" ? b["top_logprobs"] : 0) : -1) : typeof b["logprobs"] === "number" ? b["logprobs"] : -1;
  let completionTokens = 0;
  const choices = new Array(n);
  for (let i = 0; i < n; i++) {
    let text = answer(r, i);
    let finish = "stop";
    for (const s of stop) {
      const at = text.indexOf(s);
      if (at >= 0) text = text.slice(0, at);
    }
    let k = countTokens(text);
    if (k > maxTokens) {
      text = tokensOf(text).slice(0, maxTokens).join("");
      k = maxTokens;
      finish = "length";
    }
    completionTokens += k;
    if (r.endpoint === "chat") {
      choices[i] = { index: i, message: { role: "assistant", content: text }, logprobs: lp >= 0 ? { content: chatLogprobs(text, lp) } : null, finish_reason: finish };
    } else {
      choices[i] = { index: i, text, logprobs: lp >= 0 ? completionLogprobs(text, lp) : null, finish_reason: finish };
    }
  }
  const model = b["model"];
  const body = JSON.stringify({
    id: `cmpl-${r.seq}`,
    object: r.endpoint === "chat" ? "chat.completion" : "text_completion",
    created: 1700000000,
    model,
    choices,
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
  });
  return { status: 200, body };
}

function chatTokens(messages: { content?: unknown }[]): number {
  let n = 0;
  for (const m of messages) if (typeof m?.content === "string") n += countTokens(m.content) + 1;
  return n;
}

/** A token's log-probability, made up but deterministic: from a hash of the token. */
function logprobOf(token: string): number {
  let h = 2166136261;
  for (let i = 0; i < token.length; i++) h = Math.imul(h ^ token.charCodeAt(i), 16777619);
  return -((h >>> 0) % 1000) / 250;
}

function alternatives(token: string, k: number): { token: string; logprob: number }[] {
  const lp = logprobOf(token);
  const out = [{ token, logprob: lp }];
  for (let j = 1; j < k; j++) out.push({ token: `${token}~${j}`, logprob: lp - j });
  return out;
}

function chatLogprobs(text: string, top: number) {
  return tokensOf(text).map((token) => ({ token, logprob: logprobOf(token), bytes: [...Buffer.from(token)], top_logprobs: top > 0 ? alternatives(token, top) : [] }));
}

function completionLogprobs(text: string, top: number) {
  const tokens = tokensOf(text);
  let offset = 0;
  const text_offset = tokens.map((t) => ((offset += t.length), offset - t.length));
  return {
    tokens,
    token_logprobs: tokens.map(logprobOf),
    top_logprobs: top > 0 ? tokens.map((t) => Object.fromEntries(alternatives(t, top).map((a) => [a.token, a.logprob]))) : null,
    text_offset,
  };
}

// --- In a process of its own, for benchmarks --------------------------------------------------------------------

/**
 * Standalone entry: `<bundle> --serve [--port N] [--api-key K] [--arrivals]`; prints `listening <url>` and serves until
 * killed (or, with --stop-with-stdin, until its stdin closes). By hand: `npm run bench -- openai-client --serve --port 8000`.
 */
export async function serveStandalone(args: readonly string[]): Promise<void> {
  const flag = (name: string) => args.includes(name);
  const value = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const apiKey = value("--api-key");
  const port = value("--port");
  const s = await startOpenAIServer({ ...(apiKey !== undefined ? { apiKey } : {}), ...(port !== undefined ? { port: Number(port) } : {}), recordArrivals: flag("--arrivals") });
  process.stdout.write(`listening ${s.url}\n`);
  const stop = () => void s.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // Spawned by spawnServer: stop with the parent, when its end of stdin closes (even if the parent is killed).
  if (flag("--stop-with-stdin")) process.stdin.on("end", stop).resume();
}

export interface SpawnedServer {
  readonly url: string;
  readonly child: ChildProcess;
  /** The server's counts, fetched over HTTP. */
  stats(arrivals?: boolean): Promise<ServerStats>;
  /** Zero the server's counts. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Start `entry` (a bundled bench that calls serveStandalone on `--serve`) in its own process. */
export async function spawnServer(entry: string, args: readonly string[] = []): Promise<SpawnedServer> {
  const child = spawn(process.execPath, [entry, "--serve", "--stop-with-stdin", ...args], { stdio: ["pipe", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once("line", (l) => (l.startsWith("listening ") ? resolve(l.slice("listening ".length)) : reject(new Error(`server said: ${l}`))));
    child.once("exit", (code) => reject(new Error(`server exited (code ${code}) before listening`)));
  });
  return {
    url,
    child,
    async stats(arrivals = false) {
      const { request } = await import("undici");
      const res = await request(`${url.replace(/\/v1$/, "")}/stats${arrivals ? "?arrivals" : ""}`);
      return (await res.body.json()) as ServerStats;
    },
    async reset() {
      const { request } = await import("undici");
      await (await request(`${url.replace(/\/v1$/, "")}/reset`, { method: "POST" })).body.dump();
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
