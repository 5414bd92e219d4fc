import { describe, expect, it } from "vitest";
import {
  alpacaPrompt,
  fillTemplate,
  FormatError,
  instructionMessages,
  renderChat,
  renderInstruction,
  renderPromptTemplate,
  type Message,
} from "../src/stages/support/chat-formats.js";

// Expected strings are written out by hand from the domain facts (sections 4 and 8), not built from the module's
// constants, so a typo in either shows.
const ALPACA_INPUT_HEAD =
  "Below is an instruction that describes a task, paired with an input that provides further context. " +
  "Write a response that appropriately completes the request.\n\n";
const ALPACA_NO_INPUT_HEAD = "Below is an instruction that describes a task. " + "Write a response that appropriately completes the request.\n\n";
const VICUNA =
  "A chat between a curious user and an artificial intelligence assistant. " + "The assistant gives helpful, detailed, and polite answers to the user's questions.";

const one: Message[] = [
  { role: "user", content: "Hi" },
  { role: "assistant", content: "Hello" },
];
const two: Message[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi" },
  { role: "assistant", content: "Hello" },
  { role: "user", content: "Again" },
  { role: "assistant", content: "Sure" },
];

describe("alpaca (Stanford Alpaca's train.py)", () => {
  it("with an input, byte for byte: prompt + output + EOS, nothing between the prompt and the output", () => {
    expect(renderInstruction("alpaca", { instruction: "Sort these.", input: "3, 1, 2", output: "1, 2, 3" })).toBe(
      ALPACA_INPUT_HEAD + "### Instruction:\nSort these.\n\n### Input:\n3, 1, 2\n\n### Response:1, 2, 3</s>",
    );
  });

  it("without an input (missing or empty), byte for byte", () => {
    const want = ALPACA_NO_INPUT_HEAD + "### Instruction:\nName a color.\n\n### Response:Red.</s>";
    expect(renderInstruction("alpaca", { instruction: "Name a color.", output: "Red." })).toBe(want);
    expect(renderInstruction("alpaca", { instruction: "Name a color.", input: "", output: "Red." })).toBe(want);
  });

  it("the prompt ends with \"### Response:\" and no newline", () => {
    expect(renderInstruction("alpaca", { instruction: "Name a color.", output: "Red." }, { generationPrompt: true })).toBe(ALPACA_NO_INPUT_HEAD + "### Instruction:\nName a color.\n\n### Response:");
    expect(alpacaPrompt("I", "X")).toBe(ALPACA_INPUT_HEAD + "### Instruction:\nI\n\n### Input:\nX\n\n### Response:");
  });

  it("text with $ and braces is copied literally", () => {
    expect(alpacaPrompt("Cost $& {input} $1", "{instruction}")).toBe(ALPACA_INPUT_HEAD + "### Instruction:\nCost $& {input} $1\n\n### Input:\n{instruction}\n\n### Response:");
  });

  it("a single-exchange chat renders as the no-input prompt; a longer chat is refused", () => {
    expect(renderChat("alpaca", one)).toBe(ALPACA_NO_INPUT_HEAD + "### Instruction:\nHi\n\n### Response:Hello</s>");
    expect(() => renderChat("alpaca", two)).toThrow(FormatError);
  });
});

describe("alpaca_lora (alpaca-lora's templates/alpaca.json)", () => {
  it("the same prompts ending \"### Response:\\n\", then output and EOS", () => {
    expect(renderInstruction("alpaca_lora", { instruction: "Sort these.", input: "3, 1, 2", output: "1, 2, 3" })).toBe(
      ALPACA_INPUT_HEAD + "### Instruction:\nSort these.\n\n### Input:\n3, 1, 2\n\n### Response:\n1, 2, 3</s>",
    );
    expect(renderInstruction("alpaca_lora", { instruction: "Name a color." }, { generationPrompt: true })).toBe(ALPACA_NO_INPUT_HEAD + "### Instruction:\nName a color.\n\n### Response:\n");
    expect(renderChat("alpaca_lora", one)).toBe(ALPACA_NO_INPUT_HEAD + "### Instruction:\nHi\n\n### Response:\nHello</s>");
  });
});

describe("vicuna v1.1", () => {
  it("single turn with the default system prompt", () => {
    expect(renderChat("vicuna", one)).toBe(`${VICUNA} USER: Hi ASSISTANT: Hello</s>`);
  });

  it("multi-turn, the chat's own system message, generation prompt", () => {
    expect(renderChat("vicuna", two)).toBe("Be brief. USER: Hi ASSISTANT: Hello</s>USER: Again ASSISTANT: Sure</s>");
    expect(renderChat("vicuna", two, { generationPrompt: true })).toBe("Be brief. USER: Hi ASSISTANT: Hello</s>USER: Again ASSISTANT:");
  });

  it("the template's system replaces the default", () => {
    expect(renderChat("vicuna", one, { system: "S." })).toBe("S. USER: Hi ASSISTANT: Hello</s>");
  });

  it("non-alternating turns are refused", () => {
    expect(() => renderChat("vicuna", [{ role: "user", content: "a" }, { role: "user", content: "b" }])).toThrow(FormatError);
  });
});

describe("chatml", () => {
  it("single turn, no system by default", () => {
    expect(renderChat("chatml", one)).toBe("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n");
  });

  it("multi-turn with system, and the generation prompt", () => {
    const head = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nAgain<|im_end|>\n";
    expect(renderChat("chatml", two)).toBe(head + "<|im_start|>assistant\nSure<|im_end|>\n");
    expect(renderChat("chatml", two, { generationPrompt: true })).toBe(head + "<|im_start|>assistant\n");
  });
});

describe("llama-2", () => {
  it("single turn without a system prompt", () => {
    expect(renderChat("llama2", one)).toBe("<s>[INST] Hi [/INST] Hello </s>");
  });

  it("multi-turn: system merged into the first user turn, BOS/EOS around each exchange", () => {
    expect(renderChat("llama2", two)).toBe("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] Again [/INST] Sure </s>");
  });

  it("the last turn of a generation prompt has BOS and no EOS", () => {
    expect(renderChat("llama2", two, { generationPrompt: true })).toBe("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] Again [/INST]");
  });

  it("strips user and answer texts as Meta's reference code does", () => {
    expect(renderChat("llama2", [{ role: "user", content: " Hi\n" }, { role: "assistant", content: "\nHello " }])).toBe("<s>[INST] Hi [/INST] Hello </s>");
  });
});

describe("tulu", () => {
  it("single turn: no newline after the final assistant turn", () => {
    expect(renderChat("tulu", one)).toBe("<|user|>\nHi\n<|assistant|>\nHello</s>");
  });

  it("multi-turn with system", () => {
    expect(renderChat("tulu", two)).toBe("<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\nHello</s>\n<|user|>\nAgain\n<|assistant|>\nSure</s>");
  });

  it("generation prompt", () => {
    expect(renderChat("tulu", two, { generationPrompt: true })).toBe("<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\nHello</s>\n<|user|>\nAgain\n<|assistant|>\n");
  });

  it("an instruction record is one exchange, the input after a blank line", () => {
    expect(renderInstruction("tulu", { instruction: "Translate.", input: "chat", output: "cat" })).toBe("<|user|>\nTranslate.\n\nchat\n<|assistant|>\ncat</s>");
    expect(instructionMessages({ instruction: "I", output: "O" }, "S")).toEqual([
      { role: "system", content: "S" },
      { role: "user", content: "I" },
      { role: "assistant", content: "O" },
    ]);
  });
});

describe("prompt templates", () => {
  it("fills fields, keeps doubled braces literal, leaves missing fields empty", () => {
    expect(fillTemplate("Q: {question} {{x}} [{missing}]", { question: "why?" })).toBe("Q: why? {x} []");
  });

  it("prompt + response + EOS, or the prompt alone", () => {
    const t = { text: "Response:\n{output}\n\nInstruction:\n", response: "{instruction}", eos: true };
    const r = { instruction: "Say hi.", output: "Hi!" };
    expect(renderPromptTemplate(t, r, false)).toBe("Response:\nHi!\n\nInstruction:\nSay hi.</s>");
    expect(renderPromptTemplate(t, r, true)).toBe("Response:\nHi!\n\nInstruction:\n");
    expect(renderPromptTemplate({ ...t, eos: false }, r, false)).toBe("Response:\nHi!\n\nInstruction:\nSay hi.");
  });
});
