import type { RecordValue } from "../../core/records.js";
import { pyStrip } from "./text.js";

/**
 * The built-in chat formats, byte for byte (see the domain facts, sections 4 and 8), as pure functions. Special
 * tokens are written as their literal text: BOS `<s>`, EOS `</s>` (the LLaMA family's), since a rendered training
 * string is text; a trainer that tokenizes it maps them to the tokenizer's ids.
 *
 * - alpaca: Stanford Alpaca's prompt (`train.py`'s PROMPT_DICT) with or without the Input section, ending
 *   "### Response:" with no newline; the training string is prompt + output + EOS, nothing in between.
 * - alpaca_lora: alpaca-lora's variant (`templates/alpaca.json`): the same prompts ending "### Response:\n".
 * - vicuna (FastChat vicuna_v1.1): `{system} USER: {u} ASSISTANT: {a}</s>USER: ...`; generation prompt ends
 *   `ASSISTANT:`.
 * - chatml: `<|im_start|>{role}\n{content}<|im_end|>\n` per message; generation prompt `<|im_start|>assistant\n`.
 * - llama2 (Meta's `chat_completion`): the system as `<<SYS>>\n{system}\n<</SYS>>\n\n` merged into the first user
 *   turn; each finished exchange `<s>[INST] {user} [/INST] {answer} </s>`, an open last turn
 *   `<s>[INST] {user} [/INST]`. User and answer texts are stripped, as Meta's reference code does.
 * - tulu (open-instruct): `<|system|>\n{c}\n`, `<|user|>\n{c}\n`, `<|assistant|>\n{c}</s>\n`, contents stripped and
 *   the whole text stripped (no newline after the last turn); generation prompt `<|assistant|>\n` after the turns.
 */
export const BOS = "<s>";
export const EOS = "</s>";
const BOS_TEXT = BOS;
const EOS_TEXT = EOS;

export const CHAT_FORMATS = ["alpaca", "alpaca_lora", "vicuna", "chatml", "llama2", "tulu"] as const;
export type ChatFormat = (typeof CHAT_FORMATS)[number];

export interface Message {
  readonly role: string;
  readonly content: string;
}

/** The value of a `chat_template` stage. */
export interface ChatTemplate {
  readonly format: ChatFormat;
  readonly system?: string;
}

/** The value of a `prompt_template` stage. */
export interface PromptTemplate {
  readonly text: string;
  readonly response: string;
  readonly eos: boolean;
}

export type Template = ChatTemplate | PromptTemplate;

export const ALPACA_PROMPT_INPUT =
  "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:";
export const ALPACA_PROMPT_NO_INPUT =
  "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:";

/** The two Alpaca variants: Stanford Alpaca's prompt ends at "### Response:", alpaca-lora's adds a newline. */
export type AlpacaVariant = "alpaca" | "alpaca_lora";

export const VICUNA_SYSTEM =
  "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

/** A record or chat that cannot be rendered in a format (the caller names the record). */
export class FormatError extends Error {}

export interface InstructionLike {
  readonly instruction: string;
  readonly input?: string | undefined;
  readonly output?: string | undefined;
}

/** The Alpaca prompt of an instruction: with the Input section when the input is a non-empty string (as Alpaca's `!= ""`). */
export function alpacaPrompt(instruction: string, input?: string, variant: AlpacaVariant = "alpaca"): string {
  // One pass over the template: text substituted for a placeholder is never read as a placeholder itself.
  const fill = (template: string) => template.replace(/\{(instruction|input)\}/g, (_, k: string) => (k === "instruction" ? instruction : (input ?? "")));
  const prompt = input !== undefined && input !== "" ? fill(ALPACA_PROMPT_INPUT) : fill(ALPACA_PROMPT_NO_INPUT);
  return variant === "alpaca_lora" ? prompt + "\n" : prompt;
}

/** Alpaca's training text: prompt + output + EOS with nothing in between (train.py's `s + t`); or the prompt alone. */
export function renderAlpaca(ex: InstructionLike, generationPrompt: boolean, variant: AlpacaVariant = "alpaca", eos: string = EOS): string {
  const prompt = alpacaPrompt(ex.instruction, ex.input, variant);
  return generationPrompt ? prompt : prompt + (ex.output ?? "") + eos;
}

/** An instruction as a single exchange: the input after a blank line (the same as `instruction_to_chat`). */
export function instructionMessages(ex: InstructionLike, system?: string): Message[] {
  const user = ex.input !== undefined && ex.input !== "" ? `${ex.instruction}\n\n${ex.input}` : ex.instruction;
  const msgs: Message[] = [];
  if (system !== undefined) msgs.push({ role: "system", content: system });
  msgs.push({ role: "user", content: user });
  if (ex.output !== undefined) msgs.push({ role: "assistant", content: ex.output });
  return msgs;
}

/** A leading system message and the rest; roles checked (system only first; user/assistant alternate from user). */
function splitSystem(messages: readonly Message[], format: string, alternate: boolean): { system?: string; turns: Message[] } {
  let system: string | undefined;
  const turns: Message[] = [];
  messages.forEach((m, i) => {
    if (m.role === "system") {
      if (i !== 0) throw new FormatError(`${format}: a system message is allowed only first (message ${i + 1})`);
      system = m.content;
      return;
    }
    if (m.role !== "user" && m.role !== "assistant") throw new FormatError(`${format}: unknown role "${m.role}" (message ${i + 1})`);
    turns.push(m);
  });
  if (alternate) {
    turns.forEach((m, i) => {
      const want = i % 2 === 0 ? "user" : "assistant";
      if (m.role !== want) throw new FormatError(`${format}: turns must alternate user/assistant starting with user; message ${i + 1 + (system !== undefined ? 1 : 0)} is ${m.role}`);
    });
  }
  return system !== undefined ? { system, turns } : { turns };
}

/** Drop a final assistant message: what is left is the prompt of a generation. */
function promptPart(messages: readonly Message[]): readonly Message[] {
  return messages.length > 0 && messages[messages.length - 1]!.role === "assistant" ? messages.slice(0, -1) : messages;
}

/** Options of a render: the template's default system message, the generation prompt, the special tokens' texts. */
export interface RenderOptions {
  readonly system?: string | undefined;
  readonly generationPrompt?: boolean;
  /** The BOS and EOS texts written (default `<s>` and `</s>`): a tokenizer's own when training with it. */
  readonly bos?: string;
  readonly eos?: string;
}

/**
 * Render a chat in a format. `system` is the template's default system message, used when the chat has none.
 * With `generationPrompt`, a final assistant message is left out and the text ends with the format's generation
 * prompt. Alpaca takes only single-exchange chats (its prompt has no second turn).
 */
export function renderChat(format: ChatFormat, messages: readonly Message[], opts: RenderOptions = {}): string {
  const gen = opts.generationPrompt === true;
  const BOS = opts.bos ?? BOS_TEXT;
  const EOS = opts.eos ?? EOS_TEXT;
  const msgs = gen ? promptPart(messages) : messages;
  switch (format) {
    case "alpaca":
    case "alpaca_lora": {
      const { turns } = splitSystem(msgs, format, true);
      if (turns.length === 0 || turns.length > 2) throw new FormatError(`${format}: the Alpaca prompt holds one exchange; this chat has ${Math.ceil(turns.length / 2)}`);
      const ex = { instruction: turns[0]!.content, ...(turns[1] ? { output: turns[1].content } : {}) };
      return gen || !turns[1] ? alpacaPrompt(ex.instruction, undefined, format) : renderAlpaca(ex, false, format, EOS);
    }
    case "vicuna": {
      const { system, turns } = splitSystem(msgs, format, true);
      let out = (system ?? opts.system ?? VICUNA_SYSTEM) + " ";
      turns.forEach((m, i) => {
        out += `${m.role === "user" ? "USER" : "ASSISTANT"}: ${m.content}${i % 2 === 0 ? " " : EOS}`;
      });
      return gen ? out + "ASSISTANT:" : out;
    }
    case "chatml": {
      const { system, turns } = splitSystem(msgs, format, false);
      const sys = system ?? opts.system;
      let out = sys !== undefined ? `<|im_start|>system\n${sys}<|im_end|>\n` : "";
      for (const m of turns) out += `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`;
      return gen ? out + "<|im_start|>assistant\n" : out;
    }
    case "llama2": {
      const { system, turns } = splitSystem(msgs, format, true);
      const sys = system ?? opts.system;
      const users = turns.map((m) => m.content);
      if (sys !== undefined && users.length > 0) users[0] = `<<SYS>>\n${sys}\n<</SYS>>\n\n${users[0]}`;
      let out = "";
      for (let i = 0; i < turns.length; i += 2) {
        const answer = turns[i + 1];
        out += answer ? `${BOS}[INST] ${pyStrip(users[i]!)} [/INST] ${pyStrip(answer.content)} ${EOS}` : `${BOS}[INST] ${pyStrip(users[i]!)} [/INST]`;
      }
      return out;
    }
    case "tulu": {
      const { system, turns } = splitSystem(msgs, format, false);
      const sys = system ?? opts.system;
      let out = sys !== undefined ? `<|system|>\n${pyStrip(sys)}\n` : "";
      for (const m of turns) out += m.role === "user" ? `<|user|>\n${pyStrip(m.content)}\n` : `<|assistant|>\n${pyStrip(m.content)}${EOS}\n`;
      return gen ? out + "<|assistant|>\n" : pyStrip(out);
    }
  }
}

/** Render an instruction record in a chat format (Alpaca natively, the others as a single exchange). */
export function renderInstruction(format: ChatFormat, ex: InstructionLike, opts: RenderOptions = {}): string {
  if (format === "alpaca" || format === "alpaca_lora") return renderAlpaca(ex, opts.generationPrompt === true, format, opts.eos);
  return renderChat(format, instructionMessages(ex), opts);
}

/**
 * Fill a prompt template: `{field}` is the record's field (a missing or null field is empty, a non-string value is
 * its JSON), `{{` and `}}` are literal braces.
 */
export function fillTemplate(text: string, record: Readonly<Record<string, unknown>>): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if ((c === "{" || c === "}") && text[i + 1] === c) {
      out += c;
      i++;
      continue;
    }
    if (c === "{") {
      const close = text.indexOf("}", i);
      if (close < 0) throw new FormatError(`unclosed "{" at offset ${i} of the template`);
      const v = record[text.slice(i + 1, close)];
      out += v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
      i = close;
      continue;
    }
    out += c;
  }
  return out;
}

/** A prompt template's training text (prompt, response, EOS when asked) or its prompt alone. */
export function renderPromptTemplate(t: PromptTemplate, record: Readonly<Record<string, unknown>>, generationPrompt: boolean, eos: string = EOS): string {
  const prompt = fillTemplate(t.text, record);
  return generationPrompt ? prompt : prompt + fillTemplate(t.response, record) + (t.eos ? eos : "");
}

export function isChatTemplate(t: Template): t is ChatTemplate {
  return typeof (t as ChatTemplate).format === "string";
}

/** A template value read from an artifact, checked. */
export function asTemplate(v: unknown): Template {
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (typeof o["format"] === "string" && (CHAT_FORMATS as readonly string[]).includes(o["format"])) {
      return { format: o["format"] as ChatFormat, ...(typeof o["system"] === "string" ? { system: o["system"] } : {}) };
    }
    if (typeof o["text"] === "string") return { text: o["text"], response: typeof o["response"] === "string" ? o["response"] : "{output}", eos: o["eos"] !== false };
  }
  throw new FormatError(`not a template this version can render: ${JSON.stringify(v)?.slice(0, 200)}`);
}

/** The messages of a chat record, checked. */
export function recordMessages(r: RecordValue): Message[] {
  const msgs = r["messages"] as unknown[];
  msgs.forEach((m, k) => {
    if (m === null || typeof m !== "object" || typeof (m as Message).role !== "string" || typeof (m as Message).content !== "string") throw new FormatError(`message ${k + 1} is not a {role, content} pair of strings`);
  });
  return msgs as Message[];
}

/** The instruction, input and output of an instruction record, checked. */
export function recordInstruction(r: RecordValue): { instruction: string; input?: string; output?: string } {
  const input = r["input"];
  const output = r["output"];
  if (input !== undefined && input !== null && typeof input !== "string") throw new FormatError("field `input` is not a string");
  if (output !== undefined && output !== null && typeof output !== "string") throw new FormatError("field `output` is not a string");
  return { instruction: r["instruction"] as string, ...(typeof input === "string" ? { input } : {}), ...(typeof output === "string" ? { output } : {}) };
}
