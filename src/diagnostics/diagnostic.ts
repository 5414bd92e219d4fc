import type { Range } from "./source.js";

export type Severity = "error" | "warning";

/**
 * Every diagnostic code the front end can emit. Codes are stable: tests and users' tooling match on them.
 */
export const codes = {
  E001: "syntax: unexpected or missing token",
  E002: "syntax: invalid character",
  E003: "syntax: unterminated string",
  E010: "import: file not found",
  E011: "import: cycle among imports",
  E012: "import: name not exported by the module",
  E013: "import: package not installed, not exported, or malformed (node_modules)",
  E014: "import: git repository import malformed, not resolvable or not fetchable",
  E015: "import: a git import's ref moved since the lock (refused until `itp lock --update`)",
  E020: "unknown name",
  E021: "duplicate name",
  E022: "unknown stage kind or recipe",
  E030: "unknown parameter",
  E031: "missing required parameter",
  E032: "invalid parameter value (type or range)",
  E033: "wrong number of inputs",
  E040: "type mismatch between stages",
  E041: "unknown field for the record type",
  E042: "unknown type",
  E043: "declared type differs from the stage's type",
  E044: "declaration keyword does not match what the stage produces",
  E045: "recipe has no output",
  E050: "cycle among stages",
  E051: "reference to a round that does not exist",
  E052: "number of rounds is not a constant",
  E060: "invalid override (--set)",
  E061: "invalid env()/secret() use",
  E062: "invalid lock file",
  E070: "a local file the stages to run read does not exist (plan, run)",
  E075: "stage kind has no implementation in this version of itp",
  E076: "executor not available",
  E080: "a write outside the recipe's folder and the store (refused unless --allow-write)",
  E081: "an env() value in what is sent to a host (refused unless --allow-env)",
  E082: "a read outside the recipe's folder under --deny-read-outside",
  E083: "one credential sent to several hosts (refused unless --allow-env)",
  E090: "invalid profile file (itp.profiles.yaml): syntax, unknown setting, wrong type",
  E091: "unknown profile (--profile)",
  E092: "profile file not found",
  W001: "unused stage",
  W002: "a source's local file does not exist (an error at plan and run)",
  W003: "a hub read is neither pinned to a commit nor locked (`itp lock`)",
  W004: "a git import is neither pinned to a commit nor locked (`itp lock`)",
  W005: "an imported package's installed version differs from the lock (`itp lock`)",
} as const;

export type Code = keyof typeof codes;

export interface Diagnostic {
  readonly severity: Severity;
  readonly code: Code;
  readonly message: string;
  /** Where; absent only for diagnostics about the command line itself. */
  readonly range?: Range;
  readonly hint?: string;
}

/** A range always lies inside its file, whatever a recovering parser left in the tree. */
function clamp(range: Range): Range {
  const len = range.file.text.length;
  const fix = (o: number, fallback: number) => (Number.isFinite(o) ? Math.max(0, Math.min(o, len)) : fallback);
  const start = fix(range.start, Number.isFinite(range.end) ? fix(range.end, 0) : 0);
  const end = Math.max(start, fix(range.end, start));
  return start === range.start && end === range.end ? range : { file: range.file, start, end };
}

const make = (severity: Severity, code: Code, message: string, range?: Range, hint?: string): Diagnostic => ({
  severity,
  code,
  message,
  ...(range ? { range: clamp(range) } : {}),
  ...(hint ? { hint } : {}),
});

export const error = (code: Code, message: string, range?: Range, hint?: string): Diagnostic => make("error", code, message, range, hint);

export const warning = (code: Code, message: string, range?: Range, hint?: string): Diagnostic => make("warning", code, message, range, hint);

export const hasErrors = (ds: readonly Diagnostic[]): boolean => ds.some((d) => d.severity === "error");
