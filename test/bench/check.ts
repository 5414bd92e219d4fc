// npm run bench -- check: the front end at Flan-2022 scale (about 9,200 stages), against JSON.parse of the same
// program and, for start-up, against `node -e 0`. Medians of several runs, measured side by side in one process.
// The recipe's input files are made (empty) next to it, as a project has them: `itp check` warns of each missing
// one (W002), and printing 1,837 such warnings would be measured instead of the checking.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { check } from "../../src/compile/check.js";
import { buildGraph } from "../../src/graph/build.js";
import { defaultRegistry } from "../../src/stages/index.js";
import type * as A from "../../src/syntax/ast.js";
import { parse } from "../../src/syntax/parser.js";
import { flanScaleRecipe } from "./flan-scale.js";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const time = (f: () => void) => {
  const t = performance.now();
  f();
  return performance.now() - t;
};

const { text, stages } = flanScaleRecipe();
const dir = mkdtempSync(join(tmpdir(), "itp-bench-check-"));
const big = join(dir, "flan_scale.itp");
writeFileSync(big, text);
for (const m of text.matchAll(/jsonl\("([^"]+)"\)/g)) {
  mkdirSync(dirname(join(dir, m[1]!)), { recursive: true });
  writeFileSync(join(dir, m[1]!), "");
}
const small = join(dir, "small.itp");
writeFileSync(small, `dataset seeds: Instruction = jsonl("seeds.jsonl")\n\nfilter short = seeds |> take(n: 10)\n`);
writeFileSync(join(dir, "seeds.jsonl"), "");

// The same program as a JSON document, the way a JSON-based recipe format would write it: declarations with their
// stage calls, arguments and parameters; no positions, no comments.
const parsed = parse(text, big);
const json = JSON.stringify(programJson(parsed.module));

function exprJson(e: A.Expr): unknown {
  switch (e.type) {
    case "Literal":
      return e.value;
    case "Reference":
      return { ref: e.path.map((p) => p.text).join(".") };
    case "List":
      return e.items.map(exprJson);
    case "Record":
      return blockJson(e.block);
    case "Pipeline":
      return { pipe: [exprJson(e.head), ...e.steps.map(exprJson)] };
    case "Call":
      return { call: e.callee.text, args: e.args.map((a) => (a.name ? { [a.name.text]: exprJson(a.value) } : exprJson(a.value))), ...(e.block ? { block: blockJson(e.block) } : {}) };
  }
}
function blockJson(b: A.Block): Record<string, unknown> {
  return Object.fromEntries(b.entries.map((en) => [en.key.map((k) => k.text).join("."), exprJson(en.value)]));
}
function programJson(m: A.Module): unknown {
  return m.decls.map((d) => (d.type === "StageDecl" ? { [d.keyword]: d.name.text, ...(d.annotation ? { type: d.annotation.name.text } : {}), value: exprJson(d.value) } : { decl: d.type, name: d.name.text }));
}

// The recipe from memory, any other file (a lock file next to it, stdlib modules) from the disk, as the CLI's host.
const host = { readFile: (p: string) => (p === big ? text : existsSync(p) ? readFileSync(p, "utf8") : undefined), stdRoot: join(process.cwd(), "stdlib") };
const registry = defaultRegistry();
const runs = Number(process.env["RUNS"] ?? 7);
const tParse: number[] = [];
const tCheck: number[] = [];
const tDag: number[] = [];
const tJson: number[] = [];
let nodes = 0;
for (let i = 0; i < runs + 1; i++) {
  const p = time(() => parse(text, big));
  let r: ReturnType<typeof check> | undefined;
  const c = time(() => (r = check([big], host, registry)));
  if (r!.diagnostics.length > 0) throw new Error(`the generated recipe does not check: ${r!.diagnostics[0]!.message}`);
  const d = time(() => (nodes = buildGraph(r!.files[0]!.program!).order));
  const j = time(() => JSON.parse(json));
  if (i === 0) continue; // warm-up
  tParse.push(p);
  tCheck.push(c);
  tDag.push(d);
  tJson.push(j);
}

const wall = (args: string[], n: number) => {
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const r = spawnSync(process.execPath, args, { encoding: "utf8" });
    ts.push(performance.now() - t);
    if (r.status !== 0) throw new Error(`${args.join(" ")} failed: ${r.stderr}`);
  }
  return median(ts);
};
const cli = join(process.cwd(), "bin/itp.js");
const checkWall = wall([cli, "check", big], 5);
const nodeFloor = wall(["-e", "0"], 11);
const startup = wall([cli, "check", small], 11);

const checkMs = median(tCheck);
const jsonMs = median(tJson);
console.log(`flan-scale recipe: ${stages} stages, ${(text.length / 1e6).toFixed(2)} MB; as JSON ${(json.length / 1e6).toFixed(2)} MB`);
console.log(`in process (median of ${runs}): parse ${median(tParse).toFixed(0)} ms, check (parse+resolve+types) ${checkMs.toFixed(0)} ms, DAG ${median(tDag).toFixed(0)} ms, JSON.parse ${jsonMs.toFixed(1)} ms`);
console.log(`CLI: itp check ${checkWall.toFixed(0)} ms wall; start-up on a small file ${startup.toFixed(0)} ms vs node -e 0 ${nodeFloor.toFixed(0)} ms`);
console.log(
  `bench check: check_s=${(checkWall / 1000).toFixed(3)} x_json_parse=${(checkMs / jsonMs).toFixed(1)} startup_x_node=${(startup / nodeFloor).toFixed(2)} ` +
    `stages=${nodes} parse_ms=${median(tParse).toFixed(0)} check_ms=${checkMs.toFixed(0)} dag_ms=${median(tDag).toFixed(0)} json_parse_ms=${jsonMs.toFixed(1)} ` +
    `startup_ms=${startup.toFixed(0)} node_ms=${nodeFloor.toFixed(0)}`,
);
