import { afterAll, beforeAll, expect, it } from "vitest";
import { itpBin } from "./support/cli.js";
import { generateCrashTrials, prepareGenerateCrash, type GenerateCrashSuite } from "./support/generate-crash.js";

// SIGKILL during a 2,000-request generation, 10 times (100 in `npm run bench -- generate-crash`).
let suite: GenerateCrashSuite;
beforeAll(async () => {
  suite = await prepareGenerateCrash(itpBin);
}, 120_000);
afterAll(() => suite?.server.close());

it("resumes every killed generation to the same dataset, paying for no cached answer twice", async () => {
  const t = await generateCrashTrials(suite, 10, 11);
  expect(t.problems).toEqual([]);
  expect(t.mismatch).toBe(0);
  expect(t.repaid).toBe(0);
  // What a kill loses is what was in flight: at most the model's concurrency (16).
  expect(t.maxLost).toBeLessThanOrEqual(16);
}, 600_000);
