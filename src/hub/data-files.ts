import { posix } from "node:path";
import { didYouMean } from "../diagnostics/suggest.js";
import { UserError } from "../core/errors.js";
import { pickConfig, type CardConfig } from "./card.js";
import { hasMagic, matchGlob, requested } from "./glob.js";
import type { TreeFile } from "./tree.js";

/**
 * Which files of a repository hold a configuration's split, resolved the way the `datasets` library does it
 * (`data_files.py`, `load.py`):
 * 1. explicit `files` (paths or globs, in the order given) win;
 * 2. else the dataset card's `configs:` (`data_dir`, `data_files` per split);
 * 3. else default patterns inside the configuration's folder: first `data/{split}-00000-of-00001*.*` shards, then a
 *    split keyword as a folder name (`train/`, `dev/`), then in a file name (`my_train.csv`, `test-1.jsonl`), and
 *    last every data file as the train split.
 * Within a split, files come pattern by pattern, each pattern's matches in path order, so the records of a
 * revision always come in the same order.
 */

export type DataFormat = "parquet" | "jsonl" | "json" | "csv" | "tsv" | "txt";

export interface DataFile {
  readonly entry: TreeFile;
  readonly format: DataFormat;
}

export interface Selection {
  readonly files: readonly DataFile[];
  /** How the files were chosen, for messages: `files`, `card configuration default`, `default patterns`. */
  readonly how: string;
}

export interface SelectOptions {
  readonly split: string;
  readonly config?: string | undefined;
  readonly files?: readonly string[] | undefined;
  /** The card's configurations; undefined when it has none (or the repository has no card). */
  readonly card?: readonly CardConfig[] | undefined;
}

const KEYWORDS: Record<string, string[]> = {
  train: ["train", "training"],
  validation: ["validation", "valid", "dev", "val"],
  test: ["test", "testing", "eval", "evaluation"],
};
const SEP = "[-._ 0-9]";
const IN_DIR_NAME = ["**/{k}/**", `**/{k}${SEP}*/**`, `**/*${SEP}{k}/**`, `**/*${SEP}{k}${SEP}*/**`];
const IN_FILE_NAME = [`**/{k}${SEP}*`, `**/*${SEP}{k}${SEP}*`];
const SHARDED = /^data\/([^/]+?)-[0-9]{5}-of-[0-9]{5}[^/]*\.[^/]*$/;
const IGNORED = new Set(["README.md", "config.json", "dataset_info.json", "dataset_infos.json", "dummy_data.zip", "dataset_dict.json"]);
const COMPRESSED = new Set(["gz", "zst", "bz2", "xz", "lz4", "zip", "tar", "7z"]);
/** Extensions that mark a data file for the default patterns (readable or not: an unreadable one is reported). */
const DATA_EXTS = new Set(["parquet", "arrow", "jsonl", "ndjson", "json", "csv", "tsv", "txt"]);

/** The format of a file from its name; `problem` when itp cannot read it. */
export function fileFormat(path: string): { format: DataFormat } | { problem: string } {
  const parts = posix.basename(path).toLowerCase().split(".").slice(1);
  const last = parts.at(-1);
  if (last === undefined) return { problem: "it has no file extension" };
  if (COMPRESSED.has(last)) return { problem: `it is compressed (.${last})` };
  if (last === "ndjson") return { format: "jsonl" };
  if (last === "parquet" || last === "jsonl" || last === "json" || last === "csv" || last === "tsv" || last === "txt") return { format: last };
  return { problem: last === "arrow" ? "Arrow files are not read by itp" : `.${last} is not a data format itp reads (parquet, jsonl, json, csv, tsv, txt)` };
}

/** The `datasets` builder a format belongs to: json reads .json and .jsonl, csv reads .csv and .tsv. */
const family = (f: DataFormat) => (f === "jsonl" ? "json" : f === "tsv" ? "csv" : f);
/** Between as many files of two kinds, the typed, faster one wins. */
const PREFERRED = ["parquet", "json", "csv", "txt"];

export function selectDataFiles(tree: readonly TreeFile[], o: SelectOptions, label: string): Selection {
  const byPath = new Map(tree.map((f) => [f.path, f]));
  const paths = tree.map((f) => f.path);

  if (o.files) {
    const chosen = new Set<string>();
    for (const p of o.files) {
      const pat = p.replace(/^\.\//, "");
      const hits = hasMagic(pat) ? matchGlob(paths, pat) : byPath.has(pat) ? [pat] : [];
      if (hits.length === 0) {
        const near = didYouMean(pat, paths);
        throw new UserError(
          `${label}: \`files\` entry "${p}" matches no file at this revision`,
          near ? `did you mean "${near}"?` : `the revision has ${paths.length} file(s)${paths.length ? `, e.g. ${paths.slice(0, 5).map((x) => `"${x}"`).join(", ")}` : ""}`,
        );
      }
      for (const h of hits) chosen.add(h);
    }
    // Files named one by one are read whatever their kind; each must be readable.
    return { files: [...chosen].map((p) => readable(byPath.get(p)!, label, "it is named in `files`")), how: "`files`" };
  }

  let base = "";
  let patterns: readonly string[] | undefined;
  let how = "default patterns";
  if (o.card) {
    const cfg = pickConfig(o.card, o.config, label);
    base = cfg.dataDir ?? "";
    how = `the dataset card's configuration \`${cfg.name}\``;
    if (cfg.dataFiles) {
      patterns = cfg.dataFiles.get(o.split);
      if (!patterns) throw noSplit(label, o.split, [...cfg.dataFiles.keys()], how);
    }
  } else if (o.config !== undefined && o.config !== "default") {
    // No card configurations: a configuration can only be a top-level folder (as in the `refs/convert/parquet` branch).
    if (!paths.some((p) => p.startsWith(`${o.config}/`))) {
      const dirs = [...new Set(paths.filter((p) => p.includes("/")).map((p) => p.slice(0, p.indexOf("/"))))];
      const near = didYouMean(o.config, dirs);
      throw new UserError(
        `${label}: no configuration \`${o.config}\`: the dataset card declares no configurations and the repository has no folder \`${o.config}/\``,
        near ? `did you mean \`${near}\`?` : "leave `config` out to read the default configuration, or name the files with `files = [...]`",
      );
    }
    base = o.config;
    how = `folder \`${o.config}/\``;
  }

  const inBase = base === "" ? paths : paths.filter((p) => p.startsWith(`${base}/`)).map((p) => p.slice(base.length + 1));
  const full = (rel: string) => (base === "" ? rel : `${base}/${rel}`);
  let rel: string[];
  if (patterns) {
    // The card's metadata files are never data unless a pattern names one by its name.
    rel = union(patterns.map((p) => p.replace(/^\.\//, "")).map((p) => matchGlob(inBase, p).filter((h) => !IGNORED.has(posix.basename(h)) || posix.basename(p) === posix.basename(h))));
    if (rel.length === 0)
      throw new UserError(`${label}: split \`${o.split}\` of ${how}: its patterns ${patterns.map((p) => `"${p}"`).join(", ")} match no file`, "name the files with `files = [...]`");
  } else {
    // Hidden files and `__x` folders are never data by default (the same rule as `**` in a pattern).
    const candidates = inBase.filter((p) => !IGNORED.has(posix.basename(p)) && posix.basename(p).toLowerCase().split(".").slice(1).some((x) => DATA_EXTS.has(x)) && requested(p, "**"));
    rel = defaultSplitFiles(candidates, o.split, label, how);
  }

  // Like `datasets`, read the most common kind of file and leave the others (a stray .json beside parquet shards).
  const typed = rel.map((p) => ({ p, f: fileFormat(full(p)) }));
  const counts = new Map<string, number>();
  for (const t of typed) if ("format" in t.f) counts.set(family(t.f.format), (counts.get(family(t.f.format)) ?? 0) + 1);
  if (counts.size === 0) {
    const first = typed[0]!;
    throw unreadable(full(first.p), (first.f as { problem: string }).problem, label, `it holds split \`${o.split}\` (${how})`);
  }
  const top = [...counts].sort((a, b) => b[1] - a[1] || PREFERRED.indexOf(a[0]) - PREFERRED.indexOf(b[0]))[0]![0];
  const files = typed.filter((t) => "format" in t.f && family(t.f.format) === top).map((t) => ({ entry: byPath.get(full(t.p))!, format: (t.f as { format: DataFormat }).format }));
  return { files, how };
}

function readable(entry: TreeFile, label: string, why: string): DataFile {
  const f = fileFormat(entry.path);
  if ("problem" in f) throw unreadable(entry.path, f.problem, label, why);
  return { entry, format: f.format };
}

const unreadable = (path: string, problem: string, label: string, why: string) =>
  new UserError(
    `${label}: cannot read ${path}: ${problem}`,
    `${why}; pick files in parquet, jsonl, json, csv, tsv or txt (the \`refs/convert/parquet\` revision holds a Parquet copy of most datasets)`,
  );

function noSplit(label: string, split: string, splits: string[], how: string): UserError {
  const near = didYouMean(split, splits);
  return new UserError(`${label}: no split \`${split}\` in ${how}; it has ${splits.map((s) => `\`${s}\``).join(", ")}`, near ? `did you mean \`${near}\`?` : "set `split` to one of those");
}

/** Lists joined in order, each path once (where it first appears). */
const union = (lists: string[][]) => [...new Set(lists.flat())];

const rank = (split: string) => (split in KEYWORDS ? Object.keys(KEYWORDS).indexOf(split) : 3);

/** The files of `split` by the default patterns, over candidate paths (sorted, relative to the configuration's folder). */
function defaultSplitFiles(candidates: string[], split: string, label: string, how: string): string[] {
  if (candidates.length === 0)
    throw new UserError(`${label}: no data files found (${how})`, "the repository may use a loading script or an unusual layout: name the files with `files = [...]`");
  const sharded = candidates.map((p) => SHARDED.exec(p)).filter((m) => m !== null);
  if (sharded.length > 0) {
    // Named as `datasets` orders them: train, validation, test, then the others alphabetically.
    const splits = [...new Set(sharded.map((m) => m[1]!))].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
    if (!splits.includes(split)) throw noSplit(label, split, splits, how);
    return sharded.filter((m) => m[1] === split).map((m) => m[0]);
  }
  for (const shapes of [IN_DIR_NAME, IN_FILE_NAME]) {
    const bySplit = new Map<string, string[]>();
    for (const [s, words] of Object.entries(KEYWORDS)) {
      const pats = words.flatMap((k) => shapes.map((sh) => sh.replaceAll("{k}", k)));
      const hits = union(pats.map((p) => matchGlob(candidates, p)));
      if (hits.length > 0) bySplit.set(s, hits);
    }
    if (bySplit.size > 0) {
      const hits = bySplit.get(split);
      if (!hits) throw noSplit(label, split, [...bySplit.keys()], how);
      return hits;
    }
  }
  // No split marked anywhere: every data file is the train split.
  if (split !== "train") throw noSplit(label, split, ["train"], how);
  return candidates;
}
