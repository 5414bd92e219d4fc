import { z } from "zod";
import { duration, ms, natInt, lazyEntries } from "./common.js";
import type { ValueFunction } from "./registry.js";

/**
 * Value functions that belong to no single stage file. Mix rules live in mix.ts, evaluation tasks in evaluate.ts.
 *
 * `backoff(...)` (category "retry_policy"): a retry policy, for LLM requests (`openai_compatible { retry = ... }`)
 * and for jobs (training stages' `retry`).
 */
export function otherValues(): ValueFunction[] {
  return lazyEntries<ValueFunction>([
    {
      name: "backoff",
      category: "retry_policy",
      doc: "Exponential backoff with full jitter: the k-th retry waits a random time in [0, min(max, initial x multiplier^k)], or the server's Retry-After when it gives one.",
      positional: ["max_retries"],
      params: () => z
        .object({
          max_retries: natInt().default(5).describe("Retries before giving up (0: no retry)."),
          initial: duration().default(ms(1_000)).describe("Base delay of the first retry (default 1s)."),
          max: duration().default(ms(60_000)).describe("Longest delay between two tries (default 60s)."),
          multiplier: z.number().gte(1).default(2).describe("Growth factor of the delay per retry."),
          jitter: z.boolean().default(true).describe("Randomize each delay (full jitter); the random stream is seeded, so runs are repeatable."),
          respect_retry_after: z.boolean().default(true).describe("Wait as long as a Retry-After header asks, when the server sends one."),
        })
        .refine((p) => p.initial.duration_ms <= p.max.duration_ms, { message: "initial is longer than max", path: ["initial"] }),
    },
  ]);
}
