import { Registry } from "./registry.js";
import { sourceStages } from "./sources.js";
import { converterStages } from "./converters.js";
import { templateStages } from "./templates.js";
import { transformStages } from "./transforms.js";
import { filterStages } from "./filters.js";
import { mixRules, mixStages } from "./mix.js";
import { modelStages } from "./models.js";
import { generateStages } from "./generate.js";
import { trainStages } from "./train.js";
import { evalStages, evalTasks } from "./evaluate.js";
import { exportStages } from "./export.js";
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
