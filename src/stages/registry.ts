import type { z } from "zod";

/**
 * What a stage kind is: its signature (typed inputs and output), its parameters (a zod object schema), and its
 * documentation. The runtime issues add the implementation to the same entry.
 *
 * Types are written as strings in the recipe type language: `Dataset<T>` (T a type variable, bound by the inputs),
 * `Dataset<Instruction>`, `Dataset<Chat | Instruction>`, `Model`, `Report`, `Template`.
 */
export interface StageKind {
  readonly name: string;
  readonly category: StageCategory;
  readonly doc: string;
  /** Positional inputs, in order. The last may be variadic (e.g. `concat`). */
  readonly inputs: readonly InputSpec[];
  readonly output: string;
  /** Parameters: `name = value` in the block or `name: value` in the call's parentheses. */
  readonly params: z.ZodObject;
  /**
   * For stages that take components (`mix`): entries written `stage : rule` in the block. Each component is an
   * input of the given type, with a rule value validated by `rule`.
   */
  readonly components?: { readonly type: string; readonly rule: z.ZodType; readonly doc: string };
  /**
   * Rules across parameters and components that a per-parameter schema cannot state (a mixture's rules must agree
   * on a mode). Given the validated parameters, with components as `{ name: rule }` under `components`; each
   * problem names the path it is about (`["components", "flan"]`, `["total"]`).
   */
  readonly refine?: (params: Readonly<Record<string, unknown>>) => readonly Problem[];
  /**
   * Fields the stage adds to every record it passes on (a judge's score), given its validated parameters: field
   * name -> type in the type language. The output's record type is the input's with these fields.
   */
  readonly addsFields?: (params: Readonly<Record<string, unknown>>) => Readonly<Record<string, string>>;
  /**
   * Local files or folders the stage reads, as its parameters name them (relative to the recipe's folder), for
   * `itp check`'s warning about one that does not exist. The runtime's own list is the implementation's `files`.
   */
  readonly localInputs?: (params: Readonly<Record<string, unknown>>) => readonly string[];
  /**
   * The input (a Model) whose training data the stage also reads: the `data` input of every training stage upstream
   * of it, added as inputs `train_data:<stage>` (evaluation's contamination counts).
   */
  readonly trainingData?: string;
  /** Bumped when the implementation changes what it produces; part of every cache key. */
  readonly version: string;
  /**
   * `false`: declared and type-checked, but this version of itp cannot run it, so `itp check` refuses recipes that
   * use it (E075). Kept true to the implementations: `checkedImplementations` fails on any disagreement.
   */
  readonly implemented?: false;
}

export interface Problem {
  readonly path: readonly string[];
  readonly message: string;
}

export interface InputSpec {
  readonly name: string;
  readonly type: string;
  readonly doc: string;
  readonly variadic?: boolean;
  readonly optional?: boolean;
}

export type StageCategory =
  | "source"
  | "convert"
  | "template"
  | "transform"
  | "filter"
  | "dedup"
  | "mix"
  | "model"
  | "generate"
  | "train"
  | "eval"
  | "export";

/**
 * A value function builds a parameter value, not a stage: `take(50_000)`, `fraction(0.1)`, `mmlu(shots: 5)`.
 * The result is `{ fn: name, ...params }`, accepted by parameters marked `value(category)`.
 */
export interface ValueFunction {
  readonly name: string;
  readonly category: string;
  readonly doc: string;
  /** Names given to positional arguments, in order: `take(50_000)` is `take(n: 50_000)`. */
  readonly positional: readonly string[];
  readonly params: z.ZodObject;
  /** Usable as a bare name without parentheses (`all`). */
  readonly constant?: boolean;
  /**
   * Fields of the dataset its `data` parameter refers to that the value reads (a user task's question field, the
   * placeholders of its prompt), given its validated parameters: checked against that dataset's record type.
   */
  readonly fields?: (params: Readonly<Record<string, unknown>>) => readonly { readonly param: string; readonly field: string }[];
}

export class Registry {
  private readonly stages = new Map<string, StageKind>();
  private readonly values = new Map<string, ValueFunction>();

  // A name may be both a stage kind and a value function (`take(data, n)` the stage, `take(n)` the mix rule):
  // the checker picks by context, a value where a parameter expects one.
  addStage(k: StageKind): this {
    if (this.stages.has(k.name)) throw new Error(`duplicate stage kind ${k.name}`);
    this.stages.set(k.name, k);
    return this;
  }

  addValue(v: ValueFunction): this {
    if (this.values.has(v.name)) throw new Error(`duplicate value function ${v.name}`);
    this.values.set(v.name, v);
    return this;
  }

  stage(name: string): StageKind | undefined {
    return this.stages.get(name);
  }

  value(name: string): ValueFunction | undefined {
    return this.values.get(name);
  }

  stageNames(): IterableIterator<string> {
    return this.stages.keys();
  }

  valueNames(): IterableIterator<string> {
    return this.values.keys();
  }

  allStages(): IterableIterator<StageKind> {
    return this.stages.values();
  }

  allValues(): IterableIterator<ValueFunction> {
    return this.values.values();
  }

  /** Converters: single-input `convert` stages, keyed by the record types they map between. */
  convertersFrom(recordName: string): StageKind[] {
    return [...this.stages.values()].filter((s) => s.category === "convert" && s.inputs[0]?.type === `Dataset<${recordName}>`);
  }
}
