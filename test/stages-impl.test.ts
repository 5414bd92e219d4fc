import { createReadStream } from "node:fs";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { mixMode } from "../src/stages/mix/kinds.js";
import { converterImpls, oasstThreads, sharegptMessages } from "../src/stages/convert/converters.js";
import { exportImpls } from "../src/stages/export/export.js";
import { dedupImpls, rougeDedup } from "../src/stages/dedup/dedup.js";
import { filterImpls, firstMention } from "../src/stages/filter/filters.js";
import { selfInstructVerdict } from "../src/stages/support/self-instruct-rules.js";
import { largestRemainder, mixImpls, mixRate, planMix } from "../src/stages/mix/mix.js";
import { unitHash } from "../src/stages/support/records.js";
import { templateImpls } from "../src/stages/template/templates.js";
import { dedupKey, lcsLength, ngrams, ngramWords, normalizeText, rougeLF1, rougeTokens, Vocabulary, wordsRegex } from "../src/stages/support/text.js";
import { renameFields, transformImpls } from "../src/stages/transform/transforms.js";
import { repoRoot } from "./support/cli.js";
import { makeCtx, runImpl } from "./support/stage-ctx.js";
import { rng } from "./support/fuzz.js";

const run = runImpl;

/** The textbook ROUGE-L: full LCS table over string tokens, rouge_score's precision/recall/F1. */
function naiveRougeL(a: string, b: string): number {
  const x = a.toLowerCase().replace(/[^a-z0-9]+/g, " ").split(/\s+/).filter(Boolean);
  const y = b.toLowerCase().replace(/[^a-z0-9]+/g, " ").split(/\s+/).filter(Boolean);
  if (x.length === 0 || y.length === 0) return 0;
  const t: number[][] = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
  for (let i = 1; i <= x.length; i++) for (let j = 1; j <= y.length; j++) t[i]![j] = x[i - 1] === y[j - 1] ? t[i - 1]![j - 1]! + 1 : Math.max(t[i - 1]![j]!, t[i]![j - 1]!);
  const lcs = t[x.length]![y.length]!;
  if (lcs === 0) return 0;
  const p = lcs / y.length;
  const r = lcs / x.length;
  return (2 * p * r) / (p + r);
}

const WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "Give", "three", "tips", "x-ray", "42", "ÉTÉ", "été!"];
function sentence(rand: () => number, len: number): string {
  const out: string[] = [];
  for (let i = 0; i < len; i++) out.push(WORDS[Math.floor(rand() * WORDS.length)]!);
  return out.join(rand() < 0.5 ? " " : ", ");
}

describe("ROUGE-L", () => {
  it("tokenizes as rouge_score: lowercase, non-alphanumerics (ASCII) are separators", () => {
    expect(rougeTokens("Hello, World! x-ray 42nd ÉTÉ")).toEqual(["hello", "world", "x", "ray", "42nd", "t"]);
    expect(rougeTokens(" ,;; ")).toEqual([]);
  });

  it("a hand-computed case", () => {
    const v = new Vocabulary();
    // LCS of "give three tips for staying healthy" and "give three tips for staying healthy and fit" is 6.
    const a = v.encode(rougeTokens("Give three tips for staying healthy."));
    const b = v.encode(rougeTokens("Give three tips for staying healthy and fit."));
    expect(lcsLength(a, b)).toBe(6);
    expect(rougeLF1(a, b)).toBeCloseTo((2 * 6) / 14, 12);
  });

  it("matches a naive full-table implementation on 2,000 generated pairs", () => {
    const rand = rng(7);
    const v = new Vocabulary();
    for (let k = 0; k < 2000; k++) {
      const a = sentence(rand, Math.floor(rand() * 25));
      const b = sentence(rand, Math.floor(rand() * 25));
      expect(rougeLF1(v.encode(rougeTokens(a)), v.encode(rougeTokens(b))), `${a} | ${b}`).toBe(naiveRougeL(a, b));
    }
  });

  it("rouge_dedup keeps exactly what the naive O(n^2) filter keeps (length pruning changes nothing)", () => {
    const rand = rng(11);
    const texts = Array.from({ length: 150 }, () => sentence(rand, 1 + Math.floor(rand() * 12)));
    const seeds = Array.from({ length: 10 }, () => sentence(rand, 1 + Math.floor(rand() * 12)));
    for (const max of [0.5, 0.7, 0.9]) {
      const naive: number[] = [];
      const pool = [...seeds];
      texts.forEach((t, i) => {
        if (!pool.some((p) => naiveRougeL(t, p) > max)) {
          naive.push(i);
          pool.push(t);
        }
      });
      expect(rougeDedup(texts, max, seeds)).toEqual(naive);
    }
  });

  it("the stage drops near-duplicates of kept records and of `against` records", async () => {
    const data = [{ instruction: "Give three tips for staying healthy." }, { instruction: "Give three tips for staying healthy and fit." }, { instruction: "Name a color." }, { instruction: "Translate this sentence into French." }];
    const r = await run(dedupImpls["rouge_dedup"]!, { field: "instruction", max: 0.7, against: [{ $ref: "seeds" }] }, { data, "param:against[0]": [{ instruction: "Translate the sentence into French." }] });
    expect(r.records.map((x) => x["instruction"])).toEqual(["Give three tips for staying healthy.", "Name a color."]);
    expect(r.counts).toEqual({ kept: 2, "dropped: ROUGE-L above max": 2 });
    expect(r.dropped).toEqual([
      { reason: "ROUGE-L above max", detail: "F1 0.857 with record 1", record: data[1] },
      { reason: "ROUGE-L above max", detail: "F1 0.800 with param:against[0] record 1", record: data[3] },
    ]);
  });
});

describe("exact_dedup", () => {
  it("normalizes: NFKC, lowercase, whitespace collapsed and stripped", () => {
    expect(normalizeText("  Name three\u00a0renewable \n sources  ")).toBe("name three renewable sources");
    expect(normalizeText("ＡＢＣ ﬁle")).toBe("abc file");
    expect(dedupKey({ instruction: "What is X?", input: "" }, ["instruction", "input"], true)).toBe(dedupKey({ instruction: " what  is x? " }, ["instruction", "input"], true));
    expect(dedupKey({ a: "X" }, ["a"], false)).not.toBe(dedupKey({ a: "x" }, ["a"], false));
    // whole records: key order does not matter
    expect(dedupKey({ a: "1", b: "2" }, undefined, true)).toBe(dedupKey({ b: "2", a: "1" }, undefined, true));
  });

  it("keeps the first occurrence, compares only the given fields", async () => {
    const data = [
      { instruction: "What is the capital of Australia?", output: "Canberra." },
      { instruction: "what is the capital of  australia?", output: "Canberra is the capital." },
      { instruction: "Another question?", output: "Canberra." },
    ];
    const r = await run(dedupImpls["exact_dedup"]!, { fields: ["instruction"], normalize: true }, { data });
    expect(r.records).toEqual([data[0], data[2]]);
    expect(r.counts).toEqual({ kept: 2, "dropped: duplicate": 1 });
    expect(r.dropped).toEqual([{ reason: "duplicate", detail: "of record 1", record: data[1] }]);
  });
});

describe("filters", () => {
  const si = selfInstructVerdict({
    minWords: 4,
    maxWords: 150,
    words: ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw", "plot", "go to", "video"],
    blockedPrefixes: ["Write a program"],
    dropPunctuationStart: true,
    dropNonAsciiStart: true,
  });

  it("Self-Instruct's rules, in order", () => {
    expect(si("Tell a joke.")).toBe("too few words");
    expect(si("Tell me a joke.")).toBeUndefined();
    expect(si(Array(151).fill("word").join(" "))).toBe("too many words");
    expect(si(Array(150).fill("word").join(" "))).toBeUndefined();
    expect(si("Describe the IMAGE shown below.")).toBe("blocklisted word");
    expect(si("Tell me how to go to the station.")).toBe("blocklisted word");
    expect(si("Explain how mapping functions work.")).toBeUndefined(); // "map" only as a whole word
    expect(si("Explain the video_game industry today.")).toBeUndefined(); // "_" is a word character, as in Python's \b
    expect(si("Write a program that prints primes.")).toBe("blocked prefix");
    expect(si("write a program that prints primes.")).toBeUndefined(); // startswith is case-sensitive
    expect(si("- List three primary colors.")).toBe("starts with punctuation");
    expect(si("¿Cómo se dice hola en francés?")).toBe("starts with a non-ASCII character");
  });

  it("a blocklist drop names the word that matched (blocklist and self_instruct_filter)", async () => {
    const data = [{ instruction: "Describe the IMAGE shown below." }, { instruction: "Tell me how to go to the station." }, { instruction: "Tell me a story about a cat." }];
    const b = await run(filterImpls["blocklist"]!, { field: "instruction", words: ["image", "go to"] }, { data });
    expect(b.dropped.map((d) => [d.reason, d.detail])).toEqual([
      ["blocklisted word", '"IMAGE" in instruction'],
      ["blocklisted word", '"go to" in instruction'],
    ]);
    const s = await run(filterImpls["self_instruct_filter"]!, {}, { data });
    expect(s.dropped.map((d) => [d.reason, d.detail])).toEqual([
      ["blocklisted word", '"IMAGE"'],
      ["blocklisted word", '"go to"'],
    ]);
  });

  it("blocklist phrases and case options", () => {
    expect(wordsRegex(["go to"], true, true).test("Go To the park")).toBe(true);
    expect(wordsRegex(["go to"], true, false).test("Go To the park")).toBe(false);
    expect(wordsRegex(["map"], false, true).test("mapping")).toBe(true);
    expect(wordsRegex(["c++"], true, true).test("learn c++ today")).toBe(true);
  });

  it("mention_filter: substring, any case, exempt sources kept", async () => {
    expect(firstMention(["I am not ChatGPT"], ["OpenAI", "ChatGPT"], true)).toBe("ChatGPT");
    expect(firstMention(["napalm"], ["Palm"], true)).toBe("Palm");
    const data = [
      { messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "I was trained by openai." }], source: "sharegpt" },
      { messages: [{ role: "user", content: "who are you?" }, { role: "assistant", content: "Tulu, not Claude." }], source: "hard_coded" },
      { instruction: "Compare GPT-4 and me.", output: "ok" },
      { instruction: "Hello", output: "Hi" },
    ];
    const r = await run(filterImpls["mention_filter"]!, { terms: ["OpenAI", "GPT-4", "Claude"], exempt_sources: ["hard_coded"], case_insensitive: true }, { data });
    expect(r.records).toEqual([data[1], data[3]]);
    expect(r.counts).toEqual({ kept: 2, "kept: exempt source": 1, "dropped: mentions OpenAI": 1, "dropped: mentions GPT-4": 1 });
    // The detail shows the matched text where it was found.
    expect(r.dropped).toEqual([
      { reason: "mentions OpenAI", detail: 'term "OpenAI" matched "openai" in text 2: "I was trained by openai."', record: data[0] },
      { reason: "mentions GPT-4", detail: 'term "GPT-4" matched "GPT-4" in text 1: "Compare GPT-4 and me."', record: data[2] },
    ]);
  });

  it("length in words and characters; tokens need a tokenizer", async () => {
    const data = [{ output: "" }, { output: "one two three" }, { output: "ééé" }];
    const words = await run(filterImpls["length"]!, { field: "output", unit: "words", min: 1, max: 2 }, { data });
    expect(words.counts).toEqual({ kept: 1, "dropped: too short": 1, "dropped: too long": 1 });
    expect(words.dropped).toEqual([
      { reason: "too short", record: data[0] },
      { reason: "too long", record: data[1] },
    ]);
    expect((await run(filterImpls["length"]!, { field: "output", unit: "chars", min: 3, max: 3 }, { data })).records).toEqual([data[2]]);
    await expect(run(filterImpls["length"]!, { field: "output", unit: "tokens", max: 3, tokenizer: "t" }, { data })).rejects.toThrow(/tokenizer/);
  });

  it("decontaminate: shared 13-grams, and whole short texts", async () => {
    const q = "A train leaves the station at 9 a.m. traveling at 60 miles per hour toward a city 180 miles away.";
    expect(ngrams(ngramWords("Hi, there!"), 13)).toEqual(["hi there"]);
    const data = [
      { instruction: `${q} At what time does it arrive?`, output: "12 p.m." },
      { instruction: "What is 15% of 80?", output: "12" },
      { instruction: "what is 15 % of 80", output: "Twelve." },
      { instruction: "A train leaves.", output: "ok" },
    ];
    const r = await run(filterImpls["decontaminate"]!, { fields: ["instruction", "output"], against: [{ $ref: "h" }], ngram: 13 }, { data, "param:against[0]": [{ instruction: `${q} When?`, output: "12." }, { instruction: "Is 15% of 80 what?" }] });
    // The train question shares 13 words; "12" equals a whole short eval answer; "What is 15% of 80?" is no eval text.
    expect(r.records).toEqual([data[2], data[3]]);
    expect(r.dropped.map((d) => d.record)).toEqual([data[0], data[1]]);
    expect(r.dropped.map((d) => d.detail)).toEqual(['"a train leaves the station at 9 a m traveling at 60 miles" in instruction', '"12" in output']);
    expect(r.counts).toEqual({ kept: 2, "dropped: shares a 13-gram with an evaluation set": 2 });
  });
});

describe("converters", () => {
  it("dolly_to_instruction: context becomes the input, omitted when empty", async () => {
    const r = await run(converterImpls["dolly_to_instruction"]!, {}, { data: [{ instruction: "Q", context: "", response: "A", category: "x" }, { instruction: "Q2", context: "C", response: "A2" }] });
    expect(r.records).toEqual([{ instruction: "Q", output: "A" }, { instruction: "Q2", input: "C", output: "A2" }]);
  });

  it("instruction_to_chat and chat_to_instruction", async () => {
    const c = await run(converterImpls["instruction_to_chat"]!, { source: "qs", system: "S" }, { data: [{ instruction: "I", input: "X", output: "O" }] });
    expect(c.records).toEqual([{ messages: [{ role: "system", content: "S" }, { role: "user", content: "I\n\nX" }, { role: "assistant", content: "O" }], source: "qs" }]);
    const chat = { messages: [{ role: "user", content: "a" }, { role: "assistant", content: "b" }, { role: "user", content: "c" }, { role: "assistant", content: "d" }] };
    expect((await run(converterImpls["chat_to_instruction"]!, { turn: "last" }, { data: [chat] })).records).toEqual([{ instruction: "c", output: "d" }]);
    expect((await run(converterImpls["chat_to_instruction"]!, { single_turn_only: true }, { data: [chat] })).counts).toEqual({ kept: 0, "dropped: more than one exchange": 1 });
  });

  it("preference_to_pairs", async () => {
    const r = await run(converterImpls["preference_to_pairs"]!, {}, { data: [{ prompt: "p", chosen: "c", rejected: "r" }] });
    expect(r.records).toEqual([{ prompt: "p", chosen: [{ role: "user", content: "p" }, { role: "assistant", content: "c" }], rejected: [{ role: "user", content: "p" }, { role: "assistant", content: "r" }] }]);
  });

  it("sharegpt_to_chat follows open-instruct: system/bing drop the conversation, turns need not alternate, others are errors", async () => {
    const data = [
      { id: "1", conversations: [{ from: "human", value: "hi" }, { from: "gpt", value: "hello" }] },
      { id: "2", conversations: [{ from: "system", value: "be brief" }, { from: "human", value: "hi" }, { from: "gpt", value: "hello" }] },
      { id: "3", conversations: [{ from: "human", value: "hi" }, { from: "human", value: "hello?" }, { from: "chatgpt", value: "  " }] },
      { id: "4", conversations: [{ from: "user", value: "hi" }, { from: "bing", value: "hello" }] },
      { id: "5", conversations: [] },
    ];
    const r = await run(converterImpls["sharegpt_to_chat"]!, { source: "sharegpt" }, { data });
    expect(r.records).toEqual([
      { messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }], id: "1", source: "sharegpt" },
      { messages: [{ role: "user", content: "hi" }, { role: "user", content: "hello?" }, { role: "assistant", content: "  " }], id: "3", source: "sharegpt" },
    ]);
    expect(r.counts).toEqual({ kept: 2, "dropped: speaker system": 1, "dropped: speaker bing": 1, "dropped: empty conversation": 1 });
    // Dropped conversations are kept, with the turn that dropped them.
    expect(r.dropped.map((d) => [d.record["id"], d.reason, d.detail])).toEqual([
      ["2", "speaker system", 'turn 1 is from "system"'],
      ["4", "speaker bing", 'turn 2 is from "bing"'],
      ["5", "empty conversation", "the conversation has no turn"],
    ]);
    // Another speaker stops the stage (open-instruct raises), unless drop_invalid.
    const bard = [{ id: "6", conversations: [{ from: "human", value: "hi" }, { from: "bard", value: "hello" }] }];
    await expect(run(converterImpls["sharegpt_to_chat"]!, {}, { data: bard })).rejects.toThrow(/record 1: turn 2 is from "bard", which the roles mapping does not name/);
    expect((await run(converterImpls["sharegpt_to_chat"]!, { drop_invalid: true }, { data: bard })).counts).toEqual({ kept: 0, "dropped: unknown role": 1 });
  });

  it("sharegpt_to_chat with rules = strict: non-alternating turns and empty turns drop the conversation too", async () => {
    const roles = { human: "user", gpt: "assistant", system: "system" };
    expect(sharegptMessages([{ from: "gpt", value: "Hello!" }, { from: "human", value: "hi" }, { from: "gpt", value: "yo" }], roles)).toEqual({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }], leadingAssistant: 1 });
    const data = [
      { id: "1", conversations: [{ from: "human", value: "hi" }, { from: "gpt", value: "hello" }] },
      { id: "2", conversations: [{ from: "human", value: "hi" }, { from: "bard", value: "hello" }] },
      { id: "3", conversations: [{ from: "human", value: "hi" }, { from: "human", value: "hello?" }] },
      { id: "4", conversations: [{ from: "human", value: "hi" }, { from: "gpt", value: "  " }] },
    ];
    const r = await run(converterImpls["sharegpt_to_chat"]!, { roles, rules: "strict", drop_invalid: true, source: "sharegpt" }, { data });
    expect(r.records).toEqual([{ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }], id: "1", source: "sharegpt" }]);
    expect(r.counts).toEqual({ kept: 1, "dropped: unknown role": 1, "dropped: non-alternating turns": 1, "dropped: empty turn": 1 });
    await expect(run(converterImpls["sharegpt_to_chat"]!, { roles, rules: "strict" }, { data })).rejects.toThrow(/record 2: turn 2 is from "bard"/);
  });

  it("oasst_to_chat: best-ranked path by default, every path with top_k_reply null", () => {
    const m = (id: string, parent: string | undefined, role: "user" | "assistant", rank: number | null, order: number) => ({ id, parent, role, text: id, rank, lang: "en", order });
    const nodes = [m("p", undefined, "user", null, 0), m("a1", "p", "assistant", 1, 1), m("a0", "p", "assistant", 0, 2), m("q", "a0", "user", null, 3), m("b", "q", "assistant", 0, 4), m("q2", "a1", "user", null, 5)];
    const best = oasstThreads(nodes, 1);
    expect(best.threads.map((t) => t.messages.map((x) => x.content))).toEqual([["p", "a0", "q", "b"]]);
    const all = oasstThreads(nodes, null);
    // a1's only reply is a prompt with no answer: the thread ends at a1.
    expect(all.threads.map((t) => t.messages.map((x) => x.content))).toEqual([["p", "a0", "q", "b"], ["p", "a1"]]);
    expect(oasstThreads(nodes, 1, "de").threads).toEqual([]);
  });
});

describe("transforms", () => {
  const data = Array.from({ length: 200 }, (_, i) => ({ i, task: i % 3 === 0 ? "a" : "b" }));

  it("split: the two parts are complementary and in input order", async () => {
    const tr = await run(transformImpls["split"]!, { validation: 0.1, part: "train", seed: 42 }, { data });
    const va = await run(transformImpls["split"]!, { validation: 0.1, part: "validation", seed: 42 }, { data });
    expect(tr.records.length + va.records.length).toBe(200);
    expect(new Set([...tr.records, ...va.records].map((r) => r["i"])).size).toBe(200);
    expect(va.records.map((r) => r["i"])).toEqual(data.filter((_, i) => unitHash(42, i) < 0.1).map((r) => r.i));
    expect(va.records.length).toBeGreaterThan(5);
    expect(va.records.length).toBeLessThan(40);
  });

  it("cap: at most per_task per task, a seeded sample, in input order", async () => {
    const r = await run(transformImpls["cap"]!, { per_task: 20, field: "task", seed: 1 }, { data });
    const counts = r.records.reduce<Record<string, number>>((c, x) => ((c[x["task"] as string] = (c[x["task"] as string] ?? 0) + 1), c), {});
    expect(counts).toEqual({ a: 20, b: 20 });
    const is = r.records.map((x) => x["i"] as number);
    expect(is).toEqual([...is].sort((x, y) => x - y));
    const again = await run(transformImpls["cap"]!, { per_task: 20, field: "task", seed: 2 }, { data });
    expect(again.records).not.toEqual(r.records);
    // The records over the cap are the dropped ones, each reported.
    expect(r.counts).toEqual({ kept: 40, "dropped: over the per-task cap": 160, tasks: 2, "tasks capped": 2 });
    expect(new Set(r.dropped.map((d) => d.detail))).toEqual(new Set(["task a", "task b"]));
    expect([...r.records, ...r.dropped.map((d) => d.record)].map((x) => x["i"]).sort((x, y) => (x as number) - (y as number))).toEqual(data.map((x) => x.i));
  });

  it("where: keeps the records the predicate holds for, reports the others", async () => {
    const r = await run(transformImpls["where"]!, { expr: 'task == "a" and i < 10' }, { data });
    expect(r.records.map((x) => x["i"])).toEqual([0, 3, 6, 9]);
    expect(r.counts).toEqual({ kept: 4, "dropped: predicate false": 196 });
    expect(r.dropped.length).toBe(196);
    expect(r.dropped[0]).toEqual({ reason: "predicate false", record: data[1] });
  });

  it("rename, select, set_fields", async () => {
    expect(renameFields({ a: 1, b: 2 }, { a: "b" })).toEqual({ b: 1 });
    expect(renameFields({ a: 1, b: 2 }, { a: "b", b: "a" })).toEqual({ b: 1, a: 2 });
    expect((await run(transformImpls["select"]!, { fields: ["b", "a"] }, { data: [{ a: 1, b: 2, c: 3 }] })).records).toEqual([{ b: 2, a: 1 }]);
    expect((await run(transformImpls["set_fields"]!, { values: { source: "x" } }, { data: [{ a: 1, source: "y" }] })).records).toEqual([{ a: 1, source: "x" }]);
  });
});

describe("mix", () => {
  const comp = (name: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${name}${i}` }));
  const inputs = { "component:a": comp("a", 100), "component:b": comp("b", 50), "component:c": comp("c", 3) };

  it("count mode: take(n) is the first n of a seeded shuffle, all and repeat whole; counts exact", async () => {
    const params = { seed: 42, shuffle: true, components: { a: { fn: "take", n: 30 }, b: { fn: "all" }, c: { fn: "repeat", times: 4 } } };
    const r = await run(mixImpls["mix"]!, params, inputs);
    expect(r.records.length).toBe(30 + 50 + 12);
    expect(r.counts).toEqual({ "component: a": 30, "component: b": 50, "component: c": 12 });
    // the same records `sample(n: 30, seed: 42)` keeps
    const want = comp("a", 100)
      .map((x, i) => ({ x, k: unitHash(42, i) }))
      .sort((p, q) => p.k - q.k)
      .slice(0, 30)
      .map((p) => p.x.id)
      .sort();
    expect(r.records.filter((x) => String(x["id"]).startsWith("a")).map((x) => String(x["id"])).sort()).toEqual(want);
    // same seed: byte-identical; another seed: another sample
    const again = await run(mixImpls["mix"]!, params, inputs);
    expect(JSON.stringify(again.records)).toBe(JSON.stringify(r.records));
    const other = await run(mixImpls["mix"]!, { ...params, seed: 7 }, inputs);
    expect(other.records.filter((x) => String(x["id"]).startsWith("a")).map((x) => String(x["id"])).sort()).not.toEqual(want);
    // shuffled: not simply the components one after another
    expect(r.records.slice(0, 30).every((x) => String(x["id"]).startsWith("a"))).toBe(false);
  });

  it("without shuffle the components follow one another in the order written", async () => {
    const written = { "component:c": inputs["component:c"], "component:a": inputs["component:a"], "component:b": inputs["component:b"] };
    const r = await run(mixImpls["mix"]!, { seed: 42, shuffle: false, components: { a: { fn: "take", n: 2 }, b: { fn: "take", n: 1000 }, c: { fn: "all" } } }, written);
    expect(r.records.length).toBe(3 + 2 + 50);
    expect(r.records.slice(0, 3).map((x) => x["id"])).toEqual(["c0", "c1", "c2"]);
    expect(r.records.slice(3, 5).every((x) => String(x["id"]).startsWith("a"))).toBe(true);
    expect(r.records.slice(5).every((x) => String(x["id"]).startsWith("b"))).toBe(true);
  });

  it("repeat and all on a large component (no argument-count limits)", async () => {
    const big = Array.from({ length: 100_000 }, (_, i) => ({ i }));
    const r = await run(mixImpls["mix"]!, { seed: 42, shuffle: false, components: { big: { fn: "repeat", times: 2 } } }, { "component:big": big });
    expect(r.records.length).toBe(200_000);
    expect(r.records[100_000]).toEqual({ i: 0 });
  });

  it("fraction mode: floor(f x size)", async () => {
    const r = await run(mixImpls["mix"]!, { seed: 1, components: { a: { fn: "fraction", f: 0.333 }, b: { fn: "fraction", f: 0.5 }, c: { fn: "all" } } }, inputs);
    expect(r.counts).toEqual({ "component: a": 33, "component: b": 25, "component: c": 3 });
  });

  it("weight mode: largest remainder sums to total; a small component is cycled", async () => {
    expect(largestRemainder(10, [1, 1, 1])).toEqual([4, 3, 3]);
    expect(largestRemainder(100, [0.4, 0.32, 0.2, 0.05, 0.03])).toEqual([40, 32, 20, 5, 3]);
    const r = await run(mixImpls["mix"]!, { seed: 3, total: 101, components: { a: { fn: "weight", w: 0.5 }, b: { fn: "weight", w: 0.3 }, c: { fn: "weight", w: 0.2 } } }, inputs);
    expect(r.counts).toEqual({ "component: a": 51, "component: b": 30, "component: c": 20 });
    const cs = r.records.filter((x) => String(x["id"]).startsWith("c")).map((x) => x["id"]);
    expect(new Set(cs)).toEqual(new Set(["c0", "c1", "c2"]));
    // cycled through a permutation: every record 6 or 7 times
    for (const id of ["c0", "c1", "c2"]) expect([6, 7]).toContain(cs.filter((x) => x === id).length);
  });

  it("rate mode: seqio's min(size x scale, maximum) ^ (1 / temperature)", () => {
    expect(mixRate(5000, { fn: "rate", maximum: 3000 })).toBe(3000);
    expect(mixRate(1000, { fn: "rate", maximum: 3000 })).toBe(1000);
    expect(mixRate(10000, { fn: "rate", maximum: 3000, scale: 0.5 })).toBe(3000);
    expect(mixRate(4000, { fn: "rate", maximum: 3000, scale: 0.5 })).toBe(2000);
    expect(mixRate(400, { fn: "rate", temperature: 2 })).toBe(20); // no maximum: uncapped
    expect(mixRate(5000, { fn: "rate" }, { cap: 2000 })).toBe(2000); // the mixture's cap
    expect(mixRate(900, { fn: "rate" }, { temperature: 2 })).toBe(30); // the mixture's temperature
    expect(mixRate(10000, { fn: "rate", maximum: 3000 }, { cap: 10, temperature: 3 })).toBeCloseTo(3000 ** (1 / 3), 9); // clip, then temperature
    const params = { seed: 42, total: 1000, components: { a: { fn: "rate", maximum: 3000, scale: 1 }, b: { fn: "rate", maximum: 3000, scale: 1 }, c: { fn: "rate", maximum: 3000, scale: 1 } } };
    expect(mixMode(params).mode).toBe("rate");
    // rates 3000, 1000, 3000: quotas 428.57, 142.86, 428.57 -> floors 998, the two left go to b then a
    const { plan } = planMix(params, new Map([["a", 5000], ["b", 1000], ["c", 3000]]), ["a", "b", "c"]);
    expect(plan.map((p) => p.count)).toEqual([429, 143, 428]);
  });
});

describe("templates and render", () => {
  it("chat_template writes a Template value; render applies it", async () => {
    const t = await run(templateImpls["chat_template"]!, { name: "tulu" }, {});
    expect(t.values).toEqual([{ format: "tulu" }]);
    const r = await run(templateImpls["render"]!, { template: { $ref: "t" }, generation_prompt: false }, { data: [{ instruction: "I", output: "O" }, { messages: [{ role: "user", content: "u" }, { role: "assistant", content: "a" }] }], "param:template": t.values[0] });
    expect(r.records).toEqual([{ text: "<|user|>\nI\n<|assistant|>\nO</s>" }, { text: "<|user|>\nu\n<|assistant|>\na</s>" }]);
  });

  it("hf_chat_template names the tokenizer_config.json it cannot read (rendering: test/templates.test.ts)", async () => {
    await expect(run(templateImpls["hf_chat_template"]!, { path: "tok" }, {})).rejects.toThrow(/cannot read tok\/tokenizer_config\.json \(ENOENT\)/);
  });
});

describe("export", () => {
  it("writes the file atomically and passes the records through; onCached restores a deleted file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "itp-export-"));
    const data = [{ a: 1 }, { b: "é" }];
    const r = await run(exportImpls["export"]!, { path: "out/x.jsonl", format: "jsonl", overwrite: true }, { data }, dir);
    expect(r.records).toEqual(data);
    const text = readFileSync(join(dir, "out/x.jsonl"), "utf8");
    expect(text).toBe('{"a":1}\n{"b":"é"}\n');
    expect(readdirSync(join(dir, "out"))).toEqual(["x.jsonl"]);
    // From the cache: the artifact holds the same bytes; a missing or edited file is written again.
    const object = join(dir, "object");
    writeFileSync(object, text);
    const artifact = { stage: "s", digest: createHash("sha256").update(text).digest("hex"), records: 2, path: object, read: () => { throw new Error("unused"); }, json: async () => null, bytes: () => createReadStream(object) };
    const { ctx } = makeCtx({ path: "out/x.jsonl", format: "jsonl", overwrite: true }, {}, dir);
    rmSync(join(dir, "out/x.jsonl"));
    await Effect.runPromise(exportImpls["export"]!.onCached!(ctx, artifact));
    expect(readFileSync(join(dir, "out/x.jsonl"), "utf8")).toBe(text);
    writeFileSync(join(dir, "out/x.jsonl"), "edited\n");
    await Effect.runPromise(exportImpls["export"]!.onCached!(ctx, artifact));
    expect(readFileSync(join(dir, "out/x.jsonl"), "utf8")).toBe(text);
    expect(readdirSync(join(dir, "out"))).toEqual(["x.jsonl"]);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("quickstart end to end", () => {
  const outDir = join(repoRoot, "pipelines/out/quickstart");
  const stores: string[] = [];
  afterAll(() => {
    for (const s of stores) rmSync(s, { recursive: true, force: true });
    for (const f of ["train.jsonl", "validation.jsonl", "train_chats.jsonl", "train_alpaca_text.jsonl"]) rmSync(join(outDir, f), { force: true });
    if (existsSync(outDir) && readdirSync(outDir).length === 0) rmSync(outDir, { recursive: true });
  });

  // Every artifact of the store, by stage: its data digest (sha256 of the bytes, re-checked by `cache verify`).
  const objects = (store: string): Map<string, string> => {
    const verify = spawnSync(process.execPath, [join(repoRoot, "bin/itp.js"), "cache", "verify", "--store", store], { encoding: "utf8" });
    expect(verify.status).toBe(0);
    const ls = spawnSync(process.execPath, [join(repoRoot, "bin/itp.js"), "cache", "ls", "--json", "--store", store], { encoding: "utf8" });
    const entries = (JSON.parse(ls.stdout) as { entries: { stage: string; digest: string }[] }).entries;
    return new Map(entries.map((e) => [e.stage, e.digest]));
  };

  // The whole loop (a teacher trained and generating, filters, a mix, a student trained and evaluated) on the CPU:
  // the trainer's Python is found as a user's would be (ITP_PYTHON unset: python3, else Debian's).
  const quickstart = (store: string) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
    delete env["ITP_PYTHON"];
    return spawnSync(process.execPath, [join(repoRoot, "bin/itp.js"), "run", "pipelines/quickstart.itp", "--store", store], { cwd: repoRoot, encoding: "utf8", env, timeout: 600_000 });
  };

  it("runs offline, twice into two stores, with byte-identical artifacts (the trained models too) and the exports written; a rerun is fully cached", () => {
    const runs = [0, 1].map(() => {
      const store = mkdtempSync(join(tmpdir(), "itp-qs-"));
      stores.push(store);
      const r = quickstart(store);
      expect(r.stderr + r.stdout).not.toMatch(/FAILED|failed [1-9]/);
      expect(r.status, r.stderr).toBe(0);
      return objects(store);
    });
    expect(runs[0]!.size).toBeGreaterThan(30);
    for (const stage of ["teacher", "distilled.distill", "student", "scores"]) expect(runs[0]!.has(stage), stage).toBe(true);
    const again = quickstart(stores[0]!);
    expect(again.status).toBe(0);
    expect(again.stderr).toMatch(/ran 0, cached \d+, failed 0/);
    expect([...runs[1]!.keys()].sort()).toEqual([...runs[0]!.keys()].sort());
    for (const [k, v] of runs[0]!) expect(runs[1]!.get(k) === v, k).toBe(true);
    for (const f of ["train.jsonl", "validation.jsonl", "train_chats.jsonl", "train_alpaca_text.jsonl"]) expect(existsSync(join(outDir, f)), f).toBe(true);
    const train = readFileSync(join(outDir, "train.jsonl"), "utf8").trim().split("\n");
    const validation = readFileSync(join(outDir, "validation.jsonl"), "utf8").trim().split("\n");
    // 24 Alpaca records, 16 Dolly records and the teacher's 5 distinct answers, less the one that names another assistant.
    expect(train.length + validation.length).toBe(44);
    // Stanford Alpaca's training string: the output follows "### Response:" with nothing between.
    const texts = readFileSync(join(outDir, "train_alpaca_text.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { text: string });
    const trainRecords = train.map((l) => JSON.parse(l) as { output: string });
    expect(texts.map((t) => t.text.slice(t.text.indexOf("### Response:") + "### Response:".length))).toEqual(trainRecords.map((r) => `${r.output}</s>`));
  }, 1_500_000);
});
