import { openModelSession } from "../support/model-session.js";
import type { ChatMessage } from "../../models/openai.js";
import { IN_FLIGHT, orderedMap } from "../../generate/session.js";
import type { StageImpl } from "../../core/stage.js";
import { fillTemplate } from "../support/chat-formats.js";
import { requestOf, userMessages } from "./generate.js";
import { instructionText, optionalSession, promptParam } from "./method-support.js";
import { asyncImpl, dataInput } from "../support/records.js";

/**
 * `self_chat`: multi-turn conversations by self-chat (Baize, Xu et al.). Baize has one model write a whole
 * transcript for both sides; here the two sides are separate calls, so each can be a different model: the seed
 * instruction is the first user turn, the assistant model answers with the conversation so far as its messages, and
 * the user simulator, shown the transcript, writes the next user turn, for `turns` exchanges. The user simulator may
 * end the chat early when the person would have nothing more to ask (Baize's natural stopping point). Chats are
 * written in input order, with the system message first when one is set.
 */

/**
 * The user simulator's default prompt. It must elicit the person's next message only (a follow-up that builds on
 * the last answer or moves to a related question), without a speaker label, or "[END]" alone when the person would
 * stop. `{transcript}` is the conversation so far, one "[User]" or "[Assistant]" turn per paragraph.
 */
export const USER_SIMULATOR_PROMPT = `You are playing a curious person in a conversation with an AI assistant. Here is the conversation so far:

{transcript}

Write the person's next message: a follow-up question or request that builds on the assistant's last answer, or moves on to a closely related question. Write it as the person would, in the first person, and write only the message, without a speaker label. If the person would have nothing more to ask, reply with [END] alone.`;

/** The user simulator's signal that the conversation is over. */
export const END_MARKER = "[END]";

/** The conversation as the user simulator reads it. */
export function transcriptOf(messages: readonly ChatMessage[]): string {
  return messages
    .filter((m) => m.role !== "system")
    .map((m) => `${m.role === "user" ? "[User]" : "[Assistant]"} ${m.content}`)
    .join("\n\n");
}

/** The user simulator's turn: its answer without a speaker label the model may have copied, or undefined to end. */
export function userTurn(answer: string): string | undefined {
  const t = answer
    .trim()
    .replace(/^(\[(user|human)\]|(user|human)\s*:)\s*/i, "")
    .trim();
  return t === "" || t.startsWith(END_MARKER) ? undefined : t;
}

export const selfChatImpls: Record<string, StageImpl> = {
  self_chat: asyncImpl(async (ctx, out) => {
    const turns = Number(ctx.params["turns"] ?? 3);
    const system = typeof ctx.params["system"] === "string" && ctx.params["system"] !== "" ? ctx.params["system"] : undefined;
    const simulator = promptParam(ctx, "user_prompt", USER_SIMULATOR_PROMPT, ["transcript"]);
    const assistant = await openModelSession(ctx);
    const user = await optionalSession(ctx, "user_model", assistant);
    const input = dataInput(ctx);
    let chats = 0;
    let endedEarly = 0;
    let exchanges = 0;
    await orderedMap(
      input.read(),
      { width: IN_FLIGHT, onFailure: () => (assistant.abort(), user.abort()) },
      async (r) => {
        const messages: ChatMessage[] = system ? [{ role: "system", content: system }] : [];
        let next: string | undefined = instructionText(r);
        for (let t = 0; t < turns && next !== undefined; t++) {
          messages.push({ role: "user", content: next });
          const answer = (await assistant.ask(requestOf(ctx, [...messages]))).text.trim();
          if (answer === "") return { messages, empty: true, ended: false };
          messages.push({ role: "assistant", content: answer });
          if (t + 1 < turns) next = userTurn((await user.ask(requestOf(ctx, userMessages(undefined, fillTemplate(simulator, { transcript: transcriptOf(messages) }))))).text);
        }
        return { messages, empty: false, ended: next === undefined };
      },
      async (c, r, i) => {
        if (c.empty) {
          ctx.drop({ ...r, messages: c.messages }, "empty assistant answer", `record ${i + 1}, turn ${c.messages.filter((m) => m.role === "user").length}`);
          return;
        }
        if (c.ended) endedEarly++;
        exchanges += c.messages.filter((m) => m.role === "assistant").length;
        await out.write({ messages: c.messages });
        if (++chats % 256 === 0) ctx.progress(chats, input.records ?? undefined);
      },
    );
    await assistant.finish();
    if (user !== assistant) await user.finish();
    ctx.count("chats", chats);
    ctx.count("exchanges", exchanges);
    if (endedEarly > 0) ctx.count("chats ended by the user simulator", endedEarly);
  }),
};
