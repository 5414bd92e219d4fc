import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import type { Tokenizer } from "./tokenizer.js";

/** A tokenizer.json that cannot be used (the caller names the file). */
export class TokenizerFileError extends Error {}

/**
 * A Hugging Face `tokenizer.json` (the fast tokenizers' format: normalizer, pre-tokenizer, model, post-processor,
 * added tokens), run by @huggingface/tokenizers, a pure-JS port of the Rust crate. Models: BPE (with byte fallback),
 * WordPiece, Unigram. tokenizer_config.json is not read: its few tokenization switches (`remove_space`,
 * `do_lowercase_and_remove_accent`) belong to old XLM-style tokenizers.
 */
export function hfTokenizer(json: unknown, name: string): Tokenizer {
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new TokenizerFileError("not a tokenizer.json: the file holds no JSON object");
  const o = json as Record<string, unknown>;
  const model = o["model"];
  if (model === null || typeof model !== "object") throw new TokenizerFileError("not a tokenizer.json: it has no `model`");
  // The library requires every pipeline key to be present (null when a step is absent), as the Rust crate writes them.
  const full = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...o, added_tokens: Array.isArray(o["added_tokens"]) ? o["added_tokens"] : [] };
  let tok: HfTokenizer;
  try {
    tok = new HfTokenizer(full, {});
  } catch (e) {
    throw new TokenizerFileError(`@huggingface/tokenizers cannot load it: ${(e as Error).message}`);
  }
  const tokenize = (text: string, special = false) => tok.tokenize(text, { add_special_tokens: special });
  return { name, tokenize, count: (text, special) => tokenize(text, special).length };
}
