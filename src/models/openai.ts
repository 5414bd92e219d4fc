import { STATUS_CODES, type IncomingHttpHeaders } from "node:http";
import { Pool, util as undiciUtil, type Dispatcher } from "undici";
import type { Json } from "../core/ir.js";
import { TransientError, UserError } from "../core/errors.js";
import { Semaphore, unwatchAbort, watchAbort, type AbortWatcher } from "./concurrency.js";
import { delay } from "./delay.js";
import {
  chatBody,
  completionBody,
  MalformedAnswer,
  parseAnswer,
  serverMessage,
  type ChatRequest,
  type Completion,
  type CompletionRequest,
  type Endpoint,
  type SamplingDefaults,
} from "./openai-wire.js";
import { RateLimiter } from "./rate-limit.js";
import { networkCause, retryableStatus, retryAfterMs, retryDelay, retryPolicyOf, seededRandom, type RetryCause, type RetryPolicy } from "./retry.js";
import { RequestStats } from "./stats.js";

export type { ChatMessage, ChatRequest, Choice, Completion, CompletionRequest, Endpoint, Sampling, TokenLogprob, Usage } from "./openai-wire.js";
export { RequestStats } from "./stats.js";
export type { RetryCause, RetryPolicy } from "./retry.js";

/** How to reach one model endpoint and how hard to push it: an `openai_compatible` declaration, resolved. */
export interface OpenAIConfig {
  readonly model: string;
  /** Up to and including the API version, as OpenAI's SDKs take it: `https://api.openai.com/v1`, `http://host:8000/v1`. */
  readonly baseUrl: string;
  /** The resolved secret; sent as `Authorization: Bearer ...`, never shown in errors or counts. */
  readonly apiKey?: string | undefined;
  readonly headers?: Readonly<Record<string, string>>;
  /** The endpoint {@link OpenAIClient.generate} uses (default chat). */
  readonly endpoint?: Endpoint;
  readonly concurrency: number;
  readonly rpm?: number | undefined;
  readonly tpm?: number | undefined;
  /** Longest wait for an answer's headers (a non-streamed answer: the whole generation), and for each gap in its body. */
  readonly timeoutMs: number;
  readonly connectTimeoutMs?: number;
  readonly retry?: RetryPolicy;
  readonly defaults?: SamplingDefaults;
  /** Seed of the backoff jitter (the same seed gives the same waits). */
  readonly seed?: number;
  /** Told of each retry before its wait (for a progress line or a log); the message never holds the key. */
  readonly onRetry?: (e: RetryEvent) => void;
}

export interface RetryEvent {
  readonly cause: RetryCause;
  /** 1 for the first retry. */
  readonly retry: number;
  readonly delayMs: number;
  readonly message: string;
}

/**
 * Options of one call; an object a stage may build once and pass to all its calls. A signal shared by many calls in
 * flight gets one listener for the requests and permit waits of them all; a retry's wait adds one of its own, so a
 * stage whose calls may all be waiting to retry at once raises the limit (`setMaxListeners(n, signal)` of node:events).
 */
export interface CallOptions {
  readonly signal?: AbortSignal | undefined;
  /** Also count this call here (a stage's own share of a client shared between stages). */
  readonly stats?: RequestStats | undefined;
}

/** A request the server refused for a reason a retry cannot fix (401, 403, 400, 404...): the user's to fix. */
export class RequestRejected extends UserError {
  constructor(
    message: string,
    hint: string,
    readonly status: number,
  ) {
    super(message, hint);
  }
}

/** A request that still failed after its retries (or when retries were off): transient, the stage may be retried. */
export class RequestFailed extends TransientError {
  constructor(
    message: string,
    readonly retryCause: RetryCause,
    readonly status: number | undefined,
    readonly retries: number,
  ) {
    super(message);
  }
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * A client of one OpenAI-compatible model endpoint (OpenAI, vLLM, TGI, llama.cpp server, Ollama) over undici: one
 * keep-alive connection pool per client, the model's concurrency limit, its rpm/tpm limits and its retry policy.
 *
 * The API is promises with an AbortSignal, for `Effect.tryPromise((signal) => client.chat(req, { signal }))`. The hot
 * path (a permit, a request, a parse) allocates little beyond the body string and the answer: no zod, no per-request
 * closures, headers built once. Retries are a loop rather than an Effect Schedule because the wait depends on the
 * answer (Retry-After), each cause is counted, and the promise API would otherwise pay for a runtime per request.
 */
export class OpenAIClient {
  /** Counts over the client's life. */
  readonly stats = new RequestStats();
  readonly model: string;
  readonly endpoint: Endpoint;
  private readonly pool: Pool;
  private readonly origin: string;
  private readonly chatPath: string;
  private readonly completionsPath: string;
  private readonly headers: string[];
  private readonly apiKey: string | undefined;
  private readonly permits: Semaphore;
  private readonly limiter: RateLimiter | undefined;
  private readonly policy: RetryPolicy;
  private readonly defaults: SamplingDefaults;
  private readonly random: () => number;
  private readonly onRetry: ((e: RetryEvent) => void) | undefined;
  private readonly timeoutMs: number;

  constructor(config: OpenAIConfig) {
    let url: URL;
    try {
      url = new URL(config.baseUrl);
    } catch {
      throw new UserError(`base_url ${JSON.stringify(config.baseUrl)} is not a URL`, 'give the API\'s address up to its version, e.g. "http://localhost:8000/v1"');
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new UserError(`base_url ${JSON.stringify(config.baseUrl)} is not an http(s) URL`, 'e.g. "http://localhost:8000/v1"');
    this.model = config.model;
    this.endpoint = config.endpoint ?? "chat";
    this.origin = url.origin; // without user:password, so messages never show them
    const base = url.pathname.replace(/\/+$/, "");
    this.chatPath = `${base}/chat/completions${url.search}`;
    this.completionsPath = `${base}/completions${url.search}`;
    this.apiKey = config.apiKey || undefined;
    // undici's flat [name, value, ...] form: no Object.entries per request.
    this.headers = ["content-type", "application/json"];
    for (const [k, v] of Object.entries(config.headers ?? {})) this.headers.push(k, v);
    if (this.apiKey) this.headers.push("authorization", `Bearer ${this.apiKey}`);
    this.timeoutMs = config.timeoutMs;
    // One connection per permit: POST is not idempotent, so undici would not pipeline these anyway, and a long
    // generation at the head of a pipeline would hold up the answers queued behind it.
    this.pool = new Pool(this.origin, {
      connections: config.concurrency,
      pipelining: 1,
      connectTimeout: config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
    });
    this.permits = new Semaphore(config.concurrency);
    const limiter = new RateLimiter(config.rpm, config.tpm);
    this.limiter = limiter.limited ? limiter : undefined;
    this.policy = config.retry ?? retryPolicyOf(undefined, undefined);
    this.defaults = config.defaults ?? {};
    this.random = seededRandom(config.seed ?? 42);
    this.onRetry = config.onRetry;
  }

  /** A chat completion (`POST {base_url}/chat/completions`). */
  chat(req: ChatRequest, opts?: CallOptions): Promise<Completion> {
    return this.send("chat", this.chatBody(req), opts, completionBudget(req, this.defaults));
  }

  /** A text completion (`POST {base_url}/completions`). */
  complete(req: CompletionRequest, opts?: CallOptions): Promise<Completion> {
    return this.send("completions", this.completionBody(req), opts, completionBudget(req, this.defaults));
  }

  /** The JSON a chat call sends: what a request cache keys on (it holds no credentials). */
  chatBody(req: ChatRequest): string {
    return chatBody(this.model, this.defaults, req);
  }

  completionBody(req: CompletionRequest): string {
    return completionBody(this.model, this.defaults, req);
  }

  /**
   * Send a body built by {@link chatBody} or {@link completionBody}: waits for a permit and a rate-limit slot, retries
   * per the policy, and reads the answer. `budget`: the completion tokens the request may use (max_tokens x n), for
   * the tokens-per-minute estimate.
   */
  async send(endpoint: Endpoint, body: string, opts?: CallOptions, budget = 0): Promise<Completion> {
    const signal = opts?.signal;
    const extra = opts?.stats;
    const path = endpoint === "chat" ? this.chatPath : this.completionsPath;
    const estimate = this.limiter ? Math.ceil(body.length / 4) + budget : 0;
    this.stats.requests++;
    if (extra) extra.requests++;
    for (let retry = 0; ; retry++) {
      if (!this.permits.tryAcquire()) await this.permits.acquire(signal);
      let status = 0;
      let headers: IncomingHttpHeaders | undefined;
      let text = "";
      let cause: RetryCause | undefined;
      let problem = "";
      let answered = 0; // the status of an answer whose body then failed
      let exchange: Exchange | undefined;
      try {
        if (this.limiter) await this.limiter.take(estimate, signal);
        this.stats.attempts++;
        if (extra) extra.attempts++;
        if (signal?.aborted) throw signal.reason;
        exchange = new Exchange(signal);
        const done = exchange.take();
        this.pool.dispatch({ path, method: "POST", headers: this.headers, body }, exchange);
        text = await done;
        // Only once the whole body is in: a connection lost mid-body is a network failure, not a short answer.
        status = exchange.status;
        // Headers are read only where they matter (Retry-After, x-should-retry): on answers that are not a success.
        if (status < 200 || status >= 300) headers = undiciUtil.parseHeaders(exchange.rawHeaders ?? []) as IncomingHttpHeaders;
      } catch (e) {
        answered = exchange?.status ?? 0;
        if (signal?.aborted) throw signal.reason;
        cause = networkCause(e);
        if (!cause) throw this.fail(new UserError(`${this.where(path)}: ${this.redact(describeNetworkError(e, this.timeoutMs))}`, networkHint(e)), extra);
        problem = describeNetworkError(e, this.timeoutMs);
        if (answered) problem = `${answered} ${statusText(answered)} but the body was cut short: ${problem}`;
      } finally {
        this.permits.release();
      }
      if (status >= 200 && status < 300) {
        try {
          const answer = parseAnswer(endpoint, text, retry);
          this.succeed(answer, estimate, extra);
          return answer;
        } catch (e) {
          if (!(e instanceof MalformedAnswer)) throw e;
          cause = "malformed";
          problem = `${status} ${statusText(status)} but ${e.message}`;
        }
      } else if (status !== 0) {
        cause = retryableStatus(status);
        if (headers?.["x-should-retry"] === "false") cause = undefined; // OpenAI's explicit advice
        problem = `${status} ${statusText(status)}: ${serverMessage(text)}`;
        if (!cause) throw this.fail(new RequestRejected(`${this.where(path)}: ${this.redact(problem)}`, this.hintFor(status), status), extra);
      }
      const c = cause!;
      if (retry >= this.policy.maxRetries) {
        const tries = retry === 0 ? "no retries allowed" : `gave up after ${retry} ${retry === 1 ? "retry" : "retries"}`;
        throw this.fail(new RequestFailed(`${this.where(path)}: ${this.redact(problem)} (${tries}; ${giveUpHint(c)})`, c, status || undefined, retry), extra);
      }
      this.stats.retries[c]++;
      if (extra) extra.retries[c]++;
      const delayMs = retryDelay(this.policy, retry, headers && (c === "429" || c === "5xx") ? retryAfterMs(headers) : undefined, this.random);
      this.onRetry?.({ cause: c, retry: retry + 1, delayMs, message: `${this.where(path)}: ${this.redact(problem)}` });
      await delay(delayMs, signal);
    }
  }

  /** A call on the endpoint the model declares (`kind`): chat takes the prompt as one user message. */
  generate(prompt: string, sampling: Omit<CompletionRequest, "prompt"> & { system?: string }, opts?: CallOptions): Promise<Completion> {
    // A completions model has no system role: the system text goes before the prompt.
    if (this.endpoint === "completions") return this.complete({ ...sampling, prompt: sampling.system !== undefined ? `${sampling.system}\n\n${prompt}` : prompt }, opts);
    const messages = sampling.system !== undefined ? [{ role: "system", content: sampling.system }, { role: "user", content: prompt }] : [{ role: "user", content: prompt }];
    return this.chat({ ...sampling, messages }, opts);
  }

  /** Close the connections (after the run; in-flight requests finish first). */
  close(): Promise<void> {
    return this.pool.close();
  }

  /** Requests in flight now. */
  get inFlight(): number {
    return this.permits.inUse;
  }

  private where(path: string): string {
    const q = path.indexOf("?");
    return `POST ${this.origin}${q < 0 ? path : path.slice(0, q)}`;
  }

  private succeed(answer: Completion, estimate: number, extra: RequestStats | undefined): void {
    const s = this.stats;
    s.succeeded++;
    const u = answer.usage;
    if (u) {
      s.prompt_tokens += u.prompt_tokens;
      s.completion_tokens += u.completion_tokens;
      this.limiter?.settle(estimate, u.prompt_tokens + u.completion_tokens);
    }
    if (extra) {
      extra.succeeded++;
      if (u) {
        extra.prompt_tokens += u.prompt_tokens;
        extra.completion_tokens += u.completion_tokens;
      }
    }
  }

  private fail(e: Error, extra: RequestStats | undefined): Error {
    this.stats.failed++;
    if (extra) extra.failed++;
    return e;
  }

  /** The key never appears in a message, even when a server echoes it back. */
  private redact(s: string): string {
    return this.apiKey && this.apiKey.length >= 4 && s.includes(this.apiKey) ? s.split(this.apiKey).join("<api_key>") : s;
  }

  private hintFor(status: number): string {
    switch (status) {
      case 401:
        return this.apiKey ? "the server refused the API key: check the secret given as api_key (its value is never shown)" : 'no api_key is set: give it as api_key = secret("NAME")';
      case 403:
        return `the API key has no access to model "${this.model}" or to this endpoint`;
      case 404:
        return `check base_url (it usually ends in /v1) and the model name "${this.model}"`;
      case 400:
      case 422:
        return "the server rejected the request: check the sampling parameters and that the prompt fits the model's context";
      case 413:
        return "the prompt is too large for the server";
      default:
        return "the server refused the request; a retry would not help";
    }
  }
}

/** A client configured from an `openai_compatible` stage's parameters, resolved (env() substituted, the secret read). */
export function openaiConfig(params: Readonly<Record<string, Json>>, onRetry?: (e: RetryEvent) => void): OpenAIConfig {
  const p = params as Record<string, unknown>;
  const num = (k: string) => (typeof p[k] === "number" ? (p[k] as number) : undefined);
  const dur = (k: string) => (p[k] as { duration_ms?: number } | undefined)?.duration_ms;
  const defaults: { temperature?: number; top_p?: number; max_tokens?: number; seed?: number } = {};
  for (const k of ["temperature", "top_p", "max_tokens", "seed"] as const) if (num(k) !== undefined) defaults[k] = num(k)!;
  return {
    model: String(p["model"]),
    baseUrl: typeof p["base_url"] === "string" ? p["base_url"] : "https://api.openai.com/v1",
    apiKey: typeof p["api_key"] === "string" ? p["api_key"] : undefined,
    headers: (p["headers"] as Record<string, string> | undefined) ?? {},
    endpoint: p["kind"] === "completions" ? "completions" : "chat",
    concurrency: num("concurrency") ?? 8,
    rpm: num("rpm"),
    tpm: num("tpm"),
    timeoutMs: dur("timeout") ?? 120_000,
    connectTimeoutMs: dur("connect_timeout") ?? DEFAULT_CONNECT_TIMEOUT_MS,
    retry: retryPolicyOf(p["retry"], num("max_retries")),
    defaults,
    seed: num("seed") ?? 42,
    ...(onRetry ? { onRetry } : {}),
  };
}

function completionBudget(r: { max_tokens?: number; n?: number }, d: SamplingDefaults): number {
  return (r.max_tokens ?? d.max_tokens ?? 0) * (r.n ?? 1);
}

function statusText(status: number): string {
  return STATUS_CODES[status] ?? "";
}

function describeNetworkError(e: unknown, timeoutMs: number): string {
  const err = e as { code?: string; message?: string };
  switch (err.code) {
    case "UND_ERR_HEADERS_TIMEOUT":
      return `no answer within ${timeoutMs / 1000} s (timeout)`;
    case "UND_ERR_BODY_TIMEOUT":
      return `the answer stalled for ${timeoutMs / 1000} s (timeout)`;
    case "UND_ERR_CONNECT_TIMEOUT":
      return "could not connect in time (connect timeout)";
    case "UND_ERR_SOCKET":
      return `the server closed the connection (${err.message})`;
    case "UND_ERR_RES_CONTENT_LENGTH_MISMATCH":
      return "the answer was cut short (fewer bytes than its Content-Length)";
  }
  return err.code ? `${err.code}: ${err.message}` : String(err.message ?? e);
}

function networkHint(e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === "ENOTFOUND") return "the host of base_url is unknown: check base_url";
  if (code === "UND_ERR_INVALID_ARG") return "check the extra headers of the model";
  return "check base_url and that the server is reachable";
}

function giveUpHint(c: RetryCause): string {
  switch (c) {
    case "429":
      return "the server is rate limiting: lower concurrency, or set rpm/tpm below the account's limits";
    case "5xx":
      return "the server keeps failing: check its logs, or retry the run later";
    case "timeout":
      return "raise timeout, or lower max_tokens or concurrency";
    case "connection":
      return "check that the server is up and reachable";
    case "malformed":
      return "the server does not answer in the OpenAI format: check base_url and kind";
  }
}

/**
 * One HTTP exchange, as an undici dispatch handler: the answer's status, raw headers and body, the body decoded once
 * it is all in (as undici's `body.text()` does: UTF-8, a byte order mark dropped). Compared with `pool.request` and
 * `body.text()` this spares a Readable stream, an AsyncResource and an abort listener per request; the signal is
 * watched through one listener shared by every call that uses it.
 *
 * undici keeps up to 256 finished requests per connection (with their handlers) before it trims its queue, so a
 * settled exchange lets go of its body and its promise: else 64 connections hold thousands of answers, which survive
 * the young generation and make every scavenge copy them.
 */
const settledAlready = (): void => undefined;

class Exchange implements Dispatcher.DispatchHandler, AbortWatcher {
  /** The answer's status, once its headers are in (0 before). */
  status = 0;
  rawHeaders: Buffer[] | undefined;
  private done: Promise<string> | undefined;
  private chunks: Buffer[] = [];
  private bytes = 0;
  private settled = false;
  private abortRequest: ((err?: Error) => void) | undefined;
  private abortReason: Error | undefined;
  private resolve!: (text: string) => void;
  private reject!: (e: unknown) => void;

  /** The answer's body as text: taken once, before the exchange is dispatched (the exchange keeps no hold on it). */
  take(): Promise<string> {
    const p = this.done!;
    this.done = undefined;
    return p;
  }

  constructor(private readonly signal: AbortSignal | undefined) {
    this.done = new Promise<string>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (signal) watchAbort(signal, this);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.abortReason) abort(this.abortReason);
    else this.abortRequest = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true; // 1xx: informational, the answer follows
    this.status = statusCode;
    this.rawHeaders = rawHeaders;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    return true;
  }

  onComplete(): void {
    const resolve = this.resolve;
    if (!this.settle()) return;
    const c = this.chunks;
    this.chunks = [];
    const buf = c.length === 1 ? c[0]! : Buffer.concat(c, this.bytes);
    const bom = buf.length > 2 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf;
    resolve(buf.toString("utf8", bom ? 3 : 0));
  }

  onError(err: Error): void {
    const reject = this.reject;
    if (this.settle()) reject(err);
  }

  onAbort(reason: unknown): void {
    const reject = this.reject;
    if (!this.settle()) return;
    this.abortReason = reason instanceof Error ? reason : new Error(String(reason));
    this.abortRequest?.(this.abortReason);
    reject(reason);
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    if (this.signal) unwatchAbort(this.signal, this);
    // The resolving functions hold the promise, and the promise its value: the caller has taken them, they go.
    this.resolve = this.reject = settledAlready;
    return true;
  }
}

/**
 * One client per model for the whole run, so stages that share a model share its concurrency and rate limits. The key
 * names the model (its stage id, or a digest of its identity).
 */
const shared = new Map<string, OpenAIClient>();

export function sharedClient(key: string, config: () => OpenAIConfig): OpenAIClient {
  let c = shared.get(key);
  if (!c) shared.set(key, (c = new OpenAIClient(config())));
  return c;
}

/** Close every shared client (at the end of a run). */
export async function closeSharedClients(): Promise<void> {
  const all = [...shared.values()];
  shared.clear();
  await Promise.all(all.map((c) => c.close()));
}
