import type { Effect } from "effect";
import type { IrStage, Json } from "./ir.js";
import type { Readable } from "node:stream";
import type { RecordValue } from "./records.js";

/**
 * What a stage implementation sees. Inputs are artifacts of upstream stages, read as streams of records (datasets)
 * or as one JSON value (models, templates). Parameters are resolved: env() values substituted, secret() values
 * available here but never in cache keys, manifests or logs.
 */
export interface StageContext {
  readonly stage: IrStage;
  readonly params: Readonly<Record<string, Json>>;
  /** Inputs by role (`data`, `inputs[1]`, `component:flan`, `param:model`). */
  readonly inputs: ReadonlyMap<string, InputArtifact>;
  /** The folder of the recipe file: relative paths in parameters are resolved from it. */
  readonly baseDir: string;
  /**
   * Report progress: records (or steps) done so far, and the total when known. A reader also gives the bytes of
   * its file read so far and the file's size, so its progress is known before its record count is; a stage may add
   * a short status for the display (`loss 2.31`).
   */
  progress(done: number, total?: number, bytes?: { readonly done: number; readonly total: number }, detail?: string): void;
  /** An event of this stage for the run log (`itp run`'s runs/<id>.jsonl), e.g. a training job's metrics line. */
  log(type: string, data: Record<string, unknown>): void;
  /** A summary kept in the artifact's manifest (`summary`), shown by `itp show` (a training stage's loss curve). */
  summary(value: Record<string, unknown>): void;
  /** Count something for the manifest (`dropped: too_short`, `kept`, per-component counts). */
  count(name: string, n?: number): void;
  /**
   * Record that a filter dropped this record and why: counted as `dropped: <reason>` in the manifest, and kept
   * (with the reason) in a side artifact that `itp show <file> <stage> --dropped` lists. `detail` is per-record
   * context kept with it in that artifact but not counted (`of record 17` for a near duplicate), so the reason stays
   * one manifest count however many records it drops. `line`, when given, is the record's JSON line as read (see
   * {@link RecordLines}), kept instead of serializing the record again.
   */
  drop(record: RecordValue, reason: string, detail?: string, line?: Buffer): void;
  /** `drop` for a record known only by its JSON line (no line break), as the parallel reader sees it. */
  dropLine(line: Buffer, reason: string, detail?: string): void;
  /**
   * `dropLine` for line `index` (from 0) of the data input, dropped as it is: where that input is a stored file, the
   * log keeps the line's place, not its bytes (`itp show --dropped` reads them from the input), so a filter that
   * drops most of a large dataset does not write it out again. `line` is read during the call only (its reader may
   * reuse the memory).
   */
  dropInputLine(index: number, line: Buffer, reason: string): void;
  /**
   * Say in the run's log how the stage does its work (`read by 4 worker threads`): an event `stage_note`, kept out
   * of the artifact and its manifest, so runs that differ only in how they worked store the same objects.
   */
  note(message: string): void;
  /** The store's cache of model answers: a stage that calls models asks it before sending a request. */
  requests(): AnswerCache;
  /** Artifacts the stage keeps in the store under keys of its own (a training stage's token artifact). */
  store(): KeyedArtifacts;
  /** Set when the run is interrupted: long loops check it. */
  readonly signal: AbortSignal;
  /**
   * A folder of the store for this stage's cache key that outlives an attempt (a training job's checkpoints): a
   * killed or interrupted attempt leaves it, the next run or retry finds it; it is removed once the stage's artifact
   * is committed (and by `itp cache gc` when that entry exists).
   */
  workDir(): Promise<string>;
  /** The cache key of this stage (names jobs and files). */
  readonly key: string;
  /**
   * Stages of this run that read this stage's output and are not known to be cached: a reader may do part of their
   * work while it has the records in hand (see src/formats/line-verdicts.ts).
   */
  readonly downstream?: readonly IrStage[];
  /** The files of the stage's cache key with their digests (paths as the parameters give them). */
  readonly files?: readonly { readonly path: string; readonly digest: string }[];
  /** The digest of a file (an absolute path) as the store knows it now: read again only if its size, time or inode changed. */
  sourceDigest?(path: string): Promise<string>;
}

/** The store's cache of model answers, as a stage sees it (the runtime's RequestCache implements it). */
export interface AnswerCache {
  /** The answer cached for a request key, or undefined. */
  get<T>(key: string): T | undefined;
  has(key: string): boolean;
  put(key: string, answer: unknown): void;
}

export interface InputArtifact {
  readonly stage: string;
  readonly digest: string;
  readonly records: number | null;
  /** The stored file (JSON Lines for datasets, JSON otherwise), or the folder of a tree artifact (a trained model). */
  readonly path: string;
  /** Set for a folder artifact (a trained model): `path` is the folder; `read` and `json` do not apply. */
  readonly tree?: true;
  read(): RecordLines;
  json(): Promise<unknown>;
  /** The stored bytes, as a stream (for copying an artifact out, as `export` does). */
  bytes(): Readable;
}

/**
 * Records read from JSON Lines. While a record is handled, `line` holds the bytes of its line (no line break): a
 * stage that passes the record on unchanged writes them with `OutputSink.writeLine` rather than serializing it.
 */
export interface RecordLines extends AsyncIterable<RecordValue> {
  readonly line: Buffer;
}

/** Where a stage writes its output: records for a dataset, one value for a model or a template. */
export interface OutputSink {
  write(record: RecordValue): Promise<void>;
  /** Write a record as the bytes of its JSON line (from `RecordLines.line`), without a line break. */
  writeLine(line: Buffer): Promise<void>;
  /**
   * Write bytes that are already JSON Lines (a copy of an input artifact, chunk by chunk): `records` is the number of
   * lines these bytes end, so a chunk may stop inside a line that the next one finishes.
   */
  writeBytes(data: Buffer, records: number): Promise<void>;
  writeValue(value: unknown): Promise<void>;
  /**
   * The output is a folder (a model: config, weights, tokenizer): a fresh empty folder under the store's tmp/ that
   * the stage fills; when the stage succeeds it is published whole, named by the digest of its listing.
   */
  treeDir(): Promise<string>;
  /**
   * The whole output is this file's bytes, `records` lines, whose sha256 is `digest` (known already, e.g. for the
   * cache key): copied by the file system and not hashed again. Only on an output nothing was written to yet.
   */
  copyFile?(path: string, digest: string, records: number): Promise<void>;
  /**
   * The whole output is this input's bytes as they are stored (an `export`'s copy): the output is that very stored
   * object, nothing written or hashed. False where it cannot be (the input is not a file of the store); then the
   * stage writes its output as usual. Only on an output nothing was written to yet.
   */
  sameAs?(input: InputArtifact): Promise<boolean>;
}

export interface Resources {
  /** CPU slots (default 1). */
  readonly cpu?: number;
  readonly gpu?: number;
  /** Named pools this stage draws one permit from (one per model endpoint, for instance). */
  readonly pools?: readonly string[];
}

/**
 * A stage implementation: an Effect that reads the inputs and writes the output. The version that enters cache
 * keys is the registry entry's `version`.
 */
export interface StageImpl {
  run(ctx: StageContext, out: OutputSink): Effect.Effect<void, Error>;
  resources?(params: Readonly<Record<string, Json>>): Resources;
  /**
   * Files the stage reads besides its inputs (source files): their digests enter the cache key, so editing a data
   * file reruns the stage. Paths relative to the recipe's folder.
   */
  files?(params: Readonly<Record<string, Json>>): string[];
  /** Called when the stage's artifact is reused from the cache (an export re-materializes a deleted file). */
  onCached?(ctx: StageContext, artifact: InputArtifact): Effect.Effect<void, Error>;
}

/**
 * What a keyed artifact records of itself (the runtime keeps it as the entry's manifest): the stage and recipe that
 * made it, what it is, the named components of its key, and its data.
 */
export interface KeyedEntry {
  readonly recipe: string;
  readonly stage: string;
  /** What the artifact is (`tokens:sft`). */
  readonly kind: string;
  readonly impl_version: string;
  readonly components: Readonly<Record<string, string>>;
  readonly params: unknown;
  readonly inputs: readonly { readonly role: string; readonly stage: string; readonly digest: string }[];
  /** Files it was made from, with their digests (the tokenizer a token artifact was made with). */
  readonly files: readonly { readonly path: string; readonly digest: string }[];
  readonly started_at: string;
  /** The data file: sha256 of its bytes, size, records (rows) and format. */
  readonly output: { readonly digest: string; readonly bytes: number; readonly records: number | null; readonly format: string };
  readonly counts: Readonly<Record<string, number>>;
}

/** An artifact found or stored under a key of the stage's own: its data file (read-only) and its entry. */
export interface KeyedArtifact {
  readonly key: string;
  readonly path: string;
  readonly entry: KeyedEntry;
}

/**
 * Artifacts a stage keeps in the store under keys it chooses (`cacheKey` of the components that shape them), beside
 * the stages' own artifacts: a training stage's token artifact, which a change of `lr` finds again. The runtime's
 * store implements it; a stage never sees more of the store than this.
 */
export interface KeyedArtifacts {
  /**
   * The artifact under `key` when it is whole (entry complete, data present with its digest); undefined otherwise.
   * A damaged one is set aside, so that the caller makes it again.
   */
  get(key: string): Promise<KeyedArtifact | undefined>;
  /** A fresh path in the store's work area for building the data file (the caller removes what it leaves there). */
  tmpPath(ext: string): Promise<string>;
  /**
   * Store `file` (moved, not copied; its digest is `entry.output.digest`) under `key`, atomically: data and entry are
   * made durable, then the entry appears whole; a crash before leaves no entry.
   */
  put(key: string, file: string, entry: KeyedEntry): Promise<KeyedArtifact>;
}
