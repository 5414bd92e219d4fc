#!/usr/bin/env node
// Writes pipelines/models/tiny-llama/: the tiny example model of the tests, docs and quickstart. No weights: the
// trainer initializes a config-only directory at random from its seed.
//
//   node scripts/tiny-llama.mjs [OUT_DIR]
//
// - tokenizer.json: a byte-level BPE (GPT-2's byte alphabet and pre-tokenizer regex, as Hugging Face `tokenizers`
//   writes one), 512 tokens: 5 special tokens, the 256 bytes, 251 merges learned here from the quickstart data
//   rendered as chats. Deterministic: ties between pairs are broken by the pair's text. A BOS is added by the
//   post-processor, as Llama 3's tokenizer does.
// - tokenizer_config.json: the special tokens and Tulu's chat template (open-instruct's "tulu" template).
// - config.json: a small LlamaForCausalLM (hidden 64, 2 layers, 4 heads, 2 KV heads, vocabulary 512).
// - generation_config.json: BOS, EOS and PAD ids.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const out = resolve(process.argv[2] ?? join(root, "pipelines/models/tiny-llama"));

const SPECIALS = ["<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"];
const VOCAB_SIZE = 512;

// GPT-2's map from bytes to printable characters (bytes_to_unicode), which byte-level BPE vocabularies are written in.
function bytesToUnicode() {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const map = new Array(256);
  bs.forEach((b, i) => (map[b] = String.fromCodePoint(cs[i])));
  return map;
}
const BYTE_CHAR = bytesToUnicode();

// The ByteLevel pre-tokenizer's regex (use_regex: true).
const SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** The training text: the quickstart records rendered as Tulu and ChatML chats, special tokens left out. */
function corpus() {
  const texts = [];
  for (const f of ["alpaca_sample.jsonl", "dolly_sample.jsonl", "heldout.jsonl"]) {
    for (const line of readFileSync(join(root, "pipelines/data/quickstart", f), "utf8").split("\n")) {
      if (!line.trim()) continue;
      const r = JSON.parse(line);
      const user = [r.instruction, r.input ?? r.context].filter((x) => typeof x === "string" && x !== "").join("\n\n");
      const answer = r.output ?? r.response ?? "";
      texts.push(`<|system|>\nYou are a helpful assistant.\n<|user|>\n${user}\n<|assistant|>\n${answer}`);
      texts.push(`system\nYou are a helpful assistant.\nuser\n${user}\nassistant\n${answer}\n`);
    }
  }
  return texts;
}

function train() {
  const words = new Map();
  for (const text of corpus()) {
    for (const piece of text.match(SPLIT) ?? []) {
      const w = Array.from(Buffer.from(piece, "utf8"), (b) => BYTE_CHAR[b]).join("\u0000");
      words.set(w, (words.get(w) ?? 0) + 1);
    }
  }
  let entries = [...words].map(([w, n]) => ({ syms: w.split("\u0000"), n }));
  const merges = [];
  const target = VOCAB_SIZE - SPECIALS.length - 256;
  while (merges.length < target) {
    const pairs = new Map();
    for (const { syms, n } of entries) for (let i = 0; i + 1 < syms.length; i++) {
      const k = `${syms[i]} ${syms[i + 1]}`;
      pairs.set(k, (pairs.get(k) ?? 0) + n);
    }
    let best;
    let bestN = 0;
    for (const [k, n] of pairs) if (n > bestN || (n === bestN && k < best)) [best, bestN] = [k, n];
    if (!best) throw new Error(`the corpus yields only ${merges.length} merges`);
    merges.push(best);
    const [a, b] = best.split(" ");
    entries = entries.map(({ syms, n }) => {
      const next = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(syms[i]);
      }
      return { syms: next, n };
    });
  }
  return merges;
}

const merges = train();
const vocab = {};
SPECIALS.forEach((t, i) => (vocab[t] = i));
for (let b = 0; b < 256; b++) vocab[BYTE_CHAR[b]] = SPECIALS.length + b;
for (const m of merges) {
  const t = m.replace(" ", "");
  if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
}
if (Object.keys(vocab).length > VOCAB_SIZE) throw new Error("vocabulary too large");
const [BOS, EOS, PAD] = [0, 1, 2];

const tokenizer = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
  normalizer: null,
  pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: { "<s>": { id: "<s>", ids: [BOS], tokens: ["<s>"] } },
  },
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: {
    type: "BPE",
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    vocab,
    merges,
  },
};

// open-instruct's "tulu" chat template: the format of chat_template(name: "tulu") without its stripping.
const TULU_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>\\n' + message['content'] + '\\n' }}{% elif message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + '\\n' }}{% elif message['role'] == 'assistant' %}{% if not loop.last %}{{ '<|assistant|>\\n'  + message['content'] + eos_token + '\\n' }}{% else %}{{ '<|assistant|>\\n'  + message['content'] + eos_token }}{% endif %}{% endif %}{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}{% endfor %}";

const tokenizerConfig = {
  add_bos_token: true,
  add_eos_token: false,
  added_tokens_decoder: Object.fromEntries(SPECIALS.map((content, id) => [String(id), { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true }])),
  bos_token: "<s>",
  eos_token: "</s>",
  pad_token: "<pad>",
  chat_template: TULU_TEMPLATE,
  clean_up_tokenization_spaces: false,
  model_max_length: 512,
  tokenizer_class: "PreTrainedTokenizerFast",
};

const config = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: VOCAB_SIZE,
  hidden_size: 64,
  intermediate_size: 176,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  hidden_act: "silu",
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  rope_scaling: null,
  attention_bias: false,
  attention_dropout: 0.0,
  mlp_bias: false,
  tie_word_embeddings: false,
  initializer_range: 0.02,
  bos_token_id: BOS,
  eos_token_id: EOS,
  pad_token_id: PAD,
  torch_dtype: "float32",
  use_cache: true,
};

const generationConfig = { bos_token_id: BOS, eos_token_id: EOS, pad_token_id: PAD };

const json = (v) => JSON.stringify(v, null, 2) + "\n";
const tmp = `${out}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
writeFileSync(join(tmp, "tokenizer.json"), json(tokenizer));
writeFileSync(join(tmp, "tokenizer_config.json"), json(tokenizerConfig));
writeFileSync(join(tmp, "config.json"), json(config));
writeFileSync(join(tmp, "generation_config.json"), json(generationConfig));
rmSync(out, { recursive: true, force: true });
mkdirSync(dirname(out), { recursive: true });
renameSync(tmp, out);
process.stdout.write(`wrote ${out}: ${Object.keys(vocab).length} tokens, ${merges.length} merges\n`);
