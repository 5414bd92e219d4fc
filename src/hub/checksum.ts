import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { TreeFile } from "./tree.js";

/**
 * What a file's bytes must hash to, from the listing: LFS files carry the sha256 of their content (`lfs.oid`),
 * plain files the git blob id (`oid`), which is sha1 of `blob <size>\0` followed by the content.
 */
export interface Expected {
  readonly kind: "sha256" | "git blob sha1";
  readonly hex: string;
}

export const expectedOf = (f: TreeFile): Expected => (f.lfs ? { kind: "sha256", hex: f.lfs.oid } : { kind: "git blob sha1", hex: f.oid });

/** A hash ready for the file's content (a git blob hash starts with its header). */
export function hasherFor(f: TreeFile): Hash {
  if (f.lfs) return createHash("sha256");
  return createHash("sha1").update(`blob ${f.size}\0`);
}

/** Feed a file's bytes (all of them) into the hash; returns how many there were. */
export async function feedFile(h: Hash, path: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    h.update(chunk);
    n += chunk.length;
  }
  return n;
}

/** The hex digest of a local file as the listing's checksum for `f` is computed. */
export async function digestOf(f: TreeFile, path: string): Promise<{ hex: string; bytes: number }> {
  const h = hasherFor(f);
  const bytes = await feedFile(h, path);
  return { hex: h.digest("hex"), bytes };
}
