// npm run bench -- fuzz [cases]: 20,000 mutants of the shipped recipes through the CLI's entry point.
import { fuzz } from "../support/fuzz.js";

const cases = Number(process.argv[2] ?? 20_000);
const t0 = performance.now();
const r = await fuzz(cases, Number(process.env["FUZZ_SEED"] ?? 7));
const seconds = (performance.now() - t0) / 1000;
for (const f of r.failures.slice(0, 10)) console.log(`case ${f.seed} (${f.op}) from ${f.source}: ${f.problem}\n${f.text.slice(0, 300)}\n---`);
console.log(`bench fuzz: cases=${r.cases} crashes=${r.crashes} failures=${r.failures.length} seconds=${seconds.toFixed(1)}`);
process.exitCode = r.failures.length === 0 ? 0 : 1;
