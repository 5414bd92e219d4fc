import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import type { RecipeReport } from "../src/report/data.js";
import { stateDot } from "../src/report/dot.js";
import { renderPage } from "../src/report/page.js";
import { itp, stackTrace, tempTree } from "./support/cli.js";

// The page of `itp report` as text (its drawing in a real browser: test/report-browser.test.ts), and the verb's
// errors.

const libs = { chartJs: "window.Chart = function () {};", vizJs: "window.Viz = {};" };

const base: RecipeReport = {
  recipe: "r.itp",
  run: { id: "2026-01-01T00-00-00-000Z-1", started: "2026-01-01T00:00:00.000Z", finished: true, seconds: 1.5 },
  stages: [
    { id: "raw", kind: "jsonl", state: "cached", records: 10, ms: 12, counts: {} },
    { id: "clean", kind: "length", state: "done", records: 8, ms: 3, counts: { kept: 8 } },
    { id: "both", kind: "mix", state: "done", records: 13, ms: 2, counts: { "component: clean": 8, "component: b": 5 } },
  ],
  edges: [
    { from: "raw", to: "clean", role: "data" },
    { from: "clean", to: "both", role: "component:clean" },
  ],
  dropped: [{ stage: "clean", reason: "too short", n: 2 }],
  mixtures: [{ stage: "both", components: [{ name: "clean", rule: "take(20)", available: 8, planned: 20, actual: 8 }] }],
  generation: [{ stage: "gen", role: "model", sent: 7, cached: 0, failed: 0, retries: 1, prompt_tokens: 70, completion_tokens: 30, cost_usd: 0.00012 }],
  training: [{ stage: "sft", steps: 2, loss_first: 3, loss_last: 2.5, tokens_per_s: 1000, seconds: 1.5, curve: [[1, 3, 0], [2, 2.5, 0.001]] }],
  evaluations: [{ stage: "scores", model: "sft", template: "none", tasks: [{ name: "sums", primary: "acc", items: 4, limited: false, metrics: { acc: { value: 0.75, stderr: 0.25, n: 4 } } }] }],
};

const dataOf = (html: string) => JSON.parse(/<script type="application\/json" id="itp-data">(.*?)<\/script>/s.exec(html)![1]!) as { labels: string[]; dags: string[]; charts: { canvas: string; config: { type: string; data: { datasets: { label: string; data: unknown[] }[] } } }[] };

describe("the page", () => {
  it("every section, the libraries inlined, a policy that forbids any request, the charts' data", () => {
    const html = renderPage([base], ["r.itp"], libs, "now");
    for (const id of ["dag", "stages", "dropped", "mixture", "generation", "training", "evaluation"]) expect(html).toContain(`<section id="${id}">`);
    expect(html).toContain(libs.chartJs);
    expect(html).toContain(libs.vizJs);
    expect(html).toContain(`content="default-src 'none'; script-src 'unsafe-inline' 'wasm-unsafe-eval'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);
    expect(html).toContain('<td class="state state-done">done</td>');
    expect(html).toContain('<td class="cost num">$0.000120</td>');
    expect(html).toContain("<code>r.itp</code>: run 2026-01-01T00-00-00-000Z-1 (started 2026-01-01T00:00:00.000Z, took 1.5 s): 2 done, 1 cached, 0 failed, 0 not run</li>");
    expect(html).not.toContain("differs");
    const d = dataOf(html);
    expect(d.charts.map((c) => [c.canvas, c.config.type])).toEqual([
      ["mix-chart-0", "bar"],
      ["train-chart-0", "line"],
      ["eval-chart-0", "bar"],
    ]);
    expect(d.charts[1]!.config.data.datasets.map((s) => [s.label, s.data])).toEqual([
      ["loss", [{ x: 1, y: 3 }, { x: 2, y: 2.5 }]],
      ["learning rate", [{ x: 1, y: 0 }, { x: 2, y: 0.001 }]],
    ]);
    expect(d.dags[0]).toContain('"clean" [label="clean\\nlength\\n8 records, 0.00 s", fillcolor="#b7e4c7", id="a-stage-clean", class="state-done"');
  });

  it("two reports side by side: the rows that differ are marked, the DAG's changed stages too; times are not compared", () => {
    const other: RecipeReport = {
      ...base,
      stages: base.stages.map((s) => (s.id === "clean" ? { ...s, records: 7, ms: 99, counts: { kept: 7 } } : s.id === "raw" ? { ...s, ms: 50 } : s)),
      dropped: [{ stage: "clean", reason: "too short", n: 3 }],
    };
    const html = renderPage([base, other], ["r.itp", "r2.itp"], libs, "now");
    const row = (key: string) => new RegExp(`<tr data-key="${key}"[^>]*>.*?</tr>`).exec(html)![0];
    expect(row("clean")).toContain('class="changed"');
    expect(row("clean")).toContain('<td class="records num side-a diff">8</td><td class="records num side-b diff">7</td>');
    expect(row("raw")).not.toContain("changed");
    expect(row("clean/too short")).toContain('<td class="n num side-b diff">3</td>');
    const d = dataOf(html);
    expect(d.dags[1]).toContain('id="b-stage-clean", class="state-done changed"');
    expect(d.dags[1]).not.toContain('class="state-cached changed"');
  });

  it("text from the store cannot break out of the page: notes are escaped, the data's `<` too", () => {
    const evil: RecipeReport = { ...base, stages: [{ id: "x", kind: "jsonl", state: "failed", records: null, ms: null, counts: {}, note: "</script><script>alert(1)</script>" }], edges: [] };
    const html = renderPage([evil], ["r.itp"], libs, "now");
    expect(html).toContain("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html.match(/<\/script>/g)!.length).toBe(4);
    expect(stateDot(evil, "a")).toContain('tooltip="x: failed (</script><script>alert(1)</script>)"');
  });
});

describe("itp report on the command line", () => {
  const recipe = `dataset a = jsonl("a.jsonl")\ndataset few = take(a, n: 2)\n`;
  const files = { "r.itp": recipe, "a.jsonl": '{"x":1}\n{"x":2}\n{"x":3}\n' };

  it("writes the page for a recipe that ran; --json gives the gathered data", () => {
    const dir = tempTree(files);
    expect(itp(["run", "r.itp", "--store", "s"], { cwd: dir }).code).toBe(0);
    const r = itp(["report", "r.itp", "--store", "s"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote r\.report\.html \(\d+ KiB\)\n {2}r\.itp: 2 stages: 2 done, 0 cached, 0 failed, 0 not run\n$/);
    const html = readFileSync(join(dir, "r.report.html"), "utf8");
    expect(html).toContain("Chart.js v4.5.1");
    expect(html).toContain("Viz.js 3.31.0");
    const j = itp(["report", "r.itp", "--store", "s", "--json", "--out", "page.html"], { cwd: dir });
    expect(j.code, j.stderr).toBe(0);
    const out = JSON.parse(j.stdout) as { out: string; reports: RecipeReport[] };
    expect(out.out).toBe(join(dir, "page.html"));
    expect(existsSync(out.out)).toBe(true);
    expect(out.reports[0]!.stages.map((s) => [s.id, s.state, s.records])).toEqual([
      ["a", "done", 3],
      ["few", "done", 2],
    ]);
  });

  it("--run: one past run, or two runs of one recipe side by side; an unknown run names the recipe's runs", () => {
    const dir = tempTree(files);
    const run = () => JSON.parse(itp(["run", "r.itp", "--store", "s", "--json"], { cwd: dir }).stdout) as { log: string };
    const first = basename(run().log, ".jsonl");
    writeFileSync(join(dir, "r.itp"), recipe.replace("n: 2", "n: 1"));
    const second = basename(run().log, ".jsonl");
    const r = itp(["report", "r.itp", "--store", "s", "--run", first, "--run", second], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`wrote r-runs.report.html`);
    expect(r.stdout).toContain(`  r.itp (run ${first}): 2 stages: 2 done, 0 cached, 0 failed, 0 not run\n  r.itp (run ${second}): 2 stages: 1 done, 1 cached, 0 failed, 0 not run\n`);
    const html = readFileSync(join(dir, "r-runs.report.html"), "utf8");
    expect(/<tr data-key="few"[^>]*>.*?<\/tr>/.exec(html)![0]).toContain('<td class="records num side-a diff">2</td><td class="records num side-b diff">1</td>');
    const one = itp(["report", "r.itp", "--store", "s", "--run", first, "--json"], { cwd: dir });
    expect((JSON.parse(one.stdout) as { reports: RecipeReport[] }).reports[0]!.stages.map((s) => s.records)).toEqual([3, 2]);
    const unknown = itp(["report", "r.itp", "--store", "s", "--run", "2020-nope"], { cwd: dir });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(`itp report: error: no run \`2020-nope\` of r.itp in the store s (its runs, newest first: ${second}, ${first})\n`);
    expect(itp(["report", "r.itp", "--store", "s", "--run", "../x"], { cwd: dir }).code).toBe(2);
  });

  it("an unknown recipe, a recipe never run, a page that cannot be written: a clear error, exit 1", () => {
    const dir = tempTree(files);
    const missing = itp(["report", "nope.itp", "--store", "s"], { cwd: dir });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("cannot read nope.itp");
    const never = itp(["report", "r.itp", "--store", "s"], { cwd: dir });
    expect(never.code).toBe(1);
    expect(never.stderr).toBe("itp report: error: r.itp has not been run with the store s: there is nothing to report (run it first: itp run r.itp --store s)\n");
    expect(itp(["run", "r.itp", "--store", "s"], { cwd: dir }).code).toBe(0);
    const unwritable = itp(["report", "r.itp", "--store", "s", "--out", "no/such/folder/x.html"], { cwd: dir });
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toContain("cannot write the report to no/such/folder/x.html (ENOENT)");
    for (const r of [missing, never, unwritable]) expect(r.stderr).not.toMatch(stackTrace);
    expect(itp(["report"], { cwd: dir }).code).toBe(2);
  });
});
