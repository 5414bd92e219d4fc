import { z } from "zod";
import { ref } from "../schema.js";
import { dataInput, doc, posInt, promptText, seed, lazyEntries } from "../common.js";
import type { StageKind } from "../registry.js";

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
      doc: "A built-in chat format, byte-exact: alpaca (Stanford Alpaca's train.py prompt, with and without an Input section, ending `### Response:` with no newline; the training text is prompt + output + EOS), alpaca_lora (alpaca-lora's variant: the prompt ends `### Response:\\n`), vicuna (v1.1), chatml, llama2 ([INST] with <<SYS>>), tulu (<|user|>/<|assistant|>). Loss masking covers the assistant text and its EOS.",
      inputs: [],
      output: "Template",
      params: () => z.object({
        name: z.enum(["alpaca", "alpaca_lora", "vicuna", "chatml", "llama2", "tulu"]).describe("Which format."),
        system: z
          .string()
          .optional()
          .describe("System message used when a chat has none; default the format's own (Vicuna's standard system prompt; none for the others)."),
      }),
      version: "2", // 2: alpaca_lora added; alpaca without the newline,
    },
    {
      name: "hf_chat_template",
      category: "template",
      doc: "The Jinja chat template of a Hugging Face tokenizer (`chat_template` in tokenizer_config.json), rendered as transformers' apply_chat_template does; the most exact choice when the model ships one. The template sees the config's special tokens (bos_token, eos_token, ...), add_generation_prompt and raise_exception; strftime_now only when `date` is set, so that renders do not depend on the day they ran.",
      inputs: [],
      output: "Template",
      params: () => z.object({
        path: z.string().min(1).describe("Tokenizer directory holding tokenizer_config.json, or the .json file itself, relative to the recipe file."),
        name: z.string().min(1).optional().describe("Name of the template when the tokenizer defines several; default the default one."),
        date: z
          .string()
          .regex(/^\d{4}-\d{2}-\d{2}$/, "a YYYY-MM-DD date")
          .optional()
          .describe("The date strftime_now renders (YYYY-MM-DD), for templates that print today's date (Llama 3.x); unset, strftime_now is undefined."),
      }),
      version: "2",
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
      doc: "Instantiates Flan-style instruction templates over raw Flan examples: each example gets one template of its task, drawn with the seed, in one of the variants (zero-/few-shot, with/without options), drawn 1:1. A template fills `{field}` from the record (e.g. {premise}) and `{options_}` with the record's `options` as \"OPTIONS:\\n- a\\n- b\"; few-shot prompts put exemplars of the same task first, Flan's way. Templates come from a JSON file ({task: [{inputs, targets, variants?, inputs_prefix?, targets_prefix?, x_y_delimiter?, example_separator?}]}) or, with templates = \"std\", from itp's own sets (anli, rte, boolq, sst2, xsum, translation, copa; written for itp in Flan's shape: Flan's own texts are not shipped).",
      inputs: [dataInput("Dataset<FlanExample>", "Raw examples (any record with the fields the templates use); `task` selects the template set when the task parameter is not given.")],
      output: "Dataset<Instruction>",
      params: () => z.object({
        templates: z.string().min(1).describe("Path of the templates file, relative to the recipe file; \"std\" for itp's own template sets (stdlib/flan_templates)."),
        task: z.string().min(1).optional().describe("Template set to use for every example; default each example's `task` field."),
        variants: z
          .array(z.enum(FLAN_VARIANTS))
          .min(1)
          .default([...FLAN_VARIANTS])
          .describe("Template variants, mixed 1:1 (Flan 2022: flan2021 and t0 use all four; cot, niv2 and dialog use zs_opt and fs_opt)."),
        shots: posInt().max(16).default(3).describe("Exemplars in a few-shot prompt (default 3: our choice; not stated by the Flan papers)."),
        seed: seed(),
      }),
      version: "2",
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
      version: "2", // 2: alpaca is train.py's prompt (no newline after "### Response:"),
    },
  ]);
}
