import { z } from "zod";
import { ref } from "./schema.js";
import { dataInput, doc, posInt, promptText, seed, lazyEntries } from "./common.js";
import type { StageKind } from "./registry.js";

/**
 * Templates: how records become model text. `chat_template`, `hf_chat_template` and `prompt_template` produce a
 * `Template` value (used by `render`, `sft`, `evaluate`); `flan_templates` instantiates Flan-style template sets over
 * Flan examples; `render` applies a Template to a dataset.
 */
export const FLAN_VARIANTS = ["zs_opt", "zs_noopt", "fs_opt", "fs_noopt"] as const;

export function templateStages(): StageKind[] {
  return lazyEntries<StageKind>([
    {
      name: "chat_template",
      category: "template",
      doc: "A built-in chat format, byte-exact: alpaca (the Stanford Alpaca prompt, with and without an Input section), vicuna (v1.1), chatml, llama2 ([INST] with <<SYS>>), tulu (<|user|>/<|assistant|>). Loss masking covers the assistant text and its EOS.",
      inputs: [],
      output: "Template",
      params: () => z.object({
        name: z.enum(["alpaca", "vicuna", "chatml", "llama2", "tulu"]).describe("Which format."),
        system: z
          .string()
          .optional()
          .describe("System message used when a chat has none; default the format's own (Vicuna's standard system prompt; none for the others)."),
      }),
      version: "1",
    },
    {
      name: "hf_chat_template",
      category: "template",
      doc: "The Jinja chat template of a Hugging Face tokenizer (`chat_template` in tokenizer_config.json), rendered faithfully; the most exact choice when the model ships one.",
      inputs: [],
      output: "Template",
      params: () => z.object({
        path: z.string().min(1).describe("Tokenizer directory holding tokenizer_config.json, relative to the recipe file."),
        name: z.string().min(1).optional().describe("Name of the template when the tokenizer defines several; default the default one."),
      }),
      version: "1",
    },
    {
      name: "prompt_template",
      category: "template",
      doc: "A template over record fields: `{field}` is replaced by the field's value, `{{` and `}}` are literal braces. `text` renders the prompt; `response` renders the target (the trained tokens).",
      inputs: [],
      output: "Template",
      params: () => z.object({
        text: promptText().describe("Prompt text with {field} placeholders (a raw string \"\"\"...\"\"\" keeps newlines)."),
        response: promptText().default("{output}").describe("Target text with {field} placeholders, appended after the prompt."),
        eos: z.boolean().default(true).describe("Append the tokenizer's end-of-sequence token after the response."),
      }),
      version: "1",
    },
    {
      name: "flan_templates",
      category: "template",
      doc: "Instantiates Flan-style instruction templates over raw Flan examples: each example gets one template of its task, drawn with the seed, in one of the variants (zero-/few-shot, with/without options), the variants mixed in equal proportions. Templates are read from a user-supplied file (JSON: {task: [{inputs, targets, variants?}]}); Flan's own template texts are not shipped.",
      inputs: [dataInput("Dataset<FlanExample>", "Raw examples; `task` selects the template set when the task parameter is not given.")],
      output: "Dataset<Instruction>",
      params: () => z.object({
        templates: z.string().min(1).describe("Path of the templates file, relative to the recipe file."),
        task: z.string().min(1).optional().describe("Template set to use for every example; default each example's `task` field."),
        variants: z
          .array(z.enum(FLAN_VARIANTS))
          .min(1)
          .default([...FLAN_VARIANTS])
          .describe("Template variants, mixed 1:1 (Flan 2022: flan2021 and t0 use all four; cot, niv2 and dialog use zs_opt and fs_opt)."),
        shots: posInt().max(16).default(3).describe("Exemplars in a few-shot prompt (default 3: our choice; not stated by the Flan papers)."),
        seed: seed(),
      }),
      version: "1",
    },
    {
      name: "render",
      category: "template",
      doc: "Renders each record with a template into plain text (the full training string: prompt, response and EOS).",
      inputs: [dataInput("Dataset<Chat | Instruction>", "Records to render.")],
      output: "Dataset<Text>",
      params: () => z.object({
        template: doc(ref("Template"), "The template to apply."),
        generation_prompt: z.boolean().default(false).describe("Render only the prompt, ending with the generation prompt (for inference), instead of the full text."),
      }),
      version: "1",
    },
  ]);
}
