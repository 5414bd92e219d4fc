import type { Json } from "../core/ir.js";

// The values a recipe's effects are made of (effects.ts computes them, permissions.ts judges them, the CLI shows
// them), and the tables of which stage parameters read, write or stay on this machine.

export interface FileEffect {
  /** As the recipe writes it (an env() path: as resolved from the environment). */
  readonly path: string;
  /** Absolute, symlinks resolved as far as the path exists; null when it comes from an env() that is not set. */
  readonly resolved: string | null;
  /** `stage.param` of each stage that reads or writes it. */
  readonly by: string[];
  /** Outside the recipe's folder and the store (an unresolved env() path counts as outside: it cannot be checked). */
  readonly outside: boolean;
  /** Inside the recipe's folder as written, but a symlink leads it outside. */
  readonly through_symlink?: true;
  /** The env() variable the path comes from. */
  readonly env?: string;
}

export interface HostEffect {
  /** `host[:port]`; null for an endpoint given by an env() variable that is not set. */
  readonly host: string | null;
  /** The base URL as resolved, or the endpoint's env() spelled `env("NAME")` when it is not set. */
  readonly url: string;
  /** `model endpoint` or `hub`. */
  readonly what: "model endpoint" | "hub";
  /** The model stages that name the endpoint (empty for the hub). */
  readonly models: string[];
  /** The stages that send requests to it. */
  readonly stages: string[];
}

export interface NameEffect {
  readonly name: string;
  /** `stage.param` of each place it is read. */
  readonly by: string[];
}

export interface GpuEffect {
  readonly stage: string;
  readonly kind: string;
  readonly gpus: number;
  /** Estimated GPU-hours; null when nothing to estimate them from is known. */
  readonly gpu_hours: number | null;
  /** How the estimate was made (or why there is none). */
  readonly basis: string;
}

export interface CostEffect {
  readonly stage: string;
  readonly model: string;
  readonly requests: number | null;
  readonly prompt_tokens: number | null;
  readonly completion_tokens: number | null;
  /** Estimated cost in the unit the model's prices are given in (per 1,000 tokens); null when not estimable. */
  readonly cost: number | null;
  readonly basis: string;
}

export interface Effects {
  readonly writes: FileEffect[];
  readonly reads: FileEffect[];
  readonly hosts: HostEffect[];
  readonly env: NameEffect[];
  readonly secrets: NameEffect[];
  readonly gpus: { readonly stages: GpuEffect[]; readonly total_gpus: number; readonly total_gpu_hours: number | null };
  readonly cost: { readonly stages: CostEffect[]; readonly total: number | null; readonly partial: boolean };
  /** Programs a stage starts from a command line the recipe writes (`serve`'s command), besides itp's own. */
  readonly commands: { readonly stage: string; readonly command: string }[];
}

/** What the pure front end needs to know of the machine; the CLI supplies it. */
export interface EffectContext {
  /** The recipe's folder, absolute (relative paths in a recipe are relative to it). */
  readonly folder: string;
  /** The store's folder, absolute; writes into it are always allowed. */
  readonly store?: string;
  /** The hub's endpoint (`HF_ENDPOINT`); default https://huggingface.co. */
  readonly hubEndpoint?: string;
  /** The real path of an existing path (symlinks resolved); undefined when it does not exist. */
  readonly realpath?: (path: string) => string | undefined;
  /** An environment variable's value, to resolve env() paths and endpoints (only names reach the output). */
  readonly env?: (name: string) => string | undefined;
  /** A stage's output record count when known (plan: from the store), for request estimates. */
  readonly records?: (stage: string) => number | undefined;
  /** What `itp plan` knows of a training stage: the base model's parameter count and the tokens of one epoch. */
  readonly training?: (stage: string) => { readonly params?: number; readonly tokens?: number; readonly tokensUpperBound?: boolean } | undefined;
}

/** What the command line (or a profile) allows beyond the safe default. Recipes cannot widen it. */
export interface Permissions {
  /** Absolute paths (files or folders) that may be written besides the recipe's folder and the store. */
  readonly allowWrite: readonly string[];
  /** Environment variables whose env() values may be sent to a host. */
  readonly allowEnv: readonly string[];
  /** Reads outside the recipe's folder are errors (CI running contributed recipes). */
  readonly denyReadOutside: boolean;
}

export const defaultPermissions: Permissions = { allowWrite: [], allowEnv: [], denyReadOutside: false };

/**
 * Local files each kind reads beyond the registry's `localInputs` (which drive the missing-file warning): models,
 * templates and prompt files. Hub ids for tokenizers are read from the local Hugging Face cache: not listed.
 */
export const EXTRA_READS: Readonly<Record<string, (p: Readonly<Record<string, Json>>) => Json[]>> = {
  onnx_model: (p) => [p["path"], p["tokenizer"]].filter(isPathLike),
  hf_model: (p) => [p["repo"], p["tokenizer"]].filter(isPathLike),
  hf_chat_template: (p) => [p["path"]].filter(isPathLike),
  evol_instruct: (p) => [p["prompts"]].filter(isPathLike),
  flan_templates: (p) => (p["templates"] === "std" ? [] : [p["templates"]].filter(isPathLike)),
  sft: (p) => [p["base"]].filter(isPathLike),
  lora: (p) => [p["base"]].filter(isPathLike),
  qlora: (p) => [p["base"]].filter(isPathLike),
  dpo: (p) => [p["base"]].filter(isPathLike),
};

/** Parameters a `tokenizer` may name a file or folder in (`bytes` and hub ids excluded). */
export const tokenizerRead = (p: Readonly<Record<string, Json>>): Json[] => {
  const t = p["tokenizer"];
  if (typeof t !== "string" || t === "bytes") return [];
  const hubId = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(t) && !t.endsWith(".json");
  return hubId ? [] : [t];
};

export function isPathLike(v: Json | undefined): v is string | { $env: string } {
  return typeof v === "string" || isEnv(v);
}

export function isEnv(v: Json | undefined): v is { $env: string } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && typeof v["$env"] === "string" && Object.keys(v).length === 1;
}

/** Parameters of a stage that names a file it writes. */
export const WRITES: Readonly<Record<string, readonly string[]>> = { export: ["path"] };

/** Parameters of an endpoint model that stay on this machine or name the endpoint: env() there is never sent. */
export const ENDPOINT_LOCAL = new Set(["base_url", "api_key", "concurrency", "rpm", "tpm", "timeout", "connect_timeout", "max_retries", "retry", "price_input", "price_output", "kind"]);
/** Parameters of a hub read that are not sent (the token is the hub's own credential). */
export const HUB_LOCAL = new Set(["token", "limit", "on_error", "retry"]);
/** Parameters of a stage that uses an endpoint model that are not sent with its requests. */
export const CONSUMER_LOCAL = new Set(["retry"]);

export const ENDPOINT_KINDS = new Set(["openai_compatible"]);
export const HUB_KINDS = new Set(["hf_dataset"]);
export const TRAIN_KINDS = new Set(["sft", "lora", "qlora", "dpo"]);
