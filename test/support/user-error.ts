import { expect } from "vitest";
import { stackTrace, type CliResult } from "./cli.js";

/** A run the user's mistake stopped: exit 1, every given text in what it printed, no stack trace. */
export function expectUserError(r: CliResult, ...texts: string[]): void {
  const out = r.stdout + r.stderr;
  expect(r.code, out).toBe(1);
  for (const t of texts) expect(out).toContain(t);
  expect(out).not.toMatch(stackTrace);
}
