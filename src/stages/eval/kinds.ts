import { z } from "zod";
import { ref, value } from "../schema.js";
import { dataInput, doc, natInt, posInt, seed, lazyEntries } from "../common.js";
import type { StageKind, ValueFunction } from "../registry.js";

/**
 * Evaluation: `evaluate(model) { tasks = [mmlu(shots: 5), gsm8k(), ifeval()] }` runs benchmark tasks (value
 * functions of category "eval_task") against a model and writes a Report. The template used to prompt the model is
 * part of the report and of the cache key, so results reproduce.
 */
const data = () => z.string().min(1).optional().describe("Local path or hub id of the benchmark data; default the canonical hub dataset.");
const limit = () => posInt().optional().describe("Evaluate only the first n examples (for smoke tests; the report says so).");

export function evalStages(): StageKind[] {
  return lazyEntries<StageKind>([
    {
      name: "evaluate",
      category: "eval",
      doc: "Runs evaluation tasks against a model and writes a report: per task its metrics, the exact prompts' template, and per-example results.",
      inputs: [dataInput("Model", "The model to evaluate.", "model")],
      output: "Report",
      params: () => z.object({
        tasks: z.array(value("eval_task")).min(1).describe("Tasks to run, e.g. [mmlu(shots: 5), gsm8k(), ifeval()]."),
        template: ref("Template")
          .optional()
          .describe("Chat template that wraps generation prompts; default the one the model was trained with, else its own (hf_chat_template)."),
        batch_size: posInt().default(8).describe("Examples scored per batch (local models) (default 8: our choice)."),
        max_tokens: posInt().default(1024).describe("Longest generated answer for generative tasks (default 1024: our choice)."),
        seed: seed("Seed of few-shot example selection and sampling."),
      }),
      version: "1",
    },
  ]);
}

export function evalTasks(): ValueFunction[] {
  return lazyEntries<ValueFunction>([
    {
      name: "mmlu",
      category: "eval_task",
      doc: "MMLU (57 subjects; test 14,042): the hendrycks/test prompt (header naming the subject, question, \"A. ...\" choices, \"Answer:\"), shots from the dev split; prediction is the argmax of the log-probabilities of \" A\"/\" B\"/\" C\"/\" D\"; accuracy per subject and overall.",
      positional: ["shots"],
      params: () => z.object({
        shots: natInt().max(5).default(5).describe("Few-shot examples from the dev split (5 per subject available; default 5)."),
        subjects: z.array(z.string().min(1)).min(1).optional().describe("Subjects to evaluate (underscore names, e.g. high_school_physics); default all 57."),
        split: z.enum(["test", "validation"]).default("test").describe("Split evaluated."),
        data: data(),
        limit: limit(),
      }),
    },
    {
      name: "gsm8k",
      category: "eval_task",
      doc: "GSM8K (test 1,319): shots from the train split, greedy generation; the answer is extracted with the regex `#### (\\-?[0-9\\.\\,]+)`, commas stripped, and compared by exact string match (a miss is \"[invalid]\").",
      positional: ["shots"],
      params: () => z.object({
        shots: natInt().max(16).default(8).describe("Few-shot examples from the train split (default 8: our choice, the common chain-of-thought setting)."),
        data: data(),
        limit: limit(),
      }),
    },
    {
      name: "ifeval",
      category: "eval_task",
      doc: "IFEval (541 prompts, 25 verifiable instruction types): prompt-level and instruction-level accuracy, strict (non-empty response passing the check) and/or loose (any of the 8 response variants passes).",
      positional: ["mode"],
      params: () => z.object({
        mode: z.enum(["strict", "loose", "both"]).default("both").describe("Which accuracies to report."),
        data: data(),
        limit: limit(),
      }),
    },
    {
      name: "alpaca_eval",
      category: "eval_task",
      doc: "AlpacaEval (805 instructions): win rate of the model over a baseline as judged by a model (preference 1 = baseline, 2 = model, 1.5 = draw, mapped to 0/1/0.5), optionally length-controlled (GLM with the length term at 0).",
      positional: ["judge"],
      params: () => z.object({
        judge: doc(ref("Model"), "The judge model."),
        baseline: ref("Model").optional().describe("Model whose answers are the baseline; default the reference outputs shipped with the data set."),
        length_controlled: z.boolean().default(true).describe("Also report the length-controlled win rate."),
        data: data(),
        limit: limit(),
      }),
    },
    {
      name: "mt_bench",
      category: "eval_task",
      doc: "MT-Bench (80 two-turn questions in 8 categories): the judge rates each turn 1-10 (parsed from [[rating]]), reference-guided for math, reasoning and coding; the score is the mean over turns, also per category.",
      positional: ["judge"],
      params: () => z.object({
        judge: doc(ref("Model"), "The judge model."),
        data: data(),
        limit: limit(),
      }),
    },
  ]);
}
