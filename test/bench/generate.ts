// npm run bench -- generate [requests] [concurrency] [rounds]: requests per second through the `generate` stage
// (prompt filling, the request cache looked up and written for every answer, the client, parsing, writing records),
// run by `itp run` against the test server answering at once; side by side with a bare undici loop (a Pool, one
// JSON body built and one answer parsed per request, nothing else) at the same concurrency sending the same number
// of requests to the same server.
//
// How it is measured, so that the two sides are compared on equal terms:
// - The server runs in a process of its own (the bench's own bundle started with `--serve`), warmed by a bare run
//   before anything is timed, so neither side shares a core with it and neither pays for its warm-up.
// - Each side runs in a fresh process of its own, one after the other: `itp run`, and the bare loop (the bench's
//   bundle started with `--bare`). Both start cold (their JIT warm-up is inside their time) and neither's garbage or
//   sockets are left over to weigh on the other.
// - Times exclude process start-up and module loading: the stage's rate is taken from its manifest (its start to its
//   end: opening the cache, reading the input, the requests, writing and committing the records); the bare loop's
//   from its first request to its last answer.
// - Rounds alternate the two sides, and the best round counts for each, so a burst of load from elsewhere on the
//   machine hurts one round, not the figure. `bare_warm_rps`, for reference, is the bare loop run again in the
//   bench's own process, already warm; the ratio is taken against the cold loop, the like-for-like one.
// Needs `npm run build` (or ITP_BENCH_BIN naming another build's entry point).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { serveStandalone, spawnServer } from "../support/openai-server.js";

if (process.argv[2] === "--serve") {
  await serveStandalone(process.argv.slice(3));
} else if (process.argv[2] === "--bare") {
  const [url, requests, concurrency] = process.argv.slice(3);
  const rps = await bareLoop(url!, Number(requests), Number(concurrency));
  process.stdout.write(`${rps}\n`);
} else {
  await main();
}

/** The bare loop: `concurrency` workers sharing a Pool of as many connections, timed from the first request on. */
async function bareLoop(url: string, requests: number, concurrency: number): Promise<number> {
  const pool = new Pool(new URL(url).origin, { connections: concurrency, pipelining: 1 });
  const path = `${new URL(url).pathname.replace(/\/+$/, "")}/chat/completions`;
  const headers = { "content-type": "application/json" };
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < requests; i = next++) {
        const body = JSON.stringify({ model: "bench", messages: [{ role: "user", content: `Say something about item ${i}` }], max_tokens: 16 });
        const res = await pool.request({ path, method: "POST", headers, body });
        const j = JSON.parse(await res.body.text()) as { choices: { message: { content: string } }[] };
        if (res.statusCode !== 200 || typeof j.choices[0]?.message.content !== "string") throw new Error(`bare request failed: ${res.statusCode}`);
      }
    }),
  );
  const rps = requests / ((performance.now() - t0) / 1000);
  await pool.close();
  return rps;
}

async function main(): Promise<void> {
  const requests = Number(process.argv[2] ?? 20_000);
  const concurrency = Number(process.argv[3] ?? 64);
  const rounds = Number(process.argv[4] ?? 3);
  const self = process.argv[1]!;
  const server = await spawnServer(self);
  const dir = mkdtempSync(join(tmpdir(), "itp-bench-generate-"));
  const bin = process.env["ITP_BENCH_BIN"] ?? join(process.cwd(), "bin/itp.js"); // another build, to compare
  const env = { ...process.env, BENCH_BASE_URL: server.url };
  writeFileSync(
    join(dir, "r.itp"),
    `model m = openai_compatible() {
  model = "bench"
  base_url = env("BENCH_BASE_URL")
  concurrency = ${concurrency}
}

dataset questions = jsonl("questions.jsonl")

dataset answers = generate(questions, model: m) {
  prompt = "Say something about {topic}"
  max_tokens = 16
}
`,
  );
  writeFileSync(join(dir, "questions.jsonl"), Array.from({ length: requests }, (_, i) => JSON.stringify({ topic: `item ${i}` })).join("\n") + "\n");

  const viaItp = (round: number): number => {
    const store = join(dir, `store-${round}`);
    const r = spawnSync(process.execPath, [bin, "run", "r.itp", "--store", store], { cwd: dir, env, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`itp run failed:\n${r.stdout}\n${r.stderr}`);
    const show = spawnSync(process.execPath, [bin, "show", "r.itp", "answers", "--store", store, "--json"], { cwd: dir, env, encoding: "utf8" });
    const m = JSON.parse(show.stdout) as { records: number; counts: Record<string, number>; made: { duration_ms: number } };
    if (m.records !== requests || m.counts["requests: sent"] !== requests) throw new Error(`the stage made ${m.records} records from ${m.counts["requests: sent"]} requests, expected ${requests}`);
    rmSync(store, { recursive: true, force: true });
    return requests / (m.made.duration_ms / 1000);
  };
  const viaBare = (): number => {
    const r = spawnSync(process.execPath, [self, "--bare", server.url, String(requests), String(concurrency)], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`the bare loop failed:\n${r.stdout}\n${r.stderr}`);
    return Number(r.stdout.trim());
  };

  viaBare(); // warms the server
  const itp: number[] = [];
  const loop: number[] = [];
  for (let r = 0; r < rounds; r++) {
    itp.push(viaItp(r));
    loop.push(viaBare());
    console.log(`round ${r + 1}: generate stage ${itp[r]!.toFixed(0)} rps, bare undici ${loop[r]!.toFixed(0)} rps (${(itp[r]! / loop[r]!).toFixed(2)}x)`);
  }
  await bareLoop(server.url, requests, concurrency); // warms this process
  const warm = await bareLoop(server.url, requests, concurrency);
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  const rps = Math.max(...itp);
  const bareRps = Math.max(...loop);
  console.log(
    `bench generate: rps=${rps.toFixed(0)} bare_rps=${bareRps.toFixed(0)} ratio_vs_undici=${(rps / bareRps).toFixed(2)} requests=${requests} concurrency=${concurrency} bare_warm_rps=${warm.toFixed(0)}`,
  );
}
