import { z } from "zod";
import { secretString } from "../schema.js";
import { doc, natInt, lazyEntries } from "../common.js";
import type { StageKind } from "../registry.js";

/**
 * Sources: stages with no inputs that read records. Their output is `Dataset<Json>` (open records); a declaration
 * that annotates a type (`dataset seeds: Instruction = jsonl("seeds.jsonl")`) gets that type, checked by the
 * checker. A single literal positional argument (`jsonl("x.jsonl")`) is the *first* parameter, so the primary
 * parameter comes first in each schema.
 */
const OUT = "Dataset<Json>";

/** The file a one-file source reads (an env() value is known only at run time). */
const pathInput = (p: Readonly<Record<string, unknown>>) => (typeof p["path"] === "string" ? [p["path"]] : []);

const path = (what: string) => z.string().min(1).describe(`Path of the ${what}, relative to the recipe file.`);
const limit = () => natInt().optional().describe("Read at most this many records (from the start); for smoke tests.");
const onError = () =>
  z
    .enum(["fail", "skip"])
    .default("fail")
    .describe("What a bad record does (a line that is not JSON, a row with the wrong number of fields, a record that lacks a field of the declared type): `fail` stops with an error naming it; `skip` drops it, counted as `dropped: <reason>`.");

export function sourceStages(): StageKind[] {
  return lazyEntries<StageKind>([
    {
      name: "jsonl",
      category: "source",
      localInputs: pathInput,
      doc: "Reads a JSON Lines file: one JSON object per line (blank lines skipped). Streams.",
      inputs: [],
      output: OUT,
      params: () => z.object({ path: path("JSON Lines file"), limit: limit(), on_error: onError() }),
      version: "2",
    },
    {
      name: "json",
      category: "source",
      localInputs: pathInput,
      doc: "Reads a JSON file holding an array of objects (or an object whose member `key` is that array).",
      inputs: [],
      output: OUT,
      params: () => z.object({
        path: path("JSON file"),
        key: z.string().min(1).optional().describe("Member of the top-level object that holds the array of records; default: the file is the array."),
        limit: limit(),
        on_error: onError(),
      }),
      version: "2",
    },
    {
      name: "csv",
      category: "source",
      localInputs: pathInput,
      doc: "Reads a delimited text file (RFC 4180 quoting). With a header row each record's fields are the column names; without one they are col0, col1, ... All values are strings.",
      inputs: [],
      output: OUT,
      params: () => z.object({
        path: path("CSV file"),
        delimiter: z.string().length(1).default(",").describe("Field delimiter: a single character."),
        header: z.boolean().default(true).describe("Whether the first row holds the column names."),
        quote: z.string().length(1).default('"').describe("Quote character."),
        limit: limit(),
        on_error: onError(),
      }),
      version: "2",
    },
    {
      name: "tsv",
      category: "source",
      localInputs: pathInput,
      doc: "Reads a tab-separated file: csv with delimiter \"\\t\".",
      inputs: [],
      output: OUT,
      params: () => z.object({
        path: path("TSV file"),
        header: z.boolean().default(true).describe("Whether the first row holds the column names."),
        limit: limit(),
        on_error: onError(),
      }),
      version: "2",
    },
    {
      name: "parquet",
      category: "source",
      localInputs: pathInput,
      doc: "Reads an Apache Parquet file, row group by row group.",
      inputs: [],
      output: OUT,
      params: () => z.object({
        path: path("Parquet file"),
        columns: z.array(z.string().min(1)).min(1).optional().describe("Columns to read; default all."),
        limit: limit(),
        on_error: onError(),
      }),
      version: "2",
    },
    {
      name: "shards",
      category: "source",
      localInputs: (p) => (typeof p["dir"] === "string" ? [p["dir"]] : []),
      doc: "Reads every file in a directory matching a glob pattern, in sorted path order (so the result is deterministic), as one dataset.",
      inputs: [],
      output: OUT,
      params: () => z.object({
        dir: z.string().min(1).describe("Directory holding the shards, relative to the recipe file."),
        pattern: z.string().min(1).default("*.jsonl").describe("Glob pattern of shard file names inside dir (`**` recurses)."),
        format: z.enum(["jsonl", "json", "csv", "tsv", "parquet"]).default("jsonl").describe("Format of every shard."),
        limit: limit(),
        on_error: onError(),
      }),
      version: "2",
    },
    {
      name: "hf_dataset",
      category: "source",
      doc: "Reads a dataset from the Hugging Face hub by repository id, configuration and split, at a revision: a commit sha written in the recipe, or the commit that `itp lock` recorded for a branch or tag (the same commit gives the same records). Downloaded files are cached by revision.",
      inputs: [],
      output: OUT,
      params: () => z.object({
        repo: z.string().regex(/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/, "a hub repository id such as allenai/tulu-v2-sft-mixture").describe("Hub repository id, `owner/name`."),
        config: z.string().min(1).optional().describe("Dataset configuration (subset) name; default the repository's default configuration."),
        split: z.string().min(1).default("train").describe("Split to read."),
        revision: z.string().min(1).optional().describe("Revision to read: a commit sha, or a branch or tag that `itp lock` resolves to a commit (default: the main branch, locked the same way). `itp check` warns about a read that is neither."),
        files: z.array(z.string().min(1)).min(1).optional().describe("Data files inside the repository to read (globs allowed), instead of the configuration's files; e.g. Open-Orca's GPT-4 completions file."),
        token: doc(secretString().optional(), "Access token for gated or private datasets; give it as secret(\"HF_TOKEN\")."),
        limit: limit(),
        on_error: onError(),
      }),
      version: "2",
    },
    {
      name: "records",
      category: "source",
      doc: "Inline records written in the recipe: `records([{ instruction: \"...\", output: \"...\" }])`. For small hand-written sets such as Tulu's hard-coded identity examples.",
      inputs: [],
      output: OUT,
      params: () => z.object({
        items: z.array(z.record(z.string(), z.unknown())).min(1).describe("The records, in order."),
      }),
      version: "2",
    },
  ]);
}
