import type { TaskRunner } from "./task-env.js";
import { generateAndCheck, multipleChoice } from "./user-tasks.js";

/** The implementation of each evaluation task (value functions of category `eval_task`), by function name. */
export const taskRunners: Readonly<Record<string, TaskRunner>> = {
  multiple_choice: multipleChoice,
  generate_and_check: generateAndCheck,
};
