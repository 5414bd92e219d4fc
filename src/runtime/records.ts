import { createHash, type Hash } from "node:crypto";
import { createReadStream, writeFileSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

export type RecordValue = Record<string, unknown>;

/** A record that could not be read: where it is and what is wrong, for a diagnostic that names the line. */
/** Records of JSON Lines held in memory (a packed artifact), with the same errors as `readJsonl`. */
export async function* readJsonlBuffer(buf: Buffer, display: string): AsyncGenerator<RecordValue> {
  const text = buf.toString("utf8");
  let line = 0;
  let start = 0;
  while (start < text.length) {
    let nl = text.indexOf("\n", start);
    if (nl < 0) nl = text.length;
    line++;
    const l = text.slice(start, nl);
    start = nl + 1;
    if (l.length === 0 || /^\s*$/.test(l)) continue;
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch (e) {
      throw new RecordError(display, line, `not valid JSON (${(e as Error).message})`);
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new RecordError(display, line, "a line must hold one JSON object (a record)");
    yield v as RecordValue;
  }
}

export class RecordError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly problem: string,
  ) {
    super(`${file}:${line}: ${problem}`);
  }
}

/**
 * Records of a JSON Lines file, streamed: only one chunk and the current line are in memory. Blank lines are
 * skipped; a line that is not a JSON object is an error naming the file and line.
 */
export async function* readJsonl(path: string, display = path): AsyncGenerator<RecordValue> {
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  let rest = "";
  let line = 0;
  const decoder = new TextDecoder("utf-8", { fatal: false });
  const parse = (text: string): RecordValue | undefined => {
    line++;
    if (text.length === 0 || /^\s*$/.test(text)) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new RecordError(display, line, `not valid JSON (${(e as Error).message.replace(/^JSON\.parse: /, "")})`);
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new RecordError(display, line, "a line must hold one JSON object (a record)");
    return v as RecordValue;
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const text = rest + decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = text.indexOf("\n", start); nl >= 0; nl = text.indexOf("\n", start)) {
      const r = parse(text.charCodeAt(nl - 1) === 13 ? text.slice(start, nl - 1) : text.slice(start, nl));
      start = nl + 1;
      if (r) yield r;
    }
    rest = text.slice(start);
  }
  rest += decoder.decode();
  if (rest.length > 0) {
    const r = parse(rest);
    if (r) yield r;
  }
}

/**
 * Writes records as JSON Lines to a file, hashing the bytes as they go. Output is buffered; a small artifact never
 * opens a file handle (one synchronous write at the end), a large one is written in 1 MiB blocks.
 */
export class JsonlWriter {
  private buf: string[] = [];
  private bufLen = 0;
  private readonly hash: Hash = createHash("sha256");
  private fh: FileHandle | undefined;
  records = 0;
  bytes = 0;

  constructor(private readonly path: string) {}

  async write(record: unknown): Promise<void> {
    const line = JSON.stringify(record) + "\n";
    this.buf.push(line);
    this.bufLen += line.length;
    this.records++;
    if (this.bufLen >= 1 << 20) await this.flush();
  }

  private take(): Buffer {
    const data = Buffer.from(this.buf.join(""), "utf8");
    this.buf = [];
    this.bufLen = 0;
    this.hash.update(data);
    this.bytes += data.length;
    return data;
  }

  private async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    this.fh ??= await open(this.path, "wx");
    await this.fh.write(this.take());
  }

  /**
   * Write out and close; returns the sha256 of everything written. Output no larger than `keepUpTo` that never
   * reached the disk is returned in memory instead (the store packs small artifacts). The store makes it durable
   * when it commits.
   */
  async finish(keepUpTo = 0): Promise<{ digest: string; data?: Buffer }> {
    if (this.fh) {
      await this.flush();
      await this.fh.close();
      this.fh = undefined;
      return { digest: this.hash.digest("hex") };
    }
    const data = this.take();
    if (data.length <= keepUpTo) return { digest: this.hash.digest("hex"), data };
    writeFileSync(this.path, data, { flag: "wx" });
    return { digest: this.hash.digest("hex") };
  }

  async abort(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
  }
}
