import { isAbsolute, resolve } from "node:path";
import { UserError } from "../../core/errors.js";
import type { InputArtifact, StageContext } from "../../core/stage.js";
import { completionPrompt, type ModelArtifact } from "../../generate/backend.js";
import { evalModelBackend } from "../../generate/eval-backend.js";
import { ModelSession } from "../../generate/session.js";
import { evalModel } from "./eval-model.js";
import { FormatError, isChatTemplate, renderChat, type Message } from "./chat-formats.js";
import { HfTemplateError, isHfChatTemplate, renderHfChat } from "./hf-chat-template.js";
import { folderTemplate } from "./model-template.js";

/**
 * The model session of a stage's model parameter, whatever the model: an endpoint or an ONNX model
 * (ModelSession.open), or a model the Python worker runs: a trained model (a folder artifact) or an `hf_model`
 * naming a local folder. Such a model sees a chat rendered with the template it was trained with (model-template.ts:
 * its built-in chat format, or its Jinja chat template), else as plain text. End the session with `finish()`, which
 * stops the worker.
 */
export async function openModelSession(ctx: StageContext, param = "model"): Promise<ModelSession> {
  const input = ctx.inputs.get(`param:${param}`);
  if (!input) throw new Error(`stage ${ctx.stage.id} has no model input \`${param}\``);
  const folder = await workerFolder(ctx, input);
  if (folder === undefined) return ModelSession.open(ctx, param);
  const template = folder === "" ? undefined : await folderTemplate(folder, input.stage, `stage \`${ctx.stage.id}\``);
  const model = await evalModel(input, ctx, typeof ctx.params["executor"] === "string" ? { executor: ctx.params["executor"] } : {});
  const render = (messages: readonly Message[]): string => {
    try {
      if (template && isHfChatTemplate(template)) return renderHfChat(template, messages, true);
      if (template && isChatTemplate(template)) return renderChat(template.format, messages, { system: template.system, generationPrompt: true });
      // A prompt template's model (std/humpback's backward model) reads the stage's prompt as it is: the stage's
      // prompt is written in the model's format.
      return completionPrompt(messages);
    } catch (e) {
      if (e instanceof HfTemplateError || e instanceof FormatError) throw new UserError(`stage \`${ctx.stage.id}\`: the template of \`${input.stage}\`: ${e.message}`);
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
