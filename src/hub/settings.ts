import { homedir } from "node:os";
import { join } from "node:path";

/**
 * Where the Hugging Face Hub is and how to talk to it, read from the environment once per stage run. The names are
 * the ones huggingface_hub uses (`HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_OFFLINE`, `HF_HOME`), so a machine set up for
 * Python tools works unchanged; `ITP_OFFLINE` and `ITP_HUB_CACHE` are this project's own.
 */
export interface HubSettings {
  /** Base URL without a trailing slash, e.g. https://huggingface.co. */
  readonly endpoint: string;
  /** Sent as `Authorization: Bearer` to the endpoint's origin only; never logged. */
  readonly token: string | undefined;
  /** The variable that turned offline mode on (named in errors), or undefined when online. */
  readonly offline: "HF_HUB_OFFLINE" | "ITP_OFFLINE" | undefined;
  readonly cacheDir: string;
}

const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());

export function hubSettings(env: NodeJS.ProcessEnv = process.env, token?: string): HubSettings {
  const endpoint = (env["HF_ENDPOINT"]?.trim() || "https://huggingface.co").replace(/\/+$/, "");
  const home = env["HF_HOME"]?.trim();
  const cacheDir = env["ITP_HUB_CACHE"]?.trim() || (home ? join(home, "itp-hub") : join(env["XDG_CACHE_HOME"]?.trim() || join(homedir(), ".cache"), "itp", "hub"));
  const offline = truthy(env["HF_HUB_OFFLINE"]) ? "HF_HUB_OFFLINE" : truthy(env["ITP_OFFLINE"]) ? "ITP_OFFLINE" : undefined;
  return { endpoint, token: token || env["HF_TOKEN"] || undefined, offline, cacheDir };
}
