import { z } from "zod";
import { ref } from "../schema.js";
import { dataInput, lazyEntries, posInt, type Declared } from "../common.js";
import type { StageKind } from "../registry.js";

/**
 * Converters: one-input stages that map a dataset's native record shape onto one of the built-in types. The input
 * type is exactly `Dataset<Record>` so that `Registry.convertersFrom` can suggest them on a type mismatch.
 */
function converter(name: string, from: string, to: string, description: string, params: () => z.ZodObject = () => z.object({}), version = "1"): Declared<StageKind> {
  return {
    name,
    category: "convert",
    doc: description,
    inputs: [dataInput(`Dataset<${from}>`, `Records of type ${from}.`)],
    output: `Dataset<${to}>`,
    params,
    version,
  };
}

export function converterStages(): StageKind[] {
  return lazyEntries<StageKind>([
    converter(
      "dolly_to_instruction",
      "Dolly",
      "Instruction",
      "Databricks Dolly records to Instruction: instruction -> instruction, context -> input (omitted when empty), response -> output.",
    ),
    converter(
      "seed_task_to_instruction",
      "SeedTask",
      "Instruction",
      "Self-Instruct's seed tasks (data/seed_tasks.jsonl as published) to Instruction, as Stanford Alpaca's generate_instruction.py reads them: instruction, and the input and output of the task's first instance (input omitted when empty).",
    ),
    converter(
      "flan_to_instruction",
      "FlanExample",
      "Instruction",
      "Flan examples (already templated) to Instruction: inputs -> instruction, targets -> output.",
    ),
    converter(
      "prompt_completion_to_instruction",
      "PromptCompletion",
      "Instruction",
      "Prompt/completion pairs to Instruction: prompt -> instruction, completion -> output.",
      () => z.object({
        strip: z.boolean().default(true).describe("Trim leading and trailing whitespace of prompt and completion."),
      }),
    ),
    converter(
      "instruction_to_prompt_completion",
      "Instruction",
      "PromptCompletion",
      "Instruction records to prompt/completion pairs by rendering the prompt with a template (the completion is the output).",
      () => z.object({
        template: ref("Template").optional().describe("Template that renders the prompt; default the Alpaca prompt of train.py (with or without the Input section, ending `### Response:`)."),
      }),
      "2", // 2: the Alpaca prompt without a newline after "### Response:"
    ),
    converter(
      "instruction_to_chat",
      "Instruction",
      "Chat",
      "Instruction records to single-exchange chats: the user turn is the instruction (followed by a blank line and the input, when present), the assistant turn is the output.",
      () => z.object({
        system: z.string().optional().describe("System message to put first; default none."),
        source: z.string().min(1).optional().describe("Value for each chat's `source` field (used by mention_filter's exempt_sources)."),
      }),
    ),
    converter(
      "chat_to_instruction",
      "Chat",
      "Instruction",
      "Chats to Instruction: the chosen user turn becomes the instruction and the assistant reply that follows it the output. System messages are dropped.",
      () => z.object({
        turn: z.enum(["first", "last"]).default("first").describe("Which user/assistant exchange to keep."),
        single_turn_only: z.boolean().default(false).describe("Drop chats with more than one exchange instead of keeping one."),
      }),
    ),
    converter(
      "sharegpt_to_chat",
      "ShareGPT",
      "Chat",
      "ShareGPT conversations ({from, value} turns) to Chat, by default as open-instruct's convert_sharegpt_data: human/user -> user, gpt/chatgpt -> assistant; a conversation with a system or bing turn is dropped whole (kept with the dropped records); turns need not alternate; an empty conversation is dropped; another speaker is an error unless drop_invalid. `rules = \"strict\"` also drops conversations whose turns do not alternate, or that have an empty turn, and drops leading assistant turns.",
      () => z.object({
        roles: z
          .record(z.string(), z.enum(["system", "user", "assistant", "drop"]))
          .default({ human: "user", user: "user", gpt: "assistant", chatgpt: "assistant", system: "drop", bing: "drop" })
          .describe("Mapping from ShareGPT `from` values to chat roles; \"drop\" drops the whole conversation (open-instruct's rule for system and bing)."),
        rules: z.enum(["open_instruct", "strict"]).default("open_instruct").describe("open_instruct: open-instruct's conversion (turns need not alternate); strict: also drop non-alternating conversations and those with an empty turn."),
        drop_invalid: z.boolean().default(false).describe("Drop conversations with a speaker `roles` does not name, or a malformed turn, instead of stopping with an error as open-instruct does (dropped conversations are kept with the dropped records)."),
        source: z.string().min(1).optional().describe("Value for each chat's `source` field."),
      }),
      "2", // 2: open-instruct's rules by default; dropped conversations kept
    ),
    converter(
      "oasst_to_chat",
      "OasstMessage",
      "Chat",
      "OpenAssistant (OASST1) message trees to chats: each tree is walked from its root prompt; at each assistant level the top_k_reply best-ranked replies are followed (Tulu 2: 1, the highest-scoring path), giving one chat per leaf reached.",
      () => z.object({
        top_k_reply: posInt().nullable().default(1).describe("Replies followed per message, best rank first (Tulu 2: 1). null follows every reply (Tulu v1: all replies)."),
        lang: z.string().min(2).optional().describe("Keep only trees whose prompt has this language code (e.g. \"en\"); default all languages."),
        source: z.string().min(1).optional().describe("Value for each chat's `source` field."),
      }),
    ),
    converter(
      "orca_to_chat",
      "OpenOrca",
      "Chat",
      "OpenOrca records to chats: system_prompt (when non-empty and keep_system) as the system message, question as the user turn, response as the assistant turn.",
      () => z.object({
        keep_system: z.boolean().default(true).describe("Keep the system prompt as a system message."),
        source: z.string().min(1).optional().describe("Value for each chat's `source` field."),
      }),
    ),
    converter(
      "lima_to_chat",
      "Lima",
      "Chat",
      "LIMA records (GAIR/lima: `conversations`, a list of strings, user first) to chats, turns alternating user and assistant. As open-instruct converts it, a trailing turn with no answer is cut off; a record left with no exchange is dropped. The record's own `source` (stackexchange, wikihow, ...) is kept unless `source` is set.",
      () => z.object({
        source: z.string().min(1).optional().describe("Value for each chat's `source` field; default the record's own."),
      }),
    ),
    converter(
      "preference_to_pairs",
      "Preference",
      "PreferencePair",
      "Preference records (prompt, chosen and rejected strings) to message-list pairs: chosen/rejected become [user: prompt, assistant: answer].",
      () => z.object({
        system: z.string().optional().describe("System message to put first in both conversations; default none."),
      }),
    ),
  ]);
}
