import { RETRY_CAUSES, type RetryCause } from "./retry.js";

/**
 * What requests to a model cost and how they went, for a stage's manifest: requests, retries by cause, tokens. A
 * client keeps one for its whole life; a stage can pass its own to each call to get its share alone.
 */
export class RequestStats {
  /** Requests asked for (one per call, however many tries it took). */
  requests = 0;
  /** HTTP requests sent: requests plus retries. */
  attempts = 0;
  succeeded = 0;
  failed = 0;
  readonly retries: Record<RetryCause, number> = { "429": 0, "5xx": 0, timeout: 0, connection: 0, malformed: 0 };
  prompt_tokens = 0;
  completion_tokens = 0;

  /** Counts for `StageContext.count`: `requests`, `retries: 429`, `tokens: prompt`...; zero counts left out. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    const put = (k: string, n: number) => n > 0 && (out[k] = n);
    put("requests", this.requests);
    put("requests: failed", this.failed);
    for (const c of RETRY_CAUSES) put(`retries: ${c}`, this.retries[c]);
    put("tokens: prompt", this.prompt_tokens);
    put("tokens: completion", this.completion_tokens);
    return out;
  }
}
