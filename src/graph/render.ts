import { show } from "../types/types.js";
import type { StageGraph } from "./build.js";

export interface GraphJson {
  nodes: { id: string; kind: string; type: string; doc?: string }[];
  edges: { from: string; to: string; role: string }[];
}

export function toJson(g: StageGraph): GraphJson {
  return {
    nodes: g.mapNodes((id, s) => ({ id, kind: s.kind, type: show(s.type), ...(s.doc ? { doc: s.doc } : {}) })),
    edges: g.mapEdges((_e, a, from, to) => ({ from, to, role: a.role })),
  };
}

const dotId = (s: string) => JSON.stringify(s);

export function toDot(g: StageGraph): string {
  const lines = ["digraph itp {", "  rankdir=LR;", '  node [shape=box, style="rounded", fontname="Helvetica"];'];
  g.forEachNode((id, s) => {
    const label = `${id}\\n${s.kind} : ${show(s.type)}`.replace(/"/g, '\\"');
    const tip = s.doc ? `, tooltip=${dotId(s.doc)}` : "";
    lines.push(`  ${dotId(id)} [label="${label}"${tip}];`);
  });
  g.forEachEdge((_e, a, from, to) => {
    const label = a.role === "data" || a.role.startsWith("inputs") ? "" : ` [label=${dotId(a.role.replace(/^param:|^component:/, ""))}]`;
    lines.push(`  ${dotId(from)} -> ${dotId(to)}${label};`);
  });
  lines.push("}");
  return lines.join("\n") + "\n";
}

export function toMermaid(g: StageGraph): string {
  const ids = new Map<string, string>();
  g.forEachNode((id, _s) => ids.set(id, `n${ids.size}`));
  const esc = (s: string) => s.replace(/"/g, "#quot;").replace(/</g, "#lt;").replace(/>/g, "#gt;");
  const lines = ["flowchart LR"];
  g.forEachNode((id, s) => lines.push(`  ${ids.get(id)}["${esc(id)}<br/>${esc(s.kind)} : ${esc(show(s.type))}"]`));
  g.forEachEdge((_e, a, from, to) => {
    const role = a.role.replace(/^param:|^component:/, "");
    const label = role === "data" || role.startsWith("inputs") ? "" : `|${esc(role)}|`;
    lines.push(`  ${ids.get(from)} -->${label} ${ids.get(to)}`);
  });
  return lines.join("\n") + "\n";
}
