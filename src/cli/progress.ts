import cliProgress from "cli-progress";
import type { IrStage } from "../core/ir.js";
import type { Outcome, Reporter, RunSummary } from "../runtime/scheduler.js";
import { type Bytes, describe, fmtCount, fmtSeconds, StageMeter } from "./progress-meter.js";

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

export interface PlainOptions {
  /** A line per running stage at least this often (ms); 0: none. Default ITP_PROGRESS_SECONDS (10 s). */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

/**
 * Plain lines: one per finished stage, and while a stage runs, a line at least every 10 s with its records and
 * rate (a log of a long run shows it is alive and how fast it goes). For logs, pipes and CI.
 */
export class PlainReporter implements Reporter {
  private readonly out = batchedStderr();
  private readonly write: (s: string) => void;
  private readonly intervalMs: number;
  private readonly now: () => number;
  /** Running stages in the order they started, with when each last had a line. */
  private readonly running = new Map<string, { meter: StageMeter; last: number; detail?: string }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(write?: (s: string) => void, opts: PlainOptions = {}) {
    this.write = write ?? this.out.write;
    this.now = opts.now ?? (() => performance.now());
    this.intervalMs = opts.intervalMs ?? Number(process.env["ITP_PROGRESS_SECONDS"] ?? 10) * 1000;
  }
  start(stages: readonly IrStage[]): void {
    this.write(`running ${stages.length} stage${stages.length === 1 ? "" : "s"}\n`);
    if (this.intervalMs > 0) {
      this.timer = setInterval(() => this.tick(), Math.max(10, Math.min(1000, this.intervalMs / 4)));
      this.timer.unref();
    }
  }
  stageStarted(id: string): void {
    if (this.running.has(id)) return;
    const t = this.now();
    this.running.set(id, { meter: new StageMeter(t), last: t });
  }
  progress(id: string, done: number, total?: number, bytes?: Bytes, detail?: string): void {
    const r = this.running.get(id);
    if (!r) return;
    r.meter.update(this.now(), done, total, bytes);
    // A stage's status (a training job's loss) rides along its progress lines.
    if (detail !== undefined) r.detail = detail;
  }
  /** Lines for the stages whose last line is an interval old, in the order they started. */
  tick(): void {
    const t = this.now();
    for (const [id, r] of this.running) {
      if (t - r.last < this.intervalMs) continue;
      r.last = t;
      this.write(`running ${id}: ${describe(r.meter.view(t))}${r.detail ? `, ${r.detail}` : ""}\n`);
    }
  }
  retrying(id: string, attempt: number, error: string): void {
    this.write(`retry   ${id} (attempt ${attempt} failed: ${error})\n`);
  }
  stageFinished(id: string, o: Outcome): void {
    this.running.delete(id);
    // Skipped stages are summed up at the end; their root failure is reported once, where it happened.
    if (o.status === "skipped") return;
    const line = outcomeLine(id, o);
    if (line) this.write(line + "\n");
  }
  end(s: RunSummary): void {
    clearInterval(this.timer);
    const skipped = [...s.outcomes].filter(([, o]) => o.status === "skipped").map(([id]) => id);
    if (skipped.length > 0) this.write(`skipped ${skipped.length} stage${skipped.length === 1 ? "" : "s"} downstream of failures: ${skipped.slice(0, 10).join(", ")}${skipped.length > 10 ? ", ..." : ""}\n`);
    this.write(summaryText(s) + "\n");
    this.out.flush();
  }
}

const BAR = 24;

/** A bar line: filled to the percentage when one is known, else a count alone (no bar that could mislead). */
function barLine(stage: string, meter: StageMeter, now: number, detail?: string): string {
  const v = meter.view(now);
  if (detail) return `${barLine(stage, meter, now)} | ${detail}`;
  const rate = v.rate !== undefined ? ` | ${fmtCount(v.rate)}/s` : "";
  const eta = v.eta !== undefined ? ` | ETA ${fmtSeconds(v.eta)}` : "";
  if (v.percent === undefined) return ` ${" ".repeat(BAR)}      | ${stage} | ${fmtCount(v.records)} records${rate}`;
  const filled = Math.round((v.percent / 100) * BAR);
  return ` ${"\u2588".repeat(filled)}${"\u2591".repeat(BAR - filled)} ${String(v.percent).padStart(3)}% | ${stage} | ${fmtCount(v.records)} records${rate}${eta}`;
}

/**
 * A live display on a terminal: a line per running stage under an overall line. A reader's bar follows the bytes
 * of its file; a stage whose total is unknown or changes shows a count; no bar goes backwards.
 */
export class TerminalReporter implements Reporter {
  private readonly bars = new cliProgress.MultiBar(
    {
      clearOnComplete: true,
      hideCursor: true,
      format: (_o, _p, payload: { line?: string }) => payload.line ?? "",
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  private overall?: cliProgress.SingleBar;
  private readonly running = new Map<string, { bar: cliProgress.SingleBar; meter: StageMeter }>();
  private done = 0;
  private total = 0;
  private readonly plain = new PlainReporter((s) => this.bars.log(s), { intervalMs: 0 });

  start(stages: readonly IrStage[]): void {
    this.total = stages.length;
    this.overall = this.bars.create(stages.length, 0, { line: this.overallLine() });
  }
  private overallLine(): string {
    const filled = this.total === 0 ? BAR : Math.round((this.done / this.total) * BAR);
    return ` ${"\u2588".repeat(filled)}${"\u2591".repeat(BAR - filled)} ${this.done}/${this.total} stages | ${this.running.size} running`;
  }
  stageStarted(id: string): void {
    if (this.running.has(id)) return;
    const meter = new StageMeter(performance.now());
    this.running.set(id, { bar: this.bars.create(1, 0, { line: barLine(id, meter, performance.now()) }), meter });
    this.overall?.update(this.done, { line: this.overallLine() });
  }
  progress(id: string, done: number, total?: number, bytes?: Bytes, detail?: string): void {
    const r = this.running.get(id);
    if (!r) return;
    const now = performance.now();
    r.meter.update(now, done, total, bytes);
    r.bar.update(0, { line: barLine(id, r.meter, now, detail) });
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
    this.done++;
    this.overall?.update(this.done, { line: this.overallLine() });
    this.plain.stageFinished(id, o);
  }
  end(s: RunSummary): void {
    this.bars.stop();
    new PlainReporter(undefined, { intervalMs: 0 }).end(s);
  }
}

/** Nothing at all (tests, `--json`). */
export const silentReporter: Reporter = { start() {}, stageStarted() {}, progress() {}, retrying() {}, stageFinished() {}, end() {} };
