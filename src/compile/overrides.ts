import { error, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { SourceFile } from "../diagnostics/source.js";
import type * as A from "../syntax/ast.js";
import { parseExpression } from "../syntax/parser.js";

/**
 * `--set stage.param=value`: applied to the stage (or recipe instance) with that id before validation. The value is
 * an expression (`0.8`, `"x"`, `take(1000)`, a field name), parsed from the command line into its own small file.
 */
export interface Override {
  readonly target: string;
  readonly param: string;
  readonly expr: A.Expr;
  readonly file: SourceFile;
}

/**
 * `stage.param=value` from `--set`. The target is everything before the last dot of the key (a stage id, which may
 * itself be dotted: `tulu.mixture.seed`, and name a round: `humpback.round[2].curate.min_score`). The value is an expression: `0.8`, `"text"`, `[1, 2]`, `take(1000)`.
 */
export function parseOverride(arg: string): { override?: Override; diagnostics: Diagnostic[] } {
  const eq = arg.indexOf("=");
  const key = eq < 0 ? arg : arg.slice(0, eq);
  const dot = key.lastIndexOf(".");
  if (eq < 0 || dot <= 0 || dot === key.length - 1 || !/^[A-Za-z_][A-Za-z0-9_]*(?:\[[0-9]+\])?(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[[0-9]+\])?)*$/.test(key)) {
    return { diagnostics: [error("E060", `--set ${arg}: expected STAGE.PARAM=VALUE`, undefined, "for example `--set sft.lr=1e-5` or `--set clean.max=0.8`")] };
  }
  const text = arg.slice(eq + 1);
  const parsed = parseExpression(text, `--set ${key}`);
  if (!parsed.expr) {
    const quoted = text.length > 0 && !/^["[{]/.test(text);
    return {
      diagnostics: parsed.diagnostics.map((d) => ({ ...d, code: "E060" as const, hint: quoted ? `quote text values: --set '${key}="${text}"'` : d.hint })),
    };
  }
  return { override: { target: key.slice(0, dot), param: key.slice(dot + 1), expr: parsed.expr, file: parsed.file }, diagnostics: [] };
}
