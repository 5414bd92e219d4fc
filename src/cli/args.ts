import { parseArgs, type ParseArgsConfig } from "node:util";
import type { Diagnostic } from "../diagnostics/diagnostic.js";

// What the verbs share: their type, their option parsing, and output conventions. main.ts loads the verbs; they
// import this module, never main.ts, so the dependency runs one way.

/** A verb: parses its own options, does its work, and returns the exit code. */
export type Verb = (args: string[]) => Promise<number> | number;

/** parseArgs with our conventions: unknown options are usage errors; `--help` prints the verb's help. */
export function parseVerbArgs<T extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: T, help: string) {
  const parsed = parseArgs({ args, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(help.trim() + "\n");
    return undefined;
  }
  return parsed;
}

export function useColor(stream: NodeJS.WriteStream): boolean {
  return stream.isTTY === true && !process.env["NO_COLOR"];
}

export function summaryLine(ds: readonly Diagnostic[]): string {
  const e = ds.filter((d) => d.severity === "error").length;
  const w = ds.length - e;
  const parts = [];
  if (e) parts.push(`${e} error${e === 1 ? "" : "s"}`);
  if (w) parts.push(`${w} warning${w === 1 ? "" : "s"}`);
  return parts.join(", ");
}
