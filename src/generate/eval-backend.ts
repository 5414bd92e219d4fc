import { sha256 } from "../core/digest.js";
import { UserError } from "../core/errors.js";
import type { ChatMessage } from "../models/openai.js";
import type { Answer, ModelBackend, ModelRequest } from "./backend.js";
import type { EvalModel, GenRequest, GenResult } from "./eval-model.js";

/**
 * A model under evaluation (a trained model or a local folder, answered by the Python worker) as a generation
 * backend, so that the data stages (`generate`, `backtranslate`, `quality_filter`, the methods) can use a model the
 * recipe trained: Humpback's backward model and self-curation, SPIN's previous iteration. Requests that arrive
 * while a batch decodes are gathered into the next batch, because the worker decodes a batch in one pass with a
 * key/value cache; one batch at a time, so the stop sequences the worker hears of always concern the batch it runs.
 */

export interface EvalBackendOptions {
  /** Turns a request's messages into the model's prompt text (the model's own chat template, or plain text). */
  readonly render: (messages: readonly ChatMessage[]) => string;
  /** Most requests in one batch. */
  readonly batch?: number;
  /** Stops the model (its worker) when the stage is done with it. */
  readonly close?: () => Promise<void>;
}

interface Queued {
  readonly gen: GenRequest;
  readonly signal: AbortSignal;
  readonly resolve: (r: GenResult) => void;
  readonly reject: (e: unknown) => void;
}

export function evalModelBackend(model: EvalModel, o: EvalBackendOptions): ModelBackend & { close(): Promise<void> } {
  const limit = o.batch ?? 32;
  const queue: Queued[] = [];
  let running = false;

  const pump = (): void => {
    if (running || queue.length === 0) return;
    // Requests whose stage was interrupted while they waited are not sent.
    const batch = queue.splice(0, limit).filter((q) => (q.signal.aborted ? (q.reject(q.signal.reason), false) : true));
    if (batch.length === 0) return pump();
    running = true;
    model
      .generate(
        batch.map((q) => q.gen),
        { signal: batch[0]!.signal, onResult: (i, r) => batch[i]!.resolve(r) },
      )
      .catch((e: unknown) => batch.forEach((q) => q.reject(e)))
      .finally(() => {
        running = false;
        pump();
      });
  };

  const genRequest = (req: ModelRequest, index: number): GenRequest => {
    if ((req.presence_penalty ?? 0) !== 0 || (req.frequency_penalty ?? 0) !== 0) {
      throw new UserError(`${model.describe}: presence and frequency penalties are not supported by a local model`, "leave presence_penalty and frequency_penalty at 0 for this model");
    }
    const prompt = model.chat ? undefined : o.render(req.messages);
    return {
      ...(prompt !== undefined ? { prompt } : { messages: req.messages }),
      stop: req.stop ?? [],
      max_tokens: req.max_tokens,
      temperature: req.temperature,
      ...(req.top_p < 1 ? { top_p: req.top_p } : {}),
      // Greedy decoding needs no seed; samples of one request differ by their index.
      ...(req.temperature > 0 ? { seed: index } : {}),
    };
  };

  // The key holds what decides the answer: the model's identity (its weights and precision), the prompt as the model
  // sees it, and the sampling.
  const keyOf = (g: GenRequest, index: number): string =>
    sha256(JSON.stringify(["local-generate", model.identity, g.prompt ?? g.messages, g.stop, g.max_tokens, g.temperature, g.top_p ?? 1, g.temperature > 0 ? index : 0]));

  const send = (g: GenRequest, signal: AbortSignal): Promise<Answer> =>
    new Promise<GenResult>((resolve, reject) => {
      signal.throwIfAborted();
      queue.push({ gen: g, signal, resolve, reject });
      // Gathered until the end of this turn of the event loop, so requests issued together go together.
      setImmediate(pump);
    }).then((r) => ({ text: r.text, finish_reason: r.finish_reason, prompt_tokens: 0, completion_tokens: r.completion_tokens }));

  return {
    describe: model.describe,
    price: undefined,
    key: (req, index) => keyOf(genRequest(req, index), index),
    complete: (req, index, opts) => send(genRequest(req, index), opts.signal),
    prepare(req, index) {
      const g = genRequest(req, index);
      return { key: keyOf(g, index), complete: (opts) => send(g, opts.signal) };
    },
    close: async () => {
      await (o.close ?? (() => model.close()))();
    },
  };
}
