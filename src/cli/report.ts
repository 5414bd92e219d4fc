import type { EvalExample, Metric, Report, TaskReport } from "../stages/eval/report.js";

// Rendering an evaluation Report for `itp show` (the metrics table, the examples) and comparing two of them for
// `itp report-diff`. Pure: values in, text or rows out.

const num = (x: number | null | undefined, digits = 4) => (x === null || x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(digits));

function contaminationText(t: TaskReport): string {
  const c = t.contamination;
  return "contaminated" in c ? `${c.contaminated}/${c.items} items share a ${c.ngram}-gram with ${c.training_data.join(", ")}` : c.unavailable;
}

/** Lines of a table, columns padded to their widest cell (numbers right-aligned). */
function table(header: readonly string[], rows: readonly (readonly string[])[], right: ReadonlySet<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** The metrics of every task: one row per metric, the primary one first, with its standard error and count. */
export function renderReport(r: Report): string {
  const out = [`model     ${r.model}`, `template  ${r.template}`];
  const rows: string[][] = [];
  for (const t of r.tasks) {
    const names = [t.primary, ...Object.keys(t.metrics).filter((k) => k !== t.primary)];
    for (const [k, name] of names.entries()) {
      const m = t.metrics[name]!;
      rows.push([k === 0 ? t.name : "", name, num(m.value), m.stderr === null ? "-" : num(m.stderr), String(m.n)]);
    }
  }
  out.push(...table(["task", "metric", "value", "stderr", "n"], rows, new Set([2, 3, 4])));
  out.push("items and contamination");
  for (const t of r.tasks) {
    const notes = t.notes ? `; ${Object.entries(t.notes).map(([k, v]) => `${k} ${v}`).join(", ")}` : "";
    out.push(`  ${t.name}: ${t.items} items${t.limited ? " (cut by limit)" : ""}; ${contaminationText(t)}${notes}`);
  }
  return out.join("\n") + "\n";
}

/** The examples of a report, of one task or all, the failed ones only when asked. */
export function selectExamples(r: Report, opts: { task?: string; failed?: boolean }): { task: string; example: EvalExample }[] {
  const out: { task: string; example: EvalExample }[] = [];
  for (const t of r.tasks) {
    if (opts.task !== undefined && t.name !== opts.task) continue;
    for (const e of r.examples[t.name] ?? []) if (!opts.failed || e.passed === false) out.push({ task: t.name, example: e });
  }
  return out;
}

const shown = (v: unknown) => (typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v));

/** Examples as text: a header per example, then its prompt, output, extracted answer, gold and verdict. */
export function renderExamples(list: readonly { task: string; example: EvalExample }[]): string {
  const out: string[] = [];
  for (const { task, example: e } of list) {
    const verdict = e.passed === undefined ? "" : e.passed ? " passed" : " FAILED";
    out.push(`--- ${task} #${e.id}${verdict}`);
    out.push(`prompt:    ${shown(e.prompt)}`);
    out.push(`output:    ${shown(e.output)}`);
    if (e.extracted !== undefined) out.push(`extracted: ${shown(e.extracted)}`);
    if (e.gold !== undefined) out.push(`gold:      ${shown(e.gold)}`);
    if (e.verdict !== undefined) out.push(`verdict:   ${shown(e.verdict)}`);
  }
  return out.length > 0 ? out.join("\n") + "\n" : "";
}

/** One metric of one task in two reports. */
export interface MetricChange {
  readonly task: string;
  readonly metric: string;
  readonly old: Metric | null;
  readonly new: Metric | null;
  /** new - old, when both exist. */
  readonly change: number | null;
  /** The standard error of the change: sqrt(se_old^2 + se_new^2), the two evaluations being independent. */
  readonly stderr: number | null;
  /** Whether |change| exceeds that standard error (null when either has none). */
  readonly beyond_stderr: boolean | null;
}

/** The metrics of two reports side by side, task by task (by name), every metric either has. */
export function diffReports(a: Report, b: Report): MetricChange[] {
  const out: MetricChange[] = [];
  const names = [...new Set([...a.tasks.map((t) => t.name), ...b.tasks.map((t) => t.name)])];
  for (const name of names) {
    const ta = a.tasks.find((t) => t.name === name);
    const tb = b.tasks.find((t) => t.name === name);
    const metrics = [...new Set([...Object.keys(ta?.metrics ?? {}), ...Object.keys(tb?.metrics ?? {})])];
    for (const metric of metrics) {
      const o = ta?.metrics[metric] ?? null;
      const n = tb?.metrics[metric] ?? null;
      const change = o && n && Number.isFinite(o.value) && Number.isFinite(n.value) ? n.value - o.value : null;
      const stderr = o && n && o.stderr !== null && n.stderr !== null ? Math.sqrt(o.stderr ** 2 + n.stderr ** 2) : null;
      out.push({ task: name, metric, old: o, new: n, change, stderr, beyond_stderr: change !== null && stderr !== null ? Math.abs(change) > stderr : null });
    }
  }
  return out;
}

export function renderDiff(changes: readonly MetricChange[]): string {
  const rows = changes.map((c) => [
    c.task,
    c.metric,
    c.old ? num(c.old.value) : "(none)",
    c.new ? num(c.new.value) : "(none)",
    c.change === null ? "-" : `${c.change >= 0 ? "+" : ""}${num(c.change)}`,
    c.stderr === null ? "-" : num(c.stderr),
    c.beyond_stderr === null ? "-" : c.beyond_stderr ? "yes" : "no",
  ]);
  return table(["task", "metric", "old", "new", "change", "stderr", "beyond stderr"], rows, new Set([2, 3, 4, 5])).join("\n") + "\n";
}
