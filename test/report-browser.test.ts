import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RecipeReport } from "../src/report/data.js";
import { itpAsync, repoRoot, tempTree } from "./support/cli.js";
import { startOpenAIServer, type OpenAIServer, type ServerRequest } from "./support/openai-server.js";
import { torchPython } from "./support/python.js";

// `itp report` pages opened in a real headless Chromium (Debian's, which .ci/run installs), driven by
// puppeteer-core: the page makes no request and logs no error, the DAG is drawn with each stage's state, every
// section shows the numbers of a recipe run here (sources, filters, a mixture, generation and evaluation against the
// loopback OpenAI-compatible server, and a training stage on the tiny model when a Python with torch is there), two
// versions side by side mark what differs, and screenshots are kept under test/.tmp/report/.

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env["CI"]) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium package for this test`);
if (!hasChromium) console.warn(`test/report-browser.test.ts: skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`);
const py = torchPython();
const ARTIFACTS = join(repoRoot, "test/.tmp/report");

// 12 records: #10 and #11 repeat #0 and #1 (exact_dedup drops 2), #3 and #7 answer in one word (length min 2 drops
// 2; min 3 drops #5 too). The mix asks 20 of the 8 left and all 5 of b: 13 records, each answered by the teacher.
const a = Array.from({ length: 12 }, (_, i) => ({ instruction: `Question number ${i % 10}?`, input: "", output: i === 3 || i === 7 ? "Yes." : i === 5 ? "Answer five." : `The answer ${i}.` }));
const b = Array.from({ length: 5 }, (_, i) => ({ instruction: `Other ${i}?`, input: "", output: `Other answer ${i}.` }));
// The teacher gets 3 of 4 sums right: accuracy 0.75, standard error sqrt(0.75 x 0.25 x 4/3) / 2 = 0.25.
const sums = [
  { question: "2+2", answer: "4" },
  { question: "3+3", answer: "6" },
  { question: "5+5", answer: "10" },
  { question: "1+1", answer: "2" },
];
const teacherSays: Record<string, string> = { "Q: 2+2": "4", "Q: 3+3": "6", "Q: 5+5": "11", "Q: 1+1": "2" };
const answer = (req: ServerRequest) => teacherSays[req.content] ?? `Answer to: ${req.content}`;

const recipe = (min: number) => `model teacher = openai_compatible() {
  model = "test-model"
  base_url = env("ITP_TEST_BASE_URL")
  price_input = 0.5
  price_output = 1.5
}

dataset a: Instruction = jsonl("a.jsonl")
dataset b: Instruction = jsonl("b.jsonl")
dataset sums = jsonl("sums.jsonl")

filter a_clean = a
  |> exact_dedup(fields: [instruction])
  |> length(field: output, unit: "words", min: ${min})

mix both = mix(seed: 1) {
  a_clean: take(20)
  b: all
}

dataset answered = distill(both, model: teacher) {
  seed = 3
}

eval scores = evaluate(teacher) {
  tasks = [generate_and_check(sums, prompt: "Q: {question}", answer: "answer", match: "exact")]
}
${
  py
    ? `
train tuned = sft(answered, base: "tiny") {
  gpus = 0
  epochs = 1
  batch_size = 4
  max_length = 96
  precision = "fp32"
  lr = 3e-3
  seed = 7
}
`
    : ""
}`;

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

let server: OpenAIServer;
let dir: string;
let browser: Browser;
const env = () => ({ ITP_TEST_BASE_URL: server.url, ...(py ? { ITP_PYTHON: py } : {}) });
/** The gathered data of each page, as `itp report --json` printed it. */
const pages = new Map<string, RecipeReport[]>();

async function report(files: string[], out: string): Promise<string> {
  const r = await itpAsync(["report", ...files, "--store", "s", "--out", out, "--json"], { cwd: dir, env: env() });
  expect(r.code, r.stderr).toBe(0);
  pages.set(out, (JSON.parse(r.stdout) as { reports: RecipeReport[] }).reports);
  return join(dir, out);
}

async function show(stage: string): Promise<{ counts: Record<string, number>; summary?: { loss_curve: [number, number, number | null][]; steps: number } }> {
  const r = await itpAsync(["show", "r.itp", stage, "--store", "s", "--json"], { cwd: dir, env: env() });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as never;
}

interface Opened {
  readonly page: Page;
  /** Requests other than the page's own file (each one aborted). */
  readonly requests: string[];
  /** Console errors and uncaught exceptions. */
  readonly errors: string[];
}

/** Open a page with every request but its own file aborted and recorded, and wait until it has drawn everything. */
async function open(file: string): Promise<Opened> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  const url = `file://${file}`;
  const requests: string[] = [];
  const errors: string[] = [];
  await page.setRequestInterception(true);
  page.on("request", (r) => {
    if (r.url() === url) void r.continue();
    else {
      requests.push(r.url());
      void r.abort();
    }
  });
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => document.documentElement.getAttribute("data-ready") !== "false", { timeout: 30_000 });
  return { page, requests, errors };
}

/** The text of each cell of a table's row, by the cell's class, for the row whose key is `key`. */
async function row(page: Page, section: string, key: string): Promise<Record<string, string[]>> {
  return page.evaluate(
    (section, key) => {
      const tr = [...document.querySelectorAll(`#${section} tr`)].find((t) => t.getAttribute("data-key") === key);
      if (!tr) return { missing: [key] };
      const out: Record<string, string[]> = { row: [tr.className] };
      for (const td of tr.querySelectorAll("td")) {
        const cls = td.classList[0]!;
        (out[cls] ??= []).push(td.textContent ?? "");
      }
      return out;
    },
    section,
    key,
  );
}

describe.skipIf(!hasChromium)("itp report in headless Chromium", () => {
  beforeAll(async () => {
    server = await startOpenAIServer({ answer });
    dir = tempTree({ "r.itp": recipe(2), "r2.itp": recipe(3), "a.jsonl": jsonl(a), "b.jsonl": jsonl(b), "sums.jsonl": jsonl(sums) });
    if (py) cpSync(join(repoRoot, "pipelines/models/tiny-llama"), join(dir, "tiny"), { recursive: true });
    // The first version, run twice (the second run reuses everything: every stage is cached in its last run); the
    // second version's stricter filter changes the mix, which fails (an injected fault): its downstream is not run.
    for (const args of [["r.itp"], ["r.itp"]]) {
      const r = await itpAsync(["run", ...args, "--store", "s"], { cwd: dir, env: env() });
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
    const failing = await itpAsync(["run", "r2.itp", "--store", "s"], { cwd: dir, env: { ...env(), ITP_FAULTS: "both=fail" } });
    expect(failing.code, failing.stdout + failing.stderr).toBe(1);
    await report(["r.itp"], "one.html");
    await report(["r2.itp"], "two.html");
    await report(["r.itp", "r2.itp"], "both.html");
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Chromium's own flags: nothing leaves the machine (no updates, sync or background fetches), a fresh profile.
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", `--user-data-dir=${mkdtempSync(join(tmpdir(), "itp-chromium-"))}`],
    });
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it("the page loads offline: no request but its own file, no console error, everything drawn; a screenshot is kept", async () => {
    const { page, requests, errors } = await open(join(dir, "one.html"));
    expect(await page.evaluate(() => document.documentElement.getAttribute("data-ready"))).toBe("true");
    expect(requests).toEqual([]);
    expect(errors).toEqual([]);
    expect(await page.evaluate(() => [...document.querySelectorAll("section")].map((s) => s.id))).toEqual(["dag", "stages", "dropped", "mixture", "generation", "training", "evaluation"]);
    // The charts were drawn by Chart.js (a chart object on each canvas, with pixels on it).
    const charts = await page.evaluate(() =>
      [...document.querySelectorAll("canvas")].map((c) => {
        const chart = (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): unknown } }).Chart.getChart(c);
        return { id: c.id, drawn: chart !== undefined && c.width > 0 && c.height > 0 };
      }),
    );
    expect(charts).toEqual([{ id: "mix-chart-0", drawn: true }, ...(py ? [{ id: "train-chart-0", drawn: true }] : []), { id: "eval-chart-0", drawn: true }]);
    const shot = join(ARTIFACTS, "report.png");
    await page.screenshot({ path: shot, fullPage: true });
    const png = readFileSync(shot);
    expect(png.subarray(1, 4).toString("latin1")).toBe("PNG");
    expect(statSync(shot).size).toBeGreaterThan(20_000);
    await page.close();
  });

  it("the DAG: one box per stage, each filled with its state's colour (done, cached, failed, not run)", async () => {
    const { page, errors } = await open(join(dir, "two.html"));
    const nodes = await page.evaluate(() =>
      [...document.querySelectorAll("#dag-0 svg g.node")].map((g) => ({
        stage: g.querySelector("title")?.textContent,
        cls: g.getAttribute("class"),
        fill: g.querySelector("path, polygon")?.getAttribute("fill"),
      })),
    );
    const byStage = Object.fromEntries(nodes.map((n) => [n.stage, [n.cls, n.fill]]));
    const data = pages.get("two.html")![0]!;
    expect(nodes).toHaveLength(data.stages.length);
    expect(byStage).toMatchObject({
      a: ["node state-cached", "#bcd4f6"],
      "a_clean.exact_dedup": ["node state-cached", "#bcd4f6"],
      a_clean: ["node state-done", "#b7e4c7"],
      both: ["node state-failed", "#f4b6b6"],
      answered: ["node state-not-run", "#e9e9e9"],
      scores: ["node state-cached", "#bcd4f6"],
    });
    // The legend counts the states.
    const legend = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll(".legend .count")].map((c) => [c.getAttribute("data-state"), c.textContent])));
    const count = (s: string) => String(data.stages.filter((x) => x.state === s).length);
    expect(legend).toEqual({ done: "1", cached: count("cached"), failed: "1", "not run": count("not run") });
    expect(Number(legend["not run"])).toBe(py ? 2 : 1);
    // The failure's error is in the stage table.
    expect((await row(page, "stages", "both"))["note"]![0]).toContain("injected permanent fault");
    expect(errors).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, "states.png"), fullPage: true });
    await page.close();
  });

  it("each section shows the recipe's numbers: records, drops by reason, mixture planned and actual, requests and cost, the evaluation", async () => {
    const { page } = await open(join(dir, "one.html"));
    expect(await row(page, "stages", "a")).toMatchObject({ state: ["cached"], records: ["12"] });
    expect(await row(page, "stages", "a_clean")).toMatchObject({ records: ["8"], counts: ["kept 8"] });
    expect(await row(page, "stages", "both")).toMatchObject({ records: ["13"], counts: ["component: a_clean 8, component: b 5"] });
    expect(await row(page, "dropped", "a_clean.exact_dedup/duplicate")).toMatchObject({ n: ["2"] });
    expect(await row(page, "dropped", "a_clean/too short")).toMatchObject({ n: ["2"] });
    expect(await page.$eval("#dropped .total", (e) => e.textContent)).toBe("4");
    expect(await row(page, "mixture", "a_clean")).toMatchObject({ rule: ["take(20)"], available: ["8"], planned: ["20"], actual: ["8"] });
    expect(await row(page, "mixture", "b")).toMatchObject({ rule: ["all"], available: ["5"], planned: ["5"], actual: ["5"] });
    const mixChart = await page.evaluate(() => {
      const c = (window as unknown as { Chart: { getChart(id: string): { data: { labels: string[]; datasets: { label: string; data: number[] }[] } } } }).Chart.getChart("mix-chart-0")!;
      return { labels: c.data.labels, sets: c.data.datasets.map((d) => [d.label, d.data]) };
    });
    expect(mixChart).toEqual({ labels: ["a_clean", "b"], sets: [["planned", [20, 5]], ["actual", [8, 5]]] });
    // 13 answers for the distillation, 4 for the evaluation; their cost is the one the stages recorded from the
    // tokens at the model's prices.
    const distill = await show("answered");
    expect(distill.counts["requests: sent"]).toBe(13);
    const cost = (distill.counts["tokens: prompt"]! * 0.5 + distill.counts["tokens: completion"]! * 1.5) / 1000;
    expect(distill.counts["cost_usd"]).toBeCloseTo(cost, 6);
    expect(await row(page, "generation", "answered/model")).toMatchObject({ sent: ["13"], cached: ["0"], failed: ["0"], "prompt-tokens": [String(distill.counts["tokens: prompt"])], cost: [`$${distill.counts["cost_usd"]!.toFixed(6)}`] });
    expect(await row(page, "generation", "scores/model")).toMatchObject({ sent: ["4"] });
    expect(await page.$eval("#generation .total-sent", (e) => e.textContent)).toBe("17");
    expect(await row(page, "evaluation", "generate_and_check/acc")).toMatchObject({ value: ["0.7500"], stderr: ["0.2500"], n: ["4"] });
    expect(await page.$eval("#evaluation .about", (e) => e.textContent)).toContain("model teacher");
    await page.close();
  });

  it.skipIf(!py)("the training section: the loss and learning-rate curves by step, as the training stage recorded them", async () => {
    const { page } = await open(join(dir, "one.html"));
    const tuned = await show("tuned");
    const curve = tuned.summary!.loss_curve;
    expect(curve).toHaveLength(4);
    expect(await row(page, "training", "tuned")).toMatchObject({ steps: ["4"], "loss-first": [curve[0]![1].toFixed(4)], "loss-last": [curve[3]![1].toFixed(4)] });
    const sets = await page.evaluate(() => {
      const c = (window as unknown as { Chart: { getChart(id: string): { data: { datasets: { label: string; yAxisID: string; data: { x: number; y: number }[] }[] } } } }).Chart.getChart("train-chart-0")!;
      return c.data.datasets.map((d) => ({ label: d.label, axis: d.yAxisID, data: d.data.map((p) => [p.x, p.y]) }));
    });
    expect(sets).toEqual([
      { label: "loss", axis: "loss", data: curve.map((p) => [p[0], p[1]]) },
      { label: "learning rate", axis: "lr", data: curve.map((p) => [p[0], p[2]]) },
    ]);
    // Warmup of one step at 0, then 3e-3 decaying linearly.
    expect(sets[1]!.data.map((p) => p[1])).toEqual([0, 0.003, 0.002, 0.001].map((x) => expect.closeTo(x, 9)));
    await page.close();
  });

  it("two versions side by side: what differs is marked in the tables and the DAG, what is the same is not", async () => {
    const { page, requests, errors } = await open(join(dir, "both.html"));
    expect([requests, errors]).toEqual([[], []]);
    expect(await page.evaluate(() => document.querySelectorAll(".dag svg").length)).toBe(2);
    // The stricter filter: 7 records, not 8, and one more drop; the mix failed in B.
    expect(await row(page, "stages", "a_clean")).toMatchObject({ row: ["changed"], records: ["8", "7"], marker: ["≠"] });
    expect(await page.$$eval('#stages tr[data-key="a_clean"] td.records.diff', (t) => t.length)).toBe(2);
    expect(await row(page, "stages", "both")).toMatchObject({ row: ["changed"], state: ["cached", "failed"] });
    expect(await row(page, "dropped", "a_clean/too short")).toMatchObject({ row: ["changed"], n: ["2", "3"] });
    expect(await row(page, "mixture", "a_clean")).toMatchObject({ row: ["changed"], actual: ["8", "not run"] });
    // What both versions share (cached in both) is not marked.
    for (const same of ["a", "b", "sums", "a_clean.exact_dedup", "scores"]) expect(await row(page, "stages", same), same).toMatchObject({ row: [""], marker: [""] });
    expect(await row(page, "evaluation", "generate_and_check/acc")).toMatchObject({ row: [""], value: ["0.7500", "0.7500"] });
    const changedNodes = await page.evaluate(() => [...document.querySelectorAll("#dag-1 svg g.node.changed title")].map((t) => t.textContent).sort());
    expect(changedNodes).toEqual(["a_clean", "answered", "both", ...(py ? ["tuned"] : [])]);
    expect(await page.evaluate(() => document.querySelectorAll("#dag-0 svg g.node.changed").length)).toBe(changedNodes.length);
    await page.screenshot({ path: join(ARTIFACTS, "compare.png"), fullPage: true });
    await page.close();
  });
});
