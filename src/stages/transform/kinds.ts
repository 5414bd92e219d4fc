import { z } from "zod";
import { field } from "../schema.js";
import { dataInput, doc, fraction, natInt, posInt, seed, lazyEntries } from "../common.js";
import type { StageKind } from "../registry.js";

/**
 * Transforms: order- and shape-changing stages that need no model. All are deterministic given the seed.
 *
 * `take(data, n)` shares its name with the mix rule `take(n)`; the checker picks the mix rule where a
 * component rule is expected and this stage elsewhere.
 */
const data = (d = "Records.") => dataInput("Dataset<T>", d);

export function transformStages(): StageKind[] {
  return lazyEntries<StageKind>([
    {
      name: "take",
      category: "transform",
      doc: "Keeps the first n records, in order.",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z.object({ n: posInt().describe("Number of records to keep.") }),
      version: "1",
    },
    {
      name: "sample",
      category: "transform",
      doc: "A seeded random sample without replacement: shuffles with the seed and keeps the first n (or the first fraction) of the records, as open-instruct does. Give exactly one of n and fraction.",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z
        .object({
          n: posInt().optional().describe("Number of records to keep (all of them if the dataset is smaller)."),
          fraction: fraction().optional().describe("Share of the records to keep, in (0, 1]; the count is rounded down."),
          seed: seed(),
        })
        .refine((p) => (p.n === undefined) !== (p.fraction === undefined), { message: "give exactly one of n and fraction", path: ["n"] }),
      version: "1",
    },
    {
      name: "shuffle",
      category: "transform",
      doc: "A seeded random permutation of the records.",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z.object({ seed: seed() }),
      version: "1",
    },
    {
      name: "concat",
      category: "transform",
      doc: "The records of every input, input after input.",
      inputs: [{ name: "data", type: "Dataset<T>", doc: "Datasets to concatenate, in order.", variadic: true }],
      output: "Dataset<T>",
      params: () => z.object({}),
      version: "1",
    },
    {
      name: "split",
      category: "transform",
      doc: "A seeded train/validation split: the records are shuffled with the seed, the first `validation` share is the validation part; `part` says which part this stage yields (two stages with the same seed and share are complementary).",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z.object({
        validation: z.number().gt(0).lt(1).describe("Share of the records in the validation part, in (0, 1)."),
        part: z.enum(["train", "validation"]).default("train").describe("Which part to yield."),
        seed: seed(),
      }),
      version: "1",
    },
    {
      name: "where",
      category: "transform",
      doc: "Keeps the records for which a predicate holds. The predicate is `field op literal` conditions joined by `and`, op one of == != < <= > >= contains; e.g. `lang == \"en\" and turns <= 4`.",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z.object({ expr: z.string().min(1).describe("The predicate, e.g. `lang == \"en\"`.") }),
      version: "1",
    },
    {
      name: "rename",
      category: "transform",
      doc: "Renames record fields: `fields = { old_name: new_name }`. Other fields are kept. The output's record type is open (annotate the declaration to state it).",
      inputs: [data()],
      output: "Dataset<Json>",
      params: () => z.object({
        fields: z
          .record(z.string().min(1), z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a field name"))
          .refine((r) => Object.keys(r).length > 0, "rename at least one field")
          .describe("Mapping from existing field names to new names."),
      }),
      version: "1",
    },
    {
      name: "select",
      category: "transform",
      doc: "Keeps only the given fields of each record (in the given order).",
      inputs: [data()],
      output: "Dataset<Json>",
      params: () => z.object({ fields: z.array(field()).min(1).describe("Fields to keep.") }),
      version: "1",
    },
    {
      name: "set_fields",
      category: "transform",
      doc: "Sets fields to constant values on every record (e.g. `values = { source: \"hard_coded\" }` to tag a component of a mixture).",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z.object({
        values: z
          .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a field name"), z.unknown())
          .refine((r) => Object.keys(r).length > 0, "set at least one field")
          .describe("Field names and the values to give them."),
      }),
      addsFields: (p) => Object.fromEntries(Object.entries((p["values"] ?? {}) as Record<string, unknown>).map(([k, v]) => [k, jsonValueType(v)])),
      version: "1",
    },
    {
      name: "split_conversations",
      category: "transform",
      doc: "Splits chats longer than max_tokens into consecutive blocks of whole exchanges, each within max_tokens, as FastChat's split_long_conversation does and Tulu runs it on ShareGPT (4096 tokens in Tulu 2, 2048 in Tulu v1): each message costs its tokens (with BOS) plus message_overhead, exchanges are packed greedily in order, a trailing unanswered user message is dropped, and block ids are `{id}_{k}`. A leading system message heads every block. Chats whose roles do not alternate user/assistant are dropped.",
      inputs: [dataInput("Dataset<Chat>", "Chats to split.")],
      output: "Dataset<Chat>",
      params: () => z.object({
        max_tokens: posInt().default(4096).describe("Token budget per block (default 4096: Tulu 2)."),
        tokenizer: z
          .string()
          .min(1)
          .describe("Tokenizer that counts tokens (the model being trained's): a directory holding tokenizer.json or the file, a hub model id in the local Hugging Face cache, or \"bytes\" (UTF-8 bytes)."),
        message_overhead: natInt().default(6).describe("Tokens added to each message for its role markup (default 6: FastChat's)."),
        long_exchanges: z
          .enum(["drop", "keep"])
          .default("drop")
          .describe("An exchange over max_tokens on its own: dropped (default: open-instruct's fix, as Tulu ran it) or kept as a block of its own (FastChat's original)."),
      }),
      version: "2",
    },
    {
      name: "cap",
      category: "transform",
      doc: "Per-task example cap (Flan): keeps at most per_task records for each value of `field`, a seeded sample where a task has more.",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z.object({
        per_task: posInt().describe("Maximum records per task (Flan 2022: FLAN 30,000; T0 20,000; CoT 100,000; NIV2 5,000; Dialog 200,000)."),
        field: doc(field().default("task"), "Field that names the task."),
        seed: seed(),
      }),
      version: "1",
    },
  ]);
}

/** The type of a constant JSON value, as `set_fields` gives it to a field. */
function jsonValueType(v: unknown): string {
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string")) return "list<string>";
  return "any";
}
