import { sha256 } from "../core/digest.js";
import type { AnswerCache } from "../core/stage.js";
import type { EvalModel, GenRequest, GenResult, LoglikRequest, LoglikResult } from "./eval-model.js";

/** An EvalModel whose answers go through the request cache, with counts of what it answered from where. */
export interface CachedEvalModel extends EvalModel {
  /** Requests answered from the cache and sent to the model so far (duplicates within a call are sent once). */
  counts(): { readonly cached: number; readonly sent: number };
}

/** A log-likelihood request's cache key: the model's identity and the request's whole content. */
export function loglikKey(identity: string, r: LoglikRequest): string {
  return sha256(JSON.stringify(["eval-loglik", identity, r.context, r.continuation]));
}

/** A generation request's cache key: the model's identity and everything that decides the answer. */
export function genKey(identity: string, r: GenRequest): string {
  return sha256(JSON.stringify(["eval-gen", identity, r.prompt ?? null, r.messages ?? null, r.stop, r.max_tokens, r.temperature, r.seed ?? null]));
}

/**
 * The model with the store's request cache in front: each request is looked up first, only the missing ones are
 * sent (each distinct one once), and every answer is stored the moment it arrives, so a rerun re-pays nothing and a
 * crash loses only the answers still in flight.
 */
export function cachedEvalModel(model: EvalModel, cache: AnswerCache): CachedEvalModel {
  let cached = 0;
  let sent = 0;
  async function through<Q, R>(
    reqs: readonly Q[],
    key: (r: Q) => string,
    ask: (missing: readonly Q[], onResult: (i: number, r: R) => void) => Promise<R[]>,
    onResult: ((i: number, r: R) => void) | undefined,
  ): Promise<R[]> {
    const out: R[] = new Array(reqs.length);
    const keys = reqs.map(key);
    // Missing requests by key: the first index asks, the others take its answer.
    const waiting = new Map<string, number[]>();
    const missing: Q[] = [];
    const missingKeys: string[] = [];
    for (let i = 0; i < reqs.length; i++) {
      const k = keys[i]!;
      const hit = waiting.has(k) ? undefined : cache.get<R>(k);
      if (hit !== undefined) {
        out[i] = hit;
        cached++;
        onResult?.(i, hit);
        continue;
      }
      const same = waiting.get(k);
      if (same) same.push(i);
      else {
        waiting.set(k, [i]);
        missing.push(reqs[i]!);
        missingKeys.push(k);
      }
    }
    if (missing.length === 0) return out;
    const delivered = new Set<number>();
    const deliver = (j: number, r: R) => {
      if (delivered.has(j)) return;
      delivered.add(j);
      const k = missingKeys[j]!;
      cache.put(k, r);
      sent++;
      for (const i of waiting.get(k)!) {
        out[i] = r;
        onResult?.(i, r);
      }
    };
    const answers = await ask(missing, deliver);
    answers.forEach((r, j) => deliver(j, r));
    return out;
  }
  return {
    describe: model.describe,
    identity: model.identity,
    chat: model.chat,
    loglik: model.loglik,
    loglikelihood: (reqs, opts) => through<LoglikRequest, LoglikResult>(reqs, (r) => loglikKey(model.identity, r), (m, onResult) => model.loglikelihood(m, { signal: opts.signal, onResult }), opts.onResult),
    generate: (reqs, opts) => through<GenRequest, GenResult>(reqs, (r) => genKey(model.identity, r), (m, onResult) => model.generate(m, { signal: opts.signal, onResult }), opts.onResult),
    close: () => model.close(),
    counts: () => ({ cached, sent }),
  };
}
