// npm run bench -- generate [requests] [concurrency]: requests per second through the `generate` stage (prompt
// filling, the request cache looked up and written for every answer, the client, parsing, writing records), run
// by `itp run` against the test server answering at once in a process of its own; side by side with a bare undici
// loop at the same concurrency sending the same requests. The stage's rate is taken from its manifest (its start to
// its end), so process start-up is not counted; the best of the rounds counts for each side. Needs `npm run build`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { serveStandalone, spawnServer } from "../support/openai-server.js";

if (process.argv[2] === "--serve") {
  await serveStandalone(process.argv.slice(3));
} else {
  await main();
}

async function main(): Promise<void> {
  const requests = Number(process.argv[2] ?? 20_000);
  const concurrency = Number(process.argv[3] ?? 64);
  const rounds = 3;
  const server = await spawnServer(process.argv[1]!);
  const dir = mkdtempSync(join(tmpdir(), "itp-bench-generate-"));
  const bin = join(process.cwd(), "bin/itp.js");
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
    const r = spawnSync(process.execPath, [bin, "run", "r.itp", "--store", store], { cwd: dir, env: { ...process.env, BENCH_BASE_URL: server.url }, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`itp run failed:\n${r.stdout}\n${r.stderr}`);
    const show = spawnSync(process.execPath, [bin, "show", "r.itp", "answers", "--store", store, "--json"], { cwd: dir, env: { ...process.env, BENCH_BASE_URL: server.url }, encoding: "utf8" });
    const m = JSON.parse(show.stdout) as { records: number; counts: Record<string, number>; made: { duration_ms: number } };
    if (m.records !== requests || m.counts["requests: sent"] !== requests) throw new Error(`the stage made ${m.records} records from ${m.counts["requests: sent"]} requests, expected ${requests}`);
    rmSync(store, { recursive: true, force: true });
    return requests / (m.made.duration_ms / 1000);
  };

  const pool = new Pool(new URL(server.url).origin, { connections: concurrency, pipelining: 1 });
  const headers = { "content-type": "application/json" };
  const bare = async (): Promise<number> => {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < requests; i = next++) {
          const body = JSON.stringify({ model: "bench", messages: [{ role: "user", content: `Say something about item ${i}` }], max_tokens: 16 });
          const res = await pool.request({ path: "/v1/chat/completions", method: "POST", headers, body });
          const j = JSON.parse(await res.body.text()) as { choices: { message: { content: string } }[] };
          if (res.statusCode !== 200 || typeof j.choices[0]?.message.content !== "string") throw new Error(`bare request failed: ${res.statusCode}`);
        }
      }),
    );
    return requests / ((performance.now() - t0) / 1000);
  };

  const itp: number[] = [];
  const loop: number[] = [];
  await bare(); // warm the loop's JIT and connections (each itp run is a fresh process, warm-up included)
  for (let r = 0; r < rounds; r++) {
    itp.push(viaItp(r));
    loop.push(await bare());
    console.log(`round ${r + 1}: generate stage ${itp[r]!.toFixed(0)} rps, bare undici ${loop[r]!.toFixed(0)} rps`);
  }
  await pool.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  const rps = Math.max(...itp);
  const bareRps = Math.max(...loop);
  console.log(`bench generate: rps=${rps.toFixed(0)} bare_rps=${bareRps.toFixed(0)} ratio_vs_undici=${(rps / bareRps).toFixed(2)} requests=${requests} concurrency=${concurrency}`);
}
