import { setMaxListeners } from "node:events";
import { RequestStats } from "../models/stats.js";
import type { AnswerCache, StageContext } from "../core/stage.js";
import type { Answer, ModelArtifact, ModelBackend, ModelRequest } from "./backend.js";
import { modelBackend } from "./connect.js";

/**
 * A stage's conversation with one model: every request is looked up in the store's request cache first, and every
 * answer is cached the moment it arrives, so a resumed or repeated run sends only the requests it lacks. Counts go
 * to the stage's manifest: requests answered from the cache and sent, retries by cause, tokens and cost of the
 * answers the stage used.
 */
export class ModelSession {
  readonly stats = new RequestStats();
  private cachedAnswers = 0;
  private sentAnswers = 0;
  private promptTokens = 0;
  private completionTokens = 0;

  /** Aborted on the stage's interruption, or by {@link abort} when one request failed for good. */
  private readonly controller = new AbortController();
  private readonly signal: AbortSignal;
  /** What every request is sent with (one object for all). */
  private readonly callOptions: { readonly signal: AbortSignal; readonly stats: RequestStats };

  private constructor(
    private readonly ctx: StageContext,
    readonly backend: ModelBackend,
    private readonly cache: AnswerCache,
    /** The stage parameter that names the model (`model`, `judge`, `user_model`): counts are prefixed with it when not `model`. */
    private readonly role: string,
  ) {
    this.signal = AbortSignal.any([ctx.signal, this.controller.signal]);
    this.callOptions = { signal: this.signal, stats: this.stats };
    // Requests share one listener on the signal, but each retry's wait and rate-limit wait adds its own: many are
    // expected, not a leak.
    setMaxListeners(0, this.signal);
  }

  /** Cancel the requests queued or in flight (after a permanent failure, such as a 401: the others would fail too). */
  abort(): void {
    this.controller.abort(new Error("cancelled: another request of the stage failed"));
  }

  /**
   * The session of the model a stage parameter refers to (`model` by default), when it is a model artifact (an
   * endpoint or an ONNX model). A trained model or a local folder needs the Python worker, which the stage helpers
   * start: stages open their sessions through stages/support/model-session.ts.
   */
  static async open(ctx: StageContext, param = "model"): Promise<ModelSession> {
    const input = ctx.inputs.get(`param:${param}`);
    if (!input) throw new Error(`stage ${ctx.stage.id} has no model input \`${param}\``);
    const artifact = (await input.json()) as ModelArtifact;
    return new ModelSession(ctx, await modelBackend(artifact, ctx.baseDir), ctx.requests(), param);
  }

  /** A session over a backend made elsewhere (a trained model's worker); `close` ends it. */
  static over(ctx: StageContext, backend: ModelBackend & { close?(): Promise<void> }, param = "model"): ModelSession {
    const s = new ModelSession(ctx, backend, ctx.requests(), param);
    if (backend.close) s.closer = () => backend.close!();
    return s;
  }

  private closer: (() => Promise<void>) | undefined;

  /** Put the counts into the manifest and release the model (a worker process stops): the stage is done with it. */
  async finish(): Promise<void> {
    this.report();
    const c = this.closer;
    this.closer = undefined;
    await c?.();
  }

  /** The answer to a request: from the cache, or from the model (then cached at once). */
  async ask(req: ModelRequest, index = 0): Promise<Answer> {
    const prepared = this.backend.prepare?.(req, index);
    const key = prepared ? prepared.key : this.backend.key(req, index);
    let a = this.cache.get<Answer>(key);
    if (a) this.cachedAnswers++;
    else {
      const opts = this.callOptions;
      a = await (prepared ? prepared.complete(opts) : this.backend.complete(req, index, opts));
      this.cache.put(key, a);
      this.sentAnswers++;
    }
    this.promptTokens += a.prompt_tokens;
    this.completionTokens += a.completion_tokens;
    return a;
  }

  /** Put the session's counts into the stage's manifest. */
  report(): void {
    const p = this.role === "model" ? "" : `${this.role} `;
    const put = (name: string, n: number) => n > 0 && this.ctx.count(`${p}${name}`, n);
    put("requests: cached", this.cachedAnswers);
    put("requests: sent", this.sentAnswers);
    for (const [k, n] of Object.entries(this.stats.counts())) if (k.startsWith("retries") || k === "requests: failed") put(k, n);
    put("tokens: prompt", this.promptTokens);
    put("tokens: completion", this.completionTokens);
    const price = this.backend.price;
    if (price) put("cost_usd", Math.round(((this.promptTokens * price.input + this.completionTokens * price.output) / 1000) * 1e6) / 1e6);
  }
}

export interface OrderedOptions {
  /** Most calls in flight. */
  readonly width: number;
  /**
   * Asked before each new call with the number in flight: false waits for the oldest call to be delivered first.
   * (A target-driven loop launches only what it expects to need.)
   */
  readonly more?: (inFlight: number) => boolean;
  /** Called once on the first failure, before waiting for the calls in flight (to cancel them). */
  readonly onFailure?: () => void;
}

/**
 * Apply `f` to a stream of items with bounded calls in flight, delivering results to `emit` in input order (so the
 * output does not depend on which answer came back first). `emit` returning false stops the stream: no new calls
 * start, and the calls in flight finish (their answers are cached, paid for) but are not delivered. The first
 * failure stops the stream too, and is rethrown once the calls in flight have settled.
 */
export async function orderedMap<T, R>(items: AsyncIterable<T> | Iterable<T>, o: OrderedOptions, f: (item: T, i: number) => Promise<R>, emit: (r: R, item: T, i: number) => Promise<boolean | void> | boolean | void): Promise<void> {
  const window: { item: T; i: number; p: Promise<{ ok: true; r: R } | { ok: false; e: unknown }> }[] = [];
  let stop = false;
  let failure: { e: unknown } | undefined;
  let i = 0;
  const drain = async (): Promise<void> => {
    const head = window.shift()!;
    const res = await head.p;
    if (stop) return;
    if (!res.ok) {
      failure ??= { e: res.e };
      stop = true;
      o.onFailure?.();
      return;
    }
    if ((await emit(res.r, head.item, head.i)) === false) stop = true;
  };
  for await (const item of items as AsyncIterable<T>) {
    while (!stop && window.length > 0 && (window.length >= o.width || (o.more && !o.more(window.length)))) await drain();
    if (stop) break;
    const idx = i++;
    window.push({
      item,
      i: idx,
      p: f(item, idx).then(
        (r) => ({ ok: true as const, r }),
        (e: unknown) => ({ ok: false as const, e }),
      ),
    });
  }
  while (window.length > 0) await drain();
  if (failure) throw failure.e;
}

/** How many requests a stage keeps in flight: enough to fill the model's own concurrency limit, twice over. */
export const IN_FLIGHT = 128;
