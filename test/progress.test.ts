import { describe, expect, it } from "vitest";
import { StageMeter } from "../src/cli/progress-meter.js";
import { PlainReporter } from "../src/cli/progress.js";
import { itp, tempTree } from "./support/cli.js";

describe("what a progress line may say", () => {
  it("a total that grows is no total: a count without a percentage, and no ETA", () => {
    // The ROUGE-L filter's case: the pool it compares against grows, so its `total` moves.
    const m = new StageMeter(0);
    m.update(1000, 10, 1000);
    expect(m.view(1000).percent).toBe(1);
    m.update(2000, 990, 1000);
    expect(m.view(2000).percent).toBe(99);
    m.update(3000, 1000, 3700);
    const v = m.view(3000);
    expect(v.percent).toBeUndefined();
    expect(v.eta).toBeUndefined();
    expect(v.records).toBe(1000);
    expect(v.rate).toBeCloseTo(1000 / 3, 5);
  });

  it("a count past its total drops the percentage rather than showing 100% while it grows", () => {
    const m = new StageMeter(0);
    m.update(100, 4096, 4096);
    m.update(200, 8192, 4096);
    expect(m.view(200).percent).toBeUndefined();
  });

  it("a reader's bar follows the bytes of its file, and never goes backwards", () => {
    const m = new StageMeter(0);
    m.update(1000, 4096, undefined, { done: 1 << 20, total: 4 << 20 });
    expect(m.view(1000).percent).toBe(25);
    m.update(2000, 8192, undefined, { done: 2 << 20, total: 4 << 20 });
    expect(m.view(2000).percent).toBe(50);
    m.update(2500, 8192, undefined, { done: 1 << 20, total: 4 << 20 });
    expect(m.view(2500).percent).toBe(50);
  });

  it("an ETA only once the rate is steady: none early, none when the recent rate differs from the overall one", () => {
    const steady = new StageMeter(0);
    for (let t = 0; t <= 6000; t += 250) steady.update(t, t, 10_000);
    const v = steady.view(6000);
    expect(v.percent).toBe(60);
    expect(v.eta).toBeCloseTo(4, 1);
    const early = new StageMeter(0);
    for (let t = 0; t <= 2000; t += 250) early.update(t, t, 10_000);
    expect(early.view(2000).eta).toBeUndefined();
    // Fast at first, then ten times slower: the overall rate would promise far too little time.
    const slowing = new StageMeter(0);
    for (let t = 0; t <= 3000; t += 250) slowing.update(t, t * 2, 20_000);
    for (let t = 3250; t <= 7000; t += 250) slowing.update(t, 6000 + (t - 3000) / 5, 20_000);
    expect(slowing.view(7000).eta).toBeUndefined();
    expect(slowing.view(7000).percent).toBe(34);
  });
});

describe("progress without a terminal", () => {
  it("a line per running stage at least every interval, with records and rate, in the order the stages started", () => {
    let now = 0;
    const out: string[] = [];
    const r = new PlainReporter((s) => out.push(s), { intervalMs: 10_000, now: () => now });
    r.start([]);
    r.stageStarted("a");
    now = 4000;
    r.stageStarted("b");
    for (; now <= 30_000; now += 1000) {
      r.progress("a", now * 2);
      r.progress("b", now, 100_000);
      r.tick();
    }
    r.end({ ran: 0, cached: 0, failed: 0, skipped: 0, seconds: 30, interrupted: false, outcomes: new Map() });
    const lines = out.join("").split("\n").filter((l) => /^running \w+:/.test(l));
    expect(lines).toEqual([
      "running a: 20,000 records, 2,000/s",
      "running b: 14,000 records, 1,400/s, 14%",
      "running a: 40,000 records, 2,000/s",
      "running b: 24,000 records, 1,200/s, 24%, ETA 1m16s",
      "running a: 60,000 records, 2,000/s",
    ]);
  });

  it("itp run in a pipe prints those lines while a long stage reads", () => {
    const n = 120_000;
    const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ i, text: `record number ${i} with some words to read` })).join("\n") + "\n";
    const dir = tempTree({ "r.itp": 'dataset a = jsonl("a.jsonl")\n\ndataset b = take(a, n: 5)\n', "a.jsonl": lines });
    const r = itp(["run", "r.itp"], { cwd: dir, env: { ITP_PROGRESS_SECONDS: "0.02", ITP_PARALLEL: "0" } });
    expect(r.code, r.stderr).toBe(0);
    const err = r.stderr.split("\n");
    const progress = err.filter((l) => /^running a: [\d,]+ records/.test(l));
    expect(progress.length).toBeGreaterThan(0);
    const counts = progress.map((l) => Number(/^running a: ([\d,]+)/.exec(l)![1]!.replace(/,/g, "")));
    expect([...counts].sort((x, y) => x - y)).toEqual(counts);
    expect(err.indexOf(progress.at(-1)!)).toBeLessThan(err.findIndex((l) => l.startsWith("ran     a ")));
  }, 60_000);
});
