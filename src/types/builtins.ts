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
  ["PreferencePair", record("PreferencePair", { prompt: str, chosen: list(Message), rejected: list(Message) })],
  ["McqExample", record("McqExample", { question: str, choices: list(str), answer: scalar("int"), subject: opt(str) })],
  ["MathExample", record("MathExample", { question: str, answer: str })],
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
