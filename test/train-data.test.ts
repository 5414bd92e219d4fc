import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { sha256 } from "../src/core/digest.js";
import { UserError } from "../src/core/errors.js";
import type { RecordValue } from "../src/core/records.js";
import type { KeyedArtifacts } from "../src/core/stage.js";
import { keyedArtifacts } from "../src/runtime/keyed-artifacts.js";
import { Store } from "../src/runtime/store.js";
import type { Template } from "../src/stages/support/chat-formats.js";
import { readHfChatTemplate, type HfChatTemplate } from "../src/stages/support/hf-chat-template.js";
import { tokenizeExample } from "../src/stages/train/label-mask.js";
import { prepareTokens, trainTemplate, type PrepareTokensOptions } from "../src/stages/train/prepare-tokens.js";
import { renderExample, renderPreference, type TrainTemplate } from "../src/stages/train/render-spans.js";
import { formatTokenSummary, storedTokenSummary, tokenSummary } from "../src/stages/train/token-summary.js";
import { loadTrainTokenizer, type TrainTokenizer } from "../src/stages/train/train-tokenizer.js";
import { repoRoot } from "./support/cli.js";

const TINY = join(repoRoot, "pipelines/models/tiny-llama");
let tok: TrainTokenizer;
beforeAll(async () => {
  tok = await loadTrainTokenizer(TINY, "test");
});

const special = () => ({ bos: tok.bosText, eos: tok.eosText });

const chat: RecordValue = {
  messages: [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Name a colour." },
    { role: "assistant", content: "Blue." },
    { role: "user", content: "Another one?" },
    { role: "assistant", content: "Green, of course." },
  ],
};

/**
 * The expected tokens of a text given as segments (text, carries loss): each segment tokenized on its own. The
 * segments are cut where the tokenizer itself cuts (at special tokens and newlines), which the test checks: their
 * tokens put together are the tokens of the whole text.
 */
function expected(segments: [string, boolean][]): { ids: number[]; loss: number[] } {
  const ids = [...tok.prefix];
  const loss = tok.prefix.map(() => 0);
  for (const [text, l] of segments) {
    const t = tok.encode(text);
    ids.push(...t);
    loss.push(...t.map(() => (l ? 1 : 0)));
  }
  expect([...tok.prefix, ...tok.encode(segments.map((s) => s[0]).join(""))]).toEqual(ids);
  return { ids, loss };
}

/** Token by token: each token's text with its label state, so a failure shows exactly which token is wrong. */
function tokenView(ids: ArrayLike<number>, loss: ArrayLike<number>): string[] {
  return Array.from(ids, (id, i) => `${loss[i] ? "LOSS" : "mask"} ${JSON.stringify(tok.decode([id]))}`);
}

function maskOf(t: TrainTemplate, r: RecordValue, lossOn: "assistant" | "all" = "assistant") {
  const ex = tokenizeExample(tok, renderExample(t, r, lossOn, special()));
  return tokenView(ex.ids, ex.loss);
}

const tuluSegments: [string, boolean][] = [
  ["<|system|>\nYou are terse.\n<|user|>\nName a colour.\n<|assistant|>\n", false],
  ["Blue.</s>", true],
  ["\n<|user|>\nAnother one?\n<|assistant|>\n", false],
  ["Green, of course.</s>", true],
];

const chatmlSegments: [string, boolean][] = [
  ["<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n", false],
  ["Blue.<|im_end|>\n", true],
  ["<|im_start|>user\nAnother one?<|im_end|>\n<|im_start|>assistant\n", false],
  ["Green, of course.<|im_end|>\n", true],
];

const CHATML_JINJA =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

function hfTemplate(jinja: string): HfChatTemplate {
  return readHfChatTemplate(JSON.stringify({ chat_template: jinja, bos_token: "<s>", eos_token: "</s>" }), "tokenizer_config.json");
}

describe("label masks, token by token", () => {
  it("Tulu (built-in format): every assistant turn and its EOS carry loss; headers, user and system turns do not", () => {
    const want = expected(tuluSegments);
    const got = maskOf({ format: "tulu" }, chat);
    expect(got).toEqual(tokenView(want.ids, want.loss));
    // The boundaries, spelled out: the header through its newline is masked, the answer is not, EOS carries
    // loss, the newline after it does not.
    const i = got.indexOf('LOSS "B"');
    expect(got.slice(i - 4, i + 1)).toEqual(['mask "<|"', 'mask "assistant"', 'mask "|>"', 'mask "\\n"', 'LOSS "B"']);
    const eos = got.indexOf('LOSS "</s>"');
    expect(got.slice(eos - 1, eos + 3)).toEqual(['LOSS "."', 'LOSS "</s>"', 'mask "\\n"', 'mask "<|"']);
    expect(got[0]).toBe('mask "<s>"');
    expect(got[got.length - 1]).toBe('LOSS "</s>"');
  });

  it("Tulu (the model's own Jinja template, tokenizer_config.json of tiny-llama): the same tokens and mask", async () => {
    const t = await trainTemplate(undefined, TINY, "test");
    expect("jinja" in t).toBe(true);
    const want = expected(tuluSegments);
    expect(maskOf(t, chat)).toEqual(tokenView(want.ids, want.loss));
  });

  it("ChatML (built-in format and the usual Jinja template): answer, <|im_end|> and its newline carry loss", () => {
    const want = tokenView(expected(chatmlSegments).ids, expected(chatmlSegments).loss);
    const got = maskOf({ format: "chatml" }, chat);
    expect(got).toEqual(want);
    expect(maskOf(hfTemplate(CHATML_JINJA), chat)).toEqual(want);
    const i = got.indexOf('LOSS "B"');
    expect(got.slice(i - 2, i + 6)).toEqual(['mask "assistant"', 'mask "\\n"', 'LOSS "B"', 'LOSS "lue"', 'LOSS "."', 'LOSS "<|im_end|>"', 'LOSS "\\n"', 'mask "<|im_start|>"']);
  });

  it("a token holding text of both sides of a boundary carries the loss", async () => {
    // tiny-llama with one more merge, "\n\n": after the ChatML header "assistant\n", an answer starting "\n\n"
    // makes a token "\n\n" of the header's newline and the answer's first.
    const dir = mkdtempSync(join(tmpdir(), "itp-tok-"));
    const json = JSON.parse(readFileSync(join(TINY, "tokenizer.json"), "utf8"));
    json.model.vocab["\u010a\u010a"] = 512;
    json.model.merges.push("\u010a \u010a");
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
    writeFileSync(join(dir, "tokenizer_config.json"), readFileSync(join(TINY, "tokenizer_config.json")));
    const t2 = await loadTrainTokenizer(dir, "test");
    const r = { messages: [{ role: "user", content: "Q" }, { role: "assistant", content: "\n\nHi" }] };
    const ex = tokenizeExample(t2, renderExample({ format: "chatml" }, r, "assistant", special()));
    const text = (from: number, to: number) => t2.decode(Array.from(ex.ids.subarray(from, to)));
    const first = ex.loss.indexOf(1);
    expect(text(first, first + 1)).toBe("\n\n"); // the straddling token
    expect(text(0, first)).toBe("<s><|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant");
    expect(text(first, ex.ids.length)).toBe("\n\n\nHi<|im_end|>\n");
    expect(Array.from(ex.loss.subarray(first))).toEqual(Array.from(ex.loss.subarray(first), () => 1));
  });

  it('loss_on = "all": every token but the BOS; text records too, with EOS appended', () => {
    const all = maskOf({ format: "tulu" }, chat, "all");
    expect(all[0]).toBe('mask "<s>"');
    expect(all.slice(1).every((t) => t.startsWith("LOSS"))).toBe(true);
    const ex = tokenizeExample(tok, renderExample({ format: "tulu" }, { text: "Plain text." }, "assistant", special()));
    expect(tok.decode(Array.from(ex.ids))).toBe("<s>Plain text.</s>");
    expect(Array.from(ex.loss)).toEqual(Array.from(ex.ids, (_, i) => (i === 0 ? 0 : 1)));
  });

  it("instructions are one-turn chats; Alpaca keeps its own prompt with the Input section; prompt templates mask the prompt", () => {
    const ins = { instruction: "Add.", input: "2 and 3", output: "5" };
    const tulu = tokenizeExample(tok, renderExample({ format: "tulu" }, ins, "assistant", special()));
    expect(tok.decode(Array.from(tulu.ids.filter((_, i) => tulu.loss[i])))).toBe("5</s>");
    expect(tok.decode(Array.from(tulu.ids))).toBe("<s><|user|>\nAdd.\n\n2 and 3\n<|assistant|>\n5</s>");
    const alpaca = tokenizeExample(tok, renderExample({ format: "alpaca" }, ins, "assistant", special()));
    const text = tok.decode(Array.from(alpaca.ids));
    // Stanford Alpaca's train.py: the output right after "### Response:"; alpaca-lora's variant puts a newline there.
    expect(text).toContain("### Input:\n2 and 3\n\n### Response:5</s>");
    expect(tok.decode(Array.from(alpaca.ids.filter((_, i) => alpaca.loss[i])))).toBe("5</s>");
    const lora = tokenizeExample(tok, renderExample({ format: "alpaca_lora" }, ins, "assistant", special()));
    expect(tok.decode(Array.from(lora.ids))).toContain("### Input:\n2 and 3\n\n### Response:\n5</s>");
    expect(tok.decode(Array.from(lora.ids.filter((_, i) => lora.loss[i])))).toBe("5</s>");
    const pt: Template = { text: "Q: {instruction} ({input})\nA:", response: " {output}", eos: true };
    const p = tokenizeExample(tok, renderExample(pt, ins, "assistant", special()));
    expect(tok.decode(Array.from(p.ids.filter((_, i) => p.loss[i])))).toBe(" 5</s>");
  });

  it("preferences: the same prompt with each answer; only the final answer carries loss", () => {
    const pair = renderPreference({ format: "tulu" }, { prompt: "Pick one.", chosen: "Red.", rejected: "No." }, special());
    const c = tokenizeExample(tok, pair.chosen);
    const r = tokenizeExample(tok, pair.rejected);
    expect(tok.decode(Array.from(c.ids))).toBe("<s><|user|>\nPick one.\n<|assistant|>\nRed.</s>");
    expect(tok.decode(Array.from(c.ids.filter((_, i) => c.loss[i])))).toBe("Red.</s>");
    expect(tok.decode(Array.from(r.ids.filter((_, i) => r.loss[i])))).toBe("No.</s>");
    // A PreferencePair with a multi-turn history: earlier assistant turns are prompt, masked.
    const history = [
      { role: "user", content: "Hi." },
      { role: "assistant", content: "Hello." },
      { role: "user", content: "Pick one." },
    ];
    const pp = renderPreference(
      { format: "chatml" },
      { prompt: "Pick one.", chosen: [...history, { role: "assistant", content: "Red." }], rejected: [...history, { role: "assistant", content: "No." }] },
      special(),
    );
    const pc = tokenizeExample(tok, pp.chosen);
    expect(tok.decode(Array.from(pc.ids.filter((_, i) => pc.loss[i])))).toBe("Red.<|im_end|>\n");
  });
});

// ---- the artifact ----

function dataOf(records: RecordValue[]): PrepareTokensOptions["data"] {
  return {
    stage: "data",
    digest: sha256(JSON.stringify(records)),
    records: records.length,
    async *read() {
      for (const r of records) yield r;
    },
  };
}

/** An independent reader of the artifact: header parsed by hand, every tensor as a plain array. */
function readArtifact(path: string) {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  type Entry = { dtype: string; shape: number[]; data_offsets: [number, number] };
  const raw = JSON.parse(buf.toString("utf8", 8, 8 + n)) as Record<string, unknown>;
  const metadata = raw["__metadata__"] as Record<string, string>;
  const header = new Map(Object.entries(raw).filter(([k]) => k !== "__metadata__") as [string, Entry][]);
  const start = 8 + n;
  expect(start % 8).toBe(0);
  const spans = [...header.values()].map((v) => v.data_offsets).sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [b, e] of spans) {
    expect(b).toBe(at); // contiguous, no holes
    at = e;
  }
  expect(start + at).toBe(buf.length);
  const i32 = (name: string) => {
    const t = header.get(name)!;
    expect(t.dtype).toBe("I32");
    const out: number[] = [];
    for (let o = t.data_offsets[0]; o < t.data_offsets[1]; o += 4) out.push(buf.readInt32LE(start + o));
    expect(out.length).toBe(t.shape[0]);
    return out;
  };
  const ro = header.get("row_offsets")!;
  expect(ro.dtype).toBe("I64");
  const offsets: number[] = [];
  for (let o = ro.data_offsets[0]; o < ro.data_offsets[1]; o += 8) offsets.push(Number(buf.readBigInt64LE(start + o)));
  return { metadata, input_ids: i32("input_ids"), labels: i32("labels"), position_ids: i32("position_ids"), row_offsets: offsets };
}

/** A fresh store, as a training stage sees it (the keyed artifacts of core/stage.ts). */
async function tmpStore(): Promise<KeyedArtifacts> {
  return keyedArtifacts(await Store.open(mkdtempSync(join(tmpdir(), "itp-tokens-"))));
}

const chats = (n: number): RecordValue[] =>
  Array.from({ length: n }, (_, i) => ({
    messages: [
      { role: "user", content: `Question number ${i}: what is ${i} plus ${i}?` },
      { role: "assistant", content: `It is ${2 * i}.` },
      ...(i % 3 === 0 ? [{ role: "user", content: "Sure?" }, { role: "assistant", content: "Yes, sure." }] : []),
    ],
  }));

describe("token artifact", () => {
  it("one row per example: the tensors, the metadata and the stats agree with the examples tokenized one by one", async () => {
    const store = await tmpStore();
    const records = chats(7);
    const p = await prepareTokens({ store, data: dataOf(records), kind: "sft", template: { format: "tulu" }, tokenizer: TINY, maxLength: 512, stage: "sft" });
    expect(p.reused).toBe(false);
    const a = readArtifact(p.path);
    expect(a.metadata).toEqual({ kind: "sft", max_length: "512", packing: "false", examples: "7" });
    expect(a.row_offsets.length).toBe(8);
    let lossTokens = 0;
    records.forEach((r, i) => {
      const ex = tokenizeExample(tok, renderExample({ format: "tulu" }, r, "assistant", special()));
      const [b, e] = [a.row_offsets[i]!, a.row_offsets[i + 1]!];
      expect(a.input_ids.slice(b, e)).toEqual(Array.from(ex.ids));
      expect(a.labels.slice(b, e)).toEqual(Array.from(ex.ids, (id, k) => (ex.loss[k] ? id : -100)));
      expect(a.position_ids.slice(b, e)).toEqual(Array.from(ex.ids, (_, k) => k));
      lossTokens += ex.loss.reduce((x, y) => x + y, 0);
    });
    expect(p.stats).toEqual({ examples: 7, rows: 7, tokens: a.input_ids.length, loss_tokens: lossTokens, truncated: 0, no_loss: 0 });
  });

  it("the trainer's reader (itp_trainer.data.TokenData) takes it: rows, examples, tokens and trained targets agree", async () => {
    const store = await tmpStore();
    const sft = await prepareTokens({ store, data: dataOf(chats(12)), kind: "sft", template: { format: "chatml" }, tokenizer: TINY, maxLength: 64, packing: true, stage: "sft" });
    const dpo = await prepareTokens({ store, data: dataOf([{ prompt: "A?", chosen: "Yes.", rejected: "No." }, { prompt: "B?", chosen: "Two.", rejected: "Three." }]), kind: "preference", template: { format: "tulu" }, tokenizer: TINY, maxLength: 64, stage: "dpo" });
    const py = `
import json, sys
from itp_trainer.data import TokenData
out = []
for path, kind in ((sys.argv[1], "sft"), (sys.argv[2], "preference")):
    d = TokenData(path, kind)
    out.append({"rows": d.rows, "units": d.units, "tokens": int(d.input_ids.numel()), "targets": int((d.targets != -100).sum()), "meta": d.meta})
print(json.dumps(out))
`;
    const trainer = join(repoRoot, "src/trainer");
    const r = spawnSync(process.env["ITP_PYTHON"] ?? "/usr/bin/python3", ["-c", py, sft.path, dpo.path], { encoding: "utf8", env: { ...process.env, PYTHONPATH: trainer, PYTHONDONTWRITEBYTECODE: "1" } });
    expect(r.status, r.stderr).toBe(0);
    // Every loss token is a target: none sits where an example starts (that is the BOS, masked).
    expect(JSON.parse(r.stdout)).toEqual([
      { rows: sft.stats.rows, units: sft.stats.rows, tokens: sft.stats.tokens, targets: sft.stats.loss_tokens, meta: { kind: "sft", max_length: "64", packing: "true", examples: "12" } },
      { rows: 4, units: 2, tokens: dpo.stats.tokens, targets: dpo.stats.loss_tokens, meta: { kind: "preference", max_length: "64", packing: "false", examples: "2" } },
    ]);
  });

  it("truncation cuts examples to max_length and counts them; an example with no loss token left is left out and counted", async () => {
    const store = await tmpStore();
    const records: RecordValue[] = [
      { messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello there, this answer is rather long for the row." }] },
      { messages: [{ role: "user", content: "a very long question that fills every token of the row and more" }, { role: "assistant", content: "x" }] },
      { messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Ok" }] },
    ];
    const p = await prepareTokens({ store, data: dataOf(records), kind: "sft", template: { format: "tulu" }, tokenizer: TINY, maxLength: 16, stage: "sft" });
    const a = readArtifact(p.path);
    expect(p.stats.examples).toBe(2);
    expect(p.stats.truncated).toBe(1);
    expect(p.stats.no_loss).toBe(1);
    expect(a.row_offsets).toEqual([0, 16, 16 + tokenizeExample(tok, renderExample({ format: "tulu" }, records[2]!, "assistant", special())).ids.length]);
    const first = tokenizeExample(tok, renderExample({ format: "tulu" }, records[0]!, "assistant", special()));
    expect(first.ids.length).toBeGreaterThan(16);
    expect(a.input_ids.slice(0, 16)).toEqual(Array.from(first.ids.subarray(0, 16)));
  });

  it("packing: whole examples in data order, rows of at most max_length, positions restarting at each example", async () => {
    const store = await tmpStore();
    const records = chats(20);
    const maxLength = 128;
    const p = await prepareTokens({ store, data: dataOf(records), kind: "sft", template: { format: "tulu" }, tokenizer: TINY, maxLength, packing: true, stage: "sft" });
    const a = readArtifact(p.path);
    expect(a.metadata["packing"]).toBe("true");
    const examples = records.map((r) => tokenizeExample(tok, renderExample({ format: "tulu" }, r, "assistant", special())));
    expect(a.input_ids).toEqual(examples.flatMap((e) => Array.from(e.ids)));
    // Rows: greedy in order; each at most max_length; a row never ends inside an example.
    const starts = new Set<number>();
    let at = 0;
    for (const e of examples) {
      starts.add(at);
      at += e.ids.length;
    }
    expect(p.stats.rows).toBeLessThan(records.length);
    for (let r = 0; r + 1 < a.row_offsets.length; r++) {
      const [b, e] = [a.row_offsets[r]!, a.row_offsets[r + 1]!];
      expect(e - b).toBeLessThanOrEqual(maxLength);
      expect(starts.has(b)).toBe(true);
      expect(a.position_ids[b]).toBe(0);
    }
    // position 0 exactly where an example starts
    a.position_ids.forEach((pos, i) => expect(pos === 0).toBe(starts.has(i)));
    // The next example would not have fit in the row before it.
    for (let r = 0; r + 2 < a.row_offsets.length; r++) {
      const nextLen = examples[[...starts].indexOf(a.row_offsets[r + 1]!)]!.ids.length;
      expect(a.row_offsets[r + 1]! - a.row_offsets[r]! + nextLen).toBeGreaterThan(maxLength);
    }
  });

  it("preference data: rows in pairs (chosen, rejected), the prompt masked", async () => {
    const store = await tmpStore();
    const records: RecordValue[] = [
      { prompt: "Best colour?", chosen: "Blue.", rejected: "I refuse." },
      { prompt: "2+2?", chosen: "4", rejected: "5" },
    ];
    const p = await prepareTokens({ store, data: dataOf(records), kind: "preference", template: { format: "tulu" }, tokenizer: TINY, maxLength: 128, stage: "dpo" });
    const a = readArtifact(p.path);
    expect(a.metadata).toEqual({ kind: "preference", max_length: "128", packing: "false", examples: "2" });
    expect(a.row_offsets.length).toBe(5);
    const rowText = (r: number, lossOnly: boolean) => {
      const [b, e] = [a.row_offsets[r]!, a.row_offsets[r + 1]!];
      return tok.decode(a.input_ids.slice(b, e).filter((_, k) => !lossOnly || a.labels[b + k] !== -100));
    };
    expect(rowText(0, false)).toBe("<s><|user|>\nBest colour?\n<|assistant|>\nBlue.</s>");
    expect(rowText(0, true)).toBe("Blue.</s>");
    expect(rowText(1, true)).toBe("I refuse.</s>");
    expect(rowText(2, true)).toBe("4</s>");
    expect(rowText(3, true)).toBe("5</s>");
    expect(p.stats.examples).toBe(2);
    expect(p.stats.rows).toBe(4);
  });

  it("the cache: the same data, template, tokenizer and shape reuse the artifact (as a change of lr does); each of them makes a new one", async () => {
    const store = await tmpStore();
    const base: PrepareTokensOptions = { store, data: dataOf(chats(5)), kind: "sft", template: { format: "tulu" }, tokenizer: TINY, maxLength: 128, stage: "sft" };
    const first = await prepareTokens(base);
    const again = await prepareTokens({ ...base, stage: "sft_lr_changed" });
    expect(again.reused).toBe(true);
    expect(again.path).toBe(first.path);
    expect(again.key).toBe(first.key);
    expect(again.stats).toEqual(first.stats);
    const keys = new Set([first.key]);
    for (const change of [{ maxLength: 64 }, { packing: true }, { lossOn: "all" as const }, { template: { format: "chatml" } as Template }, { data: dataOf(chats(6)) }]) {
      const p = await prepareTokens({ ...base, ...change });
      expect(p.reused).toBe(false);
      keys.add(p.key);
    }
    expect(keys.size).toBe(6);
    // Another tokenizer file (the same tokenizer.json with another chat template in its config) is another artifact.
    const dir = mkdtempSync(join(tmpdir(), "itp-tok-"));
    writeFileSync(join(dir, "tokenizer.json"), readFileSync(join(TINY, "tokenizer.json")));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ ...JSON.parse(readFileSync(join(TINY, "tokenizer_config.json"), "utf8")), eos_token: "<|im_end|>" }));
    const other = await prepareTokens({ ...base, tokenizer: dir });
    expect(other.reused).toBe(false);
    // A damaged artifact is set aside and made again, never used.
    writeFileSync(first.path, Buffer.alloc(10));
    const remade = await prepareTokens(base);
    expect(remade.reused).toBe(false);
    expect(readArtifact(remade.path).metadata["examples"]).toBe("5");
  });

  it("a built-in format whose text changed (same name) makes a new artifact: the key follows what the template renders", async () => {
    const store = await tmpStore();
    const instructions: RecordValue[] = [{ instruction: "Name a colour.", output: "Blue." }, { instruction: "Add.", input: "2 and 3", output: "5" }];
    const base: PrepareTokensOptions = { store, data: dataOf(instructions), kind: "sft", template: { format: "alpaca" }, tokenizer: TINY, maxLength: 128, stage: "sft" };
    const before = await prepareTokens(base);
    // The same code loaded again, with Alpaca's prompt worded otherwise (as an edit of chat-formats.ts would).
    vi.resetModules();
    vi.doMock("../src/stages/support/chat-formats.js", async (original) => {
      const m = await original<typeof import("../src/stages/support/chat-formats.js")>();
      return { ...m, alpacaPrompt: (...a: Parameters<typeof m.alpacaPrompt>) => m.alpacaPrompt(...a).replace("Below is an instruction", "Here is an instruction") };
    });
    try {
      const edited = await import("../src/stages/train/prepare-tokens.js");
      const after = await edited.prepareTokens(base);
      expect(after.reused).toBe(false);
      expect(after.key).not.toBe(before.key);
      expect(tok.decode(Array.from(readArtifact(after.path).input_ids))).toContain("Here is an instruction");
      // Unchanged formats keep their keys (and artifacts) under the edited code.
      const tulu = await prepareTokens({ ...base, template: { format: "tulu" } });
      expect((await edited.prepareTokens({ ...base, template: { format: "tulu" } })).key).toBe(tulu.key);
    } finally {
      vi.doUnmock("../src/stages/support/chat-formats.js");
      vi.resetModules();
    }
    expect((await prepareTokens(base)).key).toBe(before.key);
  });

  it("show: counts and the first row decoded, text without loss in brackets", async () => {
    const store = await tmpStore();
    const p = await prepareTokens({ store, data: dataOf([chat]), kind: "sft", template: { format: "tulu" }, tokenizer: TINY, maxLength: 512, stage: "sft" });
    const s = await tokenSummary(p.path, p.stats, p.tokenizer);
    const lines = formatTokenSummary(s, false);
    expect(lines[0]).toBe(`tokens    1 examples in 1 rows of at most 512 tokens (packing off), ${p.stats.tokens} tokens`);
    expect(lines[1]).toMatch(/^ {10}\d+\.\d% of tokens carry loss; 0 examples truncated to max_length$/);
    expect(lines.slice(2).join("\n")).toBe(
      [
        "sample    row 0; text without loss in [brackets]",
        "    [<s><|system|>",
        "    You are terse.",
        "    <|user|>",
        "    Name a colour.",
        "    <|assistant|>",
        "    ]Blue.</s>[",
        "    <|user|>",
        "    Another one?",
        "    <|assistant|>",
        "    ]Green, of course.</s>",
      ].join("\n"),
    );
    expect(formatTokenSummary(s, true).join("\n")).toContain("\x1b[2m<s><|system|>");
    // From the store by key alone (what a training stage's show has): the same summary.
    expect(await storedTokenSummary(store, p.key)).toEqual(s);
  });
});

describe("bad input is a clear user error", () => {
  async function prepErr(o: Partial<PrepareTokensOptions> & { records?: RecordValue[] }): Promise<UserError> {
    const store = await tmpStore();
    const err = await prepareTokens({ store, data: dataOf(o.records ?? chats(2)), kind: "sft", template: { format: "tulu" }, tokenizer: TINY, maxLength: 64, stage: "train.sft", ...o }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }

  it("a record without the field its kind needs names the record", async () => {
    const e = await prepErr({ records: [...chats(2), { prompt: "no messages here" }] });
    expect(e.message).toBe("train.sft: record 3: neither a chat (`messages`), an instruction (`instruction`) nor a text (`text`)");
    expect(e.hint).toContain("instruction_to_chat");
    const noOutput = await prepErr({ records: [{ instruction: "Do it." }] });
    expect(noOutput.message).toBe("train.sft: record 1: an instruction record without `output` has nothing to train on");
    const badMessage = await prepErr({ records: [{ messages: [{ role: "user" }] }] });
    expect(badMessage.message).toBe("train.sft: record 1: message 1 is not a {role, content} pair of strings");
    const pref = await prepErr({ kind: "preference", records: [{ prompt: "Hi", chosen: "Hello" }] });
    expect(pref.message).toBe("train.sft: record 1: a preference record needs both `chosen` and `rejected`; this one lacks `rejected`");
  });

  it("a tokenizer.json that does not parse, or is not a tokenizer, names the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "itp-badtok-"));
    writeFileSync(join(dir, "tokenizer.json"), '{"model": {"type": "BPE", ');
    const e = await prepErr({ tokenizer: dir });
    expect(e.message).toMatch(new RegExp(`^train\\.sft: ${join(dir, "tokenizer.json").replace(/[.]/g, "\\.")} is not valid JSON \\(`));
    writeFileSync(join(dir, "tokenizer.json"), '{"version": "1.0"}');
    expect((await prepErr({ tokenizer: dir })).message).toBe(`train.sft: ${join(dir, "tokenizer.json")} is not a Hugging Face tokenizer.json (it has no \`model\`)`);
    const missing = join(dir, "nowhere");
    expect((await prepErr({ tokenizer: missing })).message).toBe(`train.sft: the tokenizer ${missing} does not exist`);
    mkdirSync(join(dir, "empty"));
    expect((await prepErr({ tokenizer: join(dir, "empty") })).message).toMatch(/^train\.sft: cannot read .*empty\/tokenizer\.json \(ENOENT\)$/);
  });

  it("no examples left, and a template that cannot locate the answer, are reported", async () => {
    expect((await prepErr({ records: [] })).message).toBe("train.sft: no training example is left: the data is empty");
    const onlyUser = await prepErr({ records: [{ messages: [{ role: "user", content: "Hi" }] }] });
    expect(onlyUser.message).toBe("train.sft: no training example is left: all 1 records have no token that carries loss within max_length 64");
    // A template that renders the system prompt only when the conversation has an answer: prefixes differ.
    const odd = hfTemplate("{% if messages|length > 1 %}SYS {% endif %}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}");
    const e = await prepErr({ template: odd, records: [{ messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Yo" }] }] });
    expect(e.message).toContain("train.sft: record 1: the template does not render the conversation up to message 2 as the start of the whole conversation");
    expect(e.hint).toContain('loss_on = "all"');
  });
});
