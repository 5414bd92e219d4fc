import { Duration, Effect, Schedule } from "effect";
import { Writable } from "node:stream";
import { stream } from "undici";
import { TransientError, UserError } from "../core/errors.js";
import type { HubSettings } from "./settings.js";

/**
 * HTTP to the Hub through undici: GETs that follow redirects themselves (so the token goes to the hub's own origin
 * and never to the storage host a file redirects to), answers mapped to errors that say what to do, and per-request
 * retries of transient failures as an Effect schedule.
 */

/** What a request is about, for errors: `owner/name@revision` and the hub settings. */
export interface HubCall {
  readonly settings: HubSettings;
  readonly repo: string;
  readonly revision: string;
  readonly signal?: AbortSignal | undefined;
}

export const repoLabel = (call: Pick<HubCall, "repo" | "revision">) => `${call.repo}@${call.revision}`;

/** A transient failure, with the wait the server asked for (Retry-After) when it gave one. */
export class HubTransientError extends TransientError {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** An answer: its status and headers, the URL that gave it (after redirects), and its body unless a sink took it. */
export interface HubResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly url: string;
  readonly body: Buffer;
}

/**
 * Where a successful answer's body goes, chosen when its headers arrive: a function called with every chunk, in
 * order, as it is received (a returned promise holds the next chunks back). Chunks reach it synchronously, before a
 * broken connection is reported, so a download keeps every byte that arrived.
 */
export type BodySink = (status: number, headers: HubResponse["headers"]) => (chunk: Buffer) => void | Promise<void>;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
/** Error bodies are read for their message only. */
const ERROR_BODY_LIMIT = 64 << 10;

export const header = (h: HubResponse["headers"], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * GET `url`. Returns 2xx answers and 416 (the caller's range was past the end); anything else is thrown as a
 * UserError (401/403/404 with a hint) or a HubTransientError (408, 429, 5xx, a broken connection). `subject` names
 * what is fetched ("the file listing", "data/train.parquet") in errors. Without a sink the body is collected.
 */
export async function hubGet(call: HubCall, url: string, subject: string, headers: Record<string, string> = {}, sink?: BodySink): Promise<HubResponse> {
  const origin = new URL(call.settings.endpoint).origin;
  let current = url;
  for (let hop = 0; ; hop++) {
    const h: Record<string, string> = { "user-agent": "itp (hf_dataset)", ...headers };
    // Only the hub itself gets the token: a redirect to a storage host carries its own signed URL.
    if (call.settings.token && new URL(current).origin === origin) h["authorization"] = `Bearer ${call.settings.token}`;
    let status = 0;
    let resHeaders: HubResponse["headers"] = {};
    const kept: Buffer[] = [];
    let keptBytes = 0;
    try {
      await stream(current, { method: "GET", headers: h, ...(call.signal ? { signal: call.signal } : {}) }, ({ statusCode, headers: rh }) => {
        status = statusCode;
        resHeaders = rh;
        const ok = (statusCode >= 200 && statusCode < 300) || statusCode === 416;
        const onChunk = ok && sink ? sink(statusCode, rh) : undefined;
        return new Writable({
          write(chunk: Buffer, _enc, done) {
            if (onChunk) {
              const r = onChunk(chunk);
              if (r) return void r.then(() => done(), done);
            } else if (ok || keptBytes < ERROR_BODY_LIMIT) {
              kept.push(chunk);
              keptBytes += chunk.length;
            }
            done();
          },
        });
      });
    } catch (e) {
      throw networkError(call, current, subject, e);
    }
    const out: HubResponse = { status, headers: resHeaders, url: current, body: Buffer.concat(kept, keptBytes) };
    if (REDIRECTS.has(status)) {
      const loc = header(resHeaders, "location");
      if (!loc) throw new UserError(`${repoLabel(call)}: the hub redirected the request for ${subject} without saying where (HTTP ${status} from ${current})`);
      if (hop >= MAX_REDIRECTS) throw new UserError(`${repoLabel(call)}: more than ${MAX_REDIRECTS} redirects fetching ${subject} (last: ${current})`, "check HF_ENDPOINT");
      current = new URL(loc, current).toString();
      continue;
    }
    if ((status >= 200 && status < 300) || status === 416) return out;
    throw statusError(call, out, subject);
  }
}

/** The server's own words about an error: its X-Error-Message header or the `error` member of a JSON body. */
function serverMessage(res: HubResponse, token: string | undefined): string {
  let msg = header(res.headers, "x-error-message") ?? "";
  if (!msg) {
    try {
      const j = JSON.parse(res.body.toString("utf8")) as { error?: unknown };
      if (typeof j.error === "string") msg = j.error;
    } catch {
      msg = "";
    }
  }
  msg = msg.replace(/\s+/g, " ").trim().slice(0, 300);
  // A server that echoes the request must not make the token appear in an error.
  if (token) msg = msg.split(token).join("<token>");
  return msg ? `: ${msg}` : "";
}

function statusError(call: HubCall, res: HubResponse, subject: string): Error {
  const who = repoLabel(call);
  const code = header(res.headers, "x-error-code");
  const said = serverMessage(res, call.settings.token);
  const page = `${call.settings.endpoint}/datasets/${call.repo}`;
  const tokenHint = 'set HF_TOKEN (or the stage\'s `token = secret("HF_TOKEN")`) to a token that can read it';
  switch (res.status) {
    case 401:
      return new UserError(
        `${who}: the hub refused ${subject} (HTTP 401${code ? ` ${code}` : ""}${said})`,
        call.settings.token
          ? "the token was not accepted: check that HF_TOKEN (or the stage's `token`) is a valid token with read access, and that the repository id is spelled right"
          : `the dataset may be gated or private, or the repository id misspelled: ${tokenHint}`,
      );
    case 403:
      return new UserError(
        `${who}: access to ${subject} is forbidden (HTTP 403${code ? ` ${code}` : ""}${said})`,
        code === "GatedRepo" || /gated/i.test(said)
          ? `the dataset is gated: accept its conditions at ${page} with the account the token belongs to`
          : call.settings.token
            ? "the token cannot read this repository: use one with read access to it"
            : tokenHint,
      );
    case 404:
      if (code === "RevisionNotFound" || (!code && /\brev(ision)?\b/i.test(said)))
        return new UserError(
          `${who}: revision \`${call.revision}\` not found in ${call.repo} (HTTP 404${said})`,
          `pin a real commit sha (the history is at ${page}/commits/main), or a tag that exists`,
        );
      if (code === "EntryNotFound")
        return new UserError(`${who}: ${subject} does not exist at this revision (HTTP 404${said})`, "check the file paths in `files`: they are relative to the repository root");
      if (code === "RepoNotFound")
        return new UserError(
          `${who}: dataset repository \`${call.repo}\` not found (HTTP 404${said})`,
          `check the repository id (owner/name); a private dataset also answers 404 without a token: ${tokenHint}`,
        );
      return new UserError(
        `${who}: ${subject} was not found (HTTP 404${code ? ` ${code}` : ""}${said})`,
        `check the repository id and the revision (pin a real commit sha); a private dataset also answers 404 without a token: ${tokenHint}`,
      );
    default: {
      const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
      // The URL without its query: a storage host's is a signed, temporary credential.
      const at = new URL(res.url);
      const msg = `${who}: the hub answered HTTP ${res.status} for ${subject}${said} (${at.origin}${at.pathname})`;
      return retryable ? new HubTransientError(msg, retryAfterMs(header(res.headers, "retry-after"))) : new UserError(msg, "check HF_ENDPOINT and the stage's parameters");
    }
  }
}

function retryAfterMs(v: string | undefined): number | undefined {
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.round(Number(v) * 1000);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

/** A connection that failed or broke: transient, unless the run was interrupted. */
function networkError(call: HubCall, url: string, subject: string, e: unknown): Error {
  if (call.signal?.aborted) return new Error("interrupted");
  if (e instanceof UserError || e instanceof TransientError) return e;
  const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = err.code ?? err.cause?.code ?? err.name;
  return new HubTransientError(`${repoLabel(call)}: network error fetching ${subject} from ${new URL(url).origin} (${code}${err.message ? `: ${err.message}` : ""})`);
}

export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly times: number;
  readonly initialMs: number;
  readonly maxMs: number;
}

/** Four retries, 1 s doubling with jitter, capped at 30 s; a server's Retry-After wins (within the cap). */
export const defaultRetry: RetryPolicy = { times: 4, initialMs: 1000, maxMs: 30_000 };

const isTransient = (e: Error) => e instanceof TransientError;

/**
 * Run `attempt` again while it fails transiently, up to the policy's count; then the last error is thrown (still
 * a TransientError, so a stage's own `retry` policy can take over).
 */
export async function withRetries<T>(policy: RetryPolicy, attempt: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const schedule = Schedule.exponential(Duration.millis(policy.initialMs)).pipe(
    Schedule.jittered,
    Schedule.modifyDelay(({ input, duration }) => {
      const asked = input instanceof HubTransientError ? input.retryAfterMs : undefined;
      return Effect.succeed(Duration.millis(Math.min(policy.maxMs, asked ?? Duration.toMillis(duration))));
    }),
  );
  const once = Effect.tryPromise({ try: attempt, catch: (e) => (e instanceof Error ? e : new Error(String(e))) });
  try {
    return await Effect.runPromise(once.pipe(Effect.retry({ schedule, times: policy.times, while: isTransient })), signal ? { signal } : undefined);
  } catch (e) {
    if (signal?.aborted) throw new Error("interrupted");
    throw e;
  }
}
