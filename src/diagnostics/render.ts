import type { Diagnostic } from "./diagnostic.js";

export interface JsonDiagnostic {
  file: string | null;
  line: number | null;
  col: number | null;
  endLine: number | null;
  endCol: number | null;
  severity: string;
  code: string;
  message: string;
  hint?: string;
}

export function toJson(d: Diagnostic): JsonDiagnostic {
  if (!d.range) {
    return { file: null, line: null, col: null, endLine: null, endCol: null, severity: d.severity, code: d.code, message: d.message, ...(d.hint ? { hint: d.hint } : {}) };
  }
  const s = d.range.file.position(d.range.start);
  const e = d.range.file.position(Math.max(d.range.start, d.range.end));
  return {
    file: d.range.file.path,
    line: s.line,
    col: s.col,
    endLine: e.line,
    endCol: e.col,
    severity: d.severity,
    code: d.code,
    message: d.message,
    ...(d.hint ? { hint: d.hint } : {}),
  };
}

/** `file:line:col: error[CODE]: message`, the source line, a caret under the range, then the hint. */
export function renderText(d: Diagnostic, color = false): string {
  const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const sev = d.severity === "error" ? paint("1;31", "error") : paint("1;33", "warning");
  if (!d.range) return `itp: ${sev}[${d.code}]: ${d.message}${d.hint ? `\n  = hint: ${d.hint}` : ""}`;
  const f = d.range.file;
  const s = f.position(d.range.start);
  const e = f.position(Math.max(d.range.start, d.range.end));
  const src = f.lineText(s.line).replace(/\t/g, " ");
  const width = e.line === s.line ? Math.max(1, e.col - s.col) : Math.max(1, src.length - s.col + 1);
  const gutter = String(s.line);
  const pad = " ".repeat(gutter.length);
  const lines = [
    `${f.path}:${s.line}:${s.col}: ${sev}[${d.code}]: ${d.message}`,
    `${pad} |`,
    `${gutter} | ${src}`,
    `${pad} | ${" ".repeat(s.col - 1)}${paint(d.severity === "error" ? "31" : "33", "^".repeat(width))}`,
  ];
  if (d.hint) lines.push(`${pad} = hint: ${d.hint}`);
  return lines.join("\n");
}

/** Sorted by file, then position, so output is stable. */
export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) => {
    const fa = a.range?.file.path ?? "";
    const fb = b.range?.file.path ?? "";
    if (fa !== fb) return fa < fb ? -1 : 1;
    return (a.range?.start ?? 0) - (b.range?.start ?? 0);
  });
}
