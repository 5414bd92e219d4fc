import { z } from "zod";
import type { InputSpec } from "./registry.js";

/**
 * Shared pieces of the stage declarations: parameter schema helpers (durations, seeds, fractions, prompt templates,
 * sampling parameters) and the word lists that several recipes agree on.
 *
 * A note on documentation: zod's `.describe()` returns a *clone* of the schema, and the markers of schema.ts
 * (`field()`, `ref()`, `value()`, `secretString()`) are kept by schema identity. `.describe()` directly on a marked
 * schema would therefore lose the marker; use {@link doc} there, which records the description on the schema itself.
 * Wrapping first (`field().optional().describe(...)`, `z.array(field()).describe(...)`) is fine: the marked schema
 * stays inside the wrapper.
 */
export function doc<S extends z.ZodType>(schema: S, description: string): S {
  z.globalRegistry.add(schema, { description });
  return schema;
}

/** An input named `data` of the given dataset type. */
export function dataInput(type: string, description: string, name = "data"): InputSpec {
  return { name, type, doc: description };
}

/** A duration literal (`30s`, `2h`): the parser hands it over as `{ duration_ms }`. */
export const duration = () => z.strictObject({ duration_ms: z.number().int().nonnegative() });

/** A duration value, for defaults: `ms(30_000)`. */
export const ms = (n: number) => ({ duration_ms: n });

/** A random seed; 42 by default (the Tulu/open-instruct sampling seed). */
export const seed = (description = "Random seed; the same seed and inputs give byte-identical output.") =>
  z.number().int().min(0).default(42).describe(description);

/** A positive integer. */
export const posInt = () => z.number().int().positive();

/** A non-negative integer. */
export const natInt = () => z.number().int().nonnegative();

/** A fraction in (0, 1]. */
export const fraction = () => z.number().gt(0).lte(1);

/** A probability / similarity in [0, 1]. */
export const unit = () => z.number().min(0).max(1);

/** A memory request: `64G`, `80GB`, `512Mi`. */
export const memory = () => z.string().regex(/^[0-9]+(\.[0-9]+)?\s*([KMGT]i?B?)$/i, "a memory size such as 64G, 80GB or 512Mi");

/**
 * Placeholders of a prompt template: `{name}` refers to a field of the record; `{{` and `}}` are literal braces.
 * Returns the field names, or an error message for a malformed template.
 */
export function templatePlaceholders(text: string): { fields: string[] } | { error: string } {
  const fields: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{") {
      if (text[i + 1] === "{") {
        i++;
        continue;
      }
      const close = text.indexOf("}", i);
      if (close < 0) return { error: `unclosed "{" at offset ${i} (write "{{" for a literal brace)` };
      const name = text.slice(i + 1, close);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return { error: `"{${name}}" is not a field placeholder (write "{{" for a literal brace)` };
      fields.push(name);
      i = close;
    } else if (c === "}") {
      if (text[i + 1] === "}") {
        i++;
        continue;
      }
      return { error: `unmatched "}" at offset ${i} (write "}}" for a literal brace)` };
    }
  }
  return { fields };
}

/** A prompt template string with `{field}` placeholders, validated. */
export const promptText = () =>
  z.string().superRefine((s, ctx) => {
    const r = templatePlaceholders(s);
    if ("error" in r) ctx.addIssue({ code: "custom", message: r.error });
  });

/** A regular expression source that must compile (JavaScript syntax, `u` flag). */
export const regexSource = () =>
  z
    .string()
    .min(1)
    .superRefine((s, ctx) => {
      try {
        new RegExp(s, "u");
      } catch (e) {
        ctx.addIssue({ code: "custom", message: `invalid regular expression: ${(e as Error).message}` });
      }
    });

/** Sampling parameters of an LLM call, with the defaults of the method that uses them. */
export function sampling(d: { temperature: number; top_p: number; max_tokens: number; presence_penalty?: number; stop?: string[] }, source: string) {
  return {
    temperature: z.number().min(0).max(2).default(d.temperature).describe(`Sampling temperature (default ${d.temperature}: ${source}).`),
    top_p: z.number().gt(0).lte(1).default(d.top_p).describe(`Nucleus sampling top_p (default ${d.top_p}: ${source}).`),
    max_tokens: posInt().default(d.max_tokens).describe(`Maximum tokens per completion (default ${d.max_tokens}: ${source}).`),
    presence_penalty: z
      .number()
      .min(-2)
      .max(2)
      .default(d.presence_penalty ?? 0)
      .describe(`Presence penalty (default ${d.presence_penalty ?? 0}${d.presence_penalty !== undefined ? `: ${source}` : ""}).`),
    stop: z
      .array(z.string().min(1))
      .max(4)
      .default(d.stop ?? [])
      .describe(`Stop sequences${d.stop ? ` (default ${JSON.stringify(d.stop)}: ${source})` : ""}.`),
  };
}

/**
 * Self-Instruct's instruction blocklist (yizhongw/self-instruct, bootstrap_instructions.py): matched as whole words,
 * case-insensitively.
 */
export const SELF_INSTRUCT_BLOCKLIST: readonly string[] = [
  "image",
  "images",
  "graph",
  "graphs",
  "picture",
  "pictures",
  "file",
  "files",
  "map",
  "maps",
  "draw",
  "plot",
  "go to",
];

/** Words Stanford Alpaca adds to Self-Instruct's blocklist. */
export const ALPACA_EXTRA_BLOCKLIST: readonly string[] = ["video", "audio", "music", "flowchart", "diagram"];

/** Self-Instruct's stop sequences for instruction generation. */
export const SELF_INSTRUCT_STOP: readonly string[] = ["\n\n", "\n16", "16.", "16 ."];

/**
 * Tulu 2's model/organization mention filter (allenai/open-instruct), verbatim: an example is dropped if any message
 * contains one of these, case-insensitively (substring match).
 */
export const TULU_MENTION_TERMS: readonly string[] = [
  "OpenAI",
  "Open AI",
  "ChatGPT",
  "Chat GPT",
  "GPT-3",
  "GPT3",
  "GPT 3",
  "GPT-4",
  "GPT4",
  "GPT 4",
  "GPT-3.5",
  "GPT3.5",
  "GPT 3.5",
  "BingChat",
  "Bing Chat",
  "BARD",
  "Palm",
  "Anthropic",
  "Claude",
  "LAION",
  "Open Assistant",
  "OpenAssistant",
];

/**
 * A stage kind or value function as declared: the same as the registry entry, except that the parameter schema is
 * built by a function. Zod schema construction costs tens of microseconds per schema, so `lazyEntries` builds each
 * schema on the first read of `params` (then keeps it): a command that touches ten stage kinds pays for ten.
 */
export type Declared<E extends { readonly params: z.ZodObject }> = Omit<E, "params"> & { readonly params: () => z.ZodObject };

export function lazyEntries<E extends { readonly params: z.ZodObject }>(decls: readonly Declared<E>[]): E[] {
  return decls.map((d) => {
    const { params, ...rest } = d;
    let built: z.ZodObject | undefined;
    return Object.defineProperty({ ...rest }, "params", { get: () => (built ??= params()), enumerable: true }) as unknown as E;
  });
}
