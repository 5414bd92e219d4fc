// npm run bench -- memory: datasets stream. `jsonl -> where -> take(n: 1000)` over 100,000 and over 1,000,000
// records (~100 bytes each); the peak resident set of the itp process must not grow with the data (target: the
// 1M run peaks at most 2x the 100k run). Peak RSS from /usr/bin/time -v where it exists, else by polling
// /proc/<pid>/status (VmHWM) every 20 ms. Needs `npm run build`.
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { measured } from "../support/measured.js";

const bin = join(process.cwd(), "bin/itp.js");
const dir = mkdtempSync(join(tmpdir(), "itp-bench-memory-"));

/** `n` records of about 100 bytes: a third of them French, so the filter keeps two thirds. */
async function generate(path: string, n: number): Promise<number> {
  const out = createWriteStream(path);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const line = JSON.stringify({ id: i, lang: i % 3 === 0 ? "fr" : "en", turns: i % 7, text: `example record number ${String(i).padStart(8, "0")} of the memory bench` }) + "\n";
    bytes += line.length;
    if (!out.write(line)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  return bytes;
}

/** Run `itp run` on the recipe; its peak RSS in MB and its wall time. */
async function peak(recipe: string, store: string): Promise<{ mb: number; seconds: number }> {
  const r = await measured([process.execPath, bin, "run", recipe, "--store", store], dir);
  if (!/ran 3, cached 0, failed 0/.test(r.stderr)) {
    console.error(`itp run ${recipe} did not run its three stages:\n${r.stderr.slice(-2000)}`);
    process.exit(1);
  }
  return { mb: r.mb, seconds: r.seconds };
}

const sizes = [100_000, 1_000_000] as const;
const results: { mb: number; seconds: number }[] = [];
for (const n of sizes) {
  const data = `data_${n}.jsonl`;
  const bytes = await generate(join(dir, data), n);
  const recipe = `r_${n}.itp`;
  writeFileSync(join(dir, recipe), `dataset src = jsonl("${data}")\n\ndataset en = where(src, expr: "lang == \\"en\\" and turns <= 4")\n\ndataset first = take(en, n: 1000)\n`);
  const r = await peak(recipe, join(dir, `store_${n}`));
  results.push(r);
  console.log(`${n.toLocaleString("en-US").padStart(9)} records (${(bytes / n).toFixed(0)} bytes each, ${(bytes / 1e6).toFixed(0)} MB): peak RSS ${r.mb.toFixed(1)} MB, ${r.seconds.toFixed(2)} s`);
}
rmSync(dir, { recursive: true, force: true });
const small = results[0]!;
const large = results[1]!;
console.log(`bench memory: peak_mb_100k=${small.mb.toFixed(1)} peak_mb_1m=${large.mb.toFixed(1)} ratio=${(large.mb / small.mb).toFixed(2)}`);
