import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { sha256 } from "../../core/digest.js";
import { UserError } from "../../core/errors.js";

/**
 * The base model's tokenizer as data preparation uses it: `tokenizer.json` run by @huggingface/tokenizers, with the
 * special tokens of `tokenizer_config.json` beside it. Texts are encoded without special tokens (the template writes
 * them as text, and they are matched as the tokenizer's added tokens); the BOS the tokenizer's post-processor would
 * put first is `prefix`, which a training example starts with unless its text already does.
 */
export interface TrainTokenizer {
  /** The tokenizer.json file, for messages. */
  readonly file: string;
  /** sha256 of tokenizer.json and of tokenizer_config.json ("none" when absent): what shapes the tokens. */
  readonly digest: string;
  readonly bosText: string | undefined;
  readonly eosText: string;
  readonly eosId: number;
  /** Ids the post-processor puts before a text (the BOS of Llama-style tokenizers), else empty. */
  readonly prefix: readonly number[];
  /** One more than the largest id. */
  readonly vocabSize: number;
  encode(text: string): number[];
  /** Text of ids, special tokens kept (what show prints). */
  decode(ids: readonly number[]): string;
}

const hint = "`base` is a Hugging Face model directory holding tokenizer.json (and tokenizer_config.json for the special tokens)";

/** Load the tokenizer at `path`: a model directory holding tokenizer.json, or the tokenizer.json file. `where` names the stage. */
export async function loadTrainTokenizer(path: string, where: string): Promise<TrainTokenizer> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new UserError(`${where}: the tokenizer ${path} does not exist`, hint);
  const file = st.isDirectory() ? join(path, "tokenizer.json") : path;
  const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`${where}: cannot read ${file} (${e.code ?? e.message})`, hint);
  });
  const json = parseJson(text, file, where);
  if (json === null || typeof json !== "object" || Array.isArray(json) || typeof (json as { model?: unknown }).model !== "object") {
    throw new UserError(`${where}: ${file} is not a Hugging Face tokenizer.json (it has no \`model\`)`, hint);
  }
  const configFile = join(dirname(file), "tokenizer_config.json");
  const configText = await readFile(configFile, "utf8").catch(() => undefined);
  const config = (configText !== undefined ? parseJson(configText, configFile, where) : {}) as Record<string, unknown>;
  // The library needs every pipeline key present (null when a step is absent), as the Rust crate writes them.
  const o = json as Record<string, unknown>;
  const full = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...o, added_tokens: Array.isArray(o["added_tokens"]) ? o["added_tokens"] : [] };
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(full, config);
  } catch (e) {
    throw new UserError(`${where}: ${file}: @huggingface/tokenizers cannot load it: ${(e as Error).message}`, hint);
  }
  const encode = (t: string): number[] => tok.encode(t, { add_special_tokens: false }).ids;
  // What the post-processor puts before a text: found by encoding a probe with and without special tokens.
  const bare = encode("x");
  const withSpecial: number[] = tok.encode("x", { add_special_tokens: true }).ids;
  const at = withSpecial.findIndex((_, i) => bare.every((id, j) => withSpecial[i + j] === id));
  const prefix = at > 0 ? withSpecial.slice(0, at) : [];

  const bosText = tokenText(config["bos_token"]);
  const eosText = tokenText(config["eos_token"]) ?? (tok.token_to_id("</s>") !== undefined ? "</s>" : undefined);
  const eosId = eosText !== undefined ? tok.token_to_id(eosText) : undefined;
  if (eosText === undefined || eosId === undefined) {
    throw new UserError(
      `${where}: no end-of-sequence token for ${file}: ${eosText === undefined ? `${basename(configFile)} names no eos_token` : `eos_token ${JSON.stringify(eosText)} is not in the vocabulary`}`,
      `set "eos_token" in ${configFile} to the text of the tokenizer's end-of-sequence token`,
    );
  }
  let vocabSize = 0;
  for (const id of tok.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);
  return {
    file,
    digest: sha256(`${sha256(text)}:${configText !== undefined ? sha256(configText) : "none"}`),
    bosText,
    eosText,
    eosId,
    prefix,
    vocabSize,
    encode,
    decode: (ids) => tok.decode([...ids], { skip_special_tokens: false, clean_up_tokenization_spaces: false }),
  };
}

function parseJson(text: string, file: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${where}: ${file} is not valid JSON (${(e as Error).message})`, hint);
  }
}

/** A special token in a config: its text, or an AddedToken object's `content`. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v !== null && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return undefined;
}
