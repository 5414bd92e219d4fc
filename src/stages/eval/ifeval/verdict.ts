// IFEval's verdicts for one response (lm_eval/tasks/ifeval/utils.py test_instruction_following_strict/_loose):
// strict, an instruction is followed when the response is non-empty (after stripping) and its check passes;
// loose, when any of 8 variants of the response passes that way: the response, it without "*", it without its
// first line, without its last line, without both, and each of those three with "*" removed.
import { UserError } from "../../../core/errors.js";
import { pyStrip } from "../py-text.js";
import { type IfevalCheck, ifevalChecker, type IfevalKwargs } from "./checkers.js";

/** One row of google/IFEval (`key` aside). */
export interface IfevalItem {
  readonly prompt: string;
  readonly instruction_id_list: readonly string[];
  readonly kwargs: readonly IfevalKwargs[];
}

/** Per instruction of the item, in order: followed or not. */
export interface IfevalVerdict {
  readonly strict: boolean[];
  readonly loose: boolean[];
}

/** The 8 responses the loose verdict tries, in the reference's order. */
export function looseVariants(response: string): string[] {
  const lines = response.split("\n");
  const removeFirst = pyStrip(lines.slice(1).join("\n"));
  const removeLast = pyStrip(lines.slice(0, -1).join("\n"));
  const removeBoth = pyStrip(lines.slice(1, -1).join("\n"));
  const noStars = (s: string) => s.replaceAll("*", "");
  return [response, noStars(response), removeFirst, removeLast, removeBoth, noStars(removeFirst), noStars(removeLast), noStars(removeBoth)];
}

const follows = (check: IfevalCheck, response: string) => pyStrip(response) !== "" && check(response);

/** The item's checkers, one per instruction; bad ids or arguments are errors naming the instruction. */
export function ifevalCheckers(item: IfevalItem): IfevalCheck[] {
  if (item.instruction_id_list.length !== item.kwargs.length) {
    throw new UserError(
      `IFEval item has ${item.instruction_id_list.length} instruction ids but ${item.kwargs.length} kwargs`,
      "instruction_id_list and kwargs are parallel lists: one kwargs object per instruction.",
    );
  }
  return item.instruction_id_list.map((id, i) => ifevalChecker(id, item.kwargs[i]!));
}

/** Strict and loose verdicts of every instruction of `item` on `response`. */
export function ifevalVerdict(item: IfevalItem, response: string): IfevalVerdict {
  const checks = ifevalCheckers(item);
  const variants = looseVariants(response);
  return {
    strict: checks.map((c) => follows(c, response)),
    loose: checks.map((c) => variants.some((v) => follows(c, v))),
  };
}
