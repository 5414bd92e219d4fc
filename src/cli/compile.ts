import { check, type CheckOptions, type CheckResult } from "../compile/check.js";
import { parseOverride, type Override } from "../compile/overrides.js";
import type { Diagnostic } from "../diagnostics/diagnostic.js";
import { renderText, sortDiagnostics, toJson } from "../diagnostics/render.js";
import { hubSettings } from "../hub/settings.js";
import { defaultRegistry } from "../stages/index.js";
import { diskHost, expandPaths } from "./host.js";
import { GitImports } from "./git-imports.js";
import { summaryLine, useColor } from "./args.js";

/** Check files from disk with `--set` overrides applied; override syntax errors come back as diagnostics. */
export function compileFiles(paths: readonly string[], sets: readonly string[] = [], opts: { runnable?: boolean; applyLock?: boolean; lockImports?: boolean; permissions?: CheckOptions["permissions"] } = {}): CheckResult {
  const overrides: Override[] = [];
  const extra: Diagnostic[] = [];
  for (const s of sets) {
    const r = parseOverride(s);
    if (r.override) overrides.push(r.override);
    extra.push(...r.diagnostics);
  }
  const files = expandPaths(paths);
  // Git imports are resolved and fetched here, before the front end reads them from the cache.
  const { lockImports, ...checkOpts } = opts;
  const { host, graph } = GitImports.fromEnv().resolve(files, diskHost(), { useLocks: lockImports ?? opts.applyLock !== false });
  const result = check(files, host, defaultRegistry(), { overrides, hubEndpoint: hubSettings().endpoint, ...checkOpts, modules: graph });
  return { ...result, diagnostics: [...extra, ...result.diagnostics] };
}

/**
 * Diagnostics on stderr, in source order, then a count. With `perWarningCode`, a warning code that repeats more often
 * (a Flan-sized recipe whose 1,837 inputs are not there yet) shows its first few and a line for the rest; errors are
 * always shown whole.
 */
export function printDiagnostics(ds: readonly Diagnostic[], json: boolean, opts: { perWarningCode?: number } = {}): void {
  const sorted = sortDiagnostics(ds);
  if (json) return;
  const color = useColor(process.stderr);
  const shown = new Map<string, number>();
  const limit = opts.perWarningCode ?? Infinity;
  for (const d of sorted) {
    if (d.severity !== "error") {
      const n = (shown.get(d.code) ?? 0) + 1;
      shown.set(d.code, n);
      if (n > limit) continue;
    }
    process.stderr.write(renderText(d, color) + "\n\n");
  }
  for (const [code, n] of shown) if (n > limit) process.stderr.write(`(${n - limit} more ${code} warning${n - limit === 1 ? "" : "s"} like these; --json lists every one)\n`);
  if (sorted.length > 0) process.stderr.write(summaryLine(sorted) + "\n");
}

export const diagnosticsJson = (ds: readonly Diagnostic[]) => sortDiagnostics(ds).map(toJson);
