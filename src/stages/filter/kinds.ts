import { z } from "zod";
import { field, ref } from "../schema.js";
import {
  dataInput,
  doc,
  lazyEntries,
  natInt,
  posInt,
  regexSource,
  SELF_INSTRUCT_BLOCKLIST,
  TULU_MENTION_TERMS,
} from "../common.js";
import type { StageKind } from "../registry.js";

/**
 * Filters: drop records by a rule. All keep the order of the records they keep, and all write the
 * count of dropped records, by reason, into the artifact's manifest.
 */
const data = () => dataInput("Dataset<T>", "Records to filter.");
const fieldParam = (what: string) => doc(field(), what);

export function filterStages(): StageKind[] {
  return lazyEntries<StageKind>([
    {
      name: "length",
      category: "filter",
      doc: "Keeps records whose field length is within [min, max], counted in characters, whitespace-separated words or tokens (tokens need a tokenizer). Self-Instruct keeps instructions of 4 to 150 words.",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z
        .object({
          field: fieldParam("Field whose length is measured (a string, or a message list: the contents are joined)."),
          unit: z.enum(["chars", "words", "tokens"]).default("words").describe("What is counted."),
          min: natInt().optional().describe("Smallest length kept (inclusive)."),
          max: natInt().optional().describe("Largest length kept (inclusive)."),
          tokenizer: z
            .string()
            .min(1)
            .optional()
            .describe("Tokenizer for unit tokens (required then): a directory holding tokenizer.json or the file, a hub model id in the local Hugging Face cache, or \"bytes\" (UTF-8 bytes). Counts the field's own tokens, without BOS/EOS."),
        })
        .refine((p) => p.min !== undefined || p.max !== undefined, { message: "give min, max or both", path: ["min"] })
        .refine((p) => p.min === undefined || p.max === undefined || p.min <= p.max, { message: "min is greater than max", path: ["max"] })
        .refine((p) => p.unit !== "tokens" || p.tokenizer !== undefined, { message: "unit tokens needs a tokenizer", path: ["tokenizer"] }),
      version: "1",
    },
    {
      name: "blocklist",
      category: "filter",
      doc: "Drops records whose field contains any of the words (as whole words, case-insensitively by default).",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z.object({
        field: fieldParam("Field to search."),
        words: z.array(z.string().min(1)).min(1).describe("Words or phrases that drop a record."),
        word_boundary: z.boolean().default(true).describe("Match whole words only (a phrase matches at word boundaries at both ends)."),
        case_insensitive: z.boolean().default(true).describe("Ignore case when matching."),
      }),
      version: "1",
    },
    {
      name: "regex",
      category: "filter",
      doc: "Keeps records whose field matches (or does not match) a regular expression (JavaScript syntax, Unicode mode).",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z.object({
        field: fieldParam("Field to test."),
        pattern: regexSource().describe("The regular expression; must compile."),
        keep: z.enum(["match", "nomatch"]).default("match").describe("Keep the records that match, or those that do not."),
        case_insensitive: z.boolean().default(false).describe("Match ignoring case."),
      }),
      version: "1",
    },
    {
      name: "self_instruct_filter",
      category: "filter",
      doc: "The Self-Instruct instruction rules (Stanford Alpaca uses the same with extra blocklist words): drop instructions with fewer than min_words or more than max_words words; containing a blocklist word (whole word, case-insensitive); starting with one of the blocked prefixes (\"Write a program\"); starting with punctuation; or starting with a non-ASCII character. ROUGE-L near-duplicates are a separate stage (rouge_dedup).",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z
        .object({
          field: doc(field().default("instruction"), "Field holding the instruction."),
          min_words: posInt().default(4).describe("Fewest words kept (default 4: Self-Instruct drops <= 3 words)."),
          max_words: posInt().default(150).describe("Most words kept (default 150: Self-Instruct drops > 150 words)."),
          words: z
            .array(z.string().min(1))
            .default([...SELF_INSTRUCT_BLOCKLIST])
            .describe("Blocklist (default Self-Instruct's: image, images, graph, graphs, picture, pictures, file, files, map, maps, draw, plot, go to)."),
          extra_words: z
            .array(z.string().min(1))
            .default([])
            .describe("Words added to the blocklist (Alpaca: video, audio, music, flowchart, diagram)."),
          blocked_prefixes: z.array(z.string().min(1)).default(["Write a program"]).describe("Instructions starting with one of these are dropped."),
          drop_punctuation_start: z.boolean().default(true).describe("Drop instructions that start with punctuation."),
          drop_non_ascii_start: z.boolean().default(true).describe("Drop instructions that start with a non-ASCII character."),
        })
        .refine((p) => p.min_words <= p.max_words, { message: "min_words is greater than max_words", path: ["max_words"] }),
      version: "1",
    },
    {
      name: "mention_filter",
      category: "filter",
      doc: "Drops examples any of whose messages (or instruction/input/output) contains one of the terms, case-insensitively as a substring; examples whose `source` is exempt are kept. Default terms: Tulu 2's list of model and lab names.",
      inputs: [dataInput("Dataset<T>", "Examples to filter: chats (message contents are searched) or instruction records (instruction, input and output).")],
      output: "Dataset<T>",
      params: () => z.object({
        terms: z.array(z.string().min(1)).min(1).default([...TULU_MENTION_TERMS]).describe(`Terms that drop an example (default Tulu 2's: ${TULU_MENTION_TERMS.join(", ")}).`),
        exempt_sources: z.array(z.string().min(1)).default([]).describe("Values of the `source` field whose examples are never dropped (Tulu 2: hard_coded)."),
        case_insensitive: z.boolean().default(true).describe("Ignore case when matching (Tulu 2 does)."),
      }),
      version: "1",
    },
    {
      name: "decontaminate",
      category: "filter",
      doc: "Drops records that share a word n-gram (default 13 words, after lowercasing and removing punctuation) with any record of the evaluation datasets.",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z.object({
        fields: z.array(field()).min(1).describe("Fields of the records whose text is checked."),
        against: z.array(ref("Dataset<Json>")).min(1).describe("Evaluation datasets to protect."),
        against_fields: z
          .array(z.string().min(1))
          .min(1)
          .optional()
          .describe("Fields of the evaluation records to index; default every string field (and message contents)."),
        ngram: posInt().default(13).describe("N-gram length in words (default 13)."),
      }),
      version: "1",
    },
  ]);
}
