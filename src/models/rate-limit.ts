import { delay } from "./delay.js";

/**
 * Requests-per-minute and tokens-per-minute limits of one model endpoint, as a smooth limiter: each request reserves
 * the next free start time, requests are spaced evenly (60,000 / rpm ms apart) and the bucket holds no burst, so a
 * run that starts with a thousand queued prompts sends them at the limit's pace from the first second on.
 *
 * Reservations are computed from reserved times, not from when the timers fire, so timer lateness never
 * accumulates: over a minute of saturated demand the count is the limit, give or take one request.
 *
 * Tokens: a request's token cost is known only after it answers, so it reserves an estimate (prompt characters / 4
 * plus the completion budget, as OpenAI's own limiter counts) and {@link RateLimiter.settle} corrects the bucket with
 * the usage the server reports.
 */
export class RateLimiter {
  private readonly msPerRequest: number;
  private readonly msPerToken: number;
  /** Earliest start of the next request by each limit (performance.now() clock). */
  private nextByRequests = 0;
  private nextByTokens = 0;

  constructor(rpm: number | undefined, tpm: number | undefined) {
    this.msPerRequest = rpm ? 60_000 / rpm : 0;
    this.msPerToken = tpm ? 60_000 / tpm : 0;
  }

  get limited(): boolean {
    return this.msPerRequest > 0 || this.msPerToken > 0;
  }

  /** Reserve a start for a request costing `tokens` (estimated); returns the milliseconds to wait before sending it. */
  reserve(tokens: number): number {
    const now = performance.now();
    let start = now;
    if (this.msPerRequest > 0 && this.nextByRequests > start) start = this.nextByRequests;
    if (this.msPerToken > 0 && this.nextByTokens > start) start = this.nextByTokens;
    if (this.msPerRequest > 0) this.nextByRequests = start + this.msPerRequest;
    if (this.msPerToken > 0) this.nextByTokens = start + tokens * this.msPerToken;
    return start - now;
  }

  /** Wait for a reserved start; rejects with the signal's reason when it aborts first (the slot is then left unused). */
  async take(tokens: number, signal?: AbortSignal): Promise<void> {
    const wait = this.reserve(tokens);
    if (wait >= 1) await delay(wait, signal);
  }

  /** Correct the token bucket once the server reported what a request really cost. */
  settle(estimated: number, actual: number): void {
    if (this.msPerToken > 0 && actual !== estimated) this.nextByTokens += (actual - estimated) * this.msPerToken;
  }
}
