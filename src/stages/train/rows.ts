import { open, type FileHandle } from "node:fs/promises";
import type { TokenizedExample } from "./label-mask.js";

/**
 * Tokenized examples laid out as the rows of the token artifact (src/trainer/README.md): each example truncated to
 * `maxLength`, then one row per example, or with packing, examples placed one after another in rows of at most
 * `maxLength` (in data order; an example never spans two rows), positions restarting at 0 for each example.
 * Preference pairs make two rows each, chosen then rejected. The tensors are streamed to files as they grow.
 */
export interface TokenStats {
  /** Examples kept (for preferences: pairs). */
  readonly examples: number;
  readonly rows: number;
  readonly tokens: number;
  /** Tokens whose label is the token itself. */
  readonly loss_tokens: number;
  /** Kept examples cut to max_length (a pair counts once). */
  readonly truncated: number;
  /** Examples left out because no token of theirs carries loss (after truncation: the prompt alone fills max_length). */
  readonly no_loss: number;
}

/** The stats kept in a manifest's counts, read back. */
export function statsFromCounts(c: Readonly<Record<string, number>>): TokenStats {
  return { examples: c["examples"] ?? 0, rows: c["rows"] ?? 0, tokens: c["tokens"] ?? 0, loss_tokens: c["loss_tokens"] ?? 0, truncated: c["truncated"] ?? 0, no_loss: c["no_loss"] ?? 0 };
}

export const IGNORE = -100;

/** A file of fixed-size little-endian integers, written through a 1 MiB buffer. */
class IntFile {
  private buf = Buffer.alloc(1 << 20);
  private used = 0;
  count = 0;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly width: 4 | 8,
  ) {}

  static async create(path: string, width: 4 | 8): Promise<IntFile> {
    return new IntFile(path, await open(path, "w"), width);
  }

  async push(v: number): Promise<void> {
    if (this.used + this.width > this.buf.length) await this.flush();
    if (this.width === 4) this.buf.writeInt32LE(v, this.used);
    else this.buf.writeBigInt64LE(BigInt(v), this.used);
    this.used += this.width;
    this.count++;
  }

  /** Append int32 values (a 4-byte file), copied into the buffer a block at a time. */
  async pushInt32(values: Int32Array): Promise<void> {
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    for (let off = 0; off < bytes.length; ) {
      if (this.used === this.buf.length) await this.flush();
      const n = Math.min(bytes.length - off, this.buf.length - this.used);
      this.buf.set(bytes.subarray(off, off + n), this.used);
      this.used += n;
      off += n;
    }
    this.count += values.length;
  }

  private async flush(): Promise<void> {
    for (let off = 0; off < this.used; ) off += (await this.fh.write(this.buf, off, this.used - off)).bytesWritten;
    this.used = 0;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.fh.close();
  }
}

export interface RowFiles {
  readonly inputIds: string;
  readonly labels: string;
  readonly positionIds: string;
  readonly rowOffsets: string;
}

export class RowWriter {
  private rowStart = 0;
  private examples = 0;
  private tokens = 0;
  private lossTokens = 0;
  private truncated = 0;
  private noLoss = 0;

  private constructor(
    private readonly files: { ids: IntFile; labels: IntFile; pos: IntFile; offsets: IntFile },
    private readonly maxLength: number,
    private readonly packing: boolean,
  ) {}

  /** Files are created at `prefix` + `.input_ids`, `.labels`, `.position_ids`, `.row_offsets`. */
  static async create(prefix: string, maxLength: number, packing: boolean): Promise<RowWriter> {
    const files = {
      ids: await IntFile.create(`${prefix}.input_ids`, 4),
      labels: await IntFile.create(`${prefix}.labels`, 4),
      pos: await IntFile.create(`${prefix}.position_ids`, 4),
      offsets: await IntFile.create(`${prefix}.row_offsets`, 8),
    };
    await files.offsets.push(0);
    return new RowWriter(files, maxLength, packing);
  }

  private cut(ex: TokenizedExample): { ex: TokenizedExample; cut: boolean; loss: number } {
    const cut = ex.ids.length > this.maxLength;
    const e = cut ? { ids: ex.ids.subarray(0, this.maxLength), loss: ex.loss.subarray(0, this.maxLength) } : ex;
    let loss = 0;
    for (const l of e.loss) loss += l;
    return { ex: e, cut, loss };
  }

  private async append(ex: TokenizedExample): Promise<void> {
    const open = this.files.ids.count - this.rowStart;
    if (this.packing && open > 0 && open + ex.ids.length > this.maxLength) await this.closeRow();
    const labels = new Int32Array(ex.ids.length);
    const pos = new Int32Array(ex.ids.length);
    for (let i = 0; i < ex.ids.length; i++) {
      labels[i] = ex.loss[i] ? ex.ids[i]! : IGNORE;
      pos[i] = i;
    }
    await this.files.ids.pushInt32(ex.ids);
    await this.files.labels.pushInt32(labels);
    await this.files.pos.pushInt32(pos);
    this.tokens += ex.ids.length;
    if (!this.packing) await this.closeRow();
  }

  private async closeRow(): Promise<void> {
    if (this.files.ids.count === this.rowStart) return;
    this.rowStart = this.files.ids.count;
    await this.files.offsets.push(this.rowStart);
  }

  /** Add a supervised example; false when it is left out (no token carries loss). */
  async add(example: TokenizedExample): Promise<boolean> {
    const { ex, cut, loss } = this.cut(example);
    if (loss === 0) {
      this.noLoss++;
      return false;
    }
    await this.append(ex);
    this.examples++;
    this.lossTokens += loss;
    if (cut) this.truncated++;
    return true;
  }

  /** Add a preference pair as two rows (chosen, rejected); false when either side has no answer token left. */
  async addPair(chosen: TokenizedExample, rejected: TokenizedExample): Promise<boolean> {
    const c = this.cut(chosen);
    const r = this.cut(rejected);
    if (c.loss === 0 || r.loss === 0) {
      this.noLoss++;
      return false;
    }
    await this.append(c.ex);
    await this.closeRow();
    await this.append(r.ex);
    await this.closeRow();
    this.examples++;
    this.lossTokens += c.loss + r.loss;
    if (c.cut || r.cut) this.truncated++;
    return true;
  }

  /** Close the last row and the files. */
  async finish(): Promise<{ files: RowFiles; stats: TokenStats }> {
    await this.closeRow();
    const f = this.files;
    for (const x of [f.ids, f.labels, f.pos, f.offsets]) await x.close();
    return {
      files: { inputIds: f.ids.path, labels: f.labels.path, positionIds: f.pos.path, rowOffsets: f.offsets.path },
      stats: { examples: this.examples, rows: f.offsets.count - 1, tokens: this.tokens, loss_tokens: this.lossTokens, truncated: this.truncated, no_loss: this.noLoss },
    };
  }

  /** Close the files without finishing (an error or an interruption): the caller removes them. */
  async abandon(): Promise<void> {
    const f = this.files;
    for (const x of [f.ids, f.labels, f.pos, f.offsets]) await x.close().catch(() => undefined);
  }
}
