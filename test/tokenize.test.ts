import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../src/core/errors.js";
import { filterImpls } from "../src/stages/filter/filters.js";
import { transformImpls } from "../src/stages/transform/transforms.js";
import { byteTokenizer } from "../src/tokenize/bytes.js";
import { hfTokenizer } from "../src/tokenize/hf-tokenizer.js";
import { loadTokenizer } from "../src/tokenize/load.js";
import { hubTokenizerFile, tokenizerFiles, tokenizerSource } from "../src/tokenize/locate.js";
import { splitChat, type SplitMessage } from "../src/tokenize/split-chat.js";
import { rng } from "./support/fuzz.js";
import { runImpl } from "./support/stage-ctx.js";

const dir = mkdtempSync(join(tmpdir(), "itp-tokenize-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/**
 * A Llama-shaped tokenizer.json, small enough to count by hand: BPE with byte fallback over a few letters, a
 * Whitespace pre-tokenizer (`\w+|[^\w\s]+`), and a post-processor that puts BOS in front. Merges, by rank:
 * h+e, l+l, he+ll, hell+o; so "hello" and "hell" are one token each, "held" is he|l|d, "world" is five letters.
 */
const LLAMA_LIKE = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
  normalizer: null,
  pre_tokenizer: { type: "Whitespace" },
  post_processor: {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
  },
  decoder: null,
  model: {
    type: "BPE",
    dropout: null,
    unk_token: "<unk>",
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: true,
    vocab: { "<unk>": 0, "<s>": 1, "</s>": 2, h: 3, e: 4, l: 5, o: 6, w: 7, r: 8, d: 9, he: 10, ll: 11, hell: 12, hello: 13, "!": 14, "<0xC3>": 15, "<0xA9>": 16 },
    merges: ["h e", "l l", "he ll", "hell o"],
  },
};

/** GPT-2's bytes_to_unicode: the printable stand-in of every byte in a byte-level BPE vocabulary. */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const out: string[] = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(bs.includes(b) ? b : 256 + n++);
  return out;
}

/** A GPT-2-shaped byte-level BPE: every byte is a token, and merges make "hello" one token (h+e, he+l, hel+l, hell+o). */
function gpt2Like() {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((c, b) => (vocab[c] = b));
  for (const m of ["he", "hel", "hell", "hello"]) vocab[m] = Object.keys(vocab).length;
  return {
    version: "1.0",
    added_tokens: [special(256 + 4, "<|endoftext|>")],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges: ["h e", "he l", "hel l", "hell o"] },
  };
}

const llama = hfTokenizer(LLAMA_LIKE, "llama-like");

describe("tokenizer.json through @huggingface/tokenizers", () => {
  it("counts BPE tokens as merged by hand", () => {
    expect(llama.tokenize("hello world!")).toEqual(["hello", "w", "o", "r", "l", "d", "!"]);
    expect(llama.count("hello world!")).toBe(7);
    expect(llama.count("held hello hell")).toBe(3 + 1 + 1);
    expect(llama.count("")).toBe(0);
  });

  it("adds the post-processor's BOS only when asked (as `tokenizer(text).input_ids` does)", () => {
    expect(llama.tokenize("hello world!", true)).toEqual(["<s>", "hello", "w", "o", "r", "l", "d", "!"]);
    expect(llama.count("hello", true)).toBe(2);
    expect(llama.count("", true)).toBe(1);
  });

  it("falls back to byte tokens for a character outside the vocabulary, else <unk>; added tokens stay whole", () => {
    expect(llama.tokenize("hello é")).toEqual(["hello", "<0xC3>", "<0xA9>"]);
    expect(llama.tokenize("z")).toEqual(["<unk>"]); // no <0x7A> in the vocabulary
    expect(llama.tokenize("hello</s>")).toEqual(["hello", "</s>"]);
  });

  it("byte-level BPE (GPT-2 style): the space is part of the next word, non-ASCII is bytes", () => {
    const gpt2 = hfTokenizer(gpt2Like(), "gpt2-like");
    expect(gpt2.tokenize("hello world")).toEqual(["hello", "Ġ", "w", "o", "r", "l", "d"]);
    expect(gpt2.count("hello world")).toBe(7);
    expect(gpt2.count("héllo")).toBe(6); // h, 0xC3, 0xA9, l, l, o: the merges need "he"
    expect(gpt2.count("hello<|endoftext|>")).toBe(2);
    // The byte-level fallback is an upper bound for byte-level BPE.
    for (const s of ["hello world", "héllo", "日本語 text", ""]) expect(byteTokenizer.count(s)).toBeGreaterThanOrEqual(gpt2.count(s));
  });

  it("the byte-level fallback counts UTF-8 bytes", () => {
    expect(byteTokenizer.count("abc")).toBe(3);
    expect(byteTokenizer.count("é")).toBe(2);
    expect(byteTokenizer.count("日本")).toBe(6);
    expect(byteTokenizer.count("😀")).toBe(4);
    expect(byteTokenizer.tokenize("é")).toEqual(["<0xC3>", "<0xA9>"]);
    expect(byteTokenizer.count("x", true)).toBe(1); // no special tokens of its own
  });

  it("rejects what is not a tokenizer.json", () => {
    expect(() => hfTokenizer([], "x")).toThrow(/no JSON object/);
    expect(() => hfTokenizer({ added_tokens: [] }, "x")).toThrow(/no `model`/);
    expect(() => hfTokenizer({ model: { type: "Nonsense" } }, "x")).toThrow(/cannot load it: Unknown TokenizerModel type: Nonsense/);
  });
});

describe("finding and loading a tokenizer", () => {
  mkdirSync(join(dir, "tok"));
  writeFileSync(join(dir, "tok", "tokenizer.json"), JSON.stringify(LLAMA_LIKE));
  writeFileSync(join(dir, "other.json"), JSON.stringify(gpt2Like()));
  writeFileSync(join(dir, "broken.json"), "{ not json");

  it("a directory, a file, or bytes", async () => {
    expect((await loadTokenizer("tok", dir, "s")).count("hello world!")).toBe(7);
    expect((await loadTokenizer("tok/", dir, "s")).count("hello world!")).toBe(7);
    expect((await loadTokenizer("other.json", dir, "s")).count("hello world")).toBe(7);
    expect((await loadTokenizer(join(dir, "tok", "tokenizer.json"), "/", "s")).count("held")).toBe(3);
    expect(await loadTokenizer("bytes", dir, "s")).toBe(byteTokenizer);
  });

  it("errors name the stage, the parameter and the file, with a hint", async () => {
    const missing = loadTokenizer("nope", dir, "stage_a");
    await expect(missing).rejects.toBeInstanceOf(UserError);
    await expect(missing).rejects.toThrow('stage_a: tokenizer "nope": cannot read nope/tokenizer.json (ENOENT)');
    await expect(missing).rejects.toMatchObject({ hint: expect.stringMatching(/huggingface-cli download/) });
    await expect(loadTokenizer("broken.json", dir, "s")).rejects.toThrow(/s: tokenizer "broken.json": broken.json is not valid JSON/);
  });

  it("a hub model id is read from the local Hugging Face cache (refs/main), never downloaded", () => {
    const hub = join(dir, "hub");
    const snap = join(hub, "models--org--tiny", "snapshots", "abc123");
    mkdirSync(snap, { recursive: true });
    mkdirSync(join(hub, "models--org--tiny", "refs"));
    writeFileSync(join(hub, "models--org--tiny", "refs", "main"), "abc123\n");
    writeFileSync(join(snap, "tokenizer.json"), JSON.stringify(LLAMA_LIKE));
    const env = { HF_HUB_CACHE: hub };
    expect(hubTokenizerFile("org/tiny", env)).toBe(join(snap, "tokenizer.json"));
    expect(tokenizerSource("org/tiny", env)).toEqual({ kind: "file", path: join(snap, "tokenizer.json"), hub: "org/tiny" });
    expect(hubTokenizerFile("org/absent", env)).toBeUndefined();
    expect(hubTokenizerFile("../escape", env)).toBeUndefined();
    // Not in the cache: a directory relative to the recipe.
    expect(tokenizerSource("org/absent", env)).toEqual({ kind: "file", path: "org/absent/tokenizer.json" });
    expect(tokenizerSource("./org/tiny", env)).toEqual({ kind: "file", path: "./org/tiny/tokenizer.json" });
    expect(hubTokenizerFile("org/tiny", { HF_HOME: join(dir, "elsewhere") })).toBeUndefined();
  });

  it("the files a tokenizer parameter makes a stage read (for the cache key)", () => {
    expect(tokenizerFiles("bytes")).toEqual([]);
    expect(tokenizerFiles("tok")).toEqual(["tok/tokenizer.json"]);
    expect(tokenizerFiles("a/b.json")).toEqual(["a/b.json"]);
    expect(tokenizerFiles(undefined)).toEqual([]);
    expect(filterImpls["length"]!.files!({ field: "x", unit: "tokens", tokenizer: "tok", max: 3 })).toEqual(["tok/tokenizer.json"]);
    expect(filterImpls["length"]!.files!({ field: "x", unit: "words", max: 3 })).toEqual([]);
    expect(transformImpls["split_conversations"]!.files!({ tokenizer: "tok", max_tokens: 10 })).toEqual(["tok/tokenizer.json"]);
  });
});

describe("length in tokens", () => {
  const data = [{ output: "hello" }, { output: "hello world!" }, { output: "held held" }, { output: "hello é" }];

  it("counts the field's own tokens (no BOS) and drops through ctx.drop", async () => {
    // Tokens: 1, 7, 6, 3.
    const r = await runImpl(filterImpls["length"]!, { field: "output", unit: "tokens", tokenizer: "tok", min: 2, max: 6 }, { data }, dir);
    expect(r.records).toEqual([data[2], data[3]]);
    expect(r.counts).toEqual({ kept: 2, "dropped: too short": 1, "dropped: too long": 1 });
    expect(r.dropped).toEqual([
      { reason: "too short", record: data[0] },
      { reason: "too long", record: data[1] },
    ]);
  });

  it("with the byte-level fallback", async () => {
    // Bytes: 5, 12, 9, 8.
    const r = await runImpl(filterImpls["length"]!, { field: "output", unit: "tokens", tokenizer: "bytes", max: 8 }, { data }, dir);
    expect(r.records).toEqual([data[0], data[3]]);
  });

  it("a missing tokenizer is a user error before any record is read", async () => {
    await expect(runImpl(filterImpls["length"]!, { field: "output", unit: "tokens", tokenizer: "missing", max: 3 }, { data }, dir)).rejects.toThrow(/tokenizer "missing": cannot read missing\/tokenizer.json/);
  });
});

describe("split_conversations (FastChat's split_long_conversation)", () => {
  const u = (content: string): SplitMessage => ({ role: "user", content });
  const a = (content: string): SplitMessage => ({ role: "assistant", content });
  // With the llama-like tokenizer, "hello" costs 1 + BOS + 6 = 8 and an exchange of two "hello"s 16.
  const count = (s: string) => llama.count(s, true);
  const opts = { maxTokens: 32, messageOverhead: 6, longExchanges: "drop" as const };
  const h = "hello";

  it("packs whole exchanges greedily; ids are {id}_{index of the first message}", async () => {
    const chat = { id: "c1", source: "sharegpt", messages: [u(h), a(h), u(h), a(h), u(h), a(h)] };
    const r = await runImpl(transformImpls["split_conversations"]!, { tokenizer: "tok", max_tokens: 32 }, { data: [chat] }, dir);
    expect(r.records).toEqual([
      { id: "c1_0", source: "sharegpt", messages: [u(h), a(h), u(h), a(h)] },
      { id: "c1_4", source: "sharegpt", messages: [u(h), a(h)] },
    ]);
    expect(r.counts).toEqual({ kept: 2, "chats split": 1 });
  });

  it("a chat within the budget is one block (FastChat's id suffix _0); a trailing unanswered user turn is dropped", async () => {
    const chat = { id: 7, messages: [u(h), a(h), u(h)] };
    const r = await runImpl(transformImpls["split_conversations"]!, { tokenizer: "tok", max_tokens: 32 }, { data: [chat] }, dir);
    expect(r.records).toEqual([{ id: "7_0", messages: [u(h), a(h)] }]);
  });

  it("an exchange over the budget on its own is dropped (open-instruct) or kept alone (FastChat)", async () => {
    const long = Array(30).fill(h).join(" "); // 30 + 1 + 6 = 37 with its overhead
    const chat = { id: "x", messages: [u(h), a(h), u(long), a(h), u(h), a(h)] };
    const dropped = await runImpl(transformImpls["split_conversations"]!, { tokenizer: "tok", max_tokens: 32 }, { data: [chat] }, dir);
    expect(dropped.records.map((r) => r["id"])).toEqual(["x_0", "x_4"]);
    expect(dropped.dropped).toEqual([{ reason: "exchange over max_tokens", record: { id: "x", messages: [u(long), a(h)] } }]);
    const kept = await runImpl(transformImpls["split_conversations"]!, { tokenizer: "tok", max_tokens: 32, long_exchanges: "keep" }, { data: [chat] }, dir);
    expect(kept.records.map((r) => [r["id"], (r["messages"] as SplitMessage[]).length])).toEqual([
      ["x_0", 2],
      ["x_2", 2],
      ["x_4", 2],
    ]);
  });

  it("a system message heads every block and counts in each budget", () => {
    const sys: SplitMessage = { role: "system", content: h };
    const res = splitChat([sys, u(h), a(h), u(h), a(h), u(h), a(h)], count, { ...opts, maxTokens: 40 });
    expect(res).toEqual({
      blocks: [
        { start: 0, messages: [sys, u(h), a(h), u(h), a(h)] },
        { start: 4, messages: [sys, u(h), a(h)] },
      ],
      dropped: [],
    });
  });

  it("drops chats whose roles do not alternate, and chats without an exchange", async () => {
    const bad = { messages: [u(h), u(h), a(h)] };
    const lonely = { messages: [u(h)] };
    const late = { messages: [u(h), a(h), { role: "system", content: h }] };
    const r = await runImpl(transformImpls["split_conversations"]!, { tokenizer: "tok", max_tokens: 32 }, { data: [bad, lonely, late] }, dir);
    expect(r.records).toEqual([]);
    expect(r.dropped.map((d) => d.reason)).toEqual(["roles do not alternate user/assistant", "no complete exchange", "roles do not alternate user/assistant"]);
    await expect(runImpl(transformImpls["split_conversations"]!, { tokenizer: "tok" }, { data: [{ text: "x" }] }, dir)).rejects.toThrow(/record 1: field `messages` is not a list/);
  });

  /** open-instruct's split_one_sample, line for line, over message costs: the [start, end) of each non-empty block. */
  function openInstruct(costs: number[], max: number): { blocks: [number, number][]; lostLast: boolean } {
    const out: [number, number][] = [];
    let start = 0;
    let cur = 0;
    let lostLast = false;
    for (let i = 0; i < costs.length; i += 2) {
      const tmp = costs[i]! + costs[i + 1]!;
      if (cur + tmp > max) {
        out.push([start, i]);
        start = tmp > max ? i + 2 : i;
        cur = 0;
        if (i === costs.length - 2 && tmp <= max) lostLast = true;
      } else if (i === costs.length - 2) out.push([start, i + 2]);
      cur += tmp;
    }
    return { blocks: out.filter(([s, e]) => e > s), lostLast };
  }

  it("agrees with open-instruct's loop on random chats, but keeps the final exchange its loop loses", () => {
    const rand = rng(7);
    const words = ["hello", "hell", "held", "world", "!", "é"];
    let lost = 0;
    for (let n = 0; n < 300; n++) {
      const msgs: SplitMessage[] = [];
      const pairs = 1 + Math.floor(rand() * 6);
      for (let p = 0; p < 2 * pairs; p++) {
        const len = 1 + Math.floor(rand() * (rand() < 0.1 ? 40 : 8));
        msgs.push({ role: p % 2 === 0 ? "user" : "assistant", content: Array.from({ length: len }, () => words[Math.floor(rand() * words.length)]).join(" ") });
      }
      const max = 20 + Math.floor(rand() * 40);
      const ours = splitChat(msgs, count, { maxTokens: max, messageOverhead: 6, longExchanges: "drop" });
      if ("problem" in ours) throw new Error(ours.problem);
      const theirs = openInstruct(
        msgs.map((m) => count(m.content) + 6),
        max,
      );
      const expected = theirs.lostLast ? [...theirs.blocks, [msgs.length - 2, msgs.length] as [number, number]] : theirs.blocks;
      if (theirs.lostLast) lost++;
      expect(ours.blocks.map((b) => [b.start, b.start + b.messages.length])).toEqual(expected);
    }
    expect(lost).toBeGreaterThan(0); // the case the comparison is about did occur
  });
});
