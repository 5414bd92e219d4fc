import type { Tokenizer } from "./tokenizer.js";

/**
 * The byte-level fallback, for when no tokenizer.json is at hand: one token per UTF-8 byte. A byte-level BPE
 * (GPT-2, Llama 3) or a BPE with byte fallback (Llama 2) never needs more tokens than the text has bytes, so a
 * limit in bytes is a safe upper bound on theirs (their special tokens aside). It adds no special tokens.
 */
export const BYTES = "bytes";

const hex = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
const encoder = new TextEncoder();

export const byteTokenizer: Tokenizer = {
  name: BYTES,
  tokenize: (text) => Array.from(encoder.encode(text), (b) => hex[b]!),
  count: (text) => Buffer.byteLength(text, "utf8"),
};
