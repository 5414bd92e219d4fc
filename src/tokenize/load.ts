import { readFile, stat } from "node:fs/promises";
import { UserError } from "../core/errors.js";
import { byteTokenizer } from "./bytes.js";
import { hfTokenizer, TokenizerFileError } from "./hf-tokenizer.js";
import { sourcePath, tokenizerSource } from "./locate.js";
import type { Tokenizer } from "./tokenizer.js";

/**
 * Load the tokenizer a `tokenizer` parameter names (see locate.ts). Loaded tokenizers are kept for the process,
 * keyed by file, size and modification time: a Llama tokenizer.json is ~2 MB of JSON, and several stages of one
 * run usually share it. Errors are UserErrors that name the stage (`where`), the parameter and the file.
 */
const loaded = new Map<string, { stamp: string; tok: Tokenizer }>();

export async function loadTokenizer(spec: string, baseDir: string, where: string): Promise<Tokenizer> {
  const src = tokenizerSource(spec);
  if (src.kind === "bytes") return byteTokenizer;
  const abs = sourcePath(src, baseDir);
  const shown = src.hub !== undefined ? `${src.path} (the cached ${src.hub})` : src.path;
  let stamp: string;
  try {
    const s = await stat(abs);
    stamp = `${s.size}:${s.mtimeMs}`;
  } catch (e) {
    throw new UserError(
      `${where}: tokenizer ${JSON.stringify(spec)}: cannot read ${shown} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      "give a directory holding tokenizer.json or the file itself (relative to the recipe's folder), a hub model id already in the local " +
        'Hugging Face cache (`huggingface-cli download ID tokenizer.json`), or "bytes" to count UTF-8 bytes',
    );
  }
  const hit = loaded.get(abs);
  if (hit && hit.stamp === stamp) return hit.tok;
  let json: unknown;
  try {
    json = JSON.parse(await readFile(abs, "utf8"));
  } catch (e) {
    throw new UserError(`${where}: tokenizer ${JSON.stringify(spec)}: ${shown} is not valid JSON (${(e as Error).message})`);
  }
  let tok: Tokenizer;
  try {
    tok = hfTokenizer(json, src.path);
  } catch (e) {
    if (e instanceof TokenizerFileError) throw new UserError(`${where}: tokenizer ${JSON.stringify(spec)}: ${shown}: ${e.message}`);
    throw e;
  }
  loaded.set(abs, { stamp, tok });
  return tok;
}
