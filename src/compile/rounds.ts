import { hintDidYouMean } from "../diagnostics/suggest.js";
import type * as A from "../syntax/ast.js";
import { ctxFor, ERR, type Elab, type Env, type Round, type RoundsOf, type Val } from "./elaboration.js";

// The `repeat` phase: a block of stages run for a fixed number of rounds, unrolled here, at check time, so the
// program stays a DAG whose stages have stable names (`humpback.round[2].curate`). In round k a body stage's own
// names mean round k's stages, `prev.x` means round k-1's `x` (the `from` record's `x` in round 1), and anywhere
// in the enclosing recipe or module `round[k].x` and `round.last.x` name one round's stage.

/** The most rounds a block may have: a typo such as `repeat r(1000000)` is an error, not a hang. */
export const MAX_ROUNDS = 1000;

/**
 * The number of rounds: an int literal, or a recipe parameter holding one (a parameter of a recipe checked in the
 * abstract stands for any int: two rounds are checked, so both round 1's `from` and `prev` are exercised).
 */
export function evaluateCount(el: Elab, rep: A.RepeatDecl, outer: Env): number | undefined {
  const file = outer.mod.ast.file;
  const v = el.expr(rep.count, outer, ctxFor(`${rep.name.text}.count`, new Set()));
  if (v.t === "error") return undefined;
  if (v.t === "json" && typeof v.v === "object" && v.v !== null && !Array.isArray(v.v) && "$param" in v.v) return 2;
  if (v.t !== "json" || typeof v.v !== "number" || !Number.isInteger(v.v)) {
    const what = v.t === "stage" ? "a stage's output" : v.t === "json" && typeof v.v === "object" && v.v !== null && ("$env" in v.v || "$secret" in v.v) ? "a value known only at run time" : JSON.stringify(v.t === "json" ? v.v : null);
    el.err("E052", `the number of rounds of \`${rep.name.text}\` must be a constant int, got ${what}`, file, rep.count, "write an int (`repeat round(2)`), or a recipe parameter of type int");
    return undefined;
  }
  if (v.v < 1 || v.v > MAX_ROUNDS) {
    el.err("E052", `\`${rep.name.text}\` has ${v.v} rounds; a repeat block runs 1 to ${MAX_ROUNDS} rounds`, file, rep.count, "give a number of rounds from 1");
    return undefined;
  }
  return v.v;
}

/** A block's own rules: unique stage names (not shadowing the enclosing ones), `from` entries naming body stages. */
export function checkRepeatDecl(el: Elab, rep: A.RepeatDecl, outerNames: ReadonlySet<string>, file: A.Module["file"]): void {
  const own = new Set<string>();
  for (const s of rep.stages) {
    const n = s.name.text;
    if (n === "prev" || n === "last") el.err("E021", `\`${n}\` names rounds inside a repeat block; a stage cannot be called \`${n}\``, file, s.name, "rename the stage");
    else if (own.has(n)) el.err("E021", `\`${n}\` is already defined in repeat block \`${rep.name.text}\``, file, s.name, "give each stage a unique name");
    else if (outerNames.has(n)) el.err("E021", `\`${n}\` is already defined outside repeat block \`${rep.name.text}\``, file, s.name, "give the round's stage its own name: both would be visible in the round");
    own.add(n);
  }
  if (rep.stages.length === 0) el.err("E045", `repeat block \`${rep.name.text}\` has no stages`, file, rep.name, "declare the stages each round makes inside its braces");
  for (const en of rep.init?.entries ?? []) {
    const k = en.key.map((x) => x.text).join(".");
    if (en.key.length !== 1 || en.quoted || !own.has(k))
      el.err("E020", `\`from\` gives \`${k}\`, but the rounds of \`${rep.name.text}\` declare no stage \`${k}\``, file, en.key[0]!, hintDidYouMean(k, [...own]) ?? "`from { x: ... }` says what `prev.x` is in round 1, for a stage `x` of the body");
  }
}

/** Every stage of every round, in order. */
export function elaborateRounds(el: Elab, rep: A.RepeatDecl, outer: Env, base: string, rounds: RoundsOf): boolean {
  const count = rounds.count(rep, outer, base);
  if (count === undefined) return false;
  let ok = true;
  for (let k = 1; k <= count; k++) {
    const round: Round = { decl: rep, k, count, outer, base };
    for (const s of rep.stages) if (el.roundStage(s, round).t === "error") ok = false;
  }
  return ok;
}

/**
 * A reference that involves rounds, or undefined when it does not: a body stage's own name inside a round,
 * `prev.x`, `round[k].x` and `round.last.x`. `repeatNamed` finds a block visible from `env` by name.
 */
export function roundReference(
  el: Elab,
  e: A.Reference,
  env: Env,
  repeatNamed: (name: string) => { rep: A.RepeatDecl; outer: Env; base: string } | undefined,
  rounds: RoundsOf,
  initValue: (round: Round, entry: A.Entry) => Val,
): Val | undefined {
  const file = env.mod.ast.file;
  const name = e.path[0]!.text;
  const round = env.round;
  if (round && !e.index && e.path.length === 1) {
    const own = round.decl.stages.find((s) => s.name.text === name);
    return own ? el.roundStage(own, round) : undefined;
  }
  if (round && name === "prev" && !e.index && !round.decl.stages.some((s) => s.name.text === "prev")) {
    if (e.path.length !== 2) {
      el.err("E020", `\`prev\` is followed by one stage name: \`prev.x\``, file, e, "`prev.x` is the previous round's `x`");
      return ERR;
    }
    const x = e.path[1]!;
    const body = round.decl.stages.find((s) => s.name.text === x.text);
    if (round.k > 1) {
      if (body) return el.roundStage(body, { ...round, k: round.k - 1 });
    } else {
      const entry = round.decl.init?.entries.find((en) => en.key.length === 1 && en.key[0]!.text === x.text);
      if (entry) return initValue(round, entry);
      if (body) {
        el.err("E051", `round 1 of \`${round.decl.name.text}\` has no previous round to give \`prev.${x.text}\``, file, e, `say what it is in round 1: \`repeat ${round.decl.name.text}(...) from { ${x.text}: ... }\``);
        return ERR;
      }
    }
    el.err("E020", `unknown stage \`${x.text}\` in \`prev.${x.text}\``, file, x, hintDidYouMean(x.text, round.decl.stages.map((s) => s.name.text)) ?? "`prev.x` names a stage of the repeat block");
    return ERR;
  }
  const found = repeatNamed(name);
  if (!found) return undefined;
  const { rep, outer, base } = found;
  const last = !e.index && e.path[1]?.text === "last";
  const stageAt = last ? 2 : 1;
  if ((!e.index && !last) || e.path.length !== stageAt + 1) {
    el.err("E020", `\`${name}\` is a repeat block: name one round's stage`, file, e, `write \`${name}[1].${rep.stages[0]?.name.text ?? "x"}\`, or \`${name}.last.${rep.stages[0]?.name.text ?? "x"}\` for the last round's`);
    return ERR;
  }
  const count = rounds.count(rep, outer, base);
  if (count === undefined) return ERR;
  const k = last ? count : e.index!.value;
  if (!Number.isInteger(k) || k < 1 || k > count) {
    el.err("E051", `\`${name}[${e.index!.value}]\` does not exist: \`${name}\` has ${count} round${count === 1 ? "" : "s"}`, file, e.index!, `rounds are numbered 1 to ${count}`);
    return ERR;
  }
  if (round && round.decl === rep && k >= round.k) {
    el.err("E050", `cycle through rounds: a round of \`${name}\` reads \`${name}[${k}]\`, itself or a later round`, file, e, "a round reads only earlier rounds: `prev.x`, or `round[k].x` with k smaller than its own");
    return ERR;
  }
  const x = e.path[stageAt]!;
  const body = rep.stages.find((s) => s.name.text === x.text);
  if (!body) {
    el.err("E020", `repeat block \`${name}\` has no stage \`${x.text}\``, file, x, hintDidYouMean(x.text, rep.stages.map((s) => s.name.text)) ?? `its stages: ${rep.stages.map((s) => s.name.text).join(", ")}`);
    return ERR;
  }
  return el.roundStage(body, { decl: rep, k, count, outer, base });
}

/** The id of a round's stage: `<base><block>[k].<stage>`. */
export function roundStageId(round: Round, d: A.StageDecl): string {
  return `${round.base}${round.decl.name.text}[${round.k}].${d.name.text}`;
}
