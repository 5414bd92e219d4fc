import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

/**
 * safetensors, the format Hugging Face checkpoints and our token artifacts use: an 8-byte little-endian header
 * length N, N bytes of JSON (`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`,
 * padded with spaces so the data starts 8-byte aligned), then the tensors' bytes, back to back, little-endian.
 * Offsets are relative to the start of the data. Tensors are written in the order given: put the 8-byte types
 * first and every tensor stays aligned to its element size.
 */
export type Dtype = "I32" | "I64" | "F32" | "U8";

const ELEMENT_BYTES: Record<Dtype, number> = { I32: 4, I64: 8, F32: 4, U8: 1 };

/** A tensor to write: its bytes come from a file (written beforehand, streamed in) or from memory. */
export interface TensorSource {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: { readonly file: string } | { readonly bytes: Uint8Array };
}

/** A file that is not safetensors, or lacks what the reader asked for (the caller names the file). */
export class SafetensorsError extends Error {}

/** The header of tensors laid out in order: its JSON text (padded) and the total size of the data. */
export function safetensorsHeader(tensors: readonly Omit<TensorSource, "data">[], metadata: Readonly<Record<string, string>>): { header: Buffer; dataBytes: number } {
  const h: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[t.dtype];
    h[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(h);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const text = Buffer.from(json, "utf8");
  const header = Buffer.alloc(8 + text.length);
  header.writeBigUInt64LE(BigInt(text.length), 0);
  text.copy(header, 8);
  return { header, dataBytes: offset };
}

/**
 * Write a safetensors file at `path` (created or truncated), streaming each tensor's bytes in; returns the file's
 * sha256 and size, computed while writing. A tensor whose bytes do not match its shape is an error (a bug).
 */
export async function writeSafetensors(path: string, tensors: readonly TensorSource[], metadata: Readonly<Record<string, string>>): Promise<{ digest: string; bytes: number }> {
  const { header } = safetensorsHeader(tensors, metadata);
  const hash = createHash("sha256");
  const fh = await open(path, "w");
  let total = 0;
  const put = async (b: Uint8Array) => {
    hash.update(b);
    total += b.length;
    for (let off = 0; off < b.length; ) off += (await fh.write(b, off, b.length - off)).bytesWritten;
  };
  try {
    await put(header);
    for (const t of tensors) {
      const want = t.shape.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[t.dtype];
      let got = 0;
      if ("bytes" in t.data) {
        got = t.data.bytes.length;
        await put(t.data.bytes);
      } else {
        for await (const chunk of createReadStream(t.data.file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
          got += chunk.length;
          await put(chunk);
        }
      }
      if (got !== want) throw new Error(`safetensors: tensor ${t.name} has ${got} bytes, its shape needs ${want}`);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { digest: hash.digest("hex"), bytes: total };
}

export interface TensorInfo {
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte range in the file. */
  readonly begin: number;
  readonly end: number;
}

/** An open safetensors file: its metadata and tensor table, and reads of whole tensors or element ranges. */
export class SafetensorsFile {
  private constructor(
    private readonly fh: FileHandle,
    readonly metadata: Readonly<Record<string, string>>,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    const fh = await open(path, "r");
    try {
      const size = (await fh.stat()).size;
      const lenBuf = Buffer.alloc(8);
      if (size < 8 || (await fh.read(lenBuf, 0, 8, 0)).bytesRead < 8) throw new SafetensorsError("shorter than a safetensors header");
      const n = Number(lenBuf.readBigUInt64LE(0));
      if (n > 100_000_000 || 8 + n > size) throw new SafetensorsError(`header length ${n} does not fit the file (${size} bytes)`);
      const text = Buffer.alloc(n);
      await fh.read(text, 0, n, 8);
      let h: Record<string, unknown>;
      try {
        h = JSON.parse(text.toString("utf8")) as Record<string, unknown>;
      } catch (e) {
        throw new SafetensorsError(`header is not JSON (${(e as Error).message})`);
      }
      const tensors = new Map<string, TensorInfo>();
      for (const [name, v] of Object.entries(h)) {
        if (name === "__metadata__") continue;
        const t = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
        const [b, e] = t.data_offsets;
        if (8 + n + e > size || b > e) throw new SafetensorsError(`tensor ${name}'s data [${b}, ${e}) lies outside the file`);
        tensors.set(name, { dtype: t.dtype, shape: t.shape, begin: 8 + n + b, end: 8 + n + e });
      }
      return new SafetensorsFile(fh, (h["__metadata__"] ?? {}) as Record<string, string>, tensors);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  private info(name: string, dtype: Dtype): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new SafetensorsError(`no tensor \`${name}\``);
    if (t.dtype !== dtype) throw new SafetensorsError(`tensor \`${name}\` is ${t.dtype}, not ${dtype}`);
    return t;
  }

  /** Elements [from, to) of a 1-D int32 tensor (the whole tensor by default). */
  async int32(name: string, from = 0, to?: number): Promise<Int32Array> {
    const t = this.info(name, "I32");
    const n = (t.end - t.begin) / 4;
    const end = Math.min(to ?? n, n);
    const buf = Buffer.alloc(Math.max(0, end - from) * 4);
    if (buf.length > 0) await this.fh.read(buf, 0, buf.length, t.begin + from * 4);
    return new Int32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  }

  /** A whole int64 tensor, as numbers (offsets and counts, far below 2^53). */
  async int64(name: string): Promise<number[]> {
    const t = this.info(name, "I64");
    const buf = Buffer.alloc(t.end - t.begin);
    await this.fh.read(buf, 0, buf.length, t.begin);
    const out: number[] = [];
    for (let i = 0; i < buf.length; i += 8) out.push(Number(buf.readBigInt64LE(i)));
    return out;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
