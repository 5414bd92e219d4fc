// IFEval's aggregate (lm_eval/tasks/ifeval/ifeval.yaml): prompt-level accuracy is the mean over prompts of "every
// instruction followed"; instruction-level accuracy is followed instructions over all instructions (micro), each
// strict and loose. Standard errors are the mean's over prompts, and over instructions for instruction level (lm-eval
// prints none there: its aggregation is a custom function). Per instruction id: the share of its occurrences followed.
import { asScores, type MeanWithStderr, meanWithStderr } from "../stderr.js";

export interface IfevalScored {
  readonly instruction_id_list: readonly string[];
  readonly strict: readonly boolean[];
  readonly loose: readonly boolean[];
}

export interface IfevalInstructionAccuracy {
  readonly strict: number;
  readonly loose: number;
  /** Occurrences of the id. */
  readonly n: number;
}

export interface IfevalMetrics {
  readonly prompt_level_strict_acc: MeanWithStderr;
  readonly inst_level_strict_acc: MeanWithStderr;
  readonly prompt_level_loose_acc: MeanWithStderr;
  readonly inst_level_loose_acc: MeanWithStderr;
  /** Per instruction id, sorted by id. */
  readonly per_instruction: Readonly<Record<string, IfevalInstructionAccuracy>>;
}

/** The metrics of a set of verdicts (each with its item's instruction ids). */
export function ifevalMetrics(scored: readonly IfevalScored[]): IfevalMetrics {
  const per = new Map<string, { strict: number; loose: number; n: number }>();
  for (const s of scored) {
    s.instruction_id_list.forEach((id, i) => {
      let acc = per.get(id);
      if (!acc) per.set(id, (acc = { strict: 0, loose: 0, n: 0 }));
      acc.n++;
      if (s.strict[i]) acc.strict++;
      if (s.loose[i]) acc.loose++;
    });
  }
  const perInstruction: Record<string, IfevalInstructionAccuracy> = {};
  for (const id of [...per.keys()].sort()) {
    const a = per.get(id)!;
    perInstruction[id] = { strict: a.strict / a.n, loose: a.loose / a.n, n: a.n };
  }
  return {
    prompt_level_strict_acc: meanWithStderr(asScores(scored.map((s) => s.strict.every(Boolean)))),
    inst_level_strict_acc: meanWithStderr(asScores(scored.flatMap((s) => s.strict))),
    prompt_level_loose_acc: meanWithStderr(asScores(scored.map((s) => s.loose.every(Boolean)))),
    inst_level_loose_acc: meanWithStderr(asScores(scored.flatMap((s) => s.loose))),
    per_instruction: perInstruction,
  };
}
