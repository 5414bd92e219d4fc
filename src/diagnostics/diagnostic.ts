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
  E060: "invalid override (--set)",
  E061: "invalid env()/secret() use",
  W001: "unused stage",
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

export const error = (code: Code, message: string, range?: Range, hint?: string): Diagnostic => ({
  severity: "error",
  code,
  message,
  ...(range ? { range } : {}),
  ...(hint ? { hint } : {}),
});

export const warning = (code: Code, message: string, range?: Range, hint?: string): Diagnostic => ({
  severity: "warning",
  code,
  message,
  ...(range ? { range } : {}),
  ...(hint ? { hint } : {}),
});

export const hasErrors = (ds: readonly Diagnostic[]): boolean => ds.some((d) => d.severity === "error");
