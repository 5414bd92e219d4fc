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
      doc: "Near-duplicate removal with MinHash LSH over word shingles (words lowercased, runs of letters and digits): records whose bands agree are candidates, a candidate pair whose estimated Jaccard similarity (share of equal signature values) is at least threshold is a duplicate, and each cluster of duplicates keeps its first record. By default the bands and rows are chosen from the threshold and the permutations as datasketch's MinHashLSH chooses them (least weighted area of missed similar pairs and compared dissimilar pairs under the S-curve; e.g. 25 bands of 5 rows at 0.5 with 128 permutations, 9 of 13 at 0.8); `itp show` lists the banding used. Clusters by union-find (a chain of records, each like the next, is one cluster) or, with clustering = \"kept_record\", by comparing each record with the records kept so far only (each dropped record is itself similar to the record named for it). Counts the clusters and the largest cluster's size; each dropped record names the record kept for its cluster. Memory: 4 x permutations bytes per record (kept_record: 16 x bands more).",
      inputs: [data()],
      output: "Dataset<T>",
      params: () => z
        .object({
          field: fieldParam("Field whose text is compared."),
          shingle: posInt().default(5).describe("Shingle length in words."),
          permutations: posInt().default(128).describe("Number of hash permutations (signature length)."),
          bands: posInt().optional().describe("LSH bands, overriding the choice from the threshold; rows default to permutations / bands (rounded down: values past bands x rows are not banded, but still count in the similarity)."),
          rows: posInt().optional().describe("Signature values per band, overriding the choice from the threshold (with bands: bands x rows at most permutations)."),
          threshold: unit().default(0.8).describe("Estimated Jaccard similarity at or above which a candidate pair is a duplicate."),
          clustering: z.enum(["union_find", "kept_record"]).default("union_find").describe("union_find: duplicates of duplicates join one cluster; kept_record: a record is dropped only as a duplicate of a kept record (the most similar one)."),
          seed: seed("Seed of the hash permutations."),
        })
        .refine((p) => (p.bands ?? 1) * (p.rows ?? 1) <= p.permutations, { message: "bands x rows must be at most permutations", path: ["bands"] }),
      version: "3",
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
