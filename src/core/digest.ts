import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";

/** `crypto.hash` (Node 20.12 on): one call, no Hash object; the same digest as createHash's. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string | Buffer, encoding: "hex") => string }).hash;

export const sha256 = oneShot ? (data: string | Buffer): string => oneShot("sha256", data, "hex") : (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");

/** JSON with object keys sorted at every level: one text for one value, so it can be hashed. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortDeep(v));
}

function sortDeep(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(sortDeep);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v as object).sort()) out[k] = sortDeep((v as Record<string, unknown>)[k]);
  return out;
}

/** A cache key: the digest of named components (a stage's key, or an artifact a stage keeps under its own key). */
export function cacheKey(components: Readonly<Record<string, string>>): string {
  return sha256(canonicalJson(components));
}

/**
 * The sha256 of a file's bytes. Two buffers in turn: the next piece is read while this one is hashed, and no memory
 * is allocated per piece (a stream's fresh buffers cost a large file's hashing about a third more).
 */
export async function fileDigest(path: string): Promise<{ digest: string; bytes: number }> {
  const h = createHash("sha256");
  const piece = 4 << 20;
  const fh = await open(path);
  try {
    const buffers = [Buffer.allocUnsafeSlow(piece), Buffer.allocUnsafeSlow(piece)];
    let bytes = 0;
    let turn = 0;
    let reading = fh.read(buffers[0]!, 0, piece, null);
    for (;;) {
      const { bytesRead, buffer } = await reading;
      if (bytesRead === 0) break;
      turn ^= 1;
      reading = fh.read(buffers[turn]!, 0, piece, null);
      h.update(buffer.subarray(0, bytesRead));
      bytes += bytesRead;
    }
    return { digest: h.digest("hex"), bytes };
  } finally {
    await fh.close();
  }
}
