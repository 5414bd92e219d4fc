import { list, record, scalar, type Ty } from "./types.js";

const str = scalar("string");
const opt = (t: Ty): [Ty, "optional"] => [t, "optional"];

export const Message = record("Message", { role: str, content: str });

/**
 * Built-in record types: the three the product names (Instruction, Chat, Preference) and the native shapes of
 * common datasets, which converters turn into them.
 */
export const builtinRecordTypes: ReadonlyMap<string, Ty> = new Map<string, Ty>([
  ["Instruction", record("Instruction", { instruction: str, input: opt(str), output: str })],
  ["Chat", record("Chat", { messages: list(Message), id: opt(str), source: opt(str) })],
  ["Preference", record("Preference", { prompt: str, chosen: str, rejected: str })],
  ["Message", Message],
  ["Text", record("Text", { text: str })],
  ["PromptCompletion", record("PromptCompletion", { prompt: str, completion: str })],
  ["Dolly", record("Dolly", { instruction: str, context: opt(str), response: str, category: opt(str) })],
  ["FlanExample", record("FlanExample", { inputs: str, targets: str, task: opt(str), template_type: opt(str) })],
  ["ShareGPT", record("ShareGPT", { id: opt(str), conversations: list(record("ShareGPTTurn", { from: str, value: str })) })],
  [
    "OasstMessage",
    record("OasstMessage", {
      message_id: str,
      parent_id: opt(str),
      message_tree_id: opt(str),
      text: str,
      role: str,
      rank: opt(scalar("int")),
      lang: opt(str),
    }),
  ],
  ["OpenOrca", record("OpenOrca", { id: opt(str), system_prompt: str, question: str, response: str })],
  ["Lima", record("Lima", { conversations: list(str), source: opt(str) })],
  [
    // Self-Instruct's data/seed_tasks.jsonl, one task per line, as published.
    "SeedTask",
    record("SeedTask", {
      id: str,
      name: str,
      instruction: str,
      instances: list(record("SeedInstance", { input: str, output: str })),
      is_classification: scalar("bool"),
    }),
  ],
  ["PreferencePair", record("PreferencePair", { prompt: str, chosen: list(Message), rejected: list(Message) })],
  ["McqExample", record("McqExample", { question: str, choices: list(str), answer: scalar("int"), subject: opt(str) })],
  ["MathExample", record("MathExample", { question: str, answer: str })],
  // Benchmarks in their own published shapes (evaluation tasks read them): google/IFEval, tatsu-lab/alpaca_eval,
  // FastChat's MT-Bench question.jsonl.
  [
    "IfevalPrompt",
    record("IfevalPrompt", { key: scalar("int"), prompt: str, instruction_id_list: list(str), kwargs: list(record("IfevalKwargs", {}, true)) }),
  ],
  ["AlpacaEvalExample", record("AlpacaEvalExample", { instruction: str, output: str, generator: opt(str), dataset: opt(str) })],
  [
    "MtBenchQuestion",
    record("MtBenchQuestion", { question_id: scalar("int"), category: str, turns: list(str), reference: opt(list(str)) }),
  ],
  ["Json", record("Json", {}, true)],
]);

export const scalarTypes: ReadonlyMap<string, Ty> = new Map([
  ["string", scalar("string")],
  ["int", scalar("int")],
  ["float", scalar("float")],
  ["bool", scalar("bool")],
  ["duration", scalar("duration")],
  ["any", scalar("any")],
]);

/**
 * The native shapes a built-in converter turns into a product type: when a source typed with the product type
 * holds records of the native shape, the error says which type and converter to use. (A test checks this table
 * against the registry's converters.)
 */
export const nativeConverters: readonly { readonly native: string; readonly to: string; readonly converter: string }[] = [
  { native: "SeedTask", to: "Instruction", converter: "seed_task_to_instruction" },
  { native: "Dolly", to: "Instruction", converter: "dolly_to_instruction" },
  { native: "FlanExample", to: "Instruction", converter: "flan_to_instruction" },
  { native: "PromptCompletion", to: "Instruction", converter: "prompt_completion_to_instruction" },
  { native: "Chat", to: "Instruction", converter: "chat_to_instruction" },
  { native: "Instruction", to: "PromptCompletion", converter: "instruction_to_prompt_completion" },
  { native: "Instruction", to: "Chat", converter: "instruction_to_chat" },
  { native: "ShareGPT", to: "Chat", converter: "sharegpt_to_chat" },
  { native: "OasstMessage", to: "Chat", converter: "oasst_to_chat" },
  { native: "OpenOrca", to: "Chat", converter: "orca_to_chat" },
  { native: "Lima", to: "Chat", converter: "lima_to_chat" },
  { native: "Preference", to: "PreferencePair", converter: "preference_to_pairs" },
];
