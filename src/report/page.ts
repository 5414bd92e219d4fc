import type { DropRow, EvalTable, GenerationRow, MixComponent, RecipeReport, StageRow, StageState, TrainingRun } from "./data.js";
import { changedStages, seconds, stateDot, STATE_COLOURS } from "./dot.js";

// The page of `itp report`: one HTML file with everything in it (the data, the styles, Chart.js for the charts and
// viz.js, Graphviz compiled to WebAssembly, for the DAG), so it opens offline and can be mailed or archived. With
// two reports the same sections show both side by side, and what differs is marked (class `diff` on a cell,
// `changed` on its row, an orange border in the DAG). Pure: reports and the libraries' text in, HTML out.

/** The JavaScript libraries the page carries, as their files' text. */
export interface PageLibraries {
  /** Chart.js's UMD build (defines `Chart`). */
  readonly chartJs: string;
  /** viz.js's global build (defines `Viz`). */
  readonly vizJs: string;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** JSON inside a <script> element: `<` escaped, so no text in it can close the element. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");

/** A library's text inside a <script> element (the pinned versions contain no `</script`; this keeps it so). */
const scriptText = (s: string) => s.replace(/<\/script/gi, "<\\/script");

const int = (n: number | null | undefined) => (n === null || n === undefined ? "" : n.toLocaleString("en-US"));
const dec = (n: number | null | undefined, d = 4) => (n === null || n === undefined || !Number.isFinite(n) ? "" : n.toFixed(d));

type Cell = string | number | null;

interface Column<T> {
  readonly head: string;
  readonly cls: string;
  readonly value: (t: T) => Cell;
  /** How the value reads (default: integers grouped, other values as they are). */
  readonly text?: (v: Cell, t: T) => string;
  /** Whether a difference between the two sides is marked (not for times: they always differ). */
  readonly compare?: boolean;
  readonly num?: boolean;
  /** A class of the cell from its value (a state's colour). */
  readonly cellCls?: (v: Cell) => string;
}

interface Keyed<T> {
  readonly key: readonly string[];
  readonly sides: readonly (T | undefined)[];
}

/** Rows of one or two sides matched by key: the first side's order, then what only the second has. */
function matched<T>(sides: readonly (readonly T[])[], keyOf: (t: T) => readonly string[]): Keyed<T>[] {
  const out = new Map<string, { key: readonly string[]; sides: (T | undefined)[] }>();
  sides.forEach((rows, i) => {
    for (const r of rows) {
      const key = keyOf(r);
      const k = JSON.stringify(key);
      const row = out.get(k) ?? out.set(k, { key, sides: sides.map(() => undefined) }).get(k)!;
      row.sides[i] = r;
    }
  });
  return [...out.values()];
}

const SIDE = ["a", "b"];

/** A table whose rows are matched across the sides: each column once per side, differences marked. */
function table<T>(name: string, keyHeads: readonly string[], rows: readonly Keyed<T>[], cols: readonly Column<T>[], labels: readonly string[]): string {
  const two = labels.length === 2;
  const head = [...keyHeads.map((h) => `<th>${esc(h)}</th>`), ...cols.flatMap((c) => labels.map((_, i) => `<th class="${c.num ? "num" : ""}">${esc(c.head)}${two ? ` <span class="side">${SIDE[i]!.toUpperCase()}</span>` : ""}</th>`)), ...(two ? ["<th>differs</th>"] : [])].join("");
  const body = rows.map((r) => {
    let changed = false;
    const cells = cols.flatMap((c) => {
      const vals = r.sides.map((t) => (t === undefined ? undefined : c.value(t)));
      const differs = two && c.compare !== false && JSON.stringify(vals[0] ?? "absent") !== JSON.stringify(vals[1] ?? "absent");
      if (differs) changed = true;
      return vals.map((v, i) => {
        const t = r.sides[i];
        const text = t === undefined ? `<span class="absent">absent</span>` : esc(c.text ? c.text(v!, t) : typeof v === "number" ? int(v) : (v ?? ""));
        const extra = t !== undefined && c.cellCls ? ` ${c.cellCls(v!)}` : "";
        return `<td class="${c.cls}${extra}${c.num ? " num" : ""}${two ? ` side-${SIDE[i]}` : ""}${differs ? " diff" : ""}">${text}</td>`;
      });
    });
    const keys = r.key.map((k) => `<td class="key">${esc(k)}</td>`).join("");
    return `<tr data-key="${esc(r.key.join("/"))}"${changed ? ' class="changed"' : ""}>${keys}${cells.join("")}${two ? `<td class="marker">${changed ? "≠" : ""}</td>` : ""}</tr>`;
  });
  return `<table class="${name}"><thead><tr>${head}</tr></thead><tbody>${body.join("")}</tbody></table>`;
}

const none = (what: string) => `<p class="none">${esc(what)}</p>`;

function stagesSection(reports: readonly RecipeReport[], labels: readonly string[]): string {
  const rows = matched(reports.map((r) => r.stages), (s) => [s.id]);
  const cols: Column<StageRow>[] = [
    { head: "kind", cls: "kind", value: (s) => s.kind },
    { head: "state", cls: "state", value: (s) => s.state, cellCls: (v) => `state-${String(v).replace(" ", "-")}` },
    { head: "records", cls: "records", value: (s) => s.records, num: true },
    { head: "time", cls: "time", value: (s) => s.ms, text: (v) => seconds(v as number | null), compare: false, num: true },
    { head: "counts", cls: "counts", value: (s) => Object.entries(s.counts).map(([k, n]) => `${k} ${int(n)}`).join(", ") },
    { head: "note", cls: "note", value: (s) => s.note ?? "", compare: false },
  ];
  return `<section id="stages"><h2>Stages: records and time</h2>${table("stages", ["stage"], rows, cols, labels)}</section>`;
}

function droppedSection(reports: readonly RecipeReport[], labels: readonly string[]): string {
  const all = reports.flatMap((r) => r.dropped);
  if (all.length === 0) return `<section id="dropped"><h2>Records dropped, by reason</h2>${none("No stage dropped a record.")}</section>`;
  const rows = matched(reports.map((r) => r.dropped), (d) => [d.stage, d.reason]);
  const total = (r: RecipeReport) => r.dropped.reduce((a, d) => a + d.n, 0);
  const sums = reports.map((r) => `<span class="total">${esc(int(total(r)))}</span>`).join(" / ");
  return `<section id="dropped"><h2>Records dropped, by reason</h2><p>${sums} records dropped in all.</p>${table("dropped", ["stage", "reason"], rows, [{ head: "dropped", cls: "n", value: (d: DropRow) => d.n, num: true }], labels)}</section>`;
}

interface ChartSpec {
  readonly canvas: string;
  readonly config: unknown;
}

const PALETTE = [
  ["#1c7ed6", "#74c0fc"],
  ["#e8590c", "#ffc078"],
];

function mixtureSection(reports: readonly RecipeReport[], labels: readonly string[], charts: ChartSpec[]): string {
  const stages = matched(reports.map((r) => r.mixtures), (m) => [m.stage]);
  if (stages.length === 0) return `<section id="mixture"><h2>Mixture composition</h2>${none("The recipe has no mixture.")}</section>`;
  const parts = stages.map((st, k) => {
    const rows = matched(st.sides.map((m) => m?.components ?? []), (c) => [c.name]);
    const cols: Column<MixComponent>[] = [
      { head: "rule", cls: "rule", value: (c) => c.rule },
      { head: "available", cls: "available", value: (c) => c.available, num: true },
      { head: "planned", cls: "planned", value: (c) => c.planned, num: true },
      { head: "actual", cls: "actual", value: (c) => c.actual, text: (v) => (v === null ? "not run" : int(v as number)), num: true },
    ];
    const canvas = `mix-chart-${k}`;
    charts.push({
      canvas,
      config: {
        type: "bar",
        data: {
          labels: rows.map((r) => r.key[0]),
          datasets: st.sides.flatMap((m, i) =>
            m
              ? [
                  { label: `planned${labels.length === 2 ? ` (${SIDE[i]!.toUpperCase()})` : ""}`, data: rows.map((r) => m.components.find((c) => c.name === r.key[0])?.planned ?? null), backgroundColor: PALETTE[i]![1] },
                  { label: `actual${labels.length === 2 ? ` (${SIDE[i]!.toUpperCase()})` : ""}`, data: rows.map((r) => m.components.find((c) => c.name === r.key[0])?.actual ?? null), backgroundColor: PALETTE[i]![0] },
                ]
              : [],
          ),
        },
        options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true, title: { display: true, text: "records" } } } },
      },
    });
    return `<div class="block" data-stage="${esc(st.key[0]!)}"><h3>${esc(st.key[0]!)}</h3>${table("mixture", ["component"], rows, cols, labels)}<div class="chart"><canvas id="${canvas}"></canvas></div></div>`;
  });
  return `<section id="mixture"><h2>Mixture composition: planned and actual</h2>${parts.join("")}</section>`;
}

function generationSection(reports: readonly RecipeReport[], labels: readonly string[]): string {
  if (reports.every((r) => r.generation.length === 0)) return `<section id="generation"><h2>Generation: requests and cost</h2>${none("No stage sent a request to a model.")}</section>`;
  const rows = matched(reports.map((r) => r.generation), (g) => [g.stage, g.role]);
  const cols: Column<GenerationRow>[] = [
    { head: "sent", cls: "sent", value: (g) => g.sent, num: true },
    { head: "from cache", cls: "cached", value: (g) => g.cached, num: true },
    { head: "failed", cls: "failed", value: (g) => g.failed, num: true },
    { head: "retries", cls: "retries", value: (g) => g.retries, num: true },
    { head: "prompt tokens", cls: "prompt-tokens", value: (g) => g.prompt_tokens, num: true },
    { head: "completion tokens", cls: "completion-tokens", value: (g) => g.completion_tokens, num: true },
    { head: "cost (USD)", cls: "cost", value: (g) => g.cost_usd, text: (v) => (v === null ? "no price" : `$${(v as number).toFixed(6)}`), num: true },
  ];
  const totals = reports
    .map((r) => {
      const sent = r.generation.reduce((a, g) => a + g.sent, 0);
      const cached = r.generation.reduce((a, g) => a + g.cached, 0);
      const priced = r.generation.filter((g) => g.cost_usd !== null);
      const cost = priced.reduce((a, g) => a + g.cost_usd!, 0);
      return `<li${labels.length === 2 ? ` data-side="${SIDE[reports.indexOf(r)]}"` : ""}><span class="total-sent">${int(sent)}</span> requests sent, <span class="total-cached">${int(cached)}</span> answered from the cache${priced.length > 0 ? `, <span class="total-cost">$${cost.toFixed(6)}</span>` : ""}</li>`;
    })
    .join("");
  return `<section id="generation"><h2>Generation: requests and cost</h2><ul class="totals">${totals}</ul>${table("generation", ["stage", "model"], rows, cols, labels)}</section>`;
}

function trainingSection(reports: readonly RecipeReport[], labels: readonly string[], charts: ChartSpec[]): string {
  const stages = matched(reports.map((r) => r.training), (t) => [t.stage]);
  if (stages.length === 0) return `<section id="training"><h2>Training: loss and learning rate</h2>${none("No training stage has run.")}</section>`;
  const parts = stages.map((st, k) => {
    const cols: Column<TrainingRun>[] = [
      { head: "steps", cls: "steps", value: (t) => t.steps, num: true },
      { head: "first loss", cls: "loss-first", value: (t) => t.loss_first, text: (v) => dec(v as number | null), num: true },
      { head: "last loss", cls: "loss-last", value: (t) => t.loss_last, text: (v) => dec(v as number | null), num: true },
      { head: "tokens/s", cls: "tps", value: (t) => t.tokens_per_s, text: (v) => int(v === null ? null : Math.round(v as number)), compare: false, num: true },
      { head: "training time", cls: "seconds", value: (t) => t.seconds, text: (v) => (v === null ? "" : `${(v as number).toFixed(1)} s`), compare: false, num: true },
    ];
    const canvas = `train-chart-${k}`;
    const suffix = (i: number) => (labels.length === 2 ? ` (${SIDE[i]!.toUpperCase()})` : "");
    charts.push({
      canvas,
      config: {
        type: "line",
        data: {
          datasets: st.sides.flatMap((t, i) =>
            t
              ? [
                  { label: `loss${suffix(i)}`, yAxisID: "loss", data: t.curve.map((p) => ({ x: p[0], y: p[1] })), borderColor: PALETTE[i]![0], backgroundColor: PALETTE[i]![0], pointRadius: 2, tension: 0 },
                  ...(t.curve.some((p) => p[2] !== null) ? [{ label: `learning rate${suffix(i)}`, yAxisID: "lr", data: t.curve.filter((p) => p[2] !== null).map((p) => ({ x: p[0], y: p[2] })), borderColor: PALETTE[i]![1], backgroundColor: PALETTE[i]![1], borderDash: [6, 4], pointRadius: 0, tension: 0 }] : []),
                ]
              : [],
          ),
        },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          parsing: false,
          scales: {
            x: { type: "linear", title: { display: true, text: "step" } },
            loss: { type: "linear", position: "left", title: { display: true, text: "loss" } },
            lr: { type: "linear", position: "right", title: { display: true, text: "learning rate" }, grid: { drawOnChartArea: false } },
          },
        },
      },
    });
    return `<div class="block" data-stage="${esc(st.key[0]!)}"><h3>${esc(st.key[0]!)}</h3>${table("training", ["stage"], [st], cols, labels)}<div class="chart"><canvas id="${canvas}"></canvas></div></div>`;
  });
  return `<section id="training"><h2>Training: loss and learning rate</h2>${parts.join("")}</section>`;
}

interface MetricRow {
  readonly task: string;
  readonly metric: string;
  readonly value: number;
  readonly stderr: number | null;
  readonly n: number;
  readonly primary: boolean;
}

function metricRows(e: EvalTable): MetricRow[] {
  return e.tasks.flatMap((t) => [t.primary, ...Object.keys(t.metrics).filter((m) => m !== t.primary)].filter((m) => t.metrics[m]).map((m) => ({ task: t.name, metric: m, value: t.metrics[m]!.value, stderr: t.metrics[m]!.stderr, n: t.metrics[m]!.n, primary: m === t.primary })));
}

function evaluationSection(reports: readonly RecipeReport[], labels: readonly string[], charts: ChartSpec[]): string {
  const stages = matched(reports.map((r) => r.evaluations), (e) => [e.stage]);
  if (stages.length === 0) return `<section id="evaluation"><h2>Evaluation</h2>${none("No evaluation stage has run.")}</section>`;
  const parts = stages.map((st, k) => {
    const rows = matched(st.sides.map((e) => (e ? metricRows(e) : [])), (m) => [m.task, m.metric]);
    const cols: Column<MetricRow>[] = [
      { head: "value", cls: "value", value: (m) => m.value, text: (v) => dec(v as number), num: true },
      { head: "stderr", cls: "stderr", value: (m) => m.stderr, text: (v) => (v === null ? "" : dec(v as number)), num: true },
      { head: "n", cls: "n", value: (m) => m.n, num: true },
    ];
    const about = st.sides.map((e, i) => (e ? `<li${labels.length === 2 ? ` data-side="${SIDE[i]}"` : ""}>model <code>${esc(e.model)}</code>, template ${esc(e.template)}</li>` : "")).join("");
    const primaries = matched(st.sides.map((e) => (e ? metricRows(e).filter((m) => m.primary) : [])), (m) => [m.task]);
    const canvas = `eval-chart-${k}`;
    charts.push({
      canvas,
      config: {
        type: "bar",
        data: {
          labels: primaries.map((p) => `${p.key[0]} (${(p.sides.find((s) => s) as MetricRow).metric})`),
          datasets: st.sides.flatMap((e, i) => (e ? [{ label: labels.length === 2 ? `${SIDE[i]!.toUpperCase()}` : "primary metric", data: primaries.map((p) => p.sides[i]?.value ?? null), backgroundColor: PALETTE[i]![0] }] : [])),
        },
        options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
      },
    });
    return `<div class="block" data-stage="${esc(st.key[0]!)}"><h3>${esc(st.key[0]!)}</h3><ul class="about">${about}</ul>${table("evaluation", ["task", "metric"], rows, cols, labels)}<div class="chart"><canvas id="${canvas}"></canvas></div></div>`;
  });
  return `<section id="evaluation"><h2>Evaluation</h2>${parts.join("")}</section>`;
}

function legend(reports: readonly RecipeReport[], labels: readonly string[]): string {
  const states: StageState[] = ["done", "cached", "failed", "not run"];
  return `<ul class="legend">${states
    .map((s) => {
      const n = reports.map((r) => r.stages.filter((x) => x.state === s).length).join(" / ");
      return `<li><span class="swatch" style="background:${STATE_COLOURS[s]}"></span>${s} <span class="count" data-state="${s}">${n}</span></li>`;
    })
    .join("")}</ul>${labels.length === 2 ? `<p class="hint">Counts are A / B. Rows that differ are marked ≠ and their cells highlighted; stages that differ have an orange border in the DAG.</p>` : ""}`;
}

const STYLE = `
:root { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #212529; }
body { margin: 0 auto; max-width: 1400px; padding: 1rem 2rem 3rem; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #dee2e6; padding-bottom: 0.3rem; }
.runs { margin: 0.3rem 0; padding-left: 1.2rem; color: #495057; }
.legend { list-style: none; padding: 0; display: flex; gap: 1.2rem; flex-wrap: wrap; }
.swatch { display: inline-block; width: 0.9rem; height: 0.9rem; border: 1px solid #868e96; border-radius: 3px; margin-right: 0.35rem; vertical-align: -0.1rem; }
.dags { display: flex; gap: 1rem; }
.dag { flex: 1; overflow: auto; border: 1px solid #dee2e6; border-radius: 6px; padding: 0.5rem; min-height: 4rem; }
.dag h3 { margin: 0 0 0.4rem; font-size: 0.95rem; }
.dag svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.88rem; }
th, td { border: 1px solid #dee2e6; padding: 0.25rem 0.55rem; text-align: left; vertical-align: top; }
th { background: #f1f3f5; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.note { color: #868e96; max-width: 28rem; }
td.state-done { background: ${STATE_COLOURS.done}; } td.state-cached { background: ${STATE_COLOURS.cached}; }
td.state-failed { background: ${STATE_COLOURS.failed}; } td.state-not-run { background: ${STATE_COLOURS["not run"]}; }
td.diff { outline: 2px solid #d9480f; outline-offset: -2px; font-weight: 600; }
tr.changed td.key { border-left: 4px solid #d9480f; }
td.marker { color: #d9480f; font-weight: 700; text-align: center; }
.side { font-size: 0.75rem; color: #495057; }
.absent { color: #adb5bd; font-style: italic; }
.none { color: #868e96; font-style: italic; }
.chart { position: relative; height: 280px; max-width: 900px; }
.block { margin-bottom: 1.5rem; }
.about { color: #495057; }
`;

/**
 * The whole page for one report, or two side by side (`labels` name the sides). The charts and the DAG are drawn
 * when the page opens; the root element's `data-ready` becomes `true` once everything is drawn (`error` if the DAG
 * could not be).
 */
export function renderPage(reports: readonly RecipeReport[], labels: readonly string[], libs: PageLibraries, generatedAt: string): string {
  if (reports.length < 1 || reports.length > 2 || labels.length !== reports.length) throw new Error("a report page shows one or two reports");
  const changed = reports.length === 2 ? changedStages(reports[0]!, reports[1]!) : new Set<string>();
  const dags = reports.map((r, i) => stateDot(r, SIDE[i]!, changed));
  const charts: ChartSpec[] = [];
  const sections = [
    `<section id="dag"><h2>DAG: stages by state</h2>${legend(reports, labels)}<div class="dags">${reports.map((_, i) => `<div class="dag" id="dag-${i}">${reports.length === 2 ? `<h3>${SIDE[i]!.toUpperCase()}: ${esc(labels[i]!)}</h3>` : ""}</div>`).join("")}</div></section>`,
    stagesSection(reports, labels),
    droppedSection(reports, labels),
    mixtureSection(reports, labels, charts),
    generationSection(reports, labels),
    trainingSection(reports, labels, charts),
    evaluationSection(reports, labels, charts),
  ];
  const runs = reports
    .map((r, i) => {
      const tally = (["done", "cached", "failed", "not run"] as const).map((st) => `${r.stages.filter((x) => x.state === st).length} ${st}`).join(", ");
      const took = r.run?.seconds !== null && r.run?.seconds !== undefined ? `, took ${r.run.seconds.toFixed(1)} s` : "";
      const run = r.run ? `run ${esc(r.run.id)} (started ${esc(r.run.started)}${r.run.finished ? took : ", did not finish"}): ${tally}` : `no run of it is logged in the store: ${tally}`;
      return `<li${reports.length === 2 ? ` data-side="${SIDE[i]}"` : ""}>${reports.length === 2 ? `<strong>${SIDE[i]!.toUpperCase()}</strong> ` : ""}<code>${esc(labels[i]!)}</code>: ${run}</li>`;
    })
    .join("");
  const data = { labels, dags, charts };
  const title = reports.length === 2 ? `itp report: ${labels[0]} vs ${labels[1]}` : `itp report: ${labels[0]}`;
  const script = `(function () {
  var data = JSON.parse(document.getElementById("itp-data").textContent);
  var root = document.documentElement;
  try {
    data.charts.forEach(function (c) { new Chart(document.getElementById(c.canvas), c.config); });
  } catch (e) { console.error("a chart could not be drawn: " + e); root.setAttribute("data-ready", "error"); return; }
  Viz.instance().then(function (viz) {
    data.dags.forEach(function (dot, i) { document.getElementById("dag-" + i).appendChild(viz.renderSVGElement(dot)); });
    root.setAttribute("data-ready", "true");
  }).catch(function (e) { console.error("the DAG could not be drawn: " + e); root.setAttribute("data-ready", "error"); });
})();`;
  return `<!doctype html>
<html lang="en" data-ready="false">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'wasm-unsafe-eval'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="itp report">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${esc(title)}</h1>
<ul class="runs">${runs}</ul>
<p class="generated">Generated ${esc(generatedAt)}. Everything is in this file: it opens offline.</p>
${sections.join("\n")}
<script type="application/json" id="itp-data">${scriptJson(data)}</script>
<script>${scriptText(libs.chartJs)}</script>
<script>${scriptText(libs.vizJs)}</script>
<script>${script}</script>
</body>
</html>
`;
}
