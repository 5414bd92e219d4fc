import type { IncomingHttpHeaders } from "node:http";
import { mulberry32 } from "../core/random.js";

/**
 * When a request to a model endpoint is tried again, and how long it waits first. The causes are counted apart, so
 * a manifest says whether a slow run was rate limiting (429), a sick server (5xx), timeouts or a flaky network.
 */
export type RetryCause = "429" | "5xx" | "timeout" | "connection" | "malformed";

export const RETRY_CAUSES: readonly RetryCause[] = ["429", "5xx", "timeout", "connection", "malformed"];

/** The `backoff(...)` value of a recipe, resolved: exponential backoff with full jitter, honoring Retry-After. */
export interface RetryPolicy {
  readonly maxRetries: number;
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  readonly jitter: boolean;
  readonly respectRetryAfter: boolean;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 5, initialMs: 1_000, maxMs: 60_000, multiplier: 2, jitter: true, respectRetryAfter: true };

/**
 * The policy of an `openai_compatible` model: its `retry = backoff(...)` when given (the value as the checker hands
 * it over, defaults possibly not filled in), else `max_retries` with backoff's defaults.
 */
export function retryPolicyOf(retry: unknown, maxRetries: number | undefined): RetryPolicy {
  const r = retry as
    | { fn?: string; max_retries?: number; initial?: { duration_ms: number }; max?: { duration_ms: number }; multiplier?: number; jitter?: boolean; respect_retry_after?: boolean }
    | undefined;
  if (!r || r.fn !== "backoff") return { ...DEFAULT_RETRY, maxRetries: maxRetries ?? DEFAULT_RETRY.maxRetries };
  return {
    maxRetries: r.max_retries ?? DEFAULT_RETRY.maxRetries,
    initialMs: r.initial?.duration_ms ?? DEFAULT_RETRY.initialMs,
    maxMs: r.max?.duration_ms ?? DEFAULT_RETRY.maxMs,
    multiplier: r.multiplier ?? DEFAULT_RETRY.multiplier,
    jitter: r.jitter ?? DEFAULT_RETRY.jitter,
    respectRetryAfter: r.respect_retry_after ?? DEFAULT_RETRY.respectRetryAfter,
  };
}

/**
 * The wait before retry number `retry` (0 for the first): the server's Retry-After when it gave one and the policy
 * honors it, else full jitter, a uniform draw in [0, min(max, initial x multiplier^retry)] (AWS's "full jitter":
 * clients that failed together do not retry together). A Retry-After longer than the policy's max is cut to max, so
 * a server asking for an hour cannot stall a run silently; the retry then most likely fails and is counted.
 */
export function retryDelay(policy: RetryPolicy, retry: number, retryAfterMs: number | undefined, random: () => number): number {
  if (retryAfterMs !== undefined && policy.respectRetryAfter) return Math.min(retryAfterMs, policy.maxMs);
  const ceiling = Math.min(policy.maxMs, policy.initialMs * Math.pow(policy.multiplier, retry));
  return policy.jitter ? random() * ceiling : ceiling;
}

/**
 * How long the server asks us to wait, in ms: `retry-after-ms` (OpenAI's, fractional ms), else `Retry-After` as
 * delta-seconds or as an HTTP date (RFC 9110 10.2.3). Undefined when absent or unreadable.
 */
export function retryAfterMs(headers: IncomingHttpHeaders, now = Date.now()): number | undefined {
  const ms = headerValue(headers["retry-after-ms"]);
  if (ms !== undefined) {
    const n = Number(ms);
    if (ms.trim() !== "" && Number.isFinite(n) && n >= 0) return n;
  }
  const ra = headerValue(headers["retry-after"])?.trim();
  if (!ra) return undefined;
  if (/^\d+(\.\d+)?$/.test(ra)) return Number(ra) * 1000;
  const at = Date.parse(ra);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Whether an HTTP status is worth retrying: 408, 409 and 429 (OpenAI's SDKs retry these too) and every 5xx. */
export function retryableStatus(status: number): RetryCause | undefined {
  if (status === 429) return "429";
  if (status >= 500) return "5xx";
  if (status === 408) return "timeout";
  if (status === 409) return "5xx";
  return undefined;
}

/**
 * The retry cause of an error thrown by undici (or node:net) while sending a request or reading its answer;
 * undefined for errors a retry cannot fix (a bad URL, an unknown host).
 */
export function networkCause(e: unknown): RetryCause | undefined {
  const code = (e as { code?: unknown }).code;
  switch (code) {
    case "UND_ERR_CONNECT_TIMEOUT":
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
    case "ETIMEDOUT":
      return "timeout";
    case "UND_ERR_SOCKET": // "other side closed": the server dropped the connection
    case "UND_ERR_CLOSED":
    case "UND_ERR_RES_CONTENT_LENGTH_MISMATCH": // a truncated body
    case "ECONNRESET":
    case "ECONNREFUSED":
    case "ECONNABORTED":
    case "EPIPE":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "ENETDOWN":
    case "EAI_AGAIN": // a DNS hiccup; ENOTFOUND (no such host) is the user's
      return "connection";
  }
  // An HTTP parser error: garbage or a connection cut mid-message.
  if (typeof code === "string" && code.startsWith("HPE_")) return "connection";
  return undefined;
}

/** The seeded generator of retry jitter: the same seed gives the same waits, run after run. */
export const seededRandom = mulberry32;
