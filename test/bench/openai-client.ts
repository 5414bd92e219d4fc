// npm run bench -- openai-client [concurrency] [seconds]: requests per second through the OpenAI client (permits,
// body building, retries' bookkeeping, parsing and normalizing the answer) against the test server answering at
// once, side by side with a bare undici loop over the same kind of pool (request, read the body, JSON.parse). The
// server runs in a process of its own so it does not share the client's core. Rounds alternate between the two and
// the best round of each counts, which evens out a busy machine; the CPU time per request (this process only) is the
// steadier measure of the client's own cost on a shared machine.
import { Pool } from "undici";
import { OpenAIClient } from "../../src/models/openai.js";
import { serveStandalone, spawnServer } from "../support/openai-server.js";

if (process.argv[2] === "--serve") {
  await serveStandalone(process.argv.slice(3));
} else {
  await main();
}

async function main(): Promise<void> {
  const concurrency = Number(process.argv[2] ?? 64);
  const seconds = Number(process.argv[3] ?? 5);
  const rounds = 3;
  const server = await spawnServer(process.argv[1]!);
  const origin = new URL(server.url).origin;

  /** Requests per second of `concurrency` loops calling `one` for `ms`; also this process's CPU time per request. */
  const cpu: Record<string, number[]> = { client: [], bare: [] };
  const measure = async (one: (i: number) => Promise<unknown>, ms: number, what?: string): Promise<number> => {
    let done = 0;
    const end = performance.now() + ms;
    const t0 = performance.now();
    const u0 = process.cpuUsage();
    await Promise.all(
      Array.from({ length: concurrency }, async (_, w) => {
        for (let i = w; performance.now() < end; i += concurrency) {
          await one(i);
          done++;
        }
      }),
    );
    const u = process.cpuUsage(u0);
    if (what) cpu[what]!.push((u.user + u.system) / done);
    return done / ((performance.now() - t0) / 1000);
  };

  const client = new OpenAIClient({ model: "bench", baseUrl: server.url, concurrency, timeoutMs: 30_000 });
  const viaClient = (i: number) => client.chat({ messages: [{ role: "user", content: `Say something about item ${i}` }], max_tokens: 16 });

  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  const headers = { "content-type": "application/json" };
  const bare = async (i: number) => {
    const body = JSON.stringify({ model: "bench", messages: [{ role: "user", content: `Say something about item ${i}` }], max_tokens: 16 });
    const res = await pool.request({ path: "/v1/chat/completions", method: "POST", headers, body });
    const j = JSON.parse(await res.body.text()) as { choices: { message: { content: string } }[] };
    if (res.statusCode !== 200 || typeof j.choices[0]?.message.content !== "string") throw new Error(`bare request failed: ${res.statusCode}`);
  };

  // Warm both up until V8 has optimized their paths (and undici's HTTP parser): seconds on a busy machine.
  for (let w = 0; w < 2; w++) {
    await measure(viaClient, 1500);
    await measure(bare, 1500);
  }
  const c: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    c.push(await measure(viaClient, seconds * 1000, "client"));
    b.push(await measure(bare, seconds * 1000, "bare"));
    console.log(`round ${r + 1}: client ${c[r]!.toFixed(0)} rps (${cpu["client"]![r]!.toFixed(0)} us CPU/request), bare undici ${b[r]!.toFixed(0)} rps (${cpu["bare"]![r]!.toFixed(0)} us)`);
  }
  const failed = client.stats.failed + Object.values(client.stats.retries).reduce((a, n) => a + n, 0);
  await client.close();
  await pool.close();
  const server_ = await server.stats();
  await server.close();
  const best = (xs: number[]) => Math.max(...xs);
  const least = (xs: number[]) => Math.min(...xs);
  console.log(`server answered ${server_.received} requests (${JSON.stringify(server_.outcomes)}); client retries or failures: ${failed}`);
  console.log(`bench openai-client: concurrency=${concurrency} client_rps=${best(c).toFixed(0)} bare_rps=${best(b).toFixed(0)} ratio=${(best(c) / best(b)).toFixed(2)} client_cpu_us=${least(cpu["client"]!).toFixed(0)} bare_cpu_us=${least(cpu["bare"]!).toFixed(0)}`);
}
