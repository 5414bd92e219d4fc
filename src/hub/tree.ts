import { UserError } from "../core/errors.js";
import { header, hubGet, repoLabel, type HubCall } from "./http.js";

/**
 * The files of a dataset repository at a revision, from `GET /api/datasets/{repo}/tree/{revision}?recursive=true`.
 * The hub answers in pages of JSON arrays, the next page named by a `Link: <url>; rel="next"` header.
 */
export interface TreeFile {
  /** Path inside the repository, `/`-separated. */
  readonly path: string;
  /** Size in bytes of the file's content (for LFS files, of the LFS object). */
  readonly size: number;
  /** Git blob id: sha1 of `blob <size>\0` + content for plain files (of the pointer file for LFS ones). */
  readonly oid: string;
  /** For files stored in LFS: sha256 of the content. */
  readonly lfs?: { readonly oid: string; readonly size: number };
}

/** Encode a `/`-separated path segment by segment (a revision like `refs/convert/parquet` is one segment). */
export const encodePath = (p: string) => p.split("/").map(encodeURIComponent).join("/");

export function treeUrl(call: HubCall): string {
  return `${call.settings.endpoint}/api/datasets/${encodePath(call.repo)}/tree/${encodeURIComponent(call.revision)}?recursive=true&expand=false`;
}

export async function listTree(call: HubCall): Promise<TreeFile[]> {
  const files: TreeFile[] = [];
  const seen = new Set<string>();
  for (let url: string | undefined = treeUrl(call); url !== undefined; ) {
    const res = await hubGet(call, url, "the file listing");
    const text = res.body.toString("utf8");
    let page: unknown;
    try {
      page = JSON.parse(text);
    } catch {
      throw badListing(call, `not JSON (${text.slice(0, 80).replace(/\s+/g, " ")}...)`);
    }
    if (!Array.isArray(page)) throw badListing(call, "not an array of entries");
    for (const e of page) {
      const f = treeEntry(call, e);
      // A page boundary that moved under a concurrent push could repeat an entry; keep the first.
      if (f && !seen.has(f.path)) {
        seen.add(f.path);
        files.push(f);
      }
    }
    const next = nextLink(header(res.headers, "link"));
    url = next === undefined ? undefined : new URL(next, res.url).toString();
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

const badListing = (call: HubCall, what: string) =>
  new UserError(`${repoLabel(call)}: the hub's file listing is ${what}`, `check HF_ENDPOINT (${call.settings.endpoint}) points at a Hugging Face Hub`);

function treeEntry(call: HubCall, e: unknown): TreeFile | undefined {
  if (e === null || typeof e !== "object") throw badListing(call, "malformed: an entry is not an object");
  const o = e as Record<string, unknown>;
  if (o["type"] !== "file") return undefined;
  const path = o["path"];
  if (typeof path !== "string" || !safePath(path)) throw badListing(call, `malformed: entry path ${JSON.stringify(path)} is not a relative path inside the repository`);
  const size = o["size"];
  const oid = o["oid"];
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) throw badListing(call, `malformed: ${path} has no valid size`);
  if (typeof oid !== "string" || !/^[0-9a-f]{40}$/.test(oid)) throw badListing(call, `malformed: ${path} has no valid oid`);
  const lfs = o["lfs"] as Record<string, unknown> | undefined | null;
  if (lfs) {
    if (typeof lfs["oid"] !== "string" || !/^[0-9a-f]{64}$/.test(lfs["oid"])) throw badListing(call, `malformed: ${path} has an LFS entry without a sha256 oid`);
    const lsize = typeof lfs["size"] === "number" ? lfs["size"] : size;
    return { path, size: lsize, oid, lfs: { oid: lfs["oid"], size: lsize } };
  }
  return { path, size, oid };
}

/** A path the cache can hold under its folder: relative, no `.`/`..`/empty segments, no backslashes or NULs. */
export function safePath(p: string): boolean {
  return p.length > 0 && !p.startsWith("/") && !/[\\\0]/.test(p) && p.split("/").every((s) => s !== "" && s !== "." && s !== "..");
}

/** The `rel="next"` target of a Link header (RFC 8288), if any. */
export function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?\s*(;|$)/i.test(m[2]!)) return m[1];
  }
  return undefined;
}
