/** A source file and its line index: offsets are stored everywhere, lines and columns computed on demand. */
export class SourceFile {
  private lineStarts: number[] | undefined;
  constructor(
    readonly path: string,
    readonly text: string,
  ) {}

  private starts(): number[] {
    if (this.lineStarts) return this.lineStarts;
    const starts = [0];
    const t = this.text;
    for (let i = 0; i < t.length; i++) if (t.charCodeAt(i) === 10) starts.push(i + 1);
    this.lineStarts = starts;
    return starts;
  }

  /** 1-based line and column of an offset (clamped into the file). */
  position(offset: number): { line: number; col: number } {
    const starts = this.starts();
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: o - starts[lo]! + 1 };
  }

  lineText(line: number): string {
    const starts = this.starts();
    const s = starts[line - 1] ?? this.text.length;
    const e = line < starts.length ? starts[line]! - 1 : this.text.length;
    return this.text.slice(s, e).replace(/\r$/, "");
  }

  get lineCount(): number {
    return this.starts().length;
  }
}

/** A half-open range [start, end) of offsets in one file. */
export interface Range {
  readonly file: SourceFile;
  readonly start: number;
  readonly end: number;
}
