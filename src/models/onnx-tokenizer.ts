import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { z } from "zod";
import { UserError } from "../core/errors.js";

/**
 * The tokenizer of a local model: text to ids and back, plus what generation needs to know (the ids that start a
 * sequence, the ids that end one). Two kinds:
 * - byte-level: ids 0-255 are the UTF-8 bytes, special tokens above, described by a small `byte_tokenizer.json`:
 *   `{"type": "bytes", "bos_token_id": 256, "eos_token_id": 257, "vocab_size": 258}` (bos optional; eos a number
 *   or a list of numbers);
 * - a Hugging Face `tokenizer.json` (with `tokenizer_config.json` beside it for the special tokens), run by
 *   @huggingface/tokenizers; EOS ids come from tokenizer_config.json's eos_token and generation_config.json.
 */
export interface LmTokenizer {
  /** The file it was loaded from, for messages. */
  readonly source: string;
  /** Ids that start every sequence (the BOS token, when the tokenizer adds one). */
  readonly prefix: readonly number[];
  /** Ids that end a generation. */
  readonly eos: readonly number[];
  /** One more than the largest id the tokenizer produces: the model's vocabulary must be at least this large. */
  readonly vocabSize: number;
  /** The ids of a text, without special tokens. */
  encode(text: string): number[];
  /** The text of ids, special tokens left out; incomplete UTF-8 at the end shows as U+FFFD. */
  decode(ids: readonly number[]): string;
}

export const BYTE_TOKENIZER_FILE = "byte_tokenizer.json";
export const HF_TOKENIZER_FILE = "tokenizer.json";

const tokenId = z.number().int().nonnegative();
const byteConfig = z
  .object({
    type: z.literal("bytes"),
    bos_token_id: tokenId.optional(),
    eos_token_id: z.union([tokenId, z.array(tokenId).min(1)]),
    vocab_size: z.number().int().min(256).optional(),
  })
  .strict();

/**
 * Loads the tokenizer at `path`: a file (byte_tokenizer.json or tokenizer.json) or a folder holding one
 * (tokenizer.json first). `extraDirs` are searched for generation_config.json too (the model's folder).
 */
export async function loadTokenizer(path: string, extraDirs: readonly string[] = []): Promise<LmTokenizer> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new UserError(`tokenizer ${path} does not exist`, `give the folder of ${HF_TOKENIZER_FILE} or ${BYTE_TOKENIZER_FILE}, or the file itself`);
  let file = path;
  if (info.isDirectory()) {
    const found = [];
    for (const name of [HF_TOKENIZER_FILE, BYTE_TOKENIZER_FILE]) if (await isFile(join(path, name))) found.push(join(path, name));
    if (found.length === 0) throw new UserError(`no tokenizer in ${path}: expected ${HF_TOKENIZER_FILE} or ${BYTE_TOKENIZER_FILE}`, byteHint);
    file = found[0]!;
  }
  const json = await readJson(file);
  if (typeof json === "object" && json !== null && (json as { type?: unknown }).type === "bytes") return byteTokenizer(file, json);
  if (typeof json === "object" && json !== null && "model" in json) return hfTokenizer(file, json, [dirname(file), ...extraDirs]);
  throw new UserError(`${file} is neither a Hugging Face tokenizer.json (no "model") nor a byte tokenizer config (no "type": "bytes")`, byteHint);
}

const byteHint = `a byte-level model needs ${BYTE_TOKENIZER_FILE} like {"type": "bytes", "bos_token_id": 256, "eos_token_id": 257, "vocab_size": 258}`;

function byteTokenizer(file: string, json: unknown): LmTokenizer {
  const parsed = byteConfig.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UserError(`${file}: ${issue.path.join(".") || "config"}: ${issue.message}`, byteHint);
  }
  const c = parsed.data;
  const eos = Array.isArray(c.eos_token_id) ? c.eos_token_id : [c.eos_token_id];
  const specials = [...eos, ...(c.bos_token_id !== undefined ? [c.bos_token_id] : [])];
  for (const id of specials) if (id < 256) throw new UserError(`${file}: special token id ${id} collides with a byte (ids 0-255 are bytes)`, byteHint);
  const vocabSize = c.vocab_size ?? Math.max(...specials) + 1;
  for (const id of specials) if (id >= vocabSize) throw new UserError(`${file}: special token id ${id} is not below vocab_size ${vocabSize}`, byteHint);
  return {
    source: file,
    prefix: c.bos_token_id !== undefined ? [c.bos_token_id] : [],
    eos,
    vocabSize,
    encode: (text) => Array.from(Buffer.from(text, "utf8")),
    decode: (ids) => Buffer.from(ids.filter((i) => i < 256)).toString("utf8"),
  };
}

async function hfTokenizer(file: string, json: object, dirs: readonly string[]): Promise<LmTokenizer> {
  const configFile = join(dirname(file), "tokenizer_config.json");
  const config = (await isFile(configFile)) ? await readJson(configFile) : {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config as object);
  } catch (e) {
    throw new UserError(`${file}: cannot build the tokenizer: ${(e as Error).message}`);
  }
  const encode = (text: string): number[] => tok.encode(text, { add_special_tokens: false }).ids;
  // What the post-processor puts before a text (BOS for Llama-style tokenizers, nothing for GPT-2): found by
  // encoding a probe with and without special tokens; anything it appends (an EOS, a SEP) is not for generation.
  const bare = encode("x");
  const full: number[] = tok.encode("x", { add_special_tokens: true }).ids;
  const at = full.findIndex((_, i) => bare.every((id, j) => full[i + j] === id));
  const prefix = at > 0 ? full.slice(0, at) : [];

  const eos = new Set<number>();
  const addId = (v: unknown) => {
    if (typeof v === "number" && Number.isInteger(v)) eos.add(v);
    else if (Array.isArray(v)) v.forEach(addId);
  };
  const eosToken = (config as { eos_token?: unknown }).eos_token;
  const eosText = typeof eosToken === "string" ? eosToken : (eosToken as { content?: unknown } | undefined)?.content;
  if (typeof eosText === "string") addId(tok.token_to_id(eosText));
  for (const dir of dirs) {
    const gen = join(dir, "generation_config.json");
    if (await isFile(gen)) addId((((await readJson(gen)) ?? {}) as { eos_token_id?: unknown }).eos_token_id);
  }
  if (eos.size === 0) {
    throw new UserError(
      `no end-of-sequence token for ${file}: tokenizer_config.json has no eos_token in the vocabulary and no generation_config.json gives eos_token_id`,
      `add "eos_token": "<its text>" to ${configFile}`,
    );
  }
  let vocabSize = 0;
  for (const id of tok.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);
  return {
    source: file,
    prefix,
    eos: [...eos],
    vocabSize,
    encode,
    // The library refuses an empty list; an answer that is only its end-of-sequence token is the empty text.
    decode: (ids) => (ids.length === 0 ? "" : tok.decode([...ids], { skip_special_tokens: true })),
  };
}

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() ?? false;
}

async function readJson(file: string): Promise<unknown> {
  const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`cannot read ${file} (${e.code ?? e.message})`);
  });
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${basename(file)} is not valid JSON (${file}): ${(e as Error).message}`);
  }
}
