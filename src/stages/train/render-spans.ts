import type { RecordValue } from "../../core/records.js";
import {
  alpacaPrompt,
  fillTemplate,
  instructionMessages,
  isChatTemplate,
  recordInstruction,
  recordMessages,
  renderChat,
  type Message,
  type Template,
} from "../support/chat-formats.js";
import { isHfChatTemplate, renderHfChat, type HfChatTemplate } from "../support/hf-chat-template.js";

/**
 * A training example as text, with the character spans that carry the loss. The spans of a chat's assistant turns
 * come from the template itself, the way open-instruct finds them with apply_chat_template: an assistant message i
 * spans from the end of the conversation before it rendered with the generation prompt, to the end of the
 * conversation through it. So the span holds the answer and whatever the template writes after it as part of that
 * turn (EOS, `<|im_end|>\n`), never the header that cues it (`<|assistant|>\n`). Both renders must be prefixes of
 * the whole text; a template for which they are not is reported, not guessed at.
 */
export type TrainTemplate = Template | HfChatTemplate;

export interface SpannedText {
  readonly text: string;
  /** [start, end) character offsets of the text that carries loss, in order, not overlapping. */
  readonly spans: readonly (readonly [number, number])[];
}

/** The special tokens' texts of the tokenizer (what the built-in formats write for BOS and EOS). */
export interface SpecialTexts {
  readonly bos?: string | undefined;
  readonly eos: string;
}

/** Which messages of a chat carry the loss: every assistant turn (sft) or the final answer only (preferences). */
type Turns = "assistant" | "last";

/** A record that cannot become a training example (the caller adds which record), with a hint when one helps. */
export class ExampleError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

type RenderMessages = (messages: readonly Message[], generationPrompt: boolean) => string;

function messageRenderer(t: TrainTemplate, sp: SpecialTexts): RenderMessages | undefined {
  if (isHfChatTemplate(t)) return (m, gen) => renderHfChat(t, m, gen);
  if (isChatTemplate(t)) return (m, gen) => renderChat(t.format, m, { system: t.system, generationPrompt: gen, eos: sp.eos, ...(sp.bos !== undefined ? { bos: sp.bos } : {}) });
  return undefined;
}

/** A chat rendered, with the spans of its assistant messages (all of them, or the last one only). */
function chatSpans(render: RenderMessages, msgs: readonly Message[], turns: Turns): SpannedText {
  const text = render(msgs, false);
  const spans: [number, number][] = [];
  msgs.forEach((m, i) => {
    if (m.role !== "assistant" || (turns === "last" && i !== msgs.length - 1)) return;
    const before = render(msgs.slice(0, i), true);
    const through = render(msgs.slice(0, i + 1), false);
    if (!text.startsWith(before) || !text.startsWith(through) || through.length < before.length) {
      throw new ExampleError(
        `the template does not render the conversation up to message ${i + 1} as the start of the whole conversation, so the assistant's part of the text cannot be located`,
        'use loss_on = "all", or a template that renders turns one after another (chat_template(name: ...))',
      );
    }
    if (through.length > before.length) spans.push([before.length, through.length]);
  });
  return { text, spans };
}

/** Is this record a plain text (`text`, and neither `messages` nor `instruction`)? Text trains on all its tokens. */
function isText(r: RecordValue): boolean {
  return typeof r["text"] === "string" && !Array.isArray(r["messages"]) && typeof r["instruction"] !== "string";
}

/** One supervised example: a chat, an instruction (a one-turn chat), a text, or any record under a prompt template. */
export function renderExample(t: TrainTemplate, r: RecordValue, lossOn: "assistant" | "all", sp: SpecialTexts): SpannedText {
  const spanned = renderSupervised(t, r, sp);
  return lossOn === "all" ? { text: spanned.text, spans: spanned.text.length > 0 ? [[0, spanned.text.length]] : [] } : spanned;
}

function renderSupervised(t: TrainTemplate, r: RecordValue, sp: SpecialTexts): SpannedText {
  if (isText(r)) {
    // A document: all of it trains, and it ends with EOS (so that packed documents are told apart), as TRL does.
    const doc = r["text"] as string;
    if (doc.length === 0) return { text: "", spans: [] };
    const text = doc.endsWith(sp.eos) ? doc : doc + sp.eos;
    return { text, spans: [[0, text.length]] };
  }
  const render = messageRenderer(t, sp);
  if (!render) {
    // A prompt template: the prompt over the record's fields, then the response (and EOS) that carries the loss.
    const pt = t as Exclude<Template, { format: string }>;
    const prompt = fillTemplate(pt.text, r);
    const text = prompt + fillTemplate(pt.response, r) + (pt.eos ? sp.eos : "");
    return { text, spans: text.length > prompt.length ? [[prompt.length, text.length]] : [] };
  }
  if (Array.isArray(r["messages"])) return chatSpans(render, recordMessages(r), "assistant");
  if (typeof r["instruction"] === "string") {
    const ex = recordInstruction(r);
    if (ex.output === undefined) throw new ExampleError("an instruction record without `output` has nothing to train on");
    if (!isHfChatTemplate(t) && isChatTemplate(t) && (t.format === "alpaca" || t.format === "alpaca_lora")) {
      // Alpaca's own prompt, with its Input section: not the one-turn chat the other formats make of an instruction.
      const prompt = alpacaPrompt(ex.instruction, ex.input, t.format);
      const text = prompt + ex.output + sp.eos;
      return { text, spans: [[prompt.length, text.length]] };
    }
    return chatSpans(render, instructionMessages(ex), "assistant");
  }
  throw new ExampleError(
    "neither a chat (`messages`), an instruction (`instruction`) nor a text (`text`)",
    "training data is Dataset<Chat | Instruction | Text>; convert other shapes first (e.g. instruction_to_chat, sharegpt_to_chat)",
  );
}

/** A preference example: the same prompt with the chosen and with the rejected answer; only the answer carries loss. */
export function renderPreference(t: TrainTemplate, r: RecordValue, sp: SpecialTexts): { chosen: SpannedText; rejected: SpannedText } {
  const prompt = r["prompt"];
  const chosen = r["chosen"];
  const rejected = r["rejected"];
  if (typeof prompt !== "string" && !Array.isArray(chosen)) throw new ExampleError("a preference record needs `prompt` (a string), `chosen` and `rejected`");
  if (chosen === undefined || chosen === null || rejected === undefined || rejected === null) {
    throw new ExampleError(`a preference record needs both \`chosen\` and \`rejected\`; this one lacks \`${chosen === undefined || chosen === null ? "chosen" : "rejected"}\``);
  }
  const render = messageRenderer(t, sp);
  if (typeof chosen === "string" && typeof rejected === "string") {
    if (typeof prompt !== "string") throw new ExampleError("`prompt` is not a string");
    if (!render) {
      const pt = t as Exclude<Template, { format: string }>;
      const p = fillTemplate(pt.text, r);
      const one = (answer: string): SpannedText => {
        const text = p + answer + (pt.eos ? sp.eos : "");
        return { text, spans: text.length > p.length ? [[p.length, text.length]] : [] };
      };
      return { chosen: one(chosen), rejected: one(rejected) };
    }
    const user: Message = { role: "user", content: prompt };
    return {
      chosen: chatSpans(render, [user, { role: "assistant", content: chosen }], "last"),
      rejected: chatSpans(render, [user, { role: "assistant", content: rejected }], "last"),
    };
  }
  if (Array.isArray(chosen) && Array.isArray(rejected)) {
    if (!render) throw new ExampleError("message-list preferences (PreferencePair) need a chat template, not a prompt template");
    const side = (name: string, v: unknown[]): SpannedText => {
      const msgs = recordMessages({ messages: v } as RecordValue);
      if (msgs.length === 0 || msgs[msgs.length - 1]!.role !== "assistant") throw new ExampleError(`\`${name}\` must end with the assistant's answer`);
      return chatSpans(render, msgs, "last");
    };
    return { chosen: side("chosen", chosen), rejected: side("rejected", rejected) };
  }
  throw new ExampleError("`chosen` and `rejected` must both be strings (Preference) or both message lists (PreferencePair)");
}

/** Records of every shape a template renders, with placeholder special tokens: see {@link templateRenders}. */
const PROBES: readonly RecordValue[] = [
  {
    messages: [
      { role: "system", content: "SYSTEM" },
      { role: "user", content: "USER 1" },
      { role: "assistant", content: "ASSISTANT 1" },
      { role: "user", content: "USER 2" },
      { role: "assistant", content: "ASSISTANT 2" },
    ],
  },
  { messages: [{ role: "user", content: "USER" }, { role: "assistant", content: "ASSISTANT" }] },
  { instruction: "INSTRUCTION", input: "INPUT", output: "OUTPUT" },
  { instruction: "INSTRUCTION", output: "OUTPUT" },
  { text: "TEXT" },
];
const PROBE_PREFERENCES: readonly RecordValue[] = [
  { prompt: "PROMPT", chosen: "CHOSEN", rejected: "REJECTED" },
  {
    chosen: [{ role: "user", content: "USER" }, { role: "assistant", content: "CHOSEN" }],
    rejected: [{ role: "user", content: "USER" }, { role: "assistant", content: "REJECTED" }],
  },
];
const PROBE_SPECIAL: SpecialTexts = { bos: "<BOS>", eos: "<EOS>" };

/**
 * What a template makes of records of every shape (texts and loss spans, or the error a shape gets): the part of a
 * token artifact's key that stands for the template. A built-in format is known by its name, but its text lives in
 * this code: keyed by what it renders, an artifact made with an older text of the same format is not reused.
 */
export function templateRenders(t: TrainTemplate): unknown[] {
  const attempt = (f: () => unknown) => {
    try {
      return f();
    } catch (e) {
      return { error: e instanceof Error ? e.message : String(e) };
    }
  };
  return [
    ...PROBES.map((r) => attempt(() => renderExample(t, r, "assistant", PROBE_SPECIAL))),
    ...PROBE_PREFERENCES.map((r) => attempt(() => renderPreference(t, r, PROBE_SPECIAL))),
  ];
}
