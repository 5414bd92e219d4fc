import type { StageImpl } from "../../runtime/impl.js";
import { UserError } from "../../runtime/impl.js";
import type { RecordValue } from "../../runtime/records.js";
import { FormatError, isChatTemplate, renderChat, renderInstruction, renderPromptTemplate, type ChatFormat, type Message, type Template } from "./chat-formats.js";
import { templateParam } from "./converters.js";
import { asyncImpl, mapRecords } from "./support.js";

/**
 * Template stages: `chat_template` and `prompt_template` write a Template value (one JSON value); `render` applies
 * one to every record. The rendering itself is in chat-formats.ts.
 */

/** One record rendered: a chat (`messages`) or an instruction record (`instruction`, `input`, `output`). */
export function renderRecord(t: Template, r: RecordValue, generationPrompt: boolean): string {
  if (!isChatTemplate(t)) return renderPromptTemplate(t, r, generationPrompt);
  const opts = { system: t.system, generationPrompt };
  if (Array.isArray(r["messages"])) {
    const msgs = r["messages"] as unknown[];
    msgs.forEach((m, k) => {
      if (m === null || typeof m !== "object" || typeof (m as Message).role !== "string" || typeof (m as Message).content !== "string") throw new FormatError(`message ${k + 1} is not a {role, content} pair of strings`);
    });
    return renderChat(t.format, msgs as Message[], opts);
  }
  if (typeof r["instruction"] === "string") {
    const input = r["input"];
    const output = r["output"];
    if (input !== undefined && input !== null && typeof input !== "string") throw new FormatError("field `input` is not a string");
    if (output !== undefined && output !== null && typeof output !== "string") throw new FormatError("field `output` is not a string");
    return renderInstruction(t.format as ChatFormat, { instruction: r["instruction"], ...(typeof input === "string" ? { input } : {}), ...(typeof output === "string" ? { output } : {}) }, opts);
  }
  throw new FormatError("neither a chat (`messages`) nor an instruction record (`instruction`)");
}

export const templateImpls: Record<string, StageImpl> = {
  chat_template: asyncImpl(async (ctx, out) => {
    const system = ctx.params["system"];
    await out.writeValue({ format: ctx.params["name"], ...(typeof system === "string" ? { system } : {}) });
  }),

  prompt_template: asyncImpl(async (ctx, out) => {
    await out.writeValue({ text: ctx.params["text"], response: ctx.params["response"] ?? "{output}", eos: ctx.params["eos"] !== false });
  }),

  hf_chat_template: asyncImpl(async (ctx) => {
    throw new UserError(
      `${ctx.stage.id}: hf_chat_template is not yet supported: a tokenizer's chat template is a Jinja program, and this version of itp has no Jinja engine`,
      'use a built-in format for now: chat_template(name: "tulu"), "chatml", "llama2", "vicuna" or "alpaca"',
    );
  }),

  render: asyncImpl(async (ctx, out) => {
    const t = await templateParam(ctx);
    if (!t) throw new UserError(`${ctx.stage.id}: render needs a template`);
    const gen = ctx.params["generation_prompt"] === true;
    let n = 0;
    await mapRecords(ctx, out, (r, i) => {
      try {
        n++;
        return { text: renderRecord(t, r, gen) };
      } catch (e) {
        if (e instanceof FormatError) throw new UserError(`${ctx.stage.id}: record ${i + 1}: ${e.message}`);
        throw e;
      }
    });
    ctx.count("kept", n);
  }),
};
