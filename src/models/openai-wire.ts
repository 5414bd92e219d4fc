import { topLogprobsSpan, type TopLogprobsSpan } from "./top-logprobs-span.js";

/**
 * The wire format of OpenAI-compatible endpoints (OpenAI, vLLM, TGI, llama.cpp server, Ollama): request bodies for
 * `/chat/completions` and `/completions`, and their answers read into one normalized shape. Everything here is pure;
 * the HTTP side is in openai.ts.
 */

export type Endpoint = "chat" | "completions";

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

/** Sampling parameters of one request; what is left out takes the model's default, then the server's. */
export interface Sampling {
  readonly temperature?: number;
  readonly top_p?: number;
  readonly max_tokens?: number;
  readonly stop?: readonly string[];
  readonly seed?: number;
  /** Completions asked for (several choices in one request). */
  readonly n?: number;
  readonly presence_penalty?: number;
  readonly frequency_penalty?: number;
  /**
   * Ask for token log-probabilities: the number of most likely alternatives per token (0: the chosen token's only).
   * Chat sends `logprobs: true, top_logprobs: k`; completions send `logprobs: k`. Servers that lack them send none.
   */
  readonly logprobs?: number;
  /** Server-specific fields merged into the body as they are (vLLM's `top_k`, `repetition_penalty`, ...). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

export interface ChatRequest extends Sampling {
  readonly messages: readonly ChatMessage[];
}

export interface CompletionRequest extends Sampling {
  readonly prompt: string;
}

/** Defaults a model declaration sets for requests that leave them out. */
export interface SamplingDefaults {
  readonly temperature?: number;
  readonly top_p?: number;
  readonly max_tokens?: number;
  readonly seed?: number;
}

export interface TokenLogprob {
  readonly token: string;
  /** Null where the server gives none (the first token of an echoed prompt). */
  readonly logprob: number | null;
  readonly top?: readonly { readonly token: string; readonly logprob: number }[];
  /** Where the token starts in the text (completions' `text_offset`: characters of the prompt, when echoed, and the answer). */
  readonly offset?: number;
}

export interface Choice {
  readonly text: string;
  /** `stop`, `length`, ...; null where the server does not say. */
  readonly finish_reason: string | null;
  readonly logprobs?: readonly TokenLogprob[];
}

export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
}

/** A normalized answer: the choices in index order, the usage when the server reports it, the model that answered. */
export interface Completion {
  readonly choices: readonly Choice[];
  readonly usage: Usage | undefined;
  /** The model name the server reports (it may name a dated version of the requested one). */
  readonly model: string | undefined;
  /** Retries this request needed. */
  readonly retries: number;
}

/**
 * The JSON body of a chat request. Built once per request and reused by its retries (and usable as a cache key).
 * The text is the one `JSON.stringify` gives for `{model, messages, <sampling>, logprobs, top_logprobs, ...extra}`
 * (request cache keys are digests of it, so it must never change); it is written out member by member, which spares
 * an object in dictionary mode per request on the hot path.
 */
export function chatBody(model: string, d: SamplingDefaults, r: ChatRequest): string {
  if (r.extra) return slowChatBody(model, d, r);
  let s = member("model", model) + member("messages", r.messages) + samplingJson(d, r);
  if (r.logprobs !== undefined) {
    s += ',"logprobs":true';
    if (r.logprobs > 0) s += member("top_logprobs", r.logprobs);
  }
  return `{${s.slice(1)}}`;
}

/** The JSON body of a (legacy) completions request. */
export function completionBody(model: string, d: SamplingDefaults, r: CompletionRequest): string {
  if (r.extra) return slowCompletionBody(model, d, r);
  let s = member("model", model) + member("prompt", r.prompt) + samplingJson(d, r);
  if (r.logprobs !== undefined) s += member("logprobs", r.logprobs);
  return `{${s.slice(1)}}`;
}

/** `,"name":value` as JSON.stringify writes a member of an object; nothing for a value it leaves out (undefined, a function). */
function member(name: string, v: unknown): string {
  const j = typeof v === "number" ? (Number.isFinite(v) ? String(v) : "null") : (JSON.stringify(v) as string | undefined);
  return j === undefined ? "" : `,"${name}":${j}`;
}

/** The sampling members, in the order {@link sampling} sets them. */
function samplingJson(d: SamplingDefaults, r: Sampling): string {
  // The requests of a stage mostly share their sampling: the last text is reused when nothing it depends on changed.
  const m = lastSampling;
  if (
    m.dTemperature === d.temperature &&
    m.dTopP === d.top_p &&
    m.dMaxTokens === d.max_tokens &&
    m.dSeed === d.seed &&
    m.temperature === r.temperature &&
    m.top_p === r.top_p &&
    m.max_tokens === r.max_tokens &&
    sameWords(m.stop, r.stop) &&
    m.seed === r.seed &&
    m.n === r.n &&
    m.presence_penalty === r.presence_penalty &&
    m.frequency_penalty === r.frequency_penalty
  ) {
    return m.json;
  }
  let s = "";
  const temperature = r.temperature ?? d.temperature;
  if (temperature !== undefined) s += member("temperature", temperature);
  const top_p = r.top_p ?? d.top_p;
  if (top_p !== undefined) s += member("top_p", top_p);
  const max_tokens = r.max_tokens ?? d.max_tokens;
  if (max_tokens !== undefined) s += member("max_tokens", max_tokens);
  if (r.stop && r.stop.length > 0) s += member("stop", r.stop);
  const seed = r.seed ?? d.seed;
  if (seed !== undefined) s += member("seed", seed);
  if (r.n !== undefined && r.n !== 1) s += member("n", r.n);
  if (r.presence_penalty) s += member("presence_penalty", r.presence_penalty);
  if (r.frequency_penalty) s += member("frequency_penalty", r.frequency_penalty);
  // The stop list is kept as a copy and compared word by word: a list changed in place is noticed.
  lastSampling = {
    dTemperature: d.temperature,
    dTopP: d.top_p,
    dMaxTokens: d.max_tokens,
    dSeed: d.seed,
    temperature: r.temperature, top_p: r.top_p, max_tokens: r.max_tokens, stop: r.stop && [...r.stop], seed: r.seed, n: r.n, presence_penalty: r.presence_penalty, frequency_penalty: r.frequency_penalty,
    json: s,
  };
  return s;
}

function sameWords(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a == null || b == null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The last sampling text made, and what it was made from (nothing at first: `json` is never reused before it is set). */
let lastSampling: Sampling & { readonly dTemperature?: number; readonly dTopP?: number; readonly dMaxTokens?: number; readonly dSeed?: number; readonly json: string } = { temperature: Number.NaN, json: "" };

/** With server-specific extras: built as an object, so an extra that repeats a member replaces it in place. */
function slowChatBody(model: string, d: SamplingDefaults, r: ChatRequest): string {
  const body: Record<string, unknown> = { model, messages: r.messages };
  sampling(body, d, r);
  if (r.logprobs !== undefined) {
    body["logprobs"] = true;
    if (r.logprobs > 0) body["top_logprobs"] = r.logprobs;
  }
  if (r.extra) Object.assign(body, r.extra);
  return JSON.stringify(body);
}

function slowCompletionBody(model: string, d: SamplingDefaults, r: CompletionRequest): string {
  const body: Record<string, unknown> = { model, prompt: r.prompt };
  sampling(body, d, r);
  if (r.logprobs !== undefined) body["logprobs"] = r.logprobs;
  if (r.extra) Object.assign(body, r.extra);
  return JSON.stringify(body);
}

function sampling(body: Record<string, unknown>, d: SamplingDefaults, r: Sampling): void {
  const temperature = r.temperature ?? d.temperature;
  if (temperature !== undefined) body["temperature"] = temperature;
  const top_p = r.top_p ?? d.top_p;
  if (top_p !== undefined) body["top_p"] = top_p;
  const max_tokens = r.max_tokens ?? d.max_tokens;
  if (max_tokens !== undefined) body["max_tokens"] = max_tokens;
  // An empty list is left out: some servers reject `stop: []`.
  if (r.stop && r.stop.length > 0) body["stop"] = r.stop;
  const seed = r.seed ?? d.seed;
  if (seed !== undefined) body["seed"] = seed;
  if (r.n !== undefined && r.n !== 1) body["n"] = r.n;
  if (r.presence_penalty) body["presence_penalty"] = r.presence_penalty;
  if (r.frequency_penalty) body["frequency_penalty"] = r.frequency_penalty;
}

/** A 200 answer that is not the JSON the endpoint promises: retried (cause `malformed`), then reported. */
export class MalformedAnswer extends Error {}

/** Read a 200 answer of either endpoint. Throws {@link MalformedAnswer} for invalid JSON or a missing field. */
export function parseAnswer(endpoint: Endpoint, text: string, retries: number): Completion {
  let j: unknown;
  // A completions answer's top_logprobs are left in the text, each element parsed when read (top-logprobs-span.ts).
  const span = endpoint === "completions" ? topLogprobsSpan(text) : undefined;
  try {
    j = span ? parseWithout(text, span) : JSON.parse(text);
  } catch (e) {
    throw new MalformedAnswer(`the body is not valid JSON (${(e as Error).message}): ${excerpt(text)}`);
  }
  const raw = (j as { choices?: unknown })?.choices;
  if (!Array.isArray(raw) || raw.length === 0) throw new MalformedAnswer(`the answer has no "choices": ${excerpt(text)}`);
  let choices: Choice[] = new Array(raw.length);
  let indexed = true;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as RawChoice | null;
    choices[i] = endpoint === "chat" ? chatChoice(c, i, text) : completionChoice(c, i, text, span);
    if (c!.index !== i) indexed = false;
  }
  // Servers may send the n choices out of order; put them in index order when the indexes are 0..n-1.
  if (!indexed) {
    const byIndex: Choice[] = new Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const k = (raw[i] as RawChoice).index;
      if (typeof k === "number" && Number.isInteger(k) && k >= 0 && k < raw.length && byIndex[k] === undefined) byIndex[k] = choices[i]!;
    }
    if (Object.keys(byIndex).length === raw.length) choices = byIndex; // every index seen once
  }
  return { choices, usage: usageOf((j as { usage?: unknown }).usage), model: typeof (j as { model?: unknown }).model === "string" ? (j as { model: string }).model : undefined, retries };
}

interface RawChoice {
  index?: unknown;
  message?: { content?: unknown };
  text?: unknown;
  finish_reason?: unknown;
  logprobs?: unknown;
}

function chatChoice(c: RawChoice | null, i: number, text: string): Choice {
  const content = c?.message?.content;
  // Null content is a valid answer (a refusal, a tool call): it reads as empty text.
  if (typeof content !== "string" && content !== null) throw new MalformedAnswer(`choice ${i} has no message content: ${excerpt(text)}`);
  const lp = (c!.logprobs as { content?: unknown } | null | undefined)?.content;
  const choice: { text: string; finish_reason: string | null; logprobs?: TokenLogprob[] } = { text: content ?? "", finish_reason: finishReason(c!.finish_reason) };
  if (Array.isArray(lp)) choice.logprobs = lp.map(chatTokenLogprob);
  return choice;
}

function chatTokenLogprob(t: { token?: unknown; logprob?: unknown; top_logprobs?: unknown }): TokenLogprob {
  const out: { token: string; logprob: number | null; top?: { token: string; logprob: number }[] } = { token: String(t.token ?? ""), logprob: typeof t.logprob === "number" ? t.logprob : null };
  if (Array.isArray(t.top_logprobs)) out.top = t.top_logprobs.map((a: { token?: unknown; logprob?: unknown }) => ({ token: String(a.token ?? ""), logprob: Number(a.logprob) }));
  return out;
}

/** The answer with its top_logprobs array read as `[]`; an error is the whole text's, as JSON.parse gives it. */
function parseWithout(text: string, span: TopLogprobsSpan): unknown {
  try {
    return JSON.parse(text.slice(0, span.start) + "[]" + text.slice(span.end));
  } catch {
    return JSON.parse(text);
  }
}

function completionChoice(c: RawChoice | null, i: number, text: string, span: TopLogprobsSpan | undefined): Choice {
  if (typeof c?.text !== "string") throw new MalformedAnswer(`choice ${i} has no text: ${excerpt(text)}`);
  const lp = c.logprobs as { tokens?: unknown; token_logprobs?: unknown; top_logprobs?: unknown; text_offset?: unknown } | null | undefined;
  if (lp && Array.isArray(lp.tokens)) {
    return new EchoedChoice(c.text, finishReason(c.finish_reason), {
      tokens: lp.tokens,
      logprobs: Array.isArray(lp.token_logprobs) ? lp.token_logprobs : [],
      // The one top_logprobs key of the text is this one (the span requires it to be the only one).
      top: Array.isArray(lp.top_logprobs) ? (span ? elementOf(text, span) : arrayElement(lp.top_logprobs)) : none,
      offsets: Array.isArray(lp.text_offset) ? lp.text_offset : [],
    });
  }
  return { text: c.text, finish_reason: finishReason(c.finish_reason) };
}

/**
 * A completions choice with log-probabilities. An echoed prompt has a token per few characters and a log-likelihood
 * reads two or three of them: the tokens are built when `logprobs` is first read, and logprobColumns reads them where
 * they lie. (A class, not an accessor defined on each object: that gave each answer a map of its own, in the old
 * generation, which held the whole parsed answer through every scavenge.)
 */
class EchoedChoice implements Choice {
  private built: TokenLogprob[] | undefined;

  constructor(
    readonly text: string,
    readonly finish_reason: string | null,
    readonly columns: LogprobColumns,
  ) {}

  get logprobs(): readonly TokenLogprob[] {
    return (this.built ??= this.columns.tokens.map((_, k) => tokenAt(this.columns, k)));
  }

  toJSON(): Choice {
    return { text: this.text, finish_reason: this.finish_reason, logprobs: this.logprobs };
  }
}

/** A completions answer's log-probabilities as the server sent them: one array per field (`logprobs.tokens`, ...). */
export interface LogprobColumns {
  readonly tokens: readonly unknown[];
  readonly logprobs: readonly unknown[];
  /** `top_logprobs[k]`: an object of token to log-probability, or null (undefined past the end). */
  top(k: number): unknown;
  readonly offsets: readonly unknown[];
}

/** A completions choice's log-probabilities as columns (undefined where it has none, and for chat). */
export function logprobColumns(c: Choice): LogprobColumns | undefined {
  return c instanceof EchoedChoice ? c.columns : undefined;
}

/** Token `k` of the columns, as `Choice.logprobs[k]` gives it. */
export function tokenAt(c: LogprobColumns, k: number): TokenLogprob {
  const l = c.logprobs[k];
  const out: { token: string; logprob: number | null; top?: { token: string; logprob: number }[]; offset?: number } = { token: String(c.tokens[k]), logprob: typeof l === "number" ? l : null };
  const top = c.top(k) as Record<string, number> | null | undefined;
  if (top && typeof top === "object") out.top = Object.entries(top).map(([t, v]) => ({ token: t, logprob: v }));
  const o = c.offsets[k];
  if (typeof o === "number") out.offset = o;
  return out;
}

const none = (): undefined => undefined;

function arrayElement(a: readonly unknown[]): (k: number) => unknown {
  return (k) => a[k];
}

/** Element k of the span, parsed when asked for. */
function elementOf(text: string, span: TopLogprobsSpan): (k: number) => unknown {
  return (k) => {
    if (k >= span.starts.length) return undefined;
    const at = text.slice(span.starts[k], span.ends[k]);
    try {
      return JSON.parse(at);
    } catch (e) {
      throw new MalformedAnswer(`top_logprobs[${k}] is not valid JSON (${(e as Error).message}): ${excerpt(at)}`);
    }
  };
}

/** Where token `k` starts (`text_offset`), or undefined where the server gave none. */
export function offsetAt(c: LogprobColumns, k: number): number | undefined {
  const o = c.offsets[k];
  return typeof o === "number" ? o : undefined;
}

function finishReason(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

function usageOf(u: unknown): Usage | undefined {
  const p = (u as { prompt_tokens?: unknown } | null)?.prompt_tokens;
  const c = (u as { completion_tokens?: unknown } | null)?.completion_tokens;
  if (typeof p !== "number" && typeof c !== "number") return undefined;
  return { prompt_tokens: typeof p === "number" ? p : 0, completion_tokens: typeof c === "number" ? c : 0 };
}

/** The start of a body, for messages: enough to recognize an HTML error page or a proxy's answer. */
export function excerpt(text: string, max = 200): string {
  const t = text.length > max ? `${text.slice(0, max)}... (${text.length} bytes)` : text;
  return JSON.stringify(t);
}

/**
 * The server's own explanation in an error body: OpenAI, llama.cpp and Ollama send `{error: {message}}`, TGI sends
 * `{error: "..."}`, vLLM `{message: "..."}` (newer versions: OpenAI's shape); anything else is quoted as is.
 */
export function serverMessage(text: string): string {
  try {
    const j = JSON.parse(text) as { error?: unknown; message?: unknown; detail?: unknown };
    const e = j.error;
    if (typeof e === "string") return e;
    if (e && typeof (e as { message?: unknown }).message === "string") return (e as { message: string }).message;
    if (typeof j.message === "string") return j.message;
    if (typeof j.detail === "string") return j.detail;
  } catch {
    // not JSON: quoted below
  }
  return text.trim() === "" ? "(empty body)" : excerpt(text.trim());
}
