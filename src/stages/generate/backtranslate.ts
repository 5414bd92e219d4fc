import { openModelSession } from "../support/model-session.js";
import { IN_FLIGHT, orderedMap } from "../../generate/session.js";
import type { StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import { fillTemplate } from "../support/chat-formats.js";
import { requestOf, userMessages } from "./generate.js";
import { missingFields, promptParam, textField } from "./method-support.js";
import { asyncImpl, dataInput } from "../support/records.js";

/**
 * `backtranslate`: Humpback's self-augmentation (Li et al., instruction back-translation). The backward model
 * (response -> instruction) reads each unlabelled segment and writes the instruction it answers; the pair becomes an
 * Instruction record whose output is the segment, word for word. An instruction cut by max_tokens or left empty is
 * dropped (listed with its reason). Other fields of the segment's record (an id, a source) are kept.
 */

/**
 * The default prompt: the same words as std/humpback's backward_prompt, which the backward model is trained on. It
 * must elicit the one instruction or question a user would have asked to get `{text}` as the answer, and nothing
 * else.
 */
export const BACKTRANSLATE_PROMPT = `Below is a response written by a helpful assistant.
Write the instruction or question from a user that this response answers best.

Response:
{text}

Instruction:
`;

/** The instruction in the backward model's answer: trimmed, without an "Instruction:" label it may have repeated. */
export function instructionOf(answer: string): string {
  return answer
    .trim()
    .replace(/^instruction\s*:\s*/i, "")
    .trim();
}

export const backtranslateImpls: Record<string, StageImpl> = {
  backtranslate: asyncImpl(async (ctx, out) => {
    const prompt = promptParam(ctx, "prompt", BACKTRANSLATE_PROMPT, () => true);
    const session = await openModelSession(ctx);
    const input = dataInput(ctx);
    let written = 0;
    await orderedMap(
      input.read(),
      { width: IN_FLIGHT, onFailure: () => session.abort() },
      async (r, i) => {
        textField(ctx, r, "text", `record ${i + 1}`);
        if (i === 0) {
          const missing = missingFields(prompt, r, []);
          if (missing.length > 0) throw new UserError(`stage \`${ctx.stage.id}\`: the prompt's placeholder {${missing[0]}} names no field of the records (record 1 has ${Object.keys(r).join(", ")})`, "the segments are Text records: {text}");
        }
        return session.ask(requestOf(ctx, userMessages(undefined, fillTemplate(prompt, r))));
      },
      async (a, r, idx) => {
        const instruction = instructionOf(a.text);
        if (a.finish_reason === "length") ctx.drop({ ...r, answer: a.text }, "instruction cut by length", `record ${idx + 1}`);
        else if (instruction === "") ctx.drop({ ...r, answer: a.text }, "empty instruction", `record ${idx + 1}`);
        else {
          const { text, ...rest } = r;
          await out.write({ instruction, output: text, ...rest });
          written++;
        }
        if ((idx + 1) % 256 === 0) ctx.progress(idx + 1, input.records ?? undefined);
      },
    );
    await session.finish();
    ctx.count("records", written);
  }),
};
