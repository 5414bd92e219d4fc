import { UserError } from "../core/errors.js";
import { defaultRetry, hubGet, withRetries, type HubCall, type RetryPolicy } from "./http.js";
import type { HubSettings } from "./settings.js";
import { encodePath } from "./tree.js";

/**
 * The commit a branch, tag or sha of a hub repository names now: `GET /api/{datasets|models}/{repo}/revision/{rev}`,
 * whose answer's `sha` is the commit (huggingface_hub's `dataset_info` / `model_info`).
 */
export async function resolveRevision(settings: HubSettings, kind: "dataset" | "model", repo: string, revision: string, retry: RetryPolicy = defaultRetry): Promise<string> {
  if (settings.offline) throw new UserError(`${repo}@${revision}: resolving a revision to a commit needs the hub, and ${settings.offline}=1 forbids it`, `unset ${settings.offline}, or pin the revision to a commit sha in the recipe`);
  const call: HubCall = { settings, repo, revision };
  const url = `${settings.endpoint}/api/${kind === "dataset" ? "datasets" : "models"}/${encodePath(repo)}/revision/${encodeURIComponent(revision)}`;
  const res = await withRetries(retry, () => hubGet(call, url, `the ${kind}'s revision`));
  let sha: unknown;
  try {
    sha = (JSON.parse(res.body.toString("utf8")) as { sha?: unknown }).sha;
  } catch {
    sha = undefined;
  }
  if (typeof sha !== "string" || !/^[0-9a-f]{40}$/.test(sha)) throw new UserError(`${repo}@${revision}: the hub's answer (${url}) names no commit sha`, "check HF_ENDPOINT: it should be a Hugging Face hub");
  return sha;
}
