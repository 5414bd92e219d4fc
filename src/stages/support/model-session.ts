import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { UserError } from "../../core/errors.js";
import type { InputArtifact, StageContext } from "../../core/stage.js";
import { completionPrompt, type ModelArtifact } from "../../generate/backend.js";
import { evalModelBackend } from "../../generate/eval-backend.js";
import { ModelSession } from "../../generate/session.js";
import { evalModel } from "./eval-model.js";
import { HfTemplateError, readHfChatTemplate, renderHfChat, type HfChatTemplate } from "./hf-chat-template.js";

/**
 * The model session of a stage's model parameter, whatever the model: an endpoint or an ONNX model
 * (ModelSession.open), or a model the Python worker runs: a trained model (a folder artifact) or an `hf_model`
 * naming a local folder. Such a model sees its prompts as it does in `evaluate`: a chat rendered with its own chat
 * template (tokenizer_config.json's `chat_template`), else a single message as it is. End the session with
 * `finish()`, which stops the worker.
 */
export async function openModelSession(ctx: StageContext, param = "model"): Promise<ModelSession> {
  const input = ctx.inputs.get(`param:${param}`);
  if (!input) throw new Error(`stage ${ctx.stage.id} has no model input \`${param}\``);
  const folder = await workerFolder(ctx, input);
  if (folder === undefined) return ModelSession.open(ctx, param);
  const template = await folderChatTemplate(ctx, input.stage, folder);
  const model = await evalModel(input, ctx, typeof ctx.params["executor"] === "string" ? { executor: ctx.params["executor"] } : {});
  const render = (messages: Parameters<typeof completionPrompt>[0]): string => {
    if (!template) return completionPrompt(messages);
    try {
      return renderHfChat(template, messages, true);
    } catch (e) {
      if (e instanceof HfTemplateError) throw new UserError(`stage \`${ctx.stage.id}\`: the chat template of \`${input.stage}\`: ${e.message}`, e.hint);
      throw e;
    }
  };
  return ModelSession.over(ctx, evalModelBackend(model, { render }), param);
}

/**
 * The folder the worker runs for a model input: a trained model's, or an `hf_model`'s when its repo is a path
 * (evalModel refuses a hub id with a hint, as itp downloads no weights). Undefined for an endpoint or ONNX model.
 */
async function workerFolder(ctx: StageContext, input: InputArtifact): Promise<string | undefined> {
  if (input.tree) return input.path;
  const m = (await input.json()) as ModelArtifact;
  if (m.kind !== "hf_model") return undefined;
  const repo = m.params["repo"];
  return typeof repo === "string" ? (isAbsolute(repo) ? repo : resolve(ctx.baseDir, repo)) : "";
}

/** The model's own chat template (tokenizer_config.json's `chat_template`), when its folder has one. */
async function folderChatTemplate(ctx: StageContext, stage: string, folder: string): Promise<HfChatTemplate | undefined> {
  const config = join(folder, "tokenizer_config.json");
  if (folder === "" || !existsSync(config)) return undefined;
  const text = await readFile(config, "utf8");
  if ((JSON.parse(text) as { chat_template?: unknown }).chat_template === undefined) return undefined;
  try {
    return readHfChatTemplate(text, `${stage}'s tokenizer_config.json`);
  } catch (e) {
    if (e instanceof HfTemplateError) throw new UserError(`stage \`${ctx.stage.id}\`: the chat template of \`${stage}\`: ${e.message}`, e.hint ?? "train the model with a template that renders");
    throw e;
  }
}
