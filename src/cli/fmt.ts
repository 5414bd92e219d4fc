import { createTwoFilesPatch, FILE_HEADERS_ONLY } from "diff";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { isAbsolute, relative, sep } from "node:path";
import { hasErrors } from "../diagnostics/diagnostic.js";
import { format } from "../format/format.js";
import { parse } from "../syntax/parser.js";
import { diagnosticsJson, printDiagnostics } from "./compile.js";
import { expandPaths, UsageError } from "./host.js";
import { parseVerbArgs } from "./args.js";

const help = `
usage: itp fmt <paths...> [--check] [--diff] [--json]

Rewrite recipes in canonical form (folders are searched for .itp files). Comments are kept.
  --check   write nothing; exit 1 if any file is not formatted
  --diff    write nothing; print what would change as a unified diff (apply it with git apply or patch -p1)
Files with syntax errors are refused (exit 1) and left untouched.`;

export async function fmtVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(args, { check: { type: "boolean" }, diff: { type: "boolean" }, json: { type: "boolean" } }, help);
  if (!p) return 0;
  if (p.positionals.length === 0) throw new UsageError("give at least one file or folder");
  const dryRun = p.values.check || p.values.diff;
  const report: { file: string; formatted: boolean; error?: string }[] = [];
  const allDiags = [];
  let status = 0;
  for (const file of expandPaths(p.positionals)) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      process.stderr.write(`itp fmt: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
      report.push({ file, formatted: false, error: "unreadable" });
      status = 1;
      continue;
    }
    const parsed = parse(text, file);
    if (hasErrors(parsed.diagnostics)) {
      allDiags.push(...parsed.diagnostics);
      report.push({ file, formatted: false, error: "syntax errors" });
      status = 1;
      continue;
    }
    const out = format(parsed.module);
    const same = out === text;
    report.push({ file, formatted: same });
    if (same) continue;
    if (p.values.check) status = 1;
    if (p.values.diff && !p.values.json) process.stdout.write(unifiedDiff(file, text, out));
    if (p.values.check && !p.values.diff && !p.values.json) process.stdout.write(`${file}: not formatted\n`);
    if (!dryRun) {
      // Atomic: a crash mid-write never leaves half a recipe.
      const tmp = `${file}.itp-fmt-${process.pid}`;
      writeFileSync(tmp, out);
      renameSync(tmp, file);
      if (!p.values.json) process.stdout.write(`formatted ${file}\n`);
    }
  }
  if (allDiags.length > 0) {
    if (!p.values.json) {
      printDiagnostics(allDiags, false);
      process.stderr.write("itp fmt: refusing to format files with syntax errors\n");
    }
  }
  if (p.values.json) process.stdout.write(JSON.stringify({ files: report, diagnostics: diagnosticsJson(allDiags) }) + "\n");
  return status;
}

/** The change as a unified diff with git's a/ and b/ prefixes, so `git apply` and `patch -p1` take it as it is. */
export function unifiedDiff(file: string, before: string, after: string): string {
  const rel = isAbsolute(file) ? relative(process.cwd(), file) : file;
  const path = rel.split(sep).join("/");
  return createTwoFilesPatch(`a/${path}`, `b/${path}`, before, after, undefined, undefined, { context: 3, headerOptions: FILE_HEADERS_ONLY });
}
