import { Registry } from "./registry.js";
import { sourceStages } from "./sources/kinds.js";
import { converterStages } from "./convert/kinds.js";
import { templateStages } from "./template/kinds.js";
import { transformStages } from "./transform/kinds.js";
import { filterStages } from "./filter/kinds.js";
import { dedupStages } from "./dedup/kinds.js";
import { mixRules, mixStages } from "./mix/kinds.js";
import { modelStages } from "./model/kinds.js";
import { generateStages } from "./generate/kinds.js";
import { trainStages } from "./train/kinds.js";
import { evalStages, evalTasks } from "./eval/kinds.js";
import { exportStages } from "./export/kinds.js";
import { otherValues } from "./values.js";

let memo: Registry | undefined;

/**
 * The registry of every stage kind and value function of the product. Built on first use (the declarations are
 * functions, so importing this module costs nothing), then shared.
 */
export function defaultRegistry(): Registry {
  if (memo) return memo;
  const r = new Registry();
  for (const group of [
    sourceStages(),
    converterStages(),
    templateStages(),
    transformStages(),
    filterStages(),
    dedupStages(),
    mixStages(),
    modelStages(),
    generateStages(),
    trainStages(),
    evalStages(),
    exportStages(),
  ])
    for (const s of group) r.addStage(s);
  for (const group of [mixRules(), evalTasks(), otherValues()]) for (const v of group) r.addValue(v);
  memo = r;
  return r;
}
