import { DirectedGraph } from "graphology";
import type { IrProgram, IrStage } from "../core/ir.js";

export interface EdgeAttrs {
  readonly role: string;
}

export type StageGraph = DirectedGraph<IrStage, EdgeAttrs>;

/**
 * The typed DAG: the checked program lowered once into a graph whose node ids are the stages' qualified names and
 * whose node attributes are the stages themselves (kind, resolved parameters, type). Edges run upstream -> downstream.
 */
export function buildGraph(program: IrProgram): StageGraph {
  const g: StageGraph = new DirectedGraph<IrStage, EdgeAttrs>({ allowSelfLoops: false });
  for (const s of program.stages.values()) g.addNode(s.id, s);
  for (const s of program.stages.values()) {
    for (const i of s.inputs) {
      // Two roles reading the same upstream (a model used twice) are one dependency.
      if (!g.hasEdge(i.from, s.id)) g.addDirectedEdge(i.from, s.id, { role: i.role });
    }
  }
  return g;
}

/** Every stage downstream of the given ones (not including them), in program order. */
export function downstreamOf(g: StageGraph, roots: Iterable<string>): string[] {
  const seen = new Set<string>();
  const stack = [...roots].filter((r) => g.hasNode(r));
  const rootSet = new Set(stack);
  while (stack.length > 0) {
    const n = stack.pop()!;
    g.forEachOutNeighbor(n, (m) => {
      if (!seen.has(m)) {
        seen.add(m);
        stack.push(m);
      }
    });
  }
  return g.nodes().filter((n) => seen.has(n) && !rootSet.has(n));
}
