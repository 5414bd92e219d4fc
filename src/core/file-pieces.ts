import type { FileHandle } from "node:fs/promises";

/**
 * A file's bytes in pieces of `size`, read into two buffers in turn: the next piece is read while this one is used,
 * and nothing is allocated per piece (a stream's fresh buffers cost a large file's reading about a third more). A
 * piece is valid until the next one is asked for. The file is closed when the pieces end or the caller stops.
 */
export async function* filePieces(fh: FileHandle, size: number): AsyncGenerator<Buffer> {
  const buffers = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
  let turn = 0;
  let reading = fh.read(buffers[0]!, 0, size, null);
  try {
    for (;;) {
      const { bytesRead, buffer } = await reading;
      if (bytesRead === 0) return;
      turn ^= 1;
      reading = fh.read(buffers[turn]!, 0, size, null);
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    // Stopped early: the read in flight ends before the file closes.
    await reading.catch(() => undefined);
    await fh.close();
  }
}
