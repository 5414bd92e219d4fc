import { z } from "zod";
import { value } from "../schema.js";
import { fraction, posInt, seed, lazyEntries } from "../common.js";
import type { Problem, StageKind, ValueFunction } from "../registry.js";

/**
 * Mixtures. `mix(seed: 42) { flan: take(50_000)  lima: all  hard_coded: repeat(10) }`: each component is a dataset
 * with a rule (a value function of category "mix_rule"). Rules of one mixture belong to one mode:
 * - count: `all`, `take(n)`, `repeat(times)`: each component is shuffled with the seed and its first n taken
 *   (open-instruct's dataset_mixer with counts; Tulu 2).
 * - fraction: `all`, `fraction(f)`, `repeat(times)`: the same with n = floor(f x size) (dataset_mixer with fractions).
 *   Mixing counts and fractions in one mixture is an error, as in dataset_mixer.
 * - weight: `weight(w)`: `total` examples drawn, each component in proportion to w (Flan 2022's final weights
 *   flan2021 0.4, t0 0.32, niv2 0.2, cot 0.05, dialog 0.03); components may themselves be mixtures.
 * - rate: `rate(maximum, scale, temperature)`: seqio's examples-proportional mixing,
 *   rate = min(size x scale, maximum) ^ (1 / temperature); `total` examples drawn in proportion to the rates
 *   (Flan 2021: maximum 3,000).
 */
export const MIX_MODES = ["count", "fraction", "weight", "rate"] as const;

export function mixStages(): StageKind[] {
  return lazyEntries<StageKind>([
    {
      name: "mix",
      category: "mix",
      doc: "Mixes component datasets by per-component rules (counts, fractions, weights or examples-proportional rates), deterministically for a seed. The mode is inferred from the rules when not given.",
      inputs: [],
      output: "Dataset<T>",
      params: () => z
        .object({
          seed: seed("Seed of every component's shuffle and of the final shuffle (default 42: open-instruct)."),
          shuffle: z.boolean().default(true).describe("Shuffle the mixed records (with the seed); otherwise components follow one another in the order written."),
          mode: z.enum(MIX_MODES).optional().describe("How the rules are read: count, fraction, weight or rate; default inferred from the rules (an error if they disagree)."),
          total: posInt().optional().describe("Number of examples to draw; required in weight and rate modes."),
          temperature: z.number().positive().optional().describe("Default temperature of rate() rules that give none (default 1)."),
          cap: posInt().optional().describe("Default maximum of rate() rules that give none (default: uncapped)."),
        })
        .refine((p) => !(p.mode === "weight" || p.mode === "rate") || p.total !== undefined, {
          message: "weight and rate mixtures need total (the number of examples to draw)",
          path: ["total"],
        }),
      refine: mixProblems,
      components: {
        type: "Dataset<T>",
        rule: value("mix_rule"),
        doc: "`component: rule`: a dataset and how many of its records enter the mixture (all, take(n), fraction(f), repeat(times), weight(w), rate(maximum)).",
      },
      version: "1",
    },
  ]);
}

export function mixRules(): ValueFunction[] {
  return lazyEntries<ValueFunction>([
    {
      name: "all",
      category: "mix_rule",
      doc: "Every record of the component, once.",
      positional: [],
      params: () => z.object({}),
      constant: true,
    },
    {
      name: "take",
      category: "mix_rule",
      doc: "n records of the component: shuffled with the mixture's seed, the first n taken (all of them if it has fewer).",
      positional: ["n"],
      params: () => z.object({ n: posInt().describe("Number of records.") }),
    },
    {
      name: "fraction",
      category: "mix_rule",
      doc: "A share of the component: shuffled with the mixture's seed, the first floor(f x size) taken.",
      positional: ["f"],
      params: () => z.object({ f: fraction().describe("Share of the records, in (0, 1].") }),
    },
    {
      name: "repeat",
      category: "mix_rule",
      doc: "Every record of the component, `times` times (upsampling; Tulu 2 repeats its 14 hard-coded examples 10 times).",
      positional: ["times"],
      params: () => z.object({ times: posInt().describe("How many copies of each record.") }),
    },
    {
      name: "weight",
      category: "mix_rule",
      doc: "The component's weight in the final mixture: its share of `total` is w divided by the sum of the weights.",
      positional: ["w"],
      params: () => z.object({ w: z.number().positive().describe("Relative weight (weights need not sum to 1).") }),
    },
    {
      name: "rate",
      category: "mix_rule",
      doc: "seqio's examples-proportional mixing rate: min(size x scale, maximum) ^ (1 / temperature).",
      positional: ["maximum"],
      params: () => z.object({
        maximum: posInt().optional().describe("Cap on the examples counted (Flan 2021: 3,000); default the mixture's cap, else uncapped."),
        scale: z.number().positive().default(1).describe("Multiplier of the component's size before the cap."),
        temperature: z.number().positive().optional().describe("Temperature applied after the cap; default the mixture's temperature, else 1."),
      }),
    },
  ]);
}

export type MixMode = (typeof MIX_MODES)[number];

/** Which modes each rule may appear in. `all` and `repeat` are counts of whole copies, fine with counts or fractions. */
const ruleModes: Record<string, readonly MixMode[]> = {
  all: ["count", "fraction"],
  repeat: ["count", "fraction"],
  take: ["count"],
  fraction: ["fraction"],
  weight: ["weight", "rate"],
  rate: ["rate", "weight"],
};

/**
 * The mode of a mixture: the one given, else the one its rules imply. Counts and fractions cannot be mixed
 * (open-instruct's dataset_mixer refuses it); weights and rates are both sampling shares and need `total`.
 */
export function mixMode(params: Readonly<Record<string, unknown>>): { mode: MixMode; problems: Problem[] } {
  const comps = (params["components"] ?? {}) as Record<string, { fn?: string }>;
  const given = params["mode"] as MixMode | undefined;
  const problems: Problem[] = [];
  let mode = given;
  let decidedBy: string | undefined;
  for (const [name, rule] of Object.entries(comps)) {
    const allowed = ruleModes[rule.fn ?? ""] ?? [];
    if (mode === undefined) {
      // `all`/`repeat` fit counts and fractions alike: the first rule that tells them apart decides.
      if (allowed.length === 1 || rule.fn === "weight" || rule.fn === "rate") {
        mode = rule.fn === "rate" ? "rate" : allowed[0];
        decidedBy = name;
      }
      continue;
    }
    if (!allowed.includes(mode)) {
      const why = given ? `the mixture's mode is "${given}"` : `\`${decidedBy}\` makes this a ${mode} mixture`;
      problems.push({ path: ["components", name], message: `\`${rule.fn}\` does not belong in a ${mode} mixture (${why})` });
    }
  }
  // Rules checked before the mode was decided (all/repeat) fit both count and fraction: nothing to re-check.
  mode ??= "count";
  if ((mode === "weight" || mode === "rate") && params["total"] === undefined) {
    problems.push({ path: ["total"], message: `a ${mode} mixture draws \`total\` examples: set it, e.g. \`mix(total: 1_000_000)\`` });
  }
  return { mode, problems };
}

function mixProblems(params: Readonly<Record<string, unknown>>): Problem[] {
  return mixMode(params).problems;
}
