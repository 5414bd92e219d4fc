import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local Hugging Face Hub for tests: a real HTTP server on 127.0.0.1 serving the two endpoints itp uses, from
 * files the test adds, with the hub's shapes:
 * - `GET /api/datasets/{owner}/{name}/tree/{revision}?recursive=true`: JSON pages of entries (`type`, `path`, `size`,
 *   `oid` = git blob sha1, `lfs: {oid: sha256, size, pointerSize}` for LFS files), the next page in a Link header;
 * - `GET /datasets/{owner}/{name}/resolve/{revision}/{path}`: plain files directly, LFS files by a 302 to a second
 *   server (another origin, like the hub's storage host); both honour `Range: bytes=N-`.
 * - `GET /api/{datasets|models}/{owner}/{name}/revision/{revision}`: `{ id, sha }`, the commit a branch or tag names
 *   (set with `setRef`; a branch moves when it is set again) or a stored commit itself.
 * Errors carry `X-Error-Code` / `X-Error-Message` as the hub's do. Every request is logged; faults can be injected.
 */

export interface LoggedRequest {
  readonly server: "hub" | "cdn";
  readonly path: string;
  readonly range: string | undefined;
  readonly authorization: string | undefined;
  status: number;
}

interface StoredFile {
  readonly bytes: Buffer;
  readonly lfs: boolean;
}

export interface HubServerOptions {
  /** Entries per tree page (the Link header names the next one). */
  readonly pageSize?: number;
  /** Which files are stored in LFS (default: .parquet files). */
  readonly lfs?: (path: string) => boolean;
}

const gitBlobSha1 = (b: Buffer) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const lfsPointer = (b: Buffer) => Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(b)}\nsize ${b.length}\n`);

export class HubServer {
  readonly requests: LoggedRequest[] = [];
  /** Bearer token every hub request must carry; undefined: none needed. */
  requireToken: string | undefined;
  private readonly repos = new Map<string, Map<string, Map<string, StoredFile>>>();
  /** Branches and tags: `dataset:owner/name` or `model:owner/name` -> ref -> commit. */
  private readonly refs = new Map<string, Map<string, string>>();
  private readonly drops = new Map<string, { after: number; times: number }>();
  private readonly corrupt = new Set<string>();
  private readonly failures = new Map<string, { status: number; times: number }>();

  private constructor(
    private readonly hub: Server,
    private readonly cdn: Server,
    private readonly opts: HubServerOptions,
  ) {}

  static async start(opts: HubServerOptions = {}): Promise<HubServer> {
    let self: HubServer | undefined;
    const hub = createServer((req, res) => self!.handleHub(req, res));
    const cdn = createServer((req, res) => self!.handleCdn(req, res));
    self = new HubServer(hub, cdn, opts);
    await Promise.all([hub, cdn].map((s) => new Promise<void>((ok) => s.listen(0, "127.0.0.1", ok))));
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
  }

  private get cdnUrl(): string {
    return `http://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of [this.hub, this.cdn]) s.closeAllConnections();
    await Promise.all([this.hub, this.cdn].map((s) => new Promise<void>((ok) => s.close(() => ok()))));
  }

  /** Add (or replace) a file of `repo` at `revision`. */
  addFile(repo: string, revision: string, path: string, content: Buffer | string): void {
    let revs = this.repos.get(repo);
    if (!revs) this.repos.set(repo, (revs = new Map()));
    let files = revs.get(revision);
    if (!files) revs.set(revision, (files = new Map()));
    const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content);
    files.set(path, { bytes, lfs: (this.opts.lfs ?? ((p) => p.endsWith(".parquet")))(path) });
  }

  /** Point a branch or tag of a repository at a commit (for a dataset, one added with `addFile`); again to move it. */
  setRef(repo: string, ref: string, sha: string, kind: "dataset" | "model" = "dataset"): void {
    let m = this.refs.get(`${kind}:${repo}`);
    if (!m) this.refs.set(`${kind}:${repo}`, (m = new Map()));
    m.set(ref, sha);
  }

  /** The next `times` downloads of `path` send `after` bytes of the body, then drop the connection. */
  dropAfter(path: string, after: number, times = 1): void {
    this.drops.set(path, { after, times });
  }

  /** Downloads of `path` send other bytes (same length) than the listing's checksum names. */
  corruptFile(path: string): void {
    this.corrupt.add(path);
  }

  /** The next `times` requests for `path`'s download (or for `"tree"`, the listing) answer `status`. */
  failNext(target: string, status = 503, times = 1): void {
    this.failures.set(target, { status, times });
  }

  /** Serve every file as it is again. */
  clearFaults(): void {
    this.drops.clear();
    this.corrupt.clear();
    this.failures.clear();
  }

  /** Logged requests whose path contains `part`. */
  requestsFor(part: string): LoggedRequest[] {
    return this.requests.filter((r) => r.path.includes(part));
  }

  private log(server: "hub" | "cdn", req: IncomingMessage): LoggedRequest {
    const r: LoggedRequest = { server, path: req.url ?? "", range: req.headers.range, authorization: req.headers.authorization, status: 0 };
    this.requests.push(r);
    return r;
  }

  private error(res: ServerResponse, entry: LoggedRequest, status: number, code: string | undefined, message: string): void {
    entry.status = status;
    res.writeHead(status, { "content-type": "application/json", ...(code ? { "x-error-code": code } : {}), "x-error-message": message, ...(status === 503 ? { "retry-after": "0" } : {}) });
    res.end(JSON.stringify({ error: message }));
  }

  private injected(target: string): { status: number } | undefined {
    const f = this.failures.get(target);
    if (!f || f.times <= 0) return undefined;
    f.times--;
    return f;
  }

  private handleHub(req: IncomingMessage, res: ServerResponse): void {
    const entry = this.log("hub", req);
    const url = new URL(req.url ?? "/", this.url);
    if (this.requireToken !== undefined) {
      const auth = req.headers.authorization;
      if (!auth) return this.error(res, entry, 401, "GatedRepo", "Access to this dataset is restricted. You must be authenticated to access it.");
      if (auth !== `Bearer ${this.requireToken}`) return this.error(res, entry, 401, undefined, "Invalid credentials in Authorization header");
    }
    let m = /^\/api\/(datasets|models)\/([^/]+)\/([^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const kind = m[1] === "datasets" ? "dataset" : "model";
      const repo = `${decodeURIComponent(m[2]!)}/${decodeURIComponent(m[3]!)}`;
      const rev = decodeURIComponent(m[4]!);
      const refs = this.refs.get(`${kind}:${repo}`);
      const known = kind === "dataset" ? this.repos.get(repo) : undefined;
      if (!refs && !known) return this.error(res, entry, 404, "RepoNotFound", "Repository not found");
      const sha = refs?.get(rev) ?? (known?.has(rev) || [...(refs?.values() ?? [])].includes(rev) ? rev : undefined);
      if (!sha) return this.error(res, entry, 404, "RevisionNotFound", `Invalid rev id: ${rev}`);
      entry.status = 200;
      res.writeHead(200, { "content-type": "application/json" });
      return void res.end(JSON.stringify({ id: repo, sha, private: false }));
    }
    m = /^\/api\/datasets\/([^/]+)\/([^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const files = this.files(res, entry, `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`, decodeURIComponent(m[3]!));
      if (!files) return;
      const fail = this.injected("tree");
      if (fail) return this.error(res, entry, fail.status, undefined, "Service temporarily unavailable");
      return this.tree(res, entry, url, files);
    }
    m = /^\/datasets\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (m) {
      const files = this.files(res, entry, `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`, decodeURIComponent(m[3]!));
      if (!files) return;
      const path = m[4]!.split("/").map(decodeURIComponent).join("/");
      const f = files.get(path);
      if (!f) return this.error(res, entry, 404, "EntryNotFound", `${path} does not exist on "${m[3]}"`);
      const fail = this.injected(path);
      if (fail) return this.error(res, entry, fail.status, undefined, "Service temporarily unavailable");
      if (f.lfs) {
        entry.status = 302;
        const oid = sha256(f.bytes);
        res.writeHead(302, { location: `${this.cdnUrl}/lfs/${oid}?path=${encodeURIComponent(path)}`, "x-linked-size": String(f.bytes.length), "x-linked-etag": `"${oid}"` });
        return void res.end();
      }
      return this.content(req, res, entry, path, f.bytes);
    }
    this.error(res, entry, 404, undefined, "Not Found");
  }

  private handleCdn(req: IncomingMessage, res: ServerResponse): void {
    const entry = this.log("cdn", req);
    const url = new URL(req.url ?? "/", this.cdnUrl);
    const oid = /^\/lfs\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const path = url.searchParams.get("path") ?? "";
    for (const revs of this.repos.values())
      for (const files of revs.values())
        for (const f of files.values()) if (f.lfs && sha256(f.bytes) === oid) return this.content(req, res, entry, path, f.bytes);
    this.error(res, entry, 404, undefined, "NoSuchKey");
  }

  private files(res: ServerResponse, entry: LoggedRequest, repo: string, revision: string): Map<string, StoredFile> | undefined {
    const revs = this.repos.get(repo);
    if (!revs) return void this.error(res, entry, 404, "RepoNotFound", "Repository not found");
    const files = revs.get(revision) ?? revs.get(this.refs.get(`dataset:${repo}`)?.get(revision) ?? "");
    if (!files) return void this.error(res, entry, 404, "RevisionNotFound", `Invalid rev id: ${revision}`);
    return files;
  }

  private tree(res: ServerResponse, entry: LoggedRequest, url: URL, files: Map<string, StoredFile>): void {
    const paths = [...files.keys()].sort();
    // Folders are listed too (recursive listings include them), as the hub does.
    const dirs = new Set(paths.flatMap((p) => p.split("/").slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join("/"))));
    const entries: object[] = [...dirs].map((path) => ({ type: "directory", oid: "0".repeat(40), size: 0, path }));
    for (const path of paths) {
      const f = files.get(path)!;
      entries.push(
        f.lfs
          ? { type: "file", oid: gitBlobSha1(lfsPointer(f.bytes)), size: f.bytes.length, path, lfs: { oid: sha256(f.bytes), size: f.bytes.length, pointerSize: lfsPointer(f.bytes).length } }
          : { type: "file", oid: gitBlobSha1(f.bytes), size: f.bytes.length, path },
      );
    }
    entries.sort((a, b) => ((a as { path: string }).path < (b as { path: string }).path ? -1 : 1));
    const size = this.opts.pageSize ?? 1000;
    const start = Number(url.searchParams.get("cursor") ?? 0);
    const page = entries.slice(start, start + size);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (start + size < entries.length) {
      const next = new URL(url);
      next.searchParams.set("cursor", String(start + size));
      headers["link"] = `<${next.toString()}>; rel="next"`;
    }
    entry.status = 200;
    res.writeHead(200, headers);
    res.end(JSON.stringify(page));
  }

  /** A file's bytes, honouring `Range: bytes=N-[M]`, with the injected drops and corruption. */
  private content(req: IncomingMessage, res: ServerResponse, entry: LoggedRequest, path: string, bytesIn: Buffer): void {
    let bytes = bytesIn;
    if (this.corrupt.has(path)) {
      bytes = Buffer.from(bytesIn);
      bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    }
    let start = 0;
    let end = bytes.length - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (range) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(end, Number(range[2]));
      if (start >= bytes.length) {
        entry.status = 416;
        res.writeHead(416, { "content-range": `bytes */${bytes.length}` });
        return void res.end();
      }
      status = 206;
    }
    const body = bytes.subarray(start, end + 1);
    const headers: Record<string, string> = { "content-length": String(body.length), "accept-ranges": "bytes", etag: `"${gitBlobSha1(bytesIn)}"` };
    if (status === 206) headers["content-range"] = `bytes ${start}-${end}/${bytes.length}`;
    entry.status = status;
    res.writeHead(status, headers);
    const drop = this.drops.get(path);
    if (drop && drop.times > 0 && drop.after < body.length) {
      drop.times--;
      // Flush the first bytes, then cut the connection mid-body.
      res.flushHeaders();
      res.socket!.write(body.subarray(0, drop.after), () => res.socket!.destroy());
      return;
    }
    res.end(body);
  }
}
