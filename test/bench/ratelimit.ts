// npm run bench -- ratelimit [rpm] [seconds]: the client's requests-per-minute limiter against the test server (in a
// process of its own), under saturated demand (concurrency 16, always more requests ready than the limit allows),
// for a full minute by default. The server records when each request arrives; the measured rate is the count in the
// window [first arrival, first arrival + seconds). Also shows that the limiter does not burst at the start: the first
// second holds no more than rpm/60 requests, rounded up, plus one (and the busiest second is shown: more than that
// only by timer lateness, a late request bunching with the next one on a busy machine).
import { setMaxListeners } from "node:events";
import { OpenAIClient } from "../../src/models/openai.js";
import { serveStandalone, spawnServer } from "../support/openai-server.js";

if (process.argv[2] === "--serve") {
  await serveStandalone(process.argv.slice(3));
} else {
  await main();
}

async function main(): Promise<void> {
  const rpm = Number(process.argv[2] ?? 600);
  const seconds = Number(process.argv[3] ?? 60);
  const server = await spawnServer(process.argv[1]!, ["--arrivals"]);
  const client = new OpenAIClient({ model: "bench", baseUrl: server.url, concurrency: 16, rpm, timeoutMs: 10_000 });
  const stop = new AbortController();
  setMaxListeners(64, stop.signal); // one signal shared by 16 workers: each call in flight listens to it
  let failures = 0;
  const worker = async (w: number) => {
    for (let i = 0; !stop.signal.aborted; i++) {
      try {
        await client.complete({ prompt: `worker ${w} request ${i}`, max_tokens: 8 }, { signal: stop.signal });
      } catch (e) {
        if (!stop.signal.aborted) failures++, console.error(`request failed: ${(e as Error).message}`);
      }
    }
  };
  // Open the 16 connections first, so the first requests measured do not arrive late by a TCP handshake and bunch
  // with the next ones; then let the limiter idle (it keeps no credit, so this buys no burst) and zero the counts.
  await Promise.all(Array.from({ length: 16 }, (_, i) => client.complete({ prompt: `warm-up ${i}`, max_tokens: 1 })));
  await new Promise((r) => setTimeout(r, 500));
  await server.reset();
  console.log(`ratelimit: rpm=${rpm}, ${seconds} s of saturated demand at concurrency 16 ...`);
  const workers = Array.from({ length: 16 }, (_, w) => worker(w));
  // Run past the window by a few intervals, so the window's last slots are surely taken.
  await new Promise((r) => setTimeout(r, seconds * 1000 + 3 * (60_000 / rpm) + 500));
  stop.abort();
  await Promise.all(workers);
  const arrivals = (await server.stats(true)).arrivals;
  await client.close();
  await server.close();

  const t0 = arrivals[0]!;
  const windowMs = seconds * 1000;
  const inWindow = arrivals.filter((t) => t - t0 < windowMs).length;
  const measured = inWindow / (seconds / 60);
  const errorPct = (Math.abs(measured - rpm) / rpm) * 100;
  let busiest = 0;
  for (let i = 0, j = 0; i < arrivals.length; i++) {
    while (arrivals[i]! - arrivals[j]! >= 1000) j++;
    busiest = Math.max(busiest, i - j + 1);
  }
  const firstSecond = arrivals.filter((t) => t - t0 < 1000).length;
  const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!);
  const meanGap = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - meanGap) ** 2, 0) / gaps.length);
  console.log(`requests in the ${seconds} s window: ${inWindow} (expected ${Math.round((rpm * seconds) / 60)}); failures: ${failures}`);
  const perSecond = Math.ceil(rpm / 60) + 1; // +1: a one-second window can hold both of its edges
  console.log(`spacing: mean ${meanGap.toFixed(2)} ms (limit ${(60_000 / rpm).toFixed(2)} ms), sd ${sd.toFixed(2)} ms (timer lateness on this machine)`);
  console.log(`first second: ${firstSecond} requests, busiest second: ${busiest} (the limit allows ${perSecond}; a bucket that starts full would send its capacity at once)`);
  console.log(`bench ratelimit: rpm_limit=${rpm} measured_rpm=${measured.toFixed(1)} error_pct=${errorPct.toFixed(2)}`);
  process.exitCode = errorPct <= 5 && firstSecond <= perSecond && failures === 0 ? 0 : 1;
}
