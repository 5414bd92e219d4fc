import { Deferred, Duration, Effect, Exit, Schedule } from "effect";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import type { IrProgram, IrStage, Json } from "../core/ir.js";
import type { Registry } from "../stages/registry.js";
import { runJob, type Executor } from "./executor.js";
import { runEnd } from "../core/run-end.js";
import { Slots } from "./slots.js";
import type { InputArtifact, OutputSink, StageContext, StageImpl } from "../core/stage.js";
import { TransientError, UserError } from "../core/errors.js";
import { resolveParams } from "../core/params.js";
import { explainMiss, keyStage, lastArtifact, type KeyedStage } from "./keys.js";
import { JsonlWriter, readJsonl, readJsonlBuffer, RecordError, type RecordValue } from "../core/records.js";
import { PACK_LIMIT, type Manifest, type Store } from "./store.js";
import { keyedArtifacts } from "./keyed-artifacts.js";

export type Outcome =
  | { readonly status: "ran"; readonly manifest: Manifest; readonly reasons: readonly string[] }
  | { readonly status: "cached"; readonly manifest: Manifest }
  | { readonly status: "failed"; readonly error: string; readonly hint?: string }
  | { readonly status: "skipped"; readonly because: string }
  | { readonly status: "excluded" };

/** What the user sees while a run goes on (a terminal display, plain lines, or nothing in tests). */
export interface Reporter {
  start(stages: readonly IrStage[]): void;
  stageStarted(id: string, attempt: number): void;
  /** Records done, the total when known, for a reader the bytes of its file read so far, and a stage's status. */
  progress(id: string, done: number, total?: number, bytes?: { readonly done: number; readonly total: number }, detail?: string): void;
  stageFinished(id: string, outcome: Outcome): void;
  retrying(id: string, attempt: number, error: string): void;
  end(summary: RunSummary): void;
}

export interface RunSummary {
  readonly ran: number;
  readonly cached: number;
  readonly failed: number;
  readonly skipped: number;
  readonly seconds: number;
  readonly interrupted: boolean;
  readonly outcomes: ReadonlyMap<string, Outcome>;
}

export interface RunOptions {
  readonly registry: Registry;
  readonly impls: ReadonlyMap<string, StageImpl>;
  readonly store: Store;
  readonly executor: Executor;
  /** The recipe, as shown to users and used to name refs (`pipelines/quickstart.itp`). */
  readonly recipe: string;
  /** Relative paths in parameters are resolved from here (the recipe's folder). */
  readonly baseDir: string;
  readonly concurrency: number;
  /** GPU slots, or how to find them: asked only when a stage needs GPUs (asking nvidia-smi costs a process). */
  readonly gpus: number | (() => number);
  readonly force: ReadonlySet<string>;
  /** Run only these stages (and what they need). */
  readonly only?: ReadonlySet<string>;
  readonly reporter: Reporter;
  readonly log?: (type: string, data: Record<string, unknown>) => void;
  /** Resolves when the run should stop (Ctrl-C): stages in flight are interrupted, the summary still comes. */
  readonly stop?: Promise<void>;
  /** Faults to inject, for testing the failure paths with real runs (see `parseFaults`). */
  readonly faults?: ReadonlyMap<string, Fault>;
}

export interface Fault {
  readonly transient: boolean;
  /** How many attempts fail (transient faults); undefined: every attempt. */
  readonly times?: number;
}

/**
 * `ITP_FAULTS="stage=transient:2,other=fail"`: the first 2 attempts of `stage` fail with a transient error, every
 * attempt of `other` fails permanently. A test aid: the failure paths run exactly as they would for real faults.
 */
export function parseFaults(spec: string | undefined): Map<string, Fault> {
  const out = new Map<string, Fault>();
  for (const part of (spec ?? "").split(",").filter(Boolean)) {
    const m = /^([^=]+)=(transient(?::(\d+))?|fail)$/.exec(part.trim());
    if (!m) throw new Error(`ITP_FAULTS: cannot read \`${part}\` (expected stage=transient:N or stage=fail)`);
    out.set(m[1]!, m[2] === "fail" ? { transient: false } : { transient: true, ...(m[3] ? { times: Number(m[3]) } : {}) });
  }
  return out;
}

type Result = { readonly ok: true; readonly artifact: InputArtifact } | { readonly ok: false; readonly root: string };

/** The stages a run needs: all of them, or the `--only` ones and everything upstream of them. */
export function neededStages(program: IrProgram, only?: ReadonlySet<string>): Set<string> {
  if (!only || only.size === 0) return new Set(program.stages.keys());
  const need = new Set<string>();
  const visit = (id: string) => {
    if (need.has(id)) return;
    need.add(id);
    for (const i of program.stages.get(id)?.inputs ?? []) visit(i.from);
  };
  for (const id of only) visit(id);
  return need;
}

export function artifactOf(store: Store, m: Manifest, data?: Buffer): InputArtifact {
  const bytes = data ?? (m.packed ? store.packedData(m) : undefined);
  if (bytes) {
    const where = m.packed ? `${store.root}/packs/${m.packed.file}@${m.packed.offset}` : `${m.stage} (in memory)`;
    return {
      stage: m.stage,
      digest: m.output.digest,
      records: m.output.records,
      path: where,
      read: () => readJsonlBuffer(bytes, `${m.stage} (${where})`),
      json: async () => JSON.parse(bytes.toString("utf8")),
      bytes: () => Readable.from([bytes]),
    };
  }
  if (m.output.format === "tree") {
    const dir = store.treePath(m.output.digest);
    const what = `${m.stage} (the folder ${dir})`;
    return {
      stage: m.stage,
      digest: m.output.digest,
      records: null,
      path: dir,
      tree: true,
      read: () => {
        throw new Error(`${what} is a folder artifact, not records`);
      },
      // A folder that is a model is handed to the stages that use models as a handle naming its folder.
      json: async () => ({ kind: m.kind, stage: m.stage, params: { path: dir } }),
      bytes: () => createReadStream(store.objectPath(m.output.digest)),
    };
  }
  const path = store.objectPath(m.output.digest);
  return {
    stage: m.stage,
    digest: m.output.digest,
    records: m.output.records,
    path,
    read: () => readJsonl(path, `${m.stage} (${path})`),
    json: async () => JSON.parse(await readFile(path, "utf8")),
    // 1 MiB reads: a copy (export) or a line scan of a large artifact in a few hundred steps, not thousands.
    bytes: () => createReadStream(path, { highWaterMark: 1 << 20 }),
  };
}

/** Default retry policy of a stage: none. A recipe sets one per stage with `retry = backoff(...)`. */
function retryPolicyOf(params: Readonly<Record<string, Json>>): { times: number; schedule: Schedule.Schedule<unknown, unknown> } | undefined {
  const r = params["retry"] as { fn?: string; max_retries?: number; initial?: { duration_ms: number }; max?: { duration_ms: number }; multiplier?: number; jitter?: boolean } | undefined;
  if (!r || r.fn !== "backoff" || !r.max_retries) return undefined;
  const initial = r.initial?.duration_ms ?? 1000;
  const cap = r.max?.duration_ms ?? 60_000;
  let s: Schedule.Schedule<unknown, unknown> = Schedule.exponential(Duration.millis(initial), r.multiplier ?? 2).pipe(
    Schedule.modifyDelay((m) => Effect.succeed(Duration.millis(Math.min(cap, Duration.toMillis(m.duration))))),
  ) as never;
  if (r.jitter !== false) s = Schedule.jittered(s);
  return { times: r.max_retries, schedule: s };
}

/**
 * Run a checked program: every stage as a fiber that waits for its inputs, reuses a verified artifact when its key
 * is in the store, and otherwise runs (bounded by CPU slots, GPUs and named pools, retried per its policy) and
 * commits its artifact atomically. A failure skips only what depends on it.
 */
export function runProgram(program: IrProgram, o: RunOptions): Effect.Effect<RunSummary> {
  return Effect.gen(function* () {
    const t0 = performance.now();
    const need = neededStages(program, o.only);
    const stages = [...program.stages.values()];
    const cpu = new Slots(Math.max(1, o.concurrency));
    let gpuSlots: Slots | undefined;
    const gpu = () => (gpuSlots ??= new Slots(Math.max(0, typeof o.gpus === "number" ? o.gpus : o.gpus())));
    const pools = new Map<string, Slots>();
    const outcomes = new Map<string, Outcome>();
    const commits: Promise<void>[] = [];
    o.reporter.start(stages.filter((s) => need.has(s.id)));
    const settle = (s: IrStage, outcome: Outcome) => {
      outcomes.set(s.id, outcome);
      o.reporter.stageFinished(s.id, outcome);
      o.log?.(`stage_${outcome.status}`, { stage: s.id, ...logData(outcome) });
    };

    // The cached part of the DAG is settled first, in one pass in dependency order, without a fiber per stage: a
    // fully cached run of 10,000 stages costs what reading their manifests costs.
    const settled = yield* Effect.promise(() => settleCached(program, need, o, settle));
    const results = new Map<string, Deferred.Deferred<Result>>();
    const pending = stages.filter((s) => !settled.has(s.id));
    for (const s of pending) results.set(s.id, yield* Deferred.make<Result>());
    // The stages that read each stage's output, of those that may run.
    const consumers = new Map<string, IrStage[]>();
    for (const s of pending) {
      if (!need.has(s.id)) continue;
      for (const i of s.inputs) (consumers.get(i.from) ?? consumers.set(i.from, []).get(i.from)!).push(s);
    }
    const inputResult = (id: string) => {
      const r = settled.get(id);
      return r ? Effect.succeed(r) : Deferred.await(results.get(id)!);
    };

    const finish = (s: IrStage, outcome: Outcome, result: Result) =>
      Effect.gen(function* () {
        settle(s, outcome);
        yield* Deferred.succeed(results.get(s.id)!, result);
      });

    const runStage = (s: IrStage) =>
      Effect.gen(function* () {
        if (!need.has(s.id)) {
          outcomes.set(s.id, { status: "excluded" });
          yield* Deferred.succeed(results.get(s.id)!, { ok: false, root: "" });
          return;
        }
        const ins: Result[] = [];
        for (const i of s.inputs) ins.push(yield* inputResult(i.from));
        const bad = ins.findIndex((r) => !r.ok);
        if (bad >= 0) {
          const root = (ins[bad] as { root: string }).root || s.inputs[bad]!.from;
          return yield* finish(s, { status: "skipped", because: root }, { ok: false, root });
        }
        const inputs = new Map<string, InputArtifact>();
        const digests = new Map<string, string>();
        s.inputs.forEach((i, idx) => {
          const a = (ins[idx] as { artifact: InputArtifact }).artifact;
          inputs.set(i.role, a);
          digests.set(i.role, a.digest);
        });
        const impl = o.impls.get(s.kind);
        const keyed = yield* Effect.exit(Effect.tryPromise({ try: () => keyStage(s, o.registry, impl, digests, o.store, o.baseDir), catch: (e) => e as Error }));
        if (Exit.isFailure(keyed)) return yield* finish(s, failure(keyed), { ok: false, root: s.id });
        const k = keyed.value;

        // A verified hit is reused; a corrupt entry is set aside and recomputed.
        let reasons: string[] = ["forced (--force)"];
        if (!o.force.has(s.id)) {
          const verdict = yield* Effect.promise(() => o.store.verify(k.key));
          if (verdict?.ok) {
            const artifact = artifactOf(o.store, verdict.manifest);
            if (impl?.onCached) {
              const ctx = contextFor(s, inputs, resolveParamsSafe(s), o, () => undefined, () => undefined, new AbortController().signal, k.key);
              const r = yield* Effect.exit(impl.onCached(ctx, artifact));
              if (Exit.isFailure(r)) return yield* finish(s, failure(r), { ok: false, root: s.id });
            }
            o.store.setRef(o.recipe, s.id, k.key);
            return yield* finish(s, { status: "cached", manifest: verdict.manifest }, { ok: true, artifact });
          }
          if (verdict && !verdict.ok) {
            o.log?.("corrupt", { stage: s.id, key: k.key, reason: verdict.reason });
            yield* Effect.promise(() => o.store.quarantine(k.key, verdict.reason));
            reasons = [`artifact was corrupt (${verdict.reason}); recomputed`];
          } else {
            const last = lastArtifact(o.store, o.recipe, s);
            reasons = explainMiss(k, last?.manifest, last?.from);
          }
        }
        if (!impl) return yield* finish(s, { status: "failed", error: `stage kind \`${s.kind}\` has no implementation in this version of itp` }, { ok: false, root: s.id });

        const res = impl.resources?.(s.params) ?? {};
        let attempt = 0;
        const once = Effect.suspend(() => {
          attempt++;
          o.reporter.stageStarted(s.id, attempt);
          o.log?.("stage_started", { stage: s.id, attempt, key: k.key });
          const injected = o.faults?.get(s.id);
          if (injected && (injected.times === undefined || attempt <= injected.times)) {
            return Effect.fail(injected.transient ? new TransientError(`injected transient fault (attempt ${attempt})`) : new Error("injected permanent fault"));
          }
          return runJob(o.executor, { stage: s.id, run: (signal) => execute(s, impl, inputs, k, o, attempt, signal, consumers.get(s.id) ?? []) });
        });
        const policy = retryPolicyOf(s.params);
        const retried = policy
          ? once.pipe(
              Effect.tapError((e) => Effect.sync(() => isTransient(e) && attempt <= policy.times && (o.reporter.retrying(s.id, attempt, e.message), o.log?.("retry", { stage: s.id, attempt, error: e.message })))),
              Effect.retry({ schedule: policy.schedule, times: policy.times, while: isTransient }),
            )
          : once;
        let bounded: Effect.Effect<Published, Error> = cpu.withPermits(Math.min(res.cpu ?? 1, o.concurrency))(retried);
        if (res.gpu) {
          if (res.gpu > gpu().capacity) return yield* finish(s, { status: "failed", error: `needs ${res.gpu} GPU(s); this machine has ${gpu().capacity}`, hint: "run it on a machine with GPUs, or send it to a cluster with `executor = \"slurm\"`" }, { ok: false, root: s.id });
          bounded = gpu().withPermits(res.gpu)(bounded);
        }
        for (const p of res.pools ?? []) {
          let sem = pools.get(p);
          if (!sem) pools.set(p, (sem = new Slots(1)));
          bounded = sem.withPermits(1)(bounded);
        }
        const done = yield* Effect.exit(bounded);
        if (Exit.isFailure(done)) return yield* finish(s, failure(done), { ok: false, root: s.id });
        // The data is published: downstream stages start now. The manifest is committed (durably, in a group with
        // others) in the background; the stage counts as finished, and is reported, once it is.
        const { manifest, data, files } = done.value;
        yield* Deferred.succeed(results.get(s.id)!, { ok: true, artifact: artifactOf(o.store, manifest, data) });
        commits.push(
          (data ? o.store.commitPacked(manifest, data) : o.store.commit(manifest, files)).then(
            async () => {
              // What the stage kept across attempts (checkpoints) has served its purpose.
              await o.store.removeWorkDir(manifest.key).catch(() => undefined);
              o.store.setRef(o.recipe, s.id, manifest.key);
              outcomes.set(s.id, { status: "ran", manifest, reasons });
              o.reporter.stageFinished(s.id, { status: "ran", manifest, reasons });
              o.log?.("stage_ran", { stage: s.id, ...logData({ status: "ran", manifest, reasons }) });
            },
            (e: Error) => {
              const outcome: Outcome = { status: "failed", error: `could not commit the artifact: ${e.message}` };
              outcomes.set(s.id, outcome);
              o.reporter.stageFinished(s.id, outcome);
            },
          ),
        );
      });

    // Refs are hints for `plan`: written now and then, and at the end.
    const refTimer = setInterval(() => o.store.flushRefs(), 2000);
    // A stop request (Ctrl-C) interrupts the stages in flight; their temporary files are removed by their finalizers.
    let stopped = false;
    const stages$ = Effect.forEach(pending, runStage, { concurrency: "unbounded", discard: true });
    const work = o.stop ? stages$.pipe(Effect.raceFirst(Effect.promise(() => o.stop!).pipe(Effect.tap(() => Effect.sync(() => (stopped = true)))))) : stages$;
    const all = yield* Effect.exit(work).pipe(
      // Whatever happened, commits under way finish: a published artifact becomes a complete entry.
      Effect.ensuring(
        Effect.promise(() => Promise.allSettled(commits)).pipe(
          Effect.andThen(
            Effect.sync(() => {
              clearInterval(refTimer);
              o.store.flushRefs();
              o.store.closeRequests();
              void runEnd();
            }),
          ),
        ),
      ),
    );
    const interrupted = stopped || Exit.isFailure(all);
    let ran = 0;
    let cached = 0;
    let failed = 0;
    let skipped = 0;
    for (const oc of outcomes.values()) {
      if (oc.status === "ran") ran++;
      else if (oc.status === "cached") cached++;
      else if (oc.status === "failed") failed++;
      else if (oc.status === "skipped") skipped++;
    }
    const summary: RunSummary = { ran, cached, failed, skipped, seconds: (performance.now() - t0) / 1000, interrupted, outcomes };
    o.reporter.end(summary);
    return summary;
  });
}

/** The stages of a program in dependency order (inputs first); iterative, so a chain of any length is fine. */
function dependencyOrder(program: IrProgram): IrStage[] {
  const order: IrStage[] = [];
  const seen = new Set<string>();
  for (const root of program.stages.values()) {
    if (seen.has(root.id)) continue;
    seen.add(root.id);
    const stack: { s: IrStage; next: number }[] = [{ s: root, next: 0 }];
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const i = top.s.inputs[top.next++];
      if (!i) {
        order.push(top.s);
        stack.pop();
        continue;
      }
      const up = program.stages.get(i.from);
      if (up && !seen.has(up.id)) {
        seen.add(up.id);
        stack.push({ s: up, next: 0 });
      }
    }
  }
  return order;
}

/**
 * Settle the stages whose artifact is in the store and verified, and whose inputs are all settled this way: the
 * outcome `cached` is reported for each, and what they produced is returned by stage id. Anything else (a miss, a
 * corrupt entry, a forced or failing stage, a stage downstream of one) is left to the fibers, which explain it.
 */
async function settleCached(program: IrProgram, need: ReadonlySet<string>, o: RunOptions, settle: (s: IrStage, outcome: Outcome) => void): Promise<Map<string, Result>> {
  const settled = new Map<string, Result>();
  for (const s of dependencyOrder(program)) {
    if (!need.has(s.id) || o.force.has(s.id)) continue;
    const inputs = new Map<string, InputArtifact>();
    const digests = new Map<string, string>();
    let ready = true;
    for (const i of s.inputs) {
      const r = settled.get(i.from);
      if (!r?.ok) {
        ready = false;
        break;
      }
      inputs.set(i.role, r.artifact);
      digests.set(i.role, r.artifact.digest);
    }
    if (!ready) continue;
    const impl = o.impls.get(s.kind);
    let k: KeyedStage;
    try {
      k = await keyStage(s, o.registry, impl, digests, o.store, o.baseDir);
    } catch {
      continue;
    }
    const verdict = await o.store.verify(k.key);
    if (!verdict?.ok) continue;
    const artifact = artifactOf(o.store, verdict.manifest);
    if (impl?.onCached) {
      const ctx = contextFor(s, inputs, resolveParamsSafe(s), o, () => undefined, () => undefined, new AbortController().signal, k.key);
      if (Exit.isFailure(await Effect.runPromiseExit(impl.onCached(ctx, artifact)))) continue;
    }
    o.store.setRef(o.recipe, s.id, k.key);
    settle(s, { status: "cached", manifest: verdict.manifest });
    settled.set(s.id, { ok: true, artifact });
  }
  return settled;
}

function resolveParamsSafe(s: IrStage): Record<string, Json> {
  try {
    return resolveParams(s.params, true);
  } catch {
    return resolveParams(s.params, false);
  }
}

function contextFor(
  s: IrStage,
  inputs: ReadonlyMap<string, InputArtifact>,
  params: Record<string, Json>,
  o: RunOptions,
  count: (name: string, n: number) => void,
  progress: StageContext["progress"],
  signal: AbortSignal,
  key: string,
  drop: (record: RecordValue | undefined, reason: string, detail?: string, line?: Buffer, index?: number) => void = (_r, reason) => count(`dropped: ${reason}`, 1),
  summary?: (v: Record<string, unknown>) => void,
  run?: { readonly downstream: readonly IrStage[]; readonly files: KeyedStage["files"] },
): StageContext {
  return {
    stage: s,
    params,
    inputs,
    baseDir: o.baseDir,
    signal,
    count: (name, n = 1) => count(name, n),
    drop,
    dropLine: (line, reason, detail) => drop(undefined, reason, detail, line),
    dropInputLine: (index, line, reason) => drop(undefined, reason, undefined, line, index),
    note: (message) => o.log?.("stage_note", { stage: s.id, note: message }),
    requests: () => o.store.requests(),
    store: () => keyedArtifacts(o.store),
    progress,
    key,
    workDir: () => o.store.workDir(key),
    log: (type, data) => o.log?.(type, { stage: s.id, ...data }),
    summary: (v) => summary?.(v),
    ...(run ? { downstream: run.downstream, files: run.files } : {}),
    sourceDigest: (path) => o.store.sourceDigest(path),
  };
}

/** One attempt: run the implementation into a temporary file, then commit data and manifest atomically. */
/** An attempt's result: the manifest, and the data itself when it is small enough to be packed. */
interface Published {
  readonly manifest: Manifest;
  readonly data?: Buffer;
  /** The files of a folder artifact, made durable with its manifest. */
  readonly files?: readonly string[];
}

function manifestOf(
  s: IrStage,
  k: KeyedStage,
  o: RunOptions,
  inputs: ReadonlyMap<string, InputArtifact>,
  attempt: number,
  started: Date,
  finished: Date,
  counts: Record<string, number>,
  output: Manifest["output"],
  dropped: Manifest["dropped"] | undefined,
  summary: Record<string, unknown> | undefined,
): Manifest {
  return {
    format: 1,
    key: k.key,
    recipe: o.recipe,
    stage: s.id,
    kind: s.kind,
    impl_version: o.registry.stage(s.kind)?.version ?? "0",
    components: k.components,
    params: k.keyParams,
    inputs: [...inputs].map(([role, a]) => ({ role, stage: a.stage, digest: a.digest })),
    files: k.files,
    ...(typeof s.params["seed"] === "number" ? { seed: s.params["seed"] } : {}),
    started_at: started.toISOString(),
    finished_at: finished.toISOString(),
    duration_ms: finished.getTime() - started.getTime(),
    attempts: attempt,
    output,
    counts,
    ...(summary ? { summary } : {}),
    ...(dropped ? { dropped } : {}),
  };
}

function execute(s: IrStage, impl: StageImpl, inputs: ReadonlyMap<string, InputArtifact>, k: KeyedStage, o: RunOptions, attempt: number, signal: AbortSignal, downstream: readonly IrStage[]): Effect.Effect<Published, Error> {
  return Effect.acquireUseRelease(
    Effect.tryPromise({
      try: async () => {
        const tmp = await o.store.tmpPath(".data");
        return { tmp, writer: new JsonlWriter(tmp), committed: false, dropped: undefined as DropLog | undefined, tree: undefined as string | undefined };
      },
      catch: (e) => e as Error,
    }),
    (w) =>
      Effect.gen(function* () {
        const started = new Date();
        const counts: Record<string, number> = {};
        let valueWritten = false;
        const params = yield* Effect.try({ try: () => resolveParams(s.params, true), catch: (e) => e as Error });
        const count = (name: string, n: number) => (counts[name] = (counts[name] ?? 0) + n);
        // The count's name is made once per run of one reason, not per record (a filter may drop millions).
        let dropReason: string | undefined;
        let dropCount = "";
        const drop = (record: RecordValue | undefined, reason: string, detail?: string, line?: Buffer, index?: number) => {
          if (reason !== dropReason) (dropReason = reason), (dropCount = `dropped: ${reason}`);
          count(dropCount, 1);
          w.dropped ??= new DropLog(o.store, storedFile(o.store, inputs.get("data")));
          if (index !== undefined) w.dropped.addLine(index, line!, reason);
          else w.dropped.add(record, reason, detail, line);
        };
        let summary: Record<string, unknown> | undefined;
        const ctx = contextFor(s, inputs, params, o, count, (d, t, b, detail) => o.reporter.progress(s.id, d, t, b, detail), signal, k.key, drop, (v) => (summary = v), { downstream, files: k.files });
        const sink: OutputSink = {
          write: (r: RecordValue) => w.writer.write(r),
          writeLine: (line: Buffer) => w.writer.writeLine(line),
          writeBytes: (data: Buffer, records: number) => w.writer.writeBytes(data, records),
          writeValue: async (v: unknown) => {
            valueWritten = true;
            await w.writer.write(v);
          },
          treeDir: async () => {
            if (!w.tree) {
              w.tree = await o.store.tmpPath(".tree");
              await mkdir(w.tree, { recursive: true });
            }
            return w.tree;
          },
          copyFile: (path: string, digest: string, records: number) => w.writer.copyFile(path, digest, records),
          sameAs: async (input: InputArtifact) => {
            // Only a stored file of records (not a pack's, not a folder's listing) is shared as it is.
            const path = o.store.objectPath(input.digest);
            if (input.tree || input.records === null || input.path !== path || !existsSync(path)) return false;
            w.writer.adopt(path, input.digest, input.records);
            return true;
          },
        };
        yield* impl.run(ctx, sink);
        if (w.tree) {
          // A folder artifact: published whole (files hashed, listed, renamed into trees/), then its manifest.
          const t = yield* Effect.tryPromise({ try: () => o.store.publishTree(w.tree!), catch: (e) => e as Error });
          w.committed = true;
          yield* Effect.promise(() => w.writer.abort());
          const finished = new Date();
          const manifest = manifestOf(s, k, o, inputs, attempt, started, finished, counts, { digest: t.digest, bytes: t.bytes, records: null, format: "tree", tree: { files: t.files, bytes: t.treeBytes } }, undefined, summary);
          return { manifest, files: t.paths };
        }
        const { digest, data, stored } = yield* Effect.tryPromise({ try: () => w.writer.finish(PACK_LIMIT), catch: (e) => e as Error });
        const dropped = w.dropped ? yield* Effect.tryPromise({ try: () => w.dropped!.publish(), catch: (e) => e as Error }) : undefined;
        const finished = new Date();
        const manifest = manifestOf(s, k, o, inputs, attempt, started, finished, counts, { digest, bytes: w.writer.bytes, records: valueWritten ? null : w.writer.records, format: valueWritten ? "json" : "jsonl" }, dropped, summary);
        if (data) {
          w.committed = true; // nothing on disk yet: the pack gets it at commit
          return { manifest, data };
        }
        // Publishing the data is one rename: either it is in objects/, or only tmp/ has garbage.
        yield* Effect.try({
          try: () => {
            if (!stored) o.store.publish(w.tmp, digest);
            w.committed = true;
          },
          catch: (e) => e as Error,
        });
        return { manifest };
      }),
    (w) =>
      Effect.promise(async () => {
        await w.dropped?.discard();
        if (w.committed) {
          if (w.tree) await rm(w.tmp, { force: true });
          return;
        }
        await w.writer.abort();
        await rm(w.tmp, { force: true });
        if (w.tree) await rm(w.tree, { recursive: true, force: true });
      }),
  );
}

/** The digest of an input that is a stored file of records (not a pack's, not a folder), else undefined. */
function storedFile(store: Store, input: InputArtifact | undefined): string | undefined {
  return input && !input.tree && input.records !== null && input.path === store.objectPath(input.digest) ? input.digest : undefined;
}

/** Runs of dropped input lines per entry of a log by place: a line of the log stays a few tens of KB. */
const RUNS_PER_ENTRY = 4096;

/**
 * The records a stage dropped, with their reasons, written as they come (a filter may drop millions) and published
 * as an object of its own next to the artifact. Lines of the data input dropped as they are, when that input is a
 * stored file (`linesOf`), are logged by place: runs of line numbers, not the lines' bytes.
 */
class DropLog {
  private path: Promise<string> | undefined;
  private writer: JsonlWriter | undefined;
  private chain: Promise<void> = Promise.resolve();
  private published = false;
  private discarded = false;
  private queue: { record: RecordValue | undefined; reason: string; detail: string | undefined; line: Buffer | undefined; runs?: number[] }[] = [];
  private draining = false;
  /** Dropped input lines not yet queued: [from, to) pairs, of this reason. */
  private runs: number[] = [];
  private runsReason = "";
  private records = 0;
  /** Some entry lists lines by place: the log needs the input (`lines_of`). */
  private wroteRuns = false;

  constructor(
    private readonly store: Store,
    private readonly linesOf: string | undefined,
  ) {}

  /**
   * A dropped record, given as the record or as its JSON line (then `record` may be undefined). Drops are queued
   * and written in batches, not one promise each. A line is kept as a view of its reader's chunk: readers never
   * reuse a chunk's memory.
   */
  add(record: RecordValue | undefined, reason: string, detail: string | undefined, line: Buffer | undefined): void {
    if (this.discarded) return;
    this.records++;
    this.queueRuns();
    this.enqueue({ record, reason, detail, line });
  }

  /** Line `index` of the data input, dropped as it is: by place where the input is a stored file. */
  addLine(index: number, line: Buffer, reason: string): void {
    // Its reader may reuse the line's memory: kept as a copy.
    if (this.linesOf === undefined) return this.add(undefined, reason, undefined, Buffer.from(line));
    if (this.discarded) return;
    this.records++;
    if (reason !== this.runsReason || this.runs.length >= 2 * RUNS_PER_ENTRY) this.queueRuns();
    this.runsReason = reason;
    const n = this.runs.length;
    if (n > 0 && this.runs[n - 1] === index) this.runs[n - 1] = index + 1;
    else this.runs.push(index, index + 1);
  }

  private queueRuns(): void {
    if (this.runs.length === 0) return;
    this.wroteRuns = true;
    this.enqueue({ record: undefined, reason: this.runsReason, detail: undefined, line: undefined, runs: this.runs });
    this.runs = [];
  }

  private enqueue(e: DropLog["queue"][number]): void {
    this.queue.push(e);
    if (this.draining) return;
    this.draining = true;
    this.chain = this.chain.then(() => this.drain());
  }

  private async drain(): Promise<void> {
    try {
      if (!this.writer) {
        this.path = this.store.tmpPath(".dropped");
        this.writer = new JsonlWriter(await this.path);
      }
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        for (const { record, reason, detail, line, runs } of batch) {
          if (runs) {
            const pairs: [number, number][] = [];
            for (let k = 0; k < runs.length; k += 2) pairs.push([runs[k]!, runs[k + 1]!]);
            await this.writer.write({ reason, lines: pairs });
          }
          // The same bytes as serializing { reason, detail?, record }.
          else if (line) await this.writer.writeLine(line, `{"reason":${JSON.stringify(reason)}${detail === undefined ? "" : `,"detail":${JSON.stringify(detail)}`},"record":`, "}");
          else await this.writer.write(detail === undefined ? { reason, record } : { reason, detail, record });
        }
      }
    } finally {
      this.draining = false;
    }
  }

  async publish(): Promise<{ digest: string; bytes: number; records: number; lines_of?: string }> {
    this.queueRuns();
    await this.chain;
    const { digest } = await this.writer!.finish(0);
    this.store.publish(await this.path!, digest);
    this.published = true;
    return { digest, bytes: this.writer!.bytes, records: this.records, ...(this.linesOf !== undefined && this.wroteRuns ? { lines_of: this.linesOf } : {}) };
  }

  /** After a failed or interrupted attempt: the temporary file goes (a published log is the store's). */
  async discard(): Promise<void> {
    // A stage's loop can go on for a moment after an interrupt: what it drops then is not kept.
    this.discarded = true;
    if (this.published || !this.path) return;
    await this.chain.catch(() => undefined);
    await this.writer?.abort();
    await rm(await this.path, { force: true });
  }
}

function isTransient(e: Error): boolean {
  return e instanceof TransientError || (e as { transient?: boolean }).transient === true;
}

function failure(exit: Exit.Exit<unknown, unknown>): Outcome {
  const e = Exit.isFailure(exit) ? firstError(exit) : undefined;
  if (e instanceof UserError) return { status: "failed", error: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  if (e instanceof RecordError) return { status: "failed", error: e.message, hint: "fix the record, or skip bad records where the stage allows it" };
  if (e instanceof Error) return { status: "failed", error: e.message };
  return { status: "failed", error: String(e) };
}

function firstError(exit: Exit.Exit<unknown, unknown>): unknown {
  if (!Exit.isFailure(exit)) return undefined;
  const cause = exit.cause as unknown as { reasons?: { _tag: string; error?: unknown; defect?: unknown }[] };
  for (const r of cause.reasons ?? []) {
    if (r._tag === "Fail") return r.error;
    if (r._tag === "Die") return r.defect;
  }
  return new Error("interrupted");
}

function logData(o: Outcome): Record<string, unknown> {
  switch (o.status) {
    case "ran":
      return { key: o.manifest.key, records: o.manifest.output.records, ms: o.manifest.duration_ms, reasons: o.reasons, attempts: o.manifest.attempts };
    case "cached":
      return { key: o.manifest.key, records: o.manifest.output.records };
    case "failed":
      return { error: o.error };
    case "skipped":
      return { because: o.because };
    default:
      return {};
  }
}
