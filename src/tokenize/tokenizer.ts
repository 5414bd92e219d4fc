/**
 * What the data stages need of a tokenizer: the tokens of a text, to count them. `special` adds the tokens the
 * tokenizer puts around a text on its own (LLaMA's BOS), as Hugging Face's `tokenizer(text).input_ids` does;
 * without it, only the text's own tokens.
 */
export interface Tokenizer {
  /** What was loaded, for messages: `bytes`, or the tokenizer.json path. */
  readonly name: string;
  tokenize(text: string, special?: boolean): string[];
  count(text: string, special?: boolean): number;
}
