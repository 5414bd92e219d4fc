import { Environment, Interpreter, Template as Jinja } from "@huggingface/jinja";
import type { Message } from "./chat-formats.js";

/**
 * A model's own chat template: the Jinja program in its tokenizer_config.json (`chat_template`), rendered the way
 * transformers' `apply_chat_template` does, with @huggingface/jinja (trim_blocks and lstrip_blocks, as transformers
 * sets them). The template sees `messages`, `add_generation_prompt`, the special tokens of the config (`bos_token`,
 * `eos_token`, ... ; AddedToken objects `{content: ...}` read as their content), `raise_exception` and, when the
 * recipe fixes a date, `strftime_now`. Without a date `strftime_now` stays undefined: a render that depended on
 * the day it ran would break "same recipe, same bytes"; templates that test `strftime_now is defined` (Llama 3.2)
 * fall back to their own fixed date.
 */

/** The value an `hf_chat_template` stage writes. */
export interface HfChatTemplate {
  readonly jinja: string;
  /** Where it came from, for messages: the config file and the template's name when it has several. */
  readonly source: string;
  readonly tokens: Readonly<Record<string, string | readonly string[]>>;
  /** YYYY-MM-DD, what `strftime_now` renders. */
  readonly date?: string;
}

/** A config or a template that cannot be used, or a render the template refused (the caller adds where). */
export class HfTemplateError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export function isHfChatTemplate(v: unknown): v is HfChatTemplate {
  if (v === null || typeof v !== "object") return false;
  const o = v as Record<string, unknown>;
  const tokens = o["tokens"];
  return (
    typeof o["jinja"] === "string" &&
    typeof o["source"] === "string" &&
    (o["date"] === undefined || typeof o["date"] === "string") &&
    tokens !== null &&
    typeof tokens === "object" &&
    Object.values(tokens).every((t) => typeof t === "string" || (Array.isArray(t) && t.every((x) => typeof x === "string")))
  );
}

/** The tokenizer_config.json an `hf_chat_template` path names: the file itself, or the one in that directory. */
export function hfConfigFile(path: string): string {
  return path.endsWith(".json") ? path : `${path.replace(/\/+$/, "")}/tokenizer_config.json`;
}

/** The special tokens transformers passes to the template (`special_tokens_map`). */
const TOKEN_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] as const;

const tokenText = (v: unknown): string | undefined =>
  typeof v === "string" ? v : v !== null && typeof v === "object" && typeof (v as { content?: unknown }).content === "string" ? (v as { content: string }).content : undefined;

/**
 * The chat template of a tokenizer_config.json's text: the string form, or the list of `{name, template}` (the
 * one named `name`, else the one named "default", as transformers picks). `file` names the config in messages.
 */
export function readHfChatTemplate(configText: string, file: string, name?: string, date?: string): HfChatTemplate {
  let config: unknown;
  try {
    config = JSON.parse(configText);
  } catch (e) {
    throw new HfTemplateError(`not valid JSON (${(e as Error).message})`);
  }
  if (config === null || typeof config !== "object" || Array.isArray(config)) throw new HfTemplateError("not a tokenizer_config.json: it holds no JSON object");
  const c = config as Record<string, unknown>;
  const ct = c["chat_template"];
  let jinja: string;
  let which: string | undefined;
  if (typeof ct === "string") {
    if (name !== undefined && name !== "default") throw new HfTemplateError(`it has one chat template, not one named "${name}"`, "leave `name` out");
    jinja = ct;
  } else if (Array.isArray(ct)) {
    const named = new Map<string, string>();
    ct.forEach((t, k) => {
      const o = t as { name?: unknown; template?: unknown } | null;
      if (o === null || typeof o !== "object" || typeof o.name !== "string" || typeof o.template !== "string") {
        throw new HfTemplateError(`chat_template[${k}] is not a {name, template} pair of strings`);
      }
      named.set(o.name, o.template);
    });
    which = name ?? "default";
    const t = named.get(which);
    if (t === undefined) {
      const names = [...named.keys()].map((n) => `"${n}"`).join(", ");
      throw new HfTemplateError(`it has no chat template named "${which}"; it has ${names || "none"}`, name === undefined ? "set `name` to one of them" : undefined);
    }
    jinja = t;
  } else {
    throw new HfTemplateError(
      ct === undefined ? "it has no `chat_template`" : "`chat_template` is neither a string nor a list of {name, template}",
      "newer models keep the template in chat_template.jinja; a built-in format (chat_template(name: ...)) is the alternative",
    );
  }
  const tokens: Record<string, string | string[]> = {};
  for (const k of TOKEN_KEYS) {
    const v = tokenText(c[k]);
    if (v !== undefined) tokens[k] = v;
  }
  const extra = c["additional_special_tokens"];
  if (Array.isArray(extra)) tokens["additional_special_tokens"] = extra.map(tokenText).filter((t): t is string => t !== undefined);
  if (date !== undefined) strftime(date, "%Y"); // an impossible date (2024-02-30) is the recipe's error, reported now
  const t: HfChatTemplate = { jinja, source: which !== undefined ? `${file} (template "${which}")` : file, tokens, ...(date !== undefined ? { date } : {}) };
  compileHfChatTemplate(t); // a syntax error is the config's fault: report it now, not at the first record
  return t;
}

/** A template's error of its own making: `raise_exception(...)`. */
class Raised extends Error {}

const compiled = new WeakMap<HfChatTemplate, Jinja>();

function compileHfChatTemplate(t: HfChatTemplate): Jinja {
  let j = compiled.get(t);
  if (!j) {
    try {
      j = new Jinja(t.jinja);
    } catch (e) {
      throw new HfTemplateError(`the chat template does not parse: ${(e as Error).message}`);
    }
    compiled.set(t, j);
  }
  return j;
}

/** Render messages with a model's template; with `addGenerationPrompt`, the template's cue for the answer follows. */
export function renderHfChat(t: HfChatTemplate, messages: readonly Message[], addGenerationPrompt: boolean): string {
  const j = compileHfChatTemplate(t);
  // The globals of @huggingface/jinja's own `render`, set by hand so that `strftime_now` can be ours or absent.
  const env = new Environment();
  env.set("true", true);
  env.set("false", false);
  env.set("none", null);
  env.set("True", true);
  env.set("False", false);
  env.set("None", null);
  env.set("range", pyRange);
  env.set("raise_exception", (m: unknown) => {
    throw new Raised(String(m));
  });
  if (t.date !== undefined) {
    const date = t.date;
    env.set("strftime_now", (fmt: unknown) => strftime(date, String(fmt)));
  }
  env.set("messages", messages.map((m) => ({ role: m.role, content: m.content })));
  env.set("add_generation_prompt", addGenerationPrompt);
  for (const [k, v] of Object.entries(t.tokens)) env.set(k, v);
  try {
    return String(new Interpreter(env).run(j.parsed).value);
  } catch (e) {
    if (e instanceof Raised) throw new HfTemplateError(`the chat template of ${t.source} raised an exception: ${e.message}`);
    const hint = t.date === undefined && t.jinja.includes("strftime_now") ? 'the template calls strftime_now: set `date = "YYYY-MM-DD"` on hf_chat_template' : undefined;
    throw new HfTemplateError(`the chat template of ${t.source} failed: ${(e as Error).message}`, hint);
  }
}

function pyRange(a: number, b?: number, step = 1): number[] {
  const [start, stop] = b === undefined ? [0, a] : [a, b];
  if (step === 0) throw new Raised("range() arg 3 must not be zero");
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** Python's `strftime` in the C locale, for midnight (UTC) of a YYYY-MM-DD date; unknown directives stay as written. */
export function strftime(isoDate: string, fmt: string): string {
  const d = new Date(`${isoDate}T00:00:00Z`);
  if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== isoDate) throw new HfTemplateError(`date "${isoDate}" is not a YYYY-MM-DD date`);
  const p2 = (n: number) => String(n).padStart(2, "0");
  const day = d.getUTCDate();
  const yday = Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
  return fmt.replace(/%[a-zA-Z%]/g, (tok) => {
    switch (tok[1]) {
      case "Y":
        return String(d.getUTCFullYear());
      case "y":
        return p2(d.getUTCFullYear() % 100);
      case "m":
        return p2(d.getUTCMonth() + 1);
      case "d":
        return p2(day);
      case "e":
        return String(day).padStart(2, " ");
      case "j":
        return String(yday).padStart(3, "0");
      case "B":
        return MONTHS[d.getUTCMonth()]!;
      case "b":
      case "h":
        return MONTHS[d.getUTCMonth()]!.slice(0, 3);
      case "A":
        return DAYS[d.getUTCDay()]!;
      case "a":
        return DAYS[d.getUTCDay()]!.slice(0, 3);
      case "H":
      case "M":
      case "S":
        return "00";
      case "I":
        return "12";
      case "p":
        return "AM";
      case "F":
        return isoDate;
      case "%":
        return "%";
      default:
        return tok;
    }
  });
}
