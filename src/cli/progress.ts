import cliProgress from "cli-progress";
import type { IrStage } from "../core/ir.js";
import type { Outcome, Reporter, RunSummary } from "../runtime/scheduler.js";

const fmtCount = (n: number) => n.toLocaleString("en-US");

function outcomeLine(id: string, o: Outcome): string | undefined {
  switch (o.status) {
    case "ran":
      return `ran     ${id} (${(o.manifest.duration_ms / 1000).toFixed(2)}s${o.manifest.output.records !== null ? `, ${fmtCount(o.manifest.output.records)} records` : ""})`;
    case "cached":
      return `cached  ${id}`;
    case "failed":
      return `FAILED  ${id}: ${o.error}${o.hint ? `\n        hint: ${o.hint}` : ""}`;
    case "skipped":
      return `skipped ${id} (needs ${o.because}, which failed)`;
    default:
      return undefined;
  }
}

export function summaryText(s: RunSummary): string {
  const parts = [`ran ${s.ran}`, `cached ${s.cached}`, `failed ${s.failed}`, `skipped ${s.skipped}`];
  return `${s.interrupted ? "interrupted: " : ""}${parts.join(", ")} in ${s.seconds.toFixed(2)}s`;
}

/** Lines to stderr, gathered and written every 100 ms (a write per stage is a cost when stages are tiny). */
function batchedStderr(): { write: (s: string) => void; flush: () => void } {
  let buf: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (buf.length > 0) process.stderr.write(buf.join(""));
    buf = [];
  };
  return {
    write: (s) => {
      buf.push(s);
      timer ??= setTimeout(flush, 100);
    },
    flush,
  };
}

/** Plain lines, one per finished stage: for logs, pipes and CI. */
export class PlainReporter implements Reporter {
  private readonly out = batchedStderr();
  private readonly write: (s: string) => void;
  constructor(write?: (s: string) => void) {
    this.write = write ?? this.out.write;
  }
  start(stages: readonly IrStage[]): void {
    this.write(`running ${stages.length} stage${stages.length === 1 ? "" : "s"}\n`);
  }
  stageStarted(): void {}
  progress(): void {}
  retrying(id: string, attempt: number, error: string): void {
    this.write(`retry   ${id} (attempt ${attempt} failed: ${error})\n`);
  }
  stageFinished(id: string, o: Outcome): void {
    // Skipped stages are summed up at the end; their root failure is reported once, where it happened.
    if (o.status === "skipped") return;
    const line = outcomeLine(id, o);
    if (line) this.write(line + "\n");
  }
  end(s: RunSummary): void {
    const skipped = [...s.outcomes].filter(([, o]) => o.status === "skipped").map(([id]) => id);
    if (skipped.length > 0) this.write(`skipped ${skipped.length} stage${skipped.length === 1 ? "" : "s"} downstream of failures: ${skipped.slice(0, 10).join(", ")}${skipped.length > 10 ? ", ..." : ""}\n`);
    this.write(summaryText(s) + "\n");
    this.out.flush();
  }
}

/** A live display on a terminal: a bar per running stage (count, rate, ETA) under an overall line. */
export class TerminalReporter implements Reporter {
  private readonly bars = new cliProgress.MultiBar(
    {
      clearOnComplete: true,
      hideCursor: true,
      format: " {bar} {percentage}% | {stage} | {value}/{total} | {rate}/s | ETA {eta_formatted}",
      barsize: 24,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  private overall?: cliProgress.SingleBar;
  private readonly running = new Map<string, { bar: cliProgress.SingleBar; t0: number }>();
  private done = 0;
  private readonly plain = new PlainReporter((s) => this.bars.log(s));

  start(stages: readonly IrStage[]): void {
    this.overall = this.bars.create(stages.length, 0, { stage: "all stages", rate: "-" }, { format: " {bar} {value}/{total} stages | {stage}" });
  }
  stageStarted(id: string): void {
    if (this.running.has(id)) return;
    this.running.set(id, { bar: this.bars.create(1, 0, { stage: id, rate: "-" }), t0: performance.now() });
  }
  progress(id: string, done: number, total?: number): void {
    const r = this.running.get(id);
    if (!r) return;
    const secs = (performance.now() - r.t0) / 1000;
    r.bar.setTotal(total ?? Math.max(done, 1));
    r.bar.update(done, { rate: secs > 0 ? fmtCount(Math.round(done / secs)) : "-" });
  }
  retrying(id: string, attempt: number, error: string): void {
    this.plain.retrying(id, attempt, error);
  }
  stageFinished(id: string, o: Outcome): void {
    const r = this.running.get(id);
    if (r) {
      this.bars.remove(r.bar);
      this.running.delete(id);
    }
    this.overall?.update(++this.done, { stage: `${this.running.size} running` });
    this.plain.stageFinished(id, o);
  }
  end(s: RunSummary): void {
    this.bars.stop();
    new PlainReporter().end(s);
  }
}

/** Nothing at all (tests, `--json`). */
export const silentReporter: Reporter = { start() {}, stageStarted() {}, progress() {}, retrying() {}, stageFinished() {}, end() {} };
