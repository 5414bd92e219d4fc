import type { RecipeReport, StageRow, StageState } from "./data.js";

// The DAG of a report as Graphviz DOT, each stage filled with its state's colour: what the page lays out with
// Graphviz (viz.js) in the browser. Pure.

export const STATE_COLOURS: Readonly<Record<StageState, string>> = {
  done: "#b7e4c7",
  cached: "#bcd4f6",
  failed: "#f4b6b6",
  "not run": "#e9e9e9",
};

/** A DOT string (Graphviz reads `\n` in a quoted label as a line break, `\"` as a quote). */
const q = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\r?\n/g, "\\n")}"`;

const slug = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, "_");

export function seconds(ms: number | null): string {
  if (ms === null) return "";
  return ms < 1000 ? `${(ms / 1000).toFixed(2)} s` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** The stage rows of two reports that differ in what the page compares (state, records, counts), by stage id. */
export function changedStages(a: RecipeReport, b: RecipeReport): Set<string> {
  const out = new Set<string>();
  const key = (s: StageRow | undefined) => (s ? JSON.stringify([s.state, s.records, s.counts]) : "absent");
  const ia = new Map(a.stages.map((s) => [s.id, s]));
  const ib = new Map(b.stages.map((s) => [s.id, s]));
  for (const id of new Set([...ia.keys(), ...ib.keys()])) if (key(ia.get(id)) !== key(ib.get(id))) out.add(id);
  return out;
}

/**
 * The DAG of one report: a box per stage (name, kind, records, time) filled with its state's colour, its SVG group
 * given the id `<side>-stage-<name>` and the classes `state-<state>` (and `changed` where `changed` names it: a
 * thick orange border).
 */
export function stateDot(r: RecipeReport, side: string, changed: ReadonlySet<string> = new Set()): string {
  const lines = ["digraph itp {", "  rankdir=LR;", '  bgcolor="transparent";', '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, color="#555555"];', '  edge [color="#777777", fontname="Helvetica", fontsize=9];'];
  for (const s of r.stages) {
    const facts = [s.records !== null ? `${s.records.toLocaleString("en-US")} records` : "", seconds(s.ms)].filter(Boolean).join(", ");
    const label = [s.id, s.kind, facts || s.state].join("\n");
    const attrs = [
      `label=${q(label)}`,
      `fillcolor=${q(STATE_COLOURS[s.state])}`,
      `id=${q(`${side}-stage-${slug(s.id)}`)}`,
      `class=${q(`state-${s.state.replace(" ", "-")}${changed.has(s.id) ? " changed" : ""}`)}`,
      `tooltip=${q(`${s.id}: ${s.state}${s.note ? ` (${s.note})` : ""}`)}`,
    ];
    if (s.state === "not run") attrs.push('style="rounded,filled,dashed"');
    if (changed.has(s.id)) attrs.push('penwidth=3, color="#d9480f"');
    lines.push(`  ${q(s.id)} [${attrs.join(", ")}];`);
  }
  for (const e of r.edges) {
    const role = e.role.replace(/^param:|^component:/, "");
    const label = e.role === "data" || e.role.startsWith("inputs") || e.role.startsWith("component:") ? "" : ` [label=${q(role)}]`;
    lines.push(`  ${q(e.from)} -> ${q(e.to)}${label};`);
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}
