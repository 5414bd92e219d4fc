import type { Range } from "../diagnostics/source.js";
import type { Ty } from "../types/types.js";

/** Stage keywords: what a declaration makes (`dataset clean = ...`). */
export const stageKeywords = ["model", "dataset", "generate", "filter", "mix", "train", "eval", "stage"] as const;
export type StageKeyword = (typeof stageKeywords)[number];

/** Parameter values after elaboration: plain JSON, with stage references as `{ $ref: id }`. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** One stage instance of the checked program: the unit the DAG, the cache and the scheduler work with. */
export interface IrStage {
  /** Qualified, stable name: `clean`, `sft_data`, `tulu.flan` (recipe instance), `clean.rouge_dedup` (pipeline step). */
  readonly id: string;
  readonly kind: string;
  readonly category: string;
  readonly keyword?: StageKeyword;
  /** Resolved parameters: what was written, overrides applied, defaults filled in. Keys sorted. */
  readonly params: { [k: string]: Json };
  /** Upstream stages by input name (positional inputs, components, and references in parameters). */
  readonly inputs: readonly IrInput[];
  readonly type: Ty;
  readonly doc?: string;
  readonly range: Range;
  /** Whether the user named it (a declaration) rather than the compiler (a pipeline step, a recipe's inner stage). */
  readonly declared: boolean;
  /** The recipe instance it belongs to, if any. */
  readonly recipe?: string;
  /** Parameters set from a parameter of the enclosing recipe (`max = rouge_max`): param -> `instance.recipe_param`. */
  readonly fromRecipe?: Readonly<Record<string, string>>;
}

export interface IrInput {
  /** `data`, `inputs[1]`, `component:flan`, `param:model`. */
  readonly role: string;
  readonly from: string;
}

export interface IrProgram {
  readonly entry: string;
  /** In dependency order: every stage after the stages it reads. */
  readonly stages: ReadonlyMap<string, IrStage>;
}
