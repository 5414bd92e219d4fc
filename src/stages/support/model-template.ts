import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "../../core/errors.js";
import { asTemplate, FormatError, type Template } from "./chat-formats.js";
import { HfTemplateError, readHfChatTemplate, type HfChatTemplate } from "./hf-chat-template.js";

/** Where a trained model folder records a template that is not a Jinja chat template (the trainer writes it). */
export const TEMPLATE_FILE = "itp_template.json";

/**
 * The template a model folder was trained with, so that its prompts look like its training data: the built-in
 * chat format or prompt template in itp_template.json, else the Jinja `chat_template` of its tokenizer_config.json,
 * else undefined (plain text). `where` names the asking stage in errors.
 */
export async function folderTemplate(folder: string, model: string, where: string): Promise<Template | HfChatTemplate | undefined> {
  const own = join(folder, TEMPLATE_FILE);
  if (existsSync(own)) {
    try {
      return asTemplate(JSON.parse(await readFile(own, "utf8")));
    } catch (e) {
      if (e instanceof FormatError || e instanceof SyntaxError) throw new UserError(`${where}: ${own} of \`${model}\`: ${e.message}`, "the file is written by itp's trainer: train the model again");
      throw e;
    }
  }
  const config = join(folder, "tokenizer_config.json");
  if (!existsSync(config)) return undefined;
  const text = await readFile(config, "utf8");
  if ((JSON.parse(text) as { chat_template?: unknown }).chat_template === undefined) return undefined;
  try {
    return readHfChatTemplate(text, `${model}'s tokenizer_config.json`);
  } catch (e) {
    if (e instanceof HfTemplateError) throw new UserError(`${where}: the chat template of \`${model}\`: ${e.message}`, e.hint ?? "give the stage a `template`");
    throw e;
  }
}
