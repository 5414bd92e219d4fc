import { alpacaEval } from "./alpaca-eval-task.js";
import { gsm8k } from "./gsm8k-task.js";
import { ifeval } from "./ifeval-task.js";
import { mmlu } from "./mmlu-task.js";
import { mtBench } from "./mt-bench-task.js";
import type { TaskRunner } from "./task-env.js";
import { generateAndCheck, multipleChoice } from "./user-tasks.js";

/** The implementation of each evaluation task (value functions of category `eval_task`), by function name. */
export const taskRunners: Readonly<Record<string, TaskRunner>> = {
  mmlu,
  gsm8k,
  ifeval,
  alpaca_eval: alpacaEval,
  mt_bench: mtBench,
  multiple_choice: multipleChoice,
  generate_and_check: generateAndCheck,
};
