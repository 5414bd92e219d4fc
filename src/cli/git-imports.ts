import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { gitKey } from "../compile/imports.js";
import { importLocks } from "../compile/lock.js";
import { loadModules, type Host, type ModuleGraph } from "../compile/modules.js";

// The resolve step for git imports, before the (pure) front end runs: each `git+URL//path#ref` the recipes import,
// directly or through what they import, is resolved (a branch or tag to the commit it names now, by `git ls-remote`)
// and its commit fetched once into the import cache, checked out there read-only by commit. The front end then
// reads the checkout through the host. A commit is fetched only if it is not in the cache: a pinned import costs
// no network after its first use; an unpinned one asks the remote where its ref points on every check.

/** Where fetched repositories live: ITP_IMPORT_CACHE, else the user cache folder (`~/.cache/itp/imports`). */
export function importCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env["ITP_IMPORT_CACHE"]?.trim() || join(env["XDG_CACHE_HOME"]?.trim() || join(homedir(), ".cache"), "itp", "imports");
}

const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());

/** One repository's folder in the cache: a bare repository (`repo.git`) and one checkout per commit (`<sha>/`). */
function repoDir(root: string, url: string): string {
  const name = url.replace(/\/+$/, "").split("/").pop()!.replace(/\.git$/, "").replace(/[^\w.-]/g, "_") || "repo";
  return join(root, `${name}-${createHash("sha256").update(url).digest("hex").slice(0, 16)}`);
}

function git(args: string[], cwd?: string): string {
  try {
    return execFileSync("git", args, {
      cwd,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      // Never wait for a password prompt; never read the user's templates or hooks into the cache.
      env: { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_TEMPLATE_DIR: "" },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 300_000,
    });
  } catch (e) {
    const err = e as { stderr?: string; code?: string; message: string };
    if (err.code === "ENOENT") throw new Error("git is not installed (it fetches git+ imports)");
    const lines = (err.stderr ?? err.message).trim().split("\n").filter((l) => l.trim() !== "");
    const first = lines.find((l) => /^(fatal|error): /.test(l)) ?? lines[lines.length - 1];
    throw new Error(first?.replace(/^(fatal|error): /, "") || `git ${args[0]} failed`);
  }
}

export class GitImports {
  private readonly refs = new Map<string, string>();
  private readonly errors = new Map<string, string>();

  constructor(
    readonly root: string,
    readonly offline: string | undefined,
  ) {}

  static fromEnv(env: NodeJS.ProcessEnv = process.env): GitImports {
    return new GitImports(importCacheDir(env), truthy(env["ITP_OFFLINE"]) ? "ITP_OFFLINE" : undefined);
  }

  checkoutDir(url: string, sha: string): string {
    return join(repoDir(this.root, url), sha);
  }

  /** The host's view: refs resolved so far, checkouts in the cache, and why the others failed. */
  host(base: Host, want?: { refs: Set<string>; commits: Set<string> }): Host {
    return {
      ...base,
      gitRef: (url, ref) => {
        const k = gitKey(url, ref);
        const sha = this.refs.get(k);
        if (sha === undefined && !this.errors.has(k)) want?.refs.add(JSON.stringify([url, ref]));
        return sha;
      },
      gitCheckout: (url, sha) => {
        const dir = this.checkoutDir(url, sha);
        if (existsSync(dir)) return dir;
        if (!this.errors.has(gitKey(url, sha))) want?.commits.add(JSON.stringify([url, sha]));
        return undefined;
      },
      gitError: (url, ref) => this.errors.get(gitKey(url, ref)),
    };
  }

  /**
   * Load the entries' modules, resolving and fetching git imports until every one is fetched or has failed (each
   * fetched module may import more). Returns the host to check with, and the module graph it loads.
   */
  resolve(entries: readonly string[], base: Host, opts: { sources?: ReadonlyMap<string, string>; useLocks: boolean }): { host: Host; graph: ModuleGraph } {
    const lockedRefs = opts.useLocks ? importLocks(entries, base, opts.sources) : new Map<string, string>();
    for (;;) {
      const want = { refs: new Set<string>(), commits: new Set<string>() };
      const graph = loadModules(entries, this.host(base, want), opts.sources, { lockedRefs });
      if (want.refs.size === 0 && want.commits.size === 0) return { host: this.host(base), graph };
      for (const w of want.refs) {
        const [url, ref] = JSON.parse(w) as [string, string];
        this.attempt(gitKey(url, ref), () => this.refs.set(gitKey(url, ref), this.resolveRef(url, ref)));
      }
      for (const w of want.commits) {
        const [url, sha] = JSON.parse(w) as [string, string];
        this.attempt(gitKey(url, sha), () => this.fetchCommit(url, sha));
      }
    }
  }

  private attempt(key: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      this.errors.set(key, (e as Error).message);
    }
  }

  private bare(url: string): string {
    const bare = join(repoDir(this.root, url), "repo.git");
    if (!existsSync(join(bare, "HEAD"))) {
      mkdirSync(bare, { recursive: true });
      git(["init", "--quiet", "--bare", bare]);
    }
    return bare;
  }

  private fetchAll(url: string): void {
    if (this.offline) throw new Error(`not in the import cache, and ${this.offline} is set`);
    git(["fetch", "--quiet", "--no-tags", "--force", "--", url, "+refs/heads/*:refs/itp/heads/*", "+refs/tags/*:refs/itp/tags/*"], this.bare(url));
  }

  private hasCommit(url: string, sha: string): boolean {
    try {
      return git(["rev-parse", "--verify", "--quiet", `${sha}^{commit}`], this.bare(url)).trim() === sha;
    } catch {
      return false;
    }
  }

  /** The commit a branch, tag, `HEAD` or abbreviated sha names now, asked of the remote (refs as git orders them). */
  private resolveRef(url: string, ref: string): string {
    if (this.offline) throw new Error(`${this.offline} is set, so the remote was not asked where \`${ref}\` points`);
    const refs = new Map<string, string>();
    for (const line of git(["ls-remote", "--", url]).split("\n")) {
      const [sha, name] = line.split("\t");
      if (sha && name) refs.set(name, sha);
    }
    for (const name of [ref, `refs/${ref}`, `refs/tags/${ref}^{}`, `refs/tags/${ref}`, `refs/heads/${ref}`]) {
      const sha = refs.get(name);
      if (sha) return sha;
    }
    if (/^[0-9a-f]{4,39}$/.test(ref)) {
      // An abbreviated commit: only the objects can say which one it is.
      this.fetchAll(url);
      try {
        const sha = git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], this.bare(url)).trim();
        if (/^[0-9a-f]{40}$/.test(sha)) return sha;
      } catch {
        // not found: reported below
      }
    }
    throw new Error(`no branch, tag or commit \`${ref}\` there`);
  }

  /** Fetch `sha` into the bare repository, verify it is that commit, and check its tree out under its name. */
  private fetchCommit(url: string, sha: string): void {
    const dir = this.checkoutDir(url, sha);
    if (existsSync(dir)) return;
    if (!this.hasCommit(url, sha)) {
      this.fetchAll(url);
      if (!this.hasCommit(url, sha)) {
        // Not on a branch or tag: a server that allows it serves a commit by its id.
        try {
          git(["fetch", "--quiet", "--no-tags", "--", url, sha], this.bare(url));
        } catch {
          // reported below
        }
      }
      if (!this.hasCommit(url, sha)) throw new Error(`commit ${sha} is not in the repository (on none of its branches and tags)`);
    }
    // Checked out through a temporary folder and renamed: a checkout in the cache is always complete.
    const tmp = mkdtempSync(join(repoDir(this.root, url), ".tmp-"));
    try {
      const tar = join(tmp, "tree.tar");
      git(["archive", "--format=tar", "-o", tar, sha], this.bare(url));
      mkdirSync(join(tmp, "tree"));
      execFileSync("tar", ["-xf", tar, "-C", join(tmp, "tree")], { stdio: ["ignore", "ignore", "pipe"] });
      try {
        renameSync(join(tmp, "tree"), dir);
      } catch (e) {
        if (!existsSync(dir)) throw e; // another process checked it out first
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
}
