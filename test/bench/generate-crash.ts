// npm run bench -- generate-crash: 100 SIGKILLs at random moments of a 2,000-request generation against the test
// server (in this process). Each trial resumes to completion; the dataset must be byte-identical to an
// uninterrupted run's, and no answer already cached may be requested again. Needs `npm run build`.
import { join } from "node:path";
import { generateCrashTrials, prepareGenerateCrash } from "../support/generate-crash.js";

const trials = Number(process.env["TRIALS"] ?? 100);
const suite = await prepareGenerateCrash(join(process.cwd(), "bin/itp.js"));
console.log(`reference run: ${(suite.referenceMs / 1000).toFixed(2)} s for 2,000 requests`);
const t = await generateCrashTrials(suite, trials, 2026, (i, r) => {
  if ((i + 1) % 10 === 0 || r.problems.length > 0) console.log(`trial ${i + 1}: kill at ${r.killAtMs} ms, received ${r.received}, lost ${r.lost}, repaid ${r.repaid}${r.problems.length ? `: ${r.problems.join("; ")}` : ""}`);
});
await suite.server.close();
for (const p of t.problems.slice(0, 20)) console.log(`problem: ${p}`);
console.log(`bench generate-crash: trials=${t.trials} mismatch=${t.mismatch} repaid=${t.repaid} max_lost=${t.maxLost} mid_run=${t.midRun}`);
if (t.problems.length > 0) process.exitCode = 1;
