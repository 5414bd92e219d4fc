// What a quoted import names, and where it lives. Three kinds besides the standard library:
//   "./common.itp", "../x", "/abs/y.itp"       a file, relative to the importing file's folder
//   "@org/recipes/tulu", "recipes/tulu"        a file of an npm package, found through node_modules as Node does
//   "git+https://host/org/repo.git//path/tulu.itp#<commit>"   a file of a git repository at a commit
// This module is pure: files are read through the Host, and git repositories are fetched by the CLI beforehand
// (the host only says where a fetched commit lies).

/** A 40-hex commit sha: the only revision that never moves. */
export const isCommitSha = (r: string): boolean => /^[0-9a-f]{40}$/.test(r);

/** How the front end reads package files: the subset of Host this module needs. */
export interface PackageHost {
  readFile(path: string): string | undefined;
  /** The absolute working directory relative paths start from; absent: the walk up stops at the first relative folder. */
  readonly cwd?: string;
}

export type ImportSpec =
  | { readonly k: "file"; readonly path: string }
  | { readonly k: "package"; readonly name: string; readonly subpath: string }
  | { readonly k: "git"; readonly url: string; readonly path: string; readonly ref: string; readonly pinned: boolean }
  | { readonly k: "invalid"; readonly message: string; readonly hint: string };

/** A package import resolved to its file, with the package it belongs to. */
export interface ResolvedPackage {
  readonly name: string;
  readonly version: string;
  /** The package's folder (as module paths are written: relative to the working directory when inside it). */
  readonly root: string;
  readonly path: string;
}

/** Where an import came from, for the lock file, `itp check` and `itp diff`. */
export type ImportOrigin =
  | { readonly k: "package"; readonly name: string; readonly version: string; readonly root: string }
  | {
      readonly k: "git";
      readonly url: string;
      readonly ref: string;
      /** The commit loaded: the ref itself when pinned, else the lock's commit, else the one the ref names now. */
      readonly sha: string;
      /** The commit the ref names now (undefined: pinned, offline, or not resolved). */
      readonly now: string | undefined;
      readonly root: string;
    };

/** The spec of an import written in quotes. */
export function parseImportSpec(spec: string): ImportSpec {
  if (spec.startsWith("./") || spec.startsWith("../") || spec.startsWith("/") || spec === "." || spec === "..") return { k: "file", path: spec };
  if (spec.startsWith("git+")) return parseGitSpec(spec);
  if (/^[a-z][a-z0-9+.-]*:/i.test(spec))
    return { k: "invalid", message: `unsupported import \`${spec}\``, hint: 'import a repository as "git+https://host/org/repo.git//path/file.itp#<commit>", a package by its name, or a file by a path starting with ./' };
  const parts = spec.split("/");
  const scoped = spec.startsWith("@");
  const nameParts = scoped ? parts.slice(0, 2) : parts.slice(0, 1);
  const name = nameParts.join("/");
  const valid = /^(@[a-z0-9][\w.~-]*\/)?[a-z0-9][\w.~-]*$/i;
  if ((scoped && parts.length < 2) || !valid.test(name) || parts.slice(nameParts.length).some((p) => p === "" || p === "." || p === ".."))
    return { k: "invalid", message: `\`${spec}\` is not a package import`, hint: 'a package import is "name/path" or "@scope/name/path"; a file in this folder is "./name.itp"' };
  return { k: "package", name, subpath: parts.slice(nameParts.length).join("/") };
}

function parseGitSpec(spec: string): ImportSpec {
  const bad = (what: string): ImportSpec => ({ k: "invalid", message: `\`${spec}\`: ${what}`, hint: 'write a repository import as "git+https://host/org/repo.git//path/in/repo.itp#<40-hex commit>"' });
  const rest = spec.slice(4);
  const hash = rest.indexOf("#");
  const ref = hash >= 0 ? rest.slice(hash + 1) : "";
  const urlAndPath = hash >= 0 ? rest.slice(0, hash) : rest;
  const scheme = /^(https?|file|ssh):\/\//.exec(urlAndPath);
  if (!scheme) return bad("the repository URL must start with git+https://, git+http://, git+ssh:// or git+file://");
  const sep = urlAndPath.indexOf("//", scheme[0].length + (scheme[1] === "file" ? 1 : 0));
  if (sep < 0) return bad("no file named: put `//` between the repository and the path of the file in it");
  const url = urlAndPath.slice(0, sep);
  const path = urlAndPath.slice(sep + 2);
  if (path === "" || path.split("/").some((p) => p === ".." || p === "")) return bad("the path in the repository must name a file inside it");
  if (hash >= 0 && !/^[\w./-]+$/.test(ref)) return bad(`\`${ref}\` is not a commit, branch or tag`);
  return { k: "git", url, path: path.endsWith(".itp") ? path : `${path}.itp`, ref: ref || "HEAD", pinned: isCommitSha(ref) };
}

/** A git import's identity in the lock file: the repository and the ref as written. */
export const gitKey = (url: string, ref: string): string => `${url}#${ref}`;

/** A path with `.`, `..` and repeated slashes resolved, as text (the front end reads no file system). */
export function normalize(p: string): string {
  const abs = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(part);
  }
  return (abs ? "/" : "") + out.join("/") || ".";
}

const parentOf = (p: string): string => {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
};

/** An absolute path written as module paths are: relative to the working directory when that is short. */
function relativeTo(cwd: string, abs: string): string {
  const a = cwd.split("/").filter(Boolean);
  const b = abs.split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const ups = a.length - i;
  if (ups > 2) return abs;
  return [...Array<string>(ups).fill(".."), ...b.slice(i)].join("/") || ".";
}

/** The folders a Node-style lookup tries, nearest first: each ancestor of `dir` that is not itself a node_modules. */
function ancestors(dir: string, host: PackageHost): { search: string; display: (p: string) => string }[] {
  const out: { search: string; display: (p: string) => string }[] = [];
  if (host.cwd !== undefined) {
    const cwd = normalize(host.cwd);
    let d = dir.startsWith("/") ? normalize(dir) : normalize(`${cwd}/${dir}`);
    for (;;) {
      if (!d.endsWith("/node_modules")) out.push({ search: d, display: (p) => relativeTo(cwd, p) });
      if (d === "/") break;
      d = parentOf(d);
    }
  } else {
    let d = normalize(dir);
    for (;;) {
      if (!d.endsWith("/node_modules") && d !== "node_modules") out.push({ search: d, display: (p) => p });
      if (d === "." || d === "/" || d.split("/").every((p) => p === "..")) break;
      d = parentOf(d);
    }
  }
  return out;
}

const join = (dir: string, rel: string): string => normalize(dir === "/" ? `/${rel}` : `${dir}/${rel}`);

/**
 * Resolve a package import from the folder of the importing file: the nearest `node_modules/<name>` up the tree,
 * then the file its package.json `exports` maps the subpath to (conditions `itp`, then `default`), or, without
 * `exports`, the subpath inside the package with `.itp` appended (`main` or `index.itp` for the bare name).
 */
export function resolvePackage(spec: { name: string; subpath: string }, fromDir: string, host: PackageHost): ResolvedPackage | { error: string; hint: string } {
  const tried = ancestors(fromDir, host);
  for (const { search, display } of tried) {
    const root = join(search, `node_modules/${spec.name}`);
    const text = host.readFile(`${root}/package.json`);
    if (text === undefined) continue;
    let pj: { version?: unknown; exports?: unknown; main?: unknown };
    try {
      pj = JSON.parse(text) as typeof pj;
      if (typeof pj !== "object" || pj === null) throw new Error("not an object");
    } catch (e) {
      return { error: `${display(root)}/package.json is not valid JSON (${(e as Error).message})`, hint: `reinstall it: npm install ${spec.name}` };
    }
    const version = typeof pj.version === "string" ? pj.version : "0.0.0";
    const sub = spec.subpath === "" ? "." : `./${spec.subpath}`;
    let target: string | undefined;
    if (pj.exports !== undefined && pj.exports !== null) {
      const t = resolveExports(pj.exports, sub);
      if (t === undefined) {
        const keys = exportedSubpaths(pj.exports).map((k) => (k === "." ? spec.name : `${spec.name}/${k.slice(2)}`));
        return { error: `package \`${spec.name}\` (${version}) does not export \`${sub}\``, hint: keys.length > 0 ? `its package.json \`exports\` lists: ${keys.join(", ")}` : "its package.json `exports` lists no .itp file" };
      }
      if (!t.startsWith("./") || t.split("/").includes("..")) return { error: `package \`${spec.name}\` maps \`${sub}\` to \`${t}\`, outside the package`, hint: "an `exports` target starts with ./ and stays inside the package" };
      target = t;
    } else if (spec.subpath === "") target = typeof pj.main === "string" && pj.main.endsWith(".itp") ? pj.main : "index.itp";
    else target = spec.subpath.endsWith(".itp") ? spec.subpath : `${spec.subpath}.itp`;
    return { name: spec.name, version, root: display(root), path: display(join(root, target)) };
  }
  const where = tried[0] ? tried[0].display(tried[0].search) : fromDir;
  return { error: `package \`${spec.name}\` is not installed (no node_modules/${spec.name} in ${where} or any folder above it)`, hint: `npm install ${spec.name}` };
}

/** Node's `exports` resolution for one subpath, with the conditions `itp` and `default`; undefined: not exported. */
export function resolveExports(exports: unknown, sub: string): string | undefined {
  const map = exportsMap(exports);
  if (!map) return undefined;
  if (Object.prototype.hasOwnProperty.call(map, sub) && !sub.includes("*")) return target(map[sub]);
  // The longest pattern with one `*` whose prefix and suffix match.
  let best: { key: string; star: string } | undefined;
  for (const key of Object.keys(map)) {
    const i = key.indexOf("*");
    if (i < 0 || key.indexOf("*", i + 1) >= 0) continue;
    const pre = key.slice(0, i);
    const post = key.slice(i + 1);
    if (sub.length >= key.length - 1 && sub.startsWith(pre) && sub.endsWith(post) && (!best || pre.length > best.key.indexOf("*"))) best = { key, star: sub.slice(pre.length, sub.length - post.length) };
  }
  if (!best) return undefined;
  const t = target(map[best.key]);
  return t?.replaceAll("*", best.star);
}

/** `exports` as a subpath map: a string or a conditions object stands for ".". */
function exportsMap(exports: unknown): Record<string, unknown> | undefined {
  if (typeof exports === "string" || Array.isArray(exports)) return { ".": exports };
  if (typeof exports !== "object" || exports === null) return undefined;
  const keys = Object.keys(exports);
  return keys.length > 0 && keys.every((k) => k.startsWith(".")) ? (exports as Record<string, unknown>) : { ".": exports };
}

function target(t: unknown): string | undefined {
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    for (const x of t) {
      const r = target(x);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  if (typeof t === "object" && t !== null) {
    for (const cond of ["itp", "default"]) if (Object.prototype.hasOwnProperty.call(t, cond)) return target((t as Record<string, unknown>)[cond]);
  }
  return undefined; // null: explicitly not exported
}

function exportedSubpaths(exports: unknown): string[] {
  const map = exportsMap(exports);
  return map ? Object.keys(map).filter((k) => target(map[k]) !== undefined) : [];
}
