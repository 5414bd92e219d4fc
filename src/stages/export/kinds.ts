import { z } from "zod";
import { dataInput, lazyEntries } from "../common.js";
import type { StageKind } from "../registry.js";

/** Export: writes a dataset to a file outside the artifact store (atomically: a temporary file, then a rename). */
export function exportStages(): StageKind[] {
  return lazyEntries<StageKind>([
    {
      name: "export",
      category: "export",
      doc: "Writes the dataset to a file (atomically). The output is the same dataset, so an export can sit in the middle of a pipeline.",
      inputs: [dataInput("Dataset<T>", "Records to write.")],
      output: "Dataset<T>",
      params: () => z.object({
        path: z.string().min(1).describe("Destination file, relative to the recipe file."),
        format: z.enum(["jsonl", "parquet"]).default("jsonl").describe("File format."),
        overwrite: z.boolean().default(true).describe("Replace an existing file (otherwise an existing file is an error)."),
      }),
      version: "1",
    },
  ]);
}
