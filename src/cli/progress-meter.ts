/**
 * What a stage's progress line may honestly say, from the reports it made: a percentage only while the total is
 * known and fixed (bytes for a reader, whose file size is known; records for a stage that knows its count), never
 * lower than one already shown; a rate once there is time to measure one; an ETA only while the rate is steady.
 */
export interface MeterView {
  readonly records: number;
  /** Records per second; absent in the first half second. */
  readonly rate?: number;
  /** 0-100, never decreasing; absent when no fixed total is known. */
  readonly percent?: number;
  /** Seconds left; absent unless the recent rate agrees with the overall one. */
  readonly eta?: number;
}

export interface Bytes {
  readonly done: number;
  readonly total: number;
}

/** The recent rate is measured over at least this long. */
const WINDOW_MS = 2000;
/** An ETA needs this much history. */
const MIN_ETA_MS = 3000;
/** Recent and overall progress speeds must agree within this ratio for an ETA. */
const STEADY = 0.25;

export class StageMeter {
  private records = 0;
  private total: number | undefined;
  /** A total that changed, or that the count passed, is no total: the line shows a count. */
  private totalUnstable = false;
  private bytes: Bytes | undefined;
  private shownPercent = -1;
  /** (time, fraction done) samples for the recent speed; the oldest is kept at least WINDOW_MS old. */
  private samples: { t: number; f: number }[] = [];

  constructor(private readonly t0: number) {}

  update(now: number, done: number, total?: number, bytes?: Bytes): void {
    this.records = Math.max(this.records, done);
    if (total !== undefined) {
      if (this.total === undefined && !this.totalUnstable) this.total = total;
      else if (this.total !== total) this.totalUnstable = true;
    }
    if (this.total !== undefined && this.records > this.total) this.totalUnstable = true;
    if (bytes && bytes.total > 0) this.bytes = bytes;
    const f = this.fraction();
    if (f !== undefined) {
      this.samples.push({ t: now, f });
      while (this.samples.length > 2 && now - this.samples[1]!.t >= WINDOW_MS) this.samples.shift();
    }
  }

  private fraction(): number | undefined {
    if (this.bytes) return Math.min(1, this.bytes.done / this.bytes.total);
    if (this.total !== undefined && !this.totalUnstable) return this.total === 0 ? 1 : Math.min(1, this.records / this.total);
    return undefined;
  }

  view(now: number): MeterView {
    const elapsed = now - this.t0;
    const f = this.fraction();
    let percent: number | undefined;
    if (f !== undefined) {
      this.shownPercent = Math.max(this.shownPercent, Math.floor(f * 100));
      percent = this.shownPercent;
    }
    return {
      records: this.records,
      ...(elapsed >= 500 ? { rate: this.records / (elapsed / 1000) } : {}),
      ...(percent !== undefined ? { percent } : {}),
      ...(f !== undefined ? this.eta(now, elapsed, f) : {}),
    };
  }

  private eta(now: number, elapsed: number, f: number): { eta?: number } {
    const first = this.samples[0];
    if (elapsed < MIN_ETA_MS || !first || f <= 0 || f >= 1 || now - first.t < WINDOW_MS / 2) return {};
    const overall = f / elapsed;
    const recent = (f - first.f) / (now - first.t);
    if (recent <= 0 || Math.abs(recent - overall) > STEADY * overall) return {};
    return { eta: (1 - f) / recent / 1000 };
  }
}

/**
 * A count with thousands separators, as toLocaleString("en-US") writes it; done by hand, since the first
 * toLocaleString of a process sets up ICU's number formatting (~20 ms, on the path of every run's first line).
 */
export function fmtCount(n: number): string {
  const r = Math.round(n);
  if (!Number.isSafeInteger(r) || Object.is(r, -0)) return r.toLocaleString("en-US");
  return String(r).replace(/\B(?=(\d{3})+$)/g, ",");
}

export function fmtSeconds(seconds: number): string {
  const s = Math.max(1, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** `12,345 records, 1,234/s, 45%, ETA 20s`: what a progress line says, whatever displays it. */
export function describe(v: MeterView): string {
  const parts = [`${fmtCount(v.records)} record${v.records === 1 ? "" : "s"}`];
  if (v.rate !== undefined) parts.push(`${fmtCount(v.rate)}/s`);
  if (v.percent !== undefined) parts.push(`${v.percent}%`);
  if (v.eta !== undefined) parts.push(`ETA ${fmtSeconds(v.eta)}`);
  return parts.join(", ");
}
