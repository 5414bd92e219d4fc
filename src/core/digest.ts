import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { filePieces } from "./file-pieces.js";

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

/** The sha256 of a file's bytes, read in 4 MiB pieces (filePieces: no allocation per piece). */
export async function fileDigest(path: string): Promise<{ digest: string; bytes: number }> {
  const h = createHash("sha256");
  let bytes = 0;
  for await (const piece of filePieces(await open(path), 4 << 20)) {
    h.update(piece);
    bytes += piece.length;
  }
  return { digest: h.digest("hex"), bytes };
}
