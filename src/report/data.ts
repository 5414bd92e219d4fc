import type { Json } from "../core/ir.js";
import type { Metric } from "../stages/eval/report.js";

// What `itp report` shows of one recipe, gathered from the store (gather.ts) and rendered as a page (page.ts). Plain
// values, so the page and the tests read the same thing (`itp report --json` prints it). The functions here are
// pure: they read manifests' fields and a recipe's parameters.

/**
 * A stage's state: `done` (its artifact was made by the recipe's last run), `cached` (its artifact is in the store,
 * made before or elsewhere and reused), `failed` (the last run tried and failed), `not run` (no artifact for the
 * recipe as it is now).
 */
export type StageState = "done" | "cached" | "failed" | "not run";

export interface StageRow {
  readonly id: string;
  readonly kind: string;
  readonly state: StageState;
  /** Records of its artifact (null for a value: a model, a report). */
  readonly records: number | null;
  /** How long making its artifact took (ms), when it has one. */
  readonly ms: number | null;
  /** Its counts other than drops (`kept`, `component: x`, `requests: sent`, ...). */
  readonly counts: Readonly<Record<string, number>>;
  /** Why it has no artifact (the plan's reasons), or the last run's error. */
  readonly note?: string;
}

export interface Edge {
  readonly from: string;
  readonly to: string;
  readonly role: string;
}

export interface DropRow {
  readonly stage: string;
  readonly reason: string;
  readonly n: number;
}

export interface MixComponent {
  readonly name: string;
  /** The rule as written: `take(24)`, `all`, `weight(0.4)`. */
  readonly rule: string;
  /** Records of the component's input (null when it has no artifact). */
  readonly available: number | null;
  /** Records the rule asks for (null when it depends on a size not known yet). */
  readonly planned: number | null;
  /** Records that entered the mixture (null when the mix has not run). */
  readonly actual: number | null;
}

export interface Mixture {
  readonly stage: string;
  readonly components: readonly MixComponent[];
}

export interface GenerationRow {
  readonly stage: string;
  /** The model parameter the requests went to (`model`, `judge`, `user_model`). */
  readonly role: string;
  readonly sent: number;
  readonly cached: number;
  readonly failed: number;
  readonly retries: number;
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  /** In US dollars, when the model has prices. */
  readonly cost_usd: number | null;
}

export interface TrainingRun {
  readonly stage: string;
  readonly steps: number | null;
  readonly loss_first: number | null;
  readonly loss_last: number | null;
  readonly tokens_per_s: number | null;
  readonly seconds: number | null;
  /** [step, loss, learning rate] (the learning rate is null in curves recorded before it was kept). */
  readonly curve: readonly (readonly [number, number, number | null])[];
}

export interface EvalTable {
  readonly stage: string;
  readonly model: string;
  readonly template: string;
  readonly tasks: readonly { readonly name: string; readonly primary: string; readonly items: number; readonly limited: boolean; readonly metrics: Readonly<Record<string, Metric>> }[];
}

export interface RecipeReport {
  readonly recipe: string;
  /** The run of the recipe the states refer to: its id, when it started, whether it finished, and how long it took. */
  readonly run: { readonly id: string; readonly started: string; readonly finished: boolean; readonly seconds: number | null } | null;
  readonly stages: readonly StageRow[];
  readonly edges: readonly Edge[];
  readonly dropped: readonly DropRow[];
  readonly mixtures: readonly Mixture[];
  readonly generation: readonly GenerationRow[];
  readonly training: readonly TrainingRun[];
  readonly evaluations: readonly EvalTable[];
}

/** How a stage ended in a run, as its log says. */
export interface RunOutcome {
  readonly status: "ran" | "cached" | "failed" | "skipped";
  readonly key?: string;
  readonly error?: string;
  readonly because?: string;
}

/** The events of a run log that say how each stage ended (the last one wins: a retry's outcome). */
export interface RunEvents {
  readonly id: string;
  readonly started: string;
  readonly finished: boolean;
  /** The run's time in seconds, as its end event says (null when it did not end). */
  readonly seconds: number | null;
  readonly outcomes: ReadonlyMap<string, RunOutcome>;
}

/** A run log's lines (JSON objects) read into the outcome of each stage. Lines that cannot be read are skipped (the tail of a crash). */
export function readRunEvents(id: string, text: string): RunEvents & { readonly recipe: string | undefined } {
  let recipe: string | undefined;
  let started = "";
  let finished = false;
  let seconds: number | null = null;
  const outcomes = new Map<string, RunOutcome>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const type = e["type"];
    if (type === "run_started") {
      recipe = typeof e["recipe"] === "string" ? e["recipe"] : undefined;
      started = String(e["t"] ?? "");
    } else if (type === "run_finished") {
      finished = e["interrupted"] !== true;
      seconds = typeof e["seconds"] === "number" ? e["seconds"] : null;
    }
    else if (typeof type === "string" && typeof e["stage"] === "string" && /^stage_(ran|cached|failed|skipped)$/.test(type)) {
      const status = type.slice("stage_".length) as "ran" | "cached" | "failed" | "skipped";
      outcomes.set(e["stage"], {
        status,
        ...(typeof e["key"] === "string" ? { key: e["key"] } : {}),
        ...(typeof e["error"] === "string" ? { error: e["error"] } : {}),
        ...(typeof e["because"] === "string" ? { because: e["because"] } : {}),
      });
    }
  }
  return { id, recipe, started, finished, seconds, outcomes };
}

/**
 * A stage's state from the plan of the recipe as it is now (`key`: the artifact it has, if any) and the recipe's last
 * run: made by that run is `done`, present otherwise is `cached`; without an artifact, `failed` when the last run's
 * attempt failed, else `not run`.
 */
export function stateOf(artifactKey: string | undefined, last: RunOutcome | undefined): StageState {
  if (artifactKey !== undefined) return last?.status === "ran" && last.key === artifactKey ? "done" : "cached";
  return last?.status === "failed" ? "failed" : "not run";
}

/** Counts that name a drop (`dropped: too short`): the reason and the number. */
export function dropsOf(stage: string, counts: Readonly<Record<string, number>>): DropRow[] {
  return Object.entries(counts)
    .filter(([k]) => k.startsWith("dropped: "))
    .map(([k, n]) => ({ stage, reason: k.slice("dropped: ".length), n }));
}

/** Counts other than drops, as a stage's row shows them. */
export function otherCounts(counts: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([k]) => !k.startsWith("dropped: ")));
}

const COUNTED = /^(?:(.+) )?(requests: sent|requests: cached|requests: failed|tokens: prompt|tokens: completion|cost_usd|retries(?:: .+)?)$/;

/**
 * The requests a stage sent to models, per model parameter: a model session writes `requests: sent`, `requests:
 * cached`, `tokens: prompt`, `tokens: completion`, `cost_usd` and `retries: <cause>` (prefixed with the parameter's
 * name when it is not `model`: `judge requests: sent`). A stage with none of them sent nothing.
 */
export function generationOf(stage: string, counts: Readonly<Record<string, number>>): GenerationRow[] {
  const byRole = new Map<string, Record<string, number>>();
  for (const [k, n] of Object.entries(counts)) {
    const m = COUNTED.exec(k);
    if (!m) continue;
    // `tokens: prompt` of a training stage is not a request count: a role prefix or a request count must be there.
    const role = m[1] ?? "model";
    const what = m[2]!.startsWith("retries") ? "retries" : m[2]!;
    const r = byRole.get(role) ?? byRole.set(role, {}).get(role)!;
    r[what] = (r[what] ?? 0) + n;
  }
  const out: GenerationRow[] = [];
  for (const [role, r] of byRole) {
    if (r["requests: sent"] === undefined && r["requests: cached"] === undefined && r["requests: failed"] === undefined) continue;
    out.push({
      stage,
      role,
      sent: r["requests: sent"] ?? 0,
      cached: r["requests: cached"] ?? 0,
      failed: r["requests: failed"] ?? 0,
      retries: r["retries"] ?? 0,
      prompt_tokens: r["tokens: prompt"] ?? 0,
      completion_tokens: r["tokens: completion"] ?? 0,
      cost_usd: r["cost_usd"] ?? null,
    });
  }
  return out;
}

/** A mix rule as written in a recipe. */
export function ruleText(rule: Json): string {
  const r = (rule ?? {}) as Record<string, Json>;
  const fn = String(r["fn"] ?? "?");
  const args = Object.entries(r)
    .filter(([k]) => k !== "fn")
    .map(([k, v]) => (["n", "f", "times", "w"].includes(k) ? JSON.stringify(v) : `${k}: ${JSON.stringify(v)}`));
  return fn === "all" && args.length === 0 ? "all" : `${fn}(${args.join(", ")})`;
}

/**
 * What each component of a mixture is planned to give, from its rule as written and the component's size: take(n)
 * asks n (the mix gives fewer when the component has fewer), fraction(f) floor(f x size), all the size, repeat(k)
 * k x size; weight and rate mixtures share `total` in proportion to the weights, or to seqio's rates
 * min(size x scale, maximum) ^ (1 / temperature) (rounded to whole records here; the mix rounds by largest
 * remainder, so the actual counts may differ from these by one).
 */
export function plannedMix(params: Readonly<Record<string, Json>>, sizes: ReadonlyMap<string, number | null>, order: readonly string[]): Map<string, number | null> {
  const comps = (params["components"] ?? {}) as Record<string, Record<string, Json>>;
  const out = new Map<string, number | null>();
  const total = typeof params["total"] === "number" ? params["total"] : null;
  const rules = order.map((name) => ({ name, r: comps[name] ?? {} }));
  if (rules.some(({ r }) => r["fn"] === "weight" || r["fn"] === "rate")) {
    const shares = rules.map(({ name, r }) => {
      if (r["fn"] === "weight") return typeof r["w"] === "number" ? r["w"] : null;
      const size = sizes.get(name) ?? null;
      if (size === null) return null;
      const maximum = typeof r["maximum"] === "number" ? r["maximum"] : typeof params["cap"] === "number" ? params["cap"] : Number.POSITIVE_INFINITY;
      const scale = typeof r["scale"] === "number" ? r["scale"] : 1;
      const temperature = typeof r["temperature"] === "number" ? r["temperature"] : typeof params["temperature"] === "number" ? params["temperature"] : 1;
      return Math.min(size * scale, maximum) ** (1 / temperature);
    });
    const sum = shares.every((s) => s !== null) ? shares.reduce((a: number, s) => a + s!, 0) : null;
    rules.forEach(({ name }, i) => out.set(name, total !== null && sum !== null && sum > 0 ? Math.round((total * shares[i]!) / sum) : null));
    return out;
  }
  for (const { name, r } of rules) {
    const size = sizes.get(name) ?? null;
    const fn = r["fn"];
    if (fn === "take") out.set(name, typeof r["n"] === "number" ? r["n"] : null);
    else if (size === null) out.set(name, null);
    else if (fn === "all") out.set(name, size);
    else if (fn === "fraction") out.set(name, Math.floor((typeof r["f"] === "number" ? r["f"] : 0) * size));
    else if (fn === "repeat") out.set(name, size * (typeof r["times"] === "number" ? r["times"] : 1));
    else out.set(name, null);
  }
  return out;
}

/** A training stage's summary (its manifest's) as a run: its loss curve with the learning rate where it was kept. */
export function trainingOf(stage: string, summary: Readonly<Record<string, unknown>> | undefined): TrainingRun | undefined {
  if (!summary || !Array.isArray(summary["loss_curve"])) return undefined;
  const num = (k: string) => (typeof summary[k] === "number" ? (summary[k] as number) : null);
  const curve = (summary["loss_curve"] as unknown[])
    .filter((p): p is number[] => Array.isArray(p) && typeof p[0] === "number" && typeof p[1] === "number")
    .map((p) => [p[0]!, p[1]!, typeof p[2] === "number" ? p[2] : null] as const);
  return { stage, steps: num("steps"), loss_first: num("loss_first"), loss_last: num("loss_last"), tokens_per_s: num("tokens_per_s"), seconds: num("seconds"), curve };
}
