import { createHash, type Hash } from "node:crypto";
import { constants as fsConstants, createReadStream, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { copyFile, open, type FileHandle } from "node:fs/promises";

export type RecordValue = Record<string, unknown>;

/** A JsonlWriter writes its output in blocks of this size; a block starts small and grows to it as needed. */
const BLOCK = 1 << 20;
const BLOCK_ROOM = BLOCK + (BLOCK >> 2);

/** A record that could not be read: where it is and what is wrong, for a diagnostic that names the line. */
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
 * Splits a stream of byte chunks into lines (LF or CRLF ends; a UTF-8 byte order mark at the start is dropped).
 * Each line is decoded on its own rather than the chunk as a whole: most lines of most files are ASCII, which
 * decodes to a compact one-byte string that JSON.parse reads about twice as fast as a slice of a chunk that held
 * one non-ASCII character somewhere. A line longer than a chunk is kept as pieces until its end comes.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private first = true;
  /** The bytes of the line last yielded, without its line break, CR or byte order mark. */
  raw: Buffer = Buffer.alloc(0);

  *push(chunk: Buffer): Generator<string> {
    let start = 0;
    let nl = chunk.indexOf(10);
    if (nl < 0) {
      this.pending.push(chunk);
      return;
    }
    if (this.pending.length > 0) {
      const line = Buffer.concat([...this.pending, chunk.subarray(0, nl)]);
      this.pending = [];
      yield this.decode(line, 0, line.length);
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    for (; nl >= 0; nl = chunk.indexOf(10, start)) {
      yield this.decode(chunk, start, nl);
      start = nl + 1;
    }
    if (start < chunk.length) this.pending.push(chunk.subarray(start));
  }

  /** The last line, when the input does not end with a line break. */
  *end(): Generator<string> {
    if (this.pending.length === 0) return;
    const line = Buffer.concat(this.pending);
    this.pending = [];
    yield this.decode(line, 0, line.length);
  }

  /** The line in bytes [start, end) of buf, without a CR before the end or a byte order mark at the very start. */
  private decode(buf: Buffer, start: number, end: number): string {
    if (end > start && buf[end - 1] === 13) end--;
    const text = buf.toString("utf8", start, end);
    this.raw = buf.subarray(start, end);
    if (!this.first) return text;
    this.first = false;
    if (text.charCodeAt(0) !== 0xfeff) return text;
    this.raw = buf.subarray(start + 3, end);
    return text.slice(1);
  }
}

/**
 * Records of JSON Lines (an artifact: a file or bytes held in memory), streamed: only one chunk and the current
 * line are in memory. Blank lines are skipped; a line that is not a JSON object is an error naming the file and
 * line. While a record is being handled, `line` holds its bytes as read (no line break), so a stage that passes a
 * record on unchanged writes those bytes instead of serializing it again.
 */
export class JsonlLines implements AsyncIterable<RecordValue> {
  private readonly splitter = new LineSplitter();

  constructor(
    private readonly from: string | Buffer,
    private readonly display: string,
  ) {}

  get line(): Buffer {
    return this.splitter.raw;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<RecordValue> {
    const parse = lineParser(this.display);
    const lines = this.splitter;
    const chunks: AsyncIterable<Buffer> | Buffer[] = typeof this.from === "string" ? (createReadStream(this.from, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) : [this.from];
    for await (const chunk of chunks) {
      for (const text of lines.push(chunk)) {
        const r = parse(text);
        if (r) yield r;
      }
    }
    for (const text of lines.end()) {
      const r = parse(text);
      if (r) yield r;
    }
  }
}

/** Records of a JSON Lines file (see {@link JsonlLines}). */
export function readJsonl(path: string, display = path): JsonlLines {
  return new JsonlLines(path, display);
}

/** Records of JSON Lines held in memory (a packed artifact), with the same errors as `readJsonl`. */
export function readJsonlBuffer(buf: Buffer, display: string): JsonlLines {
  return new JsonlLines(buf, display);
}

/** Parses the lines of a JSON Lines text in order: a record, undefined for a blank line, a RecordError otherwise. */
function lineParser(display: string): (text: string) => RecordValue | undefined {
  let line = 0;
  return (text) => {
    line++;
    const r = parseLine(text);
    if (r instanceof LineFault) throw new RecordError(display, line, r.problem);
    return r;
  };
}

/** What is wrong with a line of JSON Lines: one sentence, a category for counts, and how to fix it. */
export class LineFault {
  constructor(
    readonly problem: string,
    readonly reason: string,
    readonly hint?: string,
  ) {}
}

/** One line of JSON Lines: its record, undefined for a blank line, or what is wrong with it. */
export function parseLine(text: string): RecordValue | undefined | LineFault {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    if (/^\s*$/.test(text)) return undefined; // blank lines are rare: tested for only when parsing fails
    return new LineFault(`not valid JSON (${(e as Error).message.replace(/^JSON\.parse: /, "")})`, "not valid JSON", "each line must hold one whole JSON object");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return new LineFault("a line must hold one JSON object (a record)", "not a JSON object");
  return v as RecordValue;
}

/**
 * Writes records as JSON Lines to a file, hashing the bytes as they go. Lines are encoded straight into a block
 * of up to 1 MiB (no joined string, no intermediate copy); a small artifact never opens a file handle (one
 * synchronous write at the end), a large one is written block by block.
 */
export class JsonlWriter {
  private block = Buffer.allocUnsafe(1 << 12);
  private used = 0;
  private readonly hash: Hash = createHash("sha256");
  /** Set by copyFile: the output is a copied file, of this digest. */
  private copied: string | undefined;
  /** Set by adopt: the output is a stored object already, at this path. */
  private adopted: string | undefined;
  private fh: FileHandle | undefined;
  private writing: Promise<void> | undefined;
  private aborted = false;
  records = 0;
  bytes = 0;

  constructor(private readonly path: string) {}

  async write(record: unknown): Promise<void> {
    const line = JSON.stringify(record) + "\n";
    this.records++;
    // A UTF-16 code unit takes at most 3 bytes of UTF-8.
    const room = line.length * 3;
    if (this.used + room > this.block.length && this.block.length < BLOCK_ROOM) this.grow(this.used + room);
    if (this.used + room > this.block.length) {
      await this.flush();
      if (room > this.block.length) {
        const data = Buffer.from(line, "utf8");
        this.hash.update(data);
        this.bytes += data.length;
        await this.output(data);
        return;
      }
    }
    this.used += this.block.write(line, this.used, "utf8");
    if (this.used >= BLOCK) await this.flush();
  }

  /**
   * Append the bytes of one record's JSON line (without the line break), as read from an artifact or a source:
   * they must parse to the record. `prefix` and `suffix` wrap it (a record nested in a larger line).
   */
  async writeLine(line: Buffer, prefix = "", suffix = ""): Promise<void> {
    this.records++;
    const room = line.length + (prefix.length + suffix.length) * 3 + 1;
    if (this.used + room > this.block.length && this.block.length < BLOCK_ROOM) this.grow(this.used + room);
    if (this.used + room > this.block.length) {
      await this.flush();
      if (room > this.block.length) {
        const data = Buffer.concat([Buffer.from(prefix, "utf8"), line, Buffer.from(suffix + "\n", "utf8")]);
        this.hash.update(data);
        this.bytes += data.length;
        await this.output(data);
        return;
      }
    }
    if (prefix !== "") this.used += this.block.write(prefix, this.used, "utf8");
    this.used += line.copy(this.block, this.used);
    if (suffix !== "") this.used += this.block.write(suffix, this.used, "utf8");
    this.block[this.used++] = 10;
    if (this.used >= BLOCK) await this.flush();
  }

  /** Append bytes that are already JSON Lines (a copy of an artifact), holding `records` records. */
  async writeBytes(data: Buffer, records: number): Promise<void> {
    this.records += records;
    if (data.length === 0) return;
    if (this.used + data.length <= this.block.length || (this.block.length < BLOCK_ROOM && this.used + data.length <= BLOCK_ROOM)) {
      if (this.used + data.length > this.block.length) this.grow(this.used + data.length);
      this.used += data.copy(this.block, this.used);
      if (this.used >= BLOCK) await this.flush();
      return;
    }
    await this.flush();
    this.hash.update(data);
    this.bytes += data.length;
    await this.output(data);
  }

  /** The whole output is a copy of this file, of this digest (see OutputSink.copyFile). */
  async copyFile(path: string, digest: string, records: number): Promise<void> {
    if (this.fh || this.used > 0 || this.bytes > 0 || this.records > 0 || this.copied) throw new Error("copyFile: the output already has data");
    if (this.aborted) return;
    await copyFile(path, this.path, fsConstants.COPYFILE_EXCL);
    this.copied = digest;
    this.records = records;
    this.bytes = statSync(this.path).size;
  }

  /**
   * The whole output is the stored object at `path`, of this digest (see OutputSink.sameAs): nothing is written.
   * `finish` then returns the digest alone (`stored`), or the bytes when they are small enough to be packed.
   */
  adopt(path: string, digest: string, records: number): void {
    if (this.fh || this.used > 0 || this.bytes > 0 || this.records > 0 || this.copied || this.adopted) throw new Error("adopt: the output already has data");
    this.adopted = path;
    this.copied = digest;
    this.records = records;
    this.bytes = statSync(path).size;
  }

  private grow(need: number): void {
    const block = Buffer.allocUnsafe(Math.min(BLOCK_ROOM, Math.max(need, this.block.length * 2)));
    this.block.copy(block, 0, 0, this.used);
    this.block = block;
  }

  /** The block's bytes, hashed and counted; the block is reused (so they must be written before the next write). */
  private take(): Buffer {
    const data = this.block.subarray(0, this.used);
    this.used = 0;
    this.hash.update(data);
    this.bytes += data.length;
    return data;
  }

  private output(data: Buffer): Promise<void> {
    this.writing = this.writeOut(data);
    return this.writing;
  }

  private async writeOut(data: Buffer): Promise<void> {
    // An interrupted stage aborts while its loop may still be writing: nothing is opened or written after that.
    if (this.aborted) return;
    this.fh ??= await open(this.path, "wx");
    for (let done = 0; done < data.length && !this.aborted; ) done += (await this.fh.write(data, done, data.length - done)).bytesWritten;
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    await this.output(this.take());
  }

  /**
   * Write out and close; returns the sha256 of everything written. Output no larger than `keepUpTo` that never
   * reached the disk is returned in memory instead (the store packs small artifacts). The store makes it durable
   * when it commits. `stored`: the output is an object of the store already (adopted), there is nothing to publish.
   */
  async finish(keepUpTo = 0): Promise<{ digest: string; data?: Buffer; stored?: true }> {
    if (this.adopted !== undefined) {
      if (this.bytes > keepUpTo) return { digest: this.copied!, stored: true };
      return { digest: this.copied!, data: readFileSync(this.adopted) };
    }
    if (this.copied !== undefined) {
      if (this.bytes > keepUpTo) return { digest: this.copied };
      // Small enough to be packed: in memory, as a written one would be.
      const data = readFileSync(this.path);
      unlinkSync(this.path);
      return { digest: this.copied, data };
    }
    if (this.fh) {
      await this.flush();
      await this.fh.close();
      this.fh = undefined;
      return { digest: this.hash.digest("hex") };
    }
    const data = Buffer.from(this.take());
    if (data.length <= keepUpTo) return { digest: this.hash.digest("hex"), data };
    writeFileSync(this.path, data, { flag: "wx" });
    return { digest: this.hash.digest("hex") };
  }

  async abort(): Promise<void> {
    this.aborted = true;
    await this.writing?.catch(() => undefined);
    await this.fh?.close().catch(() => undefined);
  }
}
