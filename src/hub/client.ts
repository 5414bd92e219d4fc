import { readFile } from "node:fs/promises";
import { UserError } from "../core/errors.js";
import { RevisionCache } from "./cache.js";
import { cardConfigs, type CardConfig } from "./card.js";
import { selectDataFiles, type DataFile } from "./data-files.js";
import { ensureDownloaded, verify } from "./download.js";
import { defaultRetry, repoLabel, withRetries, type HubCall, type RetryPolicy } from "./http.js";
import type { HubSettings } from "./settings.js";
import { listTree, type TreeFile } from "./tree.js";

/**
 * A dataset split at a pinned revision of a Hub repository: which files hold it, and each one as a local,
 * verified file in the cache (downloaded on first use, so a `limit` that stops early downloads no more).
 * Offline (`HF_HUB_OFFLINE=1` or `ITP_OFFLINE=1`) only the cache is used, and whatever it lacks is an error.
 */
export interface HubDataset {
  /** `owner/name@revision`, for messages. */
  readonly label: string;
  readonly files: readonly DataFile[];
  /** How the files were chosen (`files`, the card's configuration, default patterns). */
  readonly how: string;
  /** The local path of a file of `files`, verified against the listing's checksum. */
  local(file: DataFile): Promise<string>;
}

export interface OpenOptions {
  readonly repo: string;
  readonly revision: string;
  readonly split: string;
  readonly config?: string | undefined;
  readonly files?: readonly string[] | undefined;
  readonly settings: HubSettings;
  readonly signal?: AbortSignal | undefined;
  readonly retry?: RetryPolicy;
}

/** A commit sha pins content forever: its listing is read from the cache without asking the hub again. */
const isCommit = (r: string) => /^[0-9a-f]{40}$/.test(r);

export async function openHubDataset(o: OpenOptions): Promise<HubDataset> {
  if (/^0{40}$/.test(o.revision))
    throw new UserError(`${o.repo}: revision ${o.revision} is a placeholder, not a commit`, `pin a real commit sha from ${o.settings.endpoint}/datasets/${o.repo}/commits/main (\`--set 'STAGE.revision="<sha>"'\`); or read a local copy of the data instead: the stdlib recipes take each source as a parameter (see the top of their files)`);
  const call: HubCall = { settings: o.settings, repo: o.repo, revision: o.revision, signal: o.signal };
  const label = repoLabel(call);
  const cache = new RevisionCache(o.settings.cacheDir, o.repo, o.revision);
  const policy = o.retry ?? defaultRetry;
  const offline = o.settings.offline;
  const missing = (what: string) =>
    new UserError(
      `${label}: ${what} is not in the hub cache (${cache.dir}), and ${offline}=1 forbids downloading it`,
      `run once with network access (unset ${offline}) to fill the cache, or point ITP_HUB_CACHE at a cache that holds this revision`,
    );

  let tree = offline || isCommit(o.revision) ? await cache.readTree() : undefined;
  if (!tree) {
    if (offline) throw missing("the file listing");
    tree = await withRetries(policy, () => listTree(call), o.signal);
    await cache.writeTree(tree);
  }
  const byPath = new Map(tree.map((f) => [f.path, f]));

  const local = async (f: TreeFile): Promise<string> => {
    const dest = cache.file(f.path);
    if (!offline) {
      await ensureDownloaded(call, f, dest, policy);
      return dest;
    }
    const state = await verify(f, dest);
    if (state === "missing") throw missing(f.path);
    if (state === "differs")
      throw new UserError(`${label}: the cached ${f.path} does not match the listing's checksum (${dest})`, `run with network access (unset ${offline}) to download it again`);
    return dest;
  };

  let card: CardConfig[] | undefined;
  const readme = byPath.get("README.md");
  if (!o.files && readme) card = cardConfigs(await readFile(await local(readme), "utf8"), `${label}: README.md`);
  const sel = selectDataFiles(tree, { split: o.split, config: o.config, files: o.files, card }, label);
  return { label, files: sel.files, how: sel.how, local: (d) => local(d.entry) };
}
