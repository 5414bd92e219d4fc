import type { ProgramEvent } from "../../executors/run-process.js";

/**
 * A training job's metrics lines, summed up: the status shown while it runs (`loss 2.310, 5,120 tok/s`) and the
 * summary kept in the manifest (steps, first, last and lowest loss, tokens per second, DPO reward accuracy), which
 * `itp show` prints. The loss curve is kept thinned to at most 200 points, each [step, loss, learning rate] (the
 * learning rate null where the job did not say it): what `itp report` plots.
 */
export class LossCurve {
  private readonly points: [number, number, number | null][] = [];
  private first: number | undefined;
  private last: number | undefined;
  private min: number | undefined;
  private lastStep = 0;
  private tps: number[] = [];
  private rewardAccuracy: number | undefined;
  private resumedFrom: number | null = null;
  private totalSteps: number | undefined;
  private seconds: number | undefined;
  private tokens: number | undefined;

  /**
   * The curve of a whole job from its log, every attempt included (the log is appended to): a step redone after a
   * resume counts once, as its last attempt ran it; `resumed_from` is the first resume's.
   */
  static fromLog(text: string): LossCurve {
    const c = new LossCurve();
    const steps = new Map<number, ProgramEvent>();
    let resumed: number | null = null;
    for (const line of text.split("\n")) {
      if (!line.startsWith("{")) continue;
      let e: ProgramEvent;
      try {
        e = JSON.parse(line) as ProgramEvent;
      } catch {
        continue;
      }
      if (e["event"] === "step") steps.set(Number(e["step"]), e);
      else if (e["event"] === "start") {
        c.start(e);
        if (resumed === null && typeof e["resumed_from"] === "number") resumed = e["resumed_from"];
      } else if (e["event"] === "dpo") c.dpo(e);
      else if (e["event"] === "done") c.done(e);
    }
    for (const step of [...steps.keys()].sort((a, b) => a - b)) c.step(steps.get(step)!);
    c.resumedFrom = resumed;
    return c;
  }

  start(e: ProgramEvent): void {
    if (typeof e["resumed_from"] === "number") this.resumedFrom = e["resumed_from"];
    if (typeof e["steps"] === "number") this.totalSteps = e["steps"];
    if (typeof e["tokens"] === "number") this.tokens = e["tokens"];
  }

  step(e: ProgramEvent): void {
    const loss = e["loss"];
    const step = Number(e["step"]);
    if (typeof loss !== "number" || !Number.isFinite(loss)) return;
    this.first ??= loss;
    this.last = loss;
    this.min = this.min === undefined ? loss : Math.min(this.min, loss);
    this.lastStep = step;
    if (typeof e["tokens_per_s"] === "number") this.tps.push(e["tokens_per_s"]);
    const lr = e["lr"];
    this.points.push([step, loss, typeof lr === "number" && Number.isFinite(lr) ? lr : null]);
    // Thin: keep every other point once there are too many (the ends stay).
    if (this.points.length > 200) for (let i = this.points.length - 2; i > 0; i -= 2) this.points.splice(i, 1);
  }

  dpo(e: ProgramEvent): void {
    if (typeof e["reward_accuracy"] === "number") this.rewardAccuracy = e["reward_accuracy"];
  }

  done(e: ProgramEvent): void {
    if (typeof e["seconds"] === "number") this.seconds = e["seconds"];
    if (typeof e["steps"] === "number") this.totalSteps = e["steps"];
  }

  status(): string {
    const parts = [];
    if (this.last !== undefined) parts.push(`loss ${this.last.toFixed(4)}`);
    const t = this.tps[this.tps.length - 1];
    if (t !== undefined) parts.push(`${Math.round(t).toLocaleString("en-US")} tok/s`);
    if (this.rewardAccuracy !== undefined) parts.push(`reward acc ${this.rewardAccuracy.toFixed(2)}`);
    return parts.join(", ");
  }

  summary(): Record<string, unknown> {
    const sorted = [...this.tps].sort((a, b) => a - b);
    return {
      steps: this.totalSteps ?? this.lastStep,
      ...(this.first !== undefined ? { loss_first: this.first, loss_last: this.last, loss_min: this.min } : {}),
      ...(sorted.length > 0 ? { tokens_per_s: sorted[Math.floor(sorted.length / 2)] } : {}),
      ...(this.tokens !== undefined ? { tokens: this.tokens } : {}),
      ...(this.seconds !== undefined ? { seconds: this.seconds } : {}),
      ...(this.rewardAccuracy !== undefined ? { reward_accuracy: this.rewardAccuracy } : {}),
      resumed_from: this.resumedFrom,
      loss_curve: this.points,
    };
  }
}
