// npm run bench -- crash [trials] [records]: runs of a nine-stage recipe (default 200 trials, 100,000 records) killed
// with SIGKILL at random moments; after each, `itp cache verify` must find nothing corrupt, and the resumed run must
// redo no committed stage and end byte-identical to the reference. The one side: itp's store under kills, against
// its own uninterrupted reference run (no peer). The moments are seeded and uniform inside the run: from the killed
// process's run log appearing (start-up excluded) to the reference run's last commit, so that few land before any
// work or after the end; the line reports where they landed (before_first_commit, mid_run, after_end, judged by
// what the killed run had committed). Needs `npm run build`.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { crashTrials, prepareCrashSuite } from "../support/crash.js";

const trials = Number(process.argv[2] ?? 200);
const records = Number(process.argv[3] ?? 100_000);
const seed = Number(process.env["CRASH_SEED"] ?? 42);
const t0 = performance.now();
// ITP_BIN: another build of itp (a snapshot, so a rebuild of dist/ during the long run does not change the binary).
const suite = prepareCrashSuite(records, process.env["ITP_BIN"] ?? join(process.cwd(), "bin/itp.js"));
console.log(`reference run: ${records} records, ${(suite.referenceMs / 1000).toFixed(2)} s; from its run log: first commit at ${suite.firstCommitMs} ms, last at ${suite.lastCommitMs} ms`);
const t = await crashTrials(suite, trials, seed, (i, r) => {
  if ((i + 1) % 20 === 0) console.log(`  ${i + 1}/${trials} trials`);
  for (const p of r.problems) console.log(`  trial ${i}: ${p}`);
});
const seconds = (performance.now() - t0) / 1000;
console.log(`stages committed before the kill (trials per count 0..9): ${t.committedHistogram.join(" ")}`);
const { before_first_commit, mid_run, after_end } = t.spread;
if (t.problems.length === 0) rmSync(suite.dir, { recursive: true, force: true });
else console.log(`kept ${suite.dir} for inspection`);
console.log(
  `bench crash: trials=${t.trials} corrupt=${t.corrupt} mismatch=${t.mismatch} redone=${t.redone} before_first_commit=${before_first_commit} mid_run=${mid_run} after_end=${after_end} records=${records} seconds=${seconds.toFixed(1)}`,
);
process.exitCode = t.corrupt + t.mismatch + t.redone === 0 ? 0 : 1;
