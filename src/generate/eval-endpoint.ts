import { setMaxListeners } from "node:events";
import { UserError } from "../core/errors.js";
import { sha256 } from "../core/digest.js";
import { resolveParams } from "../core/params.js";
import { atRunEnd } from "../core/run-end.js";
import type { Completion, OpenAIClient } from "../models/openai.js";
import { logprobColumns, offsetAt, tokenAt, type LogprobColumns } from "../models/openai-wire.js";
import { completionPrompt, type ModelArtifact } from "./backend.js";
import type { EvalModel, GenRequest, GenResult, LoglikRequest, LoglikResult } from "./eval-model.js";

/**
 * An `openai_compatible` endpoint under evaluation. Log-likelihoods as lm-evaluation-harness's local-completions
 * model asks them: one `/completions` request per pair with the context and continuation as the prompt, `echo: true,
 * logprobs: 1, max_tokens: 0, temperature: 0`, and the continuation's tokens found by their text offsets (the tokens
 * that reach past the context's end; a token the server generated anyway is past the prompt and left out).
 * Generation through `/chat/completions` for a chat endpoint (`kind = "chat"`), else `/completions`, with the stop
 * sequences sent to the server and applied again here (some servers return the text that matched).
 */
export async function endpointEvalModel(m: ModelArtifact, baseUrl?: string): Promise<EvalModel> {
  const { closeSharedClients, openaiConfig, sharedClient } = await import("../models/openai.js");
  atRunEnd(closeSharedClients);
  const params = resolveParams(m.params, true);
  const config = { ...openaiConfig(params), ...(baseUrl !== undefined ? { baseUrl } : {}) };
  const client: OpenAIClient = sharedClient(sha256(JSON.stringify([m.stage, m.params, baseUrl ?? null])), () => config);
  const chat = config.endpoint === "chat";
  const where = config.baseUrl.replace(/\/+$/, "");
  const describe = `\`${m.stage}\` (${config.model} at ${where})`;
  // A served model's identity is the model it serves, not the port it happens to listen on this run.
  const identity = m.identity ?? sha256(JSON.stringify(["openai_compatible", where, config.model, config.endpoint]));

  const scoreOne = async (r: LoglikRequest, signal: AbortSignal): Promise<LoglikResult> => {
    // lm-evaluation-harness: whitespace ending the context belongs to the continuation.
    let context = r.context;
    let continuation = r.continuation;
    const spaces = context.length - context.trimEnd().length;
    if (spaces > 0) {
      continuation = context.slice(-spaces) + continuation;
      context = context.slice(0, -spaces);
    }
    const prompt = context + continuation;
    const body = client.completionBody({ prompt, max_tokens: 0, temperature: 0, logprobs: 1, extra: { echo: true } });
    const c: Completion = await client.send("completions", body, { signal });
    const choice = c.choices[0];
    const tokens = choice && logprobColumns(choice);
    if (!tokens || tokens.tokens.length === 0) {
      throw new UserError(`${describe} answered a log-likelihood request without log-probabilities of the prompt`, "the endpoint must support `echo: true` with `logprobs` on /completions (vLLM, llama.cpp and TGI's OpenAI API do; chat-only APIs such as OpenAI's current models do not): evaluate log-likelihood tasks on another model");
    }
    return continuationScore(tokens, codePoints(context), codePoints(prompt), describe);
  };

  const generateOne = async (r: GenRequest, signal: AbortSignal): Promise<GenResult> => {
    const sampling = { temperature: r.temperature, max_tokens: r.max_tokens, stop: r.stop, ...(r.top_p !== undefined ? { top_p: r.top_p } : {}), ...(r.seed !== undefined ? { seed: r.seed } : {}) };
    const c: Completion = chat
      ? await client.send("chat", client.chatBody({ messages: r.messages ?? [{ role: "user", content: r.prompt ?? "" }], ...sampling }), { signal }, r.max_tokens)
      : await client.send("completions", client.completionBody({ prompt: r.prompt ?? completionPrompt(r.messages ?? []), ...sampling }), { signal }, r.max_tokens);
    const choice = c.choices[0];
    if (!choice) throw new UserError(`${describe}: the answer has no choices`, "the server does not answer in the OpenAI format: check base_url and kind");
    const cut = cutAtStop(choice.text, r.stop);
    return { text: cut ?? choice.text, finish_reason: cut === undefined && choice.finish_reason === "length" ? "length" : "stop", completion_tokens: c.usage?.completion_tokens ?? 0 };
  };

  // Requests of a call started at once, twice the client's permits: each request's body is built when it is about to
  // be sent, so a batch of thousands does not hold thousands of bodies (megabytes that outlive the young generation)
  // waiting for permits.
  const width = Math.max(1, 2 * config.concurrency);
  const each = async <Q, R>(reqs: readonly Q[], signal: AbortSignal, f: (r: Q, s: AbortSignal) => Promise<R>, onResult?: (i: number, r: R) => void): Promise<R[]> => {
    // One failure cancels the batch's other requests (a 401 would fail them all).
    const ctl = new AbortController();
    const s = AbortSignal.any([signal, ctl.signal]);
    setMaxListeners(0, s);
    const out: R[] = new Array(reqs.length);
    let next = 0;
    let answered = 0;
    const worker = async (): Promise<void> => {
      while (next < reqs.length && !s.aborted) {
        const i = next++;
        const a = await f(reqs[i]!, s);
        out[i] = a;
        answered++;
        onResult?.(i, a);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(width, reqs.length) }, worker));
    } catch (e) {
      ctl.abort(e);
      throw e;
    }
    // Aborted between two requests: the workers stopped taking new ones.
    if (answered < reqs.length) throw s.reason;
    return out;
  };

  return {
    describe,
    identity,
    chat,
    // A chat endpoint has no echo of the prompt; a served model offers /completions beside /chat/completions.
    loglik: !chat || m.served !== undefined,
    async loglikelihood(reqs, opts) {
      if (chat && m.served === undefined) {
        throw new UserError(`${describe} is a chat endpoint, which cannot give log-probabilities of a given text`, 'declare the model with kind = "completions" on a server that supports `echo` with `logprobs` (vLLM, llama.cpp), or evaluate this task on another model');
      }
      return each(reqs, opts.signal, scoreOne, opts.onResult);
    },
    generate: (reqs, opts) => each(reqs, opts.signal, generateOne, opts.onResult),
    // The client is shared by the run's stages; the run's end closes it.
    close: async () => undefined,
  };
}

/** Length in code points: servers count text offsets in characters (Python's str), not UTF-16 units. */
function codePoints(s: string): number {
  // eslint-disable-next-line no-control-regex
  if (!/[\uD800-\uDFFF]/.test(s)) return s.length;
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * The continuation's score from an echoed prompt's tokens: the tokens that end after `contextEnd` and start before
 * `promptEnd` (offsets in characters). A server without `text_offset` gets offsets from the tokens' text. The tokens
 * are read as the server sent them (columns), and only those of the continuation are built.
 */
export function continuationScore(tokens: LogprobColumns, contextEnd: number, promptEnd: number, describe: string): LoglikResult {
  let logprob = 0;
  let greedy = true;
  let n = 0;
  let offset = 0;
  const count = tokens.tokens.length;
  for (let k = 0; k < count; k++) {
    const start = offsetAt(tokens, k) ?? offset;
    const end = (k + 1 < count ? offsetAt(tokens, k + 1) : undefined) ?? start + codePoints(String(tokens.tokens[k]));
    offset = end;
    if (end <= contextEnd || start >= promptEnd) continue;
    const t = tokenAt(tokens, k);
    if (t.logprob === null) throw new UserError(`${describe} gave no log-probability for the continuation's token ${JSON.stringify(t.token)}`, "the context must not be empty: the first token of a prompt has none");
    logprob += t.logprob;
    n++;
    const best = t.top && t.top.length > 0 ? Math.max(...t.top.map((a) => a.logprob)) : undefined;
    if (best === undefined || best > t.logprob + 1e-6) greedy = false;
  }
  if (n === 0) throw new UserError(`${describe}: no token of the echoed prompt covers the continuation`, "the server's text offsets do not match the prompt it was sent");
  return { logprob, greedy, tokens: n };
}

/** The text before the first stop sequence, or undefined when none occurs. */
export function cutAtStop(text: string, stops: readonly string[]): string | undefined {
  let cut = -1;
  for (const s of stops) {
    if (s === "") continue;
    const at = text.indexOf(s);
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  return cut >= 0 ? text.slice(0, cut) : undefined;
}
