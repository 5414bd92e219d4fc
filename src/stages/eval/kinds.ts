import { z } from "zod";
import { field, ref, value } from "../schema.js";
import { dataInput, doc, natInt, posInt, seed, lazyEntries, promptText, regexSource, templatePlaceholders } from "../common.js";
import type { Problem, StageKind, ValueFunction } from "../registry.js";

/** The `{field}` placeholders of a prompt (a malformed prompt is the schema's error, reported already). */
const placeholders = (text: unknown): string[] => {
  const r = typeof text === "string" ? templatePlaceholders(text) : { fields: [] };
  return "error" in r ? [] : [...new Set(r.fields)];
};

/**
 * Evaluation: `evaluate(model) { tasks = [mmlu(mmlu_test, dev: mmlu_dev), gsm8k(gsm8k_test, train: gsm8k_train)] }`
 * runs benchmark tasks (value functions of category "eval_task") against a model and writes a Report. A task is a
 * value over ordinary dataset stages (`hf_dataset` at a pinned revision, or a local file in the benchmark's own
 * shape); the datasets are inputs of the `evaluate` stage, so editing one reruns it. The template used to prompt the
 * model is part of the report and of the cache key, so results reproduce.
 */
const limit = () => posInt().optional().describe("Evaluate only the first n examples (for smoke tests; the report says so).");
const name = () =>
  z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, "a task name: letters, digits, `_`, `.`, `-`")
    .optional()
    .describe("The task's name in the report (default the function's name); two tasks of one `evaluate` need different names.");

/** The role prefix of the training datasets an `evaluate` stage reads for its contamination counts. */
export const TRAIN_DATA_ROLE = "train_data:";

export function evalStages(): StageKind[] {
  return lazyEntries<StageKind>([
    {
      name: "evaluate",
      category: "eval",
      doc: "Runs evaluation tasks against a model and writes a report: per task its metrics with counts and standard errors, the prompts' template, every example (prompt, output, extracted answer, gold, verdict), and how many test items share an n-gram with the model's training data when the recipe holds it.",
      inputs: [dataInput("Model", "The model to evaluate.", "model")],
      output: "Report",
      params: () => z.object({
        tasks: z.array(value("eval_task")).min(1).describe("Tasks to run, e.g. [mmlu(mmlu_test, dev: mmlu_dev), gsm8k(gsm8k_test, train: gsm8k_train), ifeval(ifeval_data)]."),
        template: ref("Template")
          .optional()
          .describe("Chat template that wraps generation prompts; default the one in the model's folder (a trained model's tokenizer_config.json), else none: prompts are sent as plain text."),
        batch_size: posInt().default(8).describe("Requests sent to the model at a time (default 8: our choice)."),
        max_tokens: posInt().default(1024).describe("Longest generated answer for generative tasks (default 1024: our choice)."),
        contamination_ngram: posInt().default(13).describe("N-gram length in words of the contamination counts (the `decontaminate` filter's measure; default 13)."),
        seed: seed("Seed of sampling (generation is greedy; few-shot selection has each task's own seed)."),
      }),
      refine: (p) => {
        const tasks = (p["tasks"] ?? []) as { fn: string; name?: string }[];
        const seen = new Set<string>();
        const problems: Problem[] = [];
        for (const t of tasks) {
          const n = t.name ?? t.fn;
          if (seen.has(n)) problems.push({ path: ["tasks"], message: `two tasks are named \`${n}\`: give one of them another \`name\`` });
          seen.add(n);
        }
        return problems;
      },
      trainingData: "model",
      version: "1",
    },
  ]);
}

export function evalTasks(): ValueFunction[] {
  return lazyEntries<ValueFunction>([
    {
      name: "mmlu",
      category: "eval_task",
      doc: "MMLU (cais/mmlu rows {question, subject, choices, answer}; test 14,042): the hendrycks/test prompt per subject (\"The following are multiple choice questions (with answers) about <subject>.\\n\\n\", then each question with \"\\nA. ...\" choices and \"\\nAnswer:\"), the first `shots` dev examples of the subject as shots (lm-evaluation-harness's bytes with `style: \"lm-eval\"`); prediction is the argmax of the log-probabilities of \" A\"/\" B\"/\" C\"/\" D\"; accuracy per subject, per category and overall (micro and macro).",
      positional: ["data"],
      params: () => z.object({
        data: doc(ref("Dataset<McqExample>"), "The questions evaluated (cais/mmlu's test split, or a file of its rows)."),
        dev: ref("Dataset<McqExample>").optional().describe("Where the shots come from (cais/mmlu's dev split: 5 per subject); needed when shots > 0."),
        shots: natInt().max(5).default(5).describe("Few-shot examples per subject, the first ones of the dev set (as hendrycks/test; default 5)."),
        subjects: z.array(z.string().min(1)).min(1).optional().describe("Subjects to evaluate (underscore names, e.g. high_school_physics); default all in the data."),
        style: z.enum(["hendrycks", "lm-eval"]).default("hendrycks").describe("The prompt's bytes: `hendrycks` (hendrycks/test's, two spaces after \"about\"), or `lm-eval` (lm-evaluation-harness's: one space, questions stripped)."),
        limit: limit(),
        name: name(),
      }).refine((p) => p.shots === 0 || p.dev !== undefined, { message: "shots come from the dev split: give `dev` (e.g. std/evals' mmlu_dev), or set shots: 0", path: ["shots"] }),
    },
    {
      name: "gsm8k",
      category: "eval_task",
      doc: "GSM8K (openai/gsm8k rows {question, answer}; test 1,319): lm-evaluation-harness's prompt \"Question: <q>\\nAnswer:\", shots from the train split with their worked solutions (\"\\n\\n\" between them), greedy generation stopped at \"Question:\", \"</s>\" or \"<|im_end|>\"; exact match after the strict (`#### n`) and the flexible (last number) extraction.",
      positional: ["data"],
      params: () => z.object({
        data: doc(ref("Dataset<MathExample>"), "The problems evaluated (openai/gsm8k's test split, or a file of its rows)."),
        train: ref("Dataset<MathExample>").optional().describe("Where the shots come from (openai/gsm8k's train split); needed when shots > 0."),
        variant: z
          .enum(["gsm8k", "gsm8k-cot"])
          .default("gsm8k")
          .describe("`gsm8k`: \"Question: ...\\nAnswer:\" with shots from `train` and their full solutions; `gsm8k-cot`: \"Q: ...\\nA:\" with the 8 fixed chain-of-thought exemplars of Wei et al. (strict match reads \"The answer is n.\")."),
        shots: natInt().max(16).default(8).describe("Few-shot examples (default 8: our choice, the common chain-of-thought setting; lm-evaluation-harness's gsm8k uses 5; gsm8k-cot has 8)."),
        seed: z.number().int().default(1234).describe("Seed of the shots' selection from the train set, drawn for each question in turn (default 1234, lm-evaluation-harness's seed)."),
        limit: limit(),
        name: name(),
      })
        .refine((p) => p.variant !== "gsm8k-cot" || p.shots <= 8, { message: "gsm8k-cot has 8 exemplars", path: ["shots"] })
        .refine((p) => p.variant !== "gsm8k" || p.shots === 0 || p.train !== undefined, { message: "shots come from the train split: give `train` (e.g. std/evals' gsm8k_train), or set shots: 0", path: ["shots"] }),
    },
    {
      name: "ifeval",
      category: "eval_task",
      doc: "IFEval (google/IFEval rows {key, prompt, instruction_id_list, kwargs}; 541 prompts, 25 verifiable instruction types): the prompt alone, greedy generation; prompt-level and instruction-level accuracy, strict (non-empty response passing the check) and loose (any of the 8 response variants passes), and accuracy per instruction id.",
      positional: ["data"],
      params: () => z.object({
        data: doc(ref("Dataset<IfevalPrompt>"), "The prompts evaluated (google/IFEval's train split, or a file of its rows)."),
        mode: z.enum(["strict", "loose", "both"]).default("both").describe("Which accuracies to report."),
        limit: limit(),
        name: name(),
      }),
    },
    {
      name: "alpaca_eval",
      category: "eval_task",
      doc: "AlpacaEval (tatsu-lab/alpaca_eval rows {instruction, output, generator}; 805 instructions): the judge compares the model's answer with the baseline's in both orders (position bias cancels); win rate with standard error (preference 1 = baseline, 2 = model, 1.5 = draw, mapped to 0/1/0.5) and the length-controlled win rate (AlpacaEval 2's GLM with the length term at 0).",
      positional: ["data"],
      params: () => z.object({
        data: doc(ref("Dataset<AlpacaEvalExample>"), "The instructions with the baseline's outputs (tatsu-lab/alpaca_eval's eval split, or a file of its rows)."),
        judge: doc(ref("Model"), "The judge model."),
        baseline: ref("Model").optional().describe("Model whose answers are the baseline; default the outputs in the data."),
        length_controlled: z.boolean().default(true).describe("Also report the length-controlled win rate."),
        limit: limit(),
        name: name(),
      }),
    },
    {
      name: "mt_bench",
      category: "eval_task",
      doc: "MT-Bench (FastChat's question.jsonl rows {question_id, category, turns, reference?}; 80 two-turn questions in 8 categories): the model answers both turns, the judge rates each turn 1-10 (parsed from [[rating]]), reference-guided for math, reasoning and coding; the score is the mean over turns, also per category and per turn.",
      positional: ["data"],
      params: () => z.object({
        data: doc(ref("Dataset<MtBenchQuestion>"), "The questions (FastChat's data/mt_bench/question.jsonl)."),
        judge: doc(ref("Model"), "The judge model."),
        limit: limit(),
        name: name(),
      }),
    },
    {
      name: "multiple_choice",
      category: "eval_task",
      doc: "A multiple-choice task of your own: each record's prompt (the question filled into `prompt`) is scored with each choice as its continuation (\" \" + choice) by log-likelihood; the prediction is the most likely choice. Accuracy, and accuracy with the log-likelihood divided by the choice's length in characters (lm-evaluation-harness's acc_norm).",
      positional: ["data"],
      params: () => z.object({
        data: doc(ref("Dataset<Json>"), "The questions."),
        question: field().default("question").describe("Field holding the question (default `question`)."),
        choices: field().default("choices").describe("Field holding the list of choices (strings)."),
        answer: field().default("answer").describe("Field holding the correct choice: its index (from 0), its text, or its letter (A, B, ...)."),
        prompt: promptText().default("Question: {question}\nAnswer:").describe("The context each choice continues: `{question}` is the question, other `{field}`s the record's fields (default \"Question: {question}\\nAnswer:\")."),
        limit: limit(),
        name: name(),
      }),
      fields: (p) => [
        ...(["question", "choices", "answer"] as const).map((k) => ({ param: k, field: String(p[k]) })),
        ...placeholders(p["prompt"])
          .filter((f) => f !== "question")
          .map((f) => ({ param: "prompt", field: f })),
      ],
    },
    {
      name: "generate_and_check",
      category: "eval_task",
      doc: "A generative task of your own: the model answers each record's prompt (greedy, chat template applied for a chat model), and the answer is checked against the record's `answer` field: `match: \"exact\"` compares the trimmed answer; a regular expression takes its first match in the answer (its first group when it has one) and compares that. Accuracy.",
      positional: ["data"],
      params: () => z.object({
        data: doc(ref("Dataset<Json>"), "The prompts with their answers."),
        prompt: doc(promptText(), "The prompt: `{field}` placeholders filled from the record."),
        answer: field().default("answer").describe("Field holding the correct answer (a string, or a number compared as its text)."),
        match: z
          .union([z.literal("exact"), regexSource()])
          .default("exact")
          .describe("`exact`, or a regular expression (JavaScript syntax) whose first match (first group if any) in the answer is compared."),
        stop: z.array(z.string().min(1)).optional().describe("Generation stops before the first of these."),
        max_tokens: posInt().optional().describe("Longest answer (default the stage's max_tokens)."),
        limit: limit(),
        name: name(),
      }),
      fields: (p) => [{ param: "answer", field: String(p["answer"]) }, ...placeholders(p["prompt"]).map((f) => ({ param: "prompt", field: f }))],
    },
  ]);
}
