import { z } from "zod";
import { field, ref } from "../schema.js";
import { dataInput, doc, lazyEntries, posInt, seed, unit } from "../common.js";
import type { StageKind } from "../registry.js";

/**
 * Deduplication: drop records equal or similar to an earlier one. All keep the order of the records they keep, and
 * all write the count of dropped records, by reason, into the artifact's manifest.
 */
const data = () => dataInput("Dataset<T>", "Records to filter.");
const fieldParam = (what: string) => doc(field(), what);

export function dedupStages(): StageKind[] {
  return lazyEntries<StageKind>([
    {
      name: "exact_dedup",
      category: "dedup",
      doc: "Drops records equal to an earlier record on the given fields (the first occurrence is kept).",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z.object({
        fields: z.array(field()).min(1).optional().describe("Fields compared; default the whole record."),
        normalize: z.boolean().default(true).describe("Compare after Unicode NFKC, lowercasing and collapsing whitespace."),
      }),
      version: "1",
    },
    {
      name: "minhash_dedup",
      category: "dedup",
      doc: "Near-duplicate removal with MinHash LSH over word shingles (words lowercased, runs of letters and digits): records whose bands agree are candidates, a candidate pair whose estimated Jaccard similarity (share of equal signature values) is at least threshold is a duplicate, duplicates are joined into clusters, and each cluster keeps its first record. Counts the clusters and the largest cluster's size; each dropped record names the record kept for its cluster. Memory: 4 x permutations bytes per record.",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z
        .object({
          field: fieldParam("Field whose text is compared."),
          shingle: posInt().default(5).describe("Shingle length in words."),
          permutations: posInt().default(128).describe("Number of hash permutations (signature length)."),
          bands: posInt().default(16).describe("LSH bands; permutations must be divisible by bands."),
          threshold: unit().default(0.8).describe("Estimated Jaccard similarity at or above which a candidate pair is a duplicate (with the default 16 bands of 8 rows, pairs at 0.8 become candidates 95% of the time)."),
          seed: seed("Seed of the hash permutations."),
        })
        .refine((p) => p.permutations % p.bands === 0, { message: "permutations must be divisible by bands", path: ["bands"] }),
      version: "2",
    },
    {
      name: "rouge_dedup",
      category: "dedup",
      doc: "Self-Instruct's similarity filter: a record is dropped when the ROUGE-L F1 of its field against any kept record (or any record of `against`, e.g. the seed tasks) is above max.",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z.object({
        field: fieldParam("Field compared (Self-Instruct and Alpaca: instruction)."),
        max: unit().default(0.7).describe("Highest ROUGE-L F1 kept (default 0.7: Self-Instruct, Alpaca)."),
        against: z.array(ref("Dataset<T>")).optional().describe("Further datasets that count as already kept (e.g. the seed tasks); compared on the same field."),
      }),
      version: "1",
    },
  ]);
}
