import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { itpBin } from "./support/cli.js";
import { crashStages, crashTrials, prepareCrashSuite, type CrashSuite } from "./support/crash.js";

// SIGKILL at random moments inside a run (seeded): no corrupt entry, no committed stage redone, and the resumed run
// ends byte-identical to an uninterrupted one. `npm run bench -- crash` runs 200 trials on more data.
describe("crash safety", () => {
  let suite: CrashSuite | undefined;
  afterAll(() => suite && rmSync(suite.dir, { recursive: true, force: true }));

  it("20 runs killed at random moments: corrupt=0 mismatch=0 redone=0", async () => {
    suite = prepareCrashSuite(10_000, itpBin);
    const t = await crashTrials(suite, 20, Number(process.env["CRASH_SEED"] ?? 1));
    expect(t.problems).toEqual([]);
    expect({ corrupt: t.corrupt, mismatch: t.mismatch, redone: t.redone }).toEqual({ corrupt: 0, mismatch: 0, redone: 0 });
    // The kills land inside the run: some after some stages committed.
    expect(t.committedHistogram.slice(1, crashStages.length).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  }, 600_000);
});
