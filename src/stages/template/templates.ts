import { readFile } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import type { StageContext, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import {
  asTemplate,
  FormatError,
  instructionMessages,
  isChatTemplate,
  recordInstruction,
  recordMessages,
  renderChat,
  renderInstruction,
  renderPromptTemplate,
  type ChatFormat,
  type Template,
} from "../support/chat-formats.js";
import { flanTemplatesImpl } from "./flan-templates.js";
import { hfConfigFile, HfTemplateError, isHfChatTemplate, readHfChatTemplate, renderHfChat, type HfChatTemplate } from "../support/hf-chat-template.js";
import { asyncImpl, mapRecords } from "../support/records.js";

/**
 * Template stages: `chat_template`, `hf_chat_template` and `prompt_template` write a Template value (one JSON
 * value); `render` applies one to every record. The rendering itself is in chat-formats.ts (built-in formats and
 * prompt templates) and hf-chat-template.ts (a model's Jinja template); `flan_templates` is in flan-templates.ts.
 */

/** One record rendered: a chat (`messages`) or an instruction record (`instruction`, `input`, `output`). */
export function renderRecord(t: Template | HfChatTemplate, r: RecordValue, generationPrompt: boolean): string {
  const hf = isHfChatTemplate(t);
  if (!hf && !isChatTemplate(t)) return renderPromptTemplate(t, r, generationPrompt);
  const chat = Array.isArray(r["messages"]);
  if (!chat && typeof r["instruction"] !== "string") throw new FormatError("neither a chat (`messages`) nor an instruction record (`instruction`)");
  if (hf) {
    // An instruction is one exchange, as for the built-in formats; a generation prompt leaves the answer out.
    let msgs = chat ? recordMessages(r) : instructionMessages(recordInstruction(r));
    if (generationPrompt && msgs.length > 0 && msgs[msgs.length - 1]!.role === "assistant") msgs = msgs.slice(0, -1);
    return renderHfChat(t, msgs, generationPrompt);
  }
  const opts = { system: t.system, generationPrompt };
  return chat ? renderChat(t.format, recordMessages(r), opts) : renderInstruction(t.format as ChatFormat, recordInstruction(r), opts);
}

/** The template of a stage's `template` parameter: a built-in format, a prompt template or a model's own. */
export async function templateOf(ctx: StageContext): Promise<Template | HfChatTemplate | undefined> {
  const a = ctx.inputs.get("param:template");
  if (!a) return undefined;
  const v = await a.json();
  if (isHfChatTemplate(v)) return v;
  try {
    return asTemplate(v);
  } catch (e) {
    if (e instanceof FormatError) throw new UserError(`${ctx.stage.id}: ${e.message}`);
    throw e;
  }
}

export const templateImpls: Record<string, StageImpl> = {
  chat_template: asyncImpl(async (ctx, out) => {
    const system = ctx.params["system"];
    await out.writeValue({ format: ctx.params["name"], ...(typeof system === "string" ? { system } : {}) });
  }),

  prompt_template: asyncImpl(async (ctx, out) => {
    await out.writeValue({ text: ctx.params["text"], response: ctx.params["response"] ?? "{output}", eos: ctx.params["eos"] !== false });
  }),

  hf_chat_template: asyncImpl(
    async (ctx, out) => {
      const file = hfConfigFile(String(ctx.params["path"]));
      const abs = isAbsolute(file) ? file : resolve(ctx.baseDir, file);
      let text: string;
      try {
        text = await readFile(abs, "utf8");
      } catch (e) {
        throw new UserError(
          `${ctx.stage.id}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
          "`path` is a tokenizer directory holding tokenizer_config.json, or the file itself, relative to the recipe's folder",
        );
      }
      const name = ctx.params["name"];
      const date = ctx.params["date"];
      try {
        await out.writeValue(readHfChatTemplate(text, file, typeof name === "string" ? name : undefined, typeof date === "string" ? date : undefined));
      } catch (e) {
        if (e instanceof HfTemplateError) throw new UserError(`${ctx.stage.id}: ${file}: ${e.message}`, e.hint);
        throw e;
      }
    },
    { files: (p) => [hfConfigFile(String(p["path"]))] },
  ),

  flan_templates: flanTemplatesImpl,

  render: asyncImpl(async (ctx, out) => {
    const t = await templateOf(ctx);
    if (!t) throw new UserError(`${ctx.stage.id}: render needs a template`);
    const gen = ctx.params["generation_prompt"] === true;
    let n = 0;
    await mapRecords(ctx, out, (r, i) => {
      try {
        n++;
        return { text: renderRecord(t, r, gen) };
      } catch (e) {
        if (e instanceof FormatError) throw new UserError(`${ctx.stage.id}: record ${i + 1}: ${e.message}`);
        if (e instanceof HfTemplateError) throw new UserError(`${ctx.stage.id}: record ${i + 1}: ${e.message}`, e.hint);
        throw e;
      }
    });
    ctx.count("kept", n);
  }),
};
