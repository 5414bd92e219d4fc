import { Cause, Effect, Exit, Fiber } from "effect";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { sha256 } from "../../core/digest.js";
import { UserError } from "../../core/errors.js";
import { atRunEnd } from "../../core/run-end.js";
import { servedModel } from "../../core/served.js";
import type { InputArtifact, StageContext } from "../../core/stage.js";
import { machineGpus } from "../../executors/gpus.js";
import { processExecutor } from "../../executors/index.js";
import { trainerPython } from "../../executors/python.js";
import { runProcess } from "../../executors/run-process.js";
import type { ModelArtifact } from "../../generate/backend.js";
import { cachedEvalModel, type CachedEvalModel } from "../../generate/eval-cache.js";
import { endpointEvalModel } from "../../generate/eval-endpoint.js";
import type { EvalModel } from "../../generate/eval-model.js";
import { workerEvalModel, type WorkerLink } from "../../generate/eval-worker.js";
import { trainerRoot } from "./trainer-package.js";

/**
 * The model under evaluation for a model input, by its kind:
 * - a trained model (a folder artifact) or an `hf_model` naming a local folder: the evaluation worker of
 *   `itp_trainer` (evaluate.py), started through the process executor that trains (local or a cluster's), on a GPU
 *   when the machine has one;
 * - `openai_compatible` (a `serve` stage's endpoint among them): generated/eval-endpoint.ts;
 * - `onnx_model`: onnxruntime-node (generated/eval-onnx.ts).
 * Lives with the stage helpers because starting the worker takes the executors, which the I/O libraries do not see.
 */
export interface EvalModelOptions {
  /** Process executor of the worker (default the stage's `executor` parameter, else local). */
  readonly executor?: string;
  /** GPUs of the worker (default 1 when the machine has one, else 0: CPU). */
  readonly gpus?: number;
  /** torch CPU threads of the worker (default torch's choice). */
  readonly threads?: number;
  /** Most tokens in one log-likelihood batch of the worker. */
  readonly batchTokens?: number;
  /** Most sequences the worker decodes together. */
  readonly genBatch?: number;
  /** Context length of a local model (default its config's max_position_embeddings). */
  readonly maxLength?: number;
  /** How long the worker may take to load the model (default 10 minutes). */
  readonly startTimeoutMs?: number;
}

export async function evalModel(input: InputArtifact, ctx: StageContext, o: EvalModelOptions = {}): Promise<EvalModel> {
  if (input.tree) return workerModel(input.path, `\`${input.stage}\` (trained model ${input.digest.slice(0, 12)})`, sha256(JSON.stringify(["folder", input.digest])), ctx, o);
  const m = (await input.json()) as ModelArtifact;
  if (m.kind === "openai_compatible") {
    if (m.served === undefined) return endpointEvalModel(m);
    const s = servedModel(m.served);
    if (!s) throw new UserError(`the model \`${m.stage}\` is served by a \`serve\` stage of another run`, "run the recipe that serves it in this itp: a served model lives as long as its run");
    return endpointEvalModel(m, await s.ensure(ctx.signal));
  }
  if (m.kind === "onnx_model") {
    const { onnxEvalModel } = await import("../../generate/eval-onnx.js");
    return onnxEvalModel(m, ctx.baseDir);
  }
  if (m.kind === "hf_model" && typeof m.params["repo"] === "string") {
    const repo = m.params["repo"];
    const dir = isAbsolute(repo) ? repo : resolve(ctx.baseDir, repo);
    if (!existsSync(join(dir, "config.json"))) {
      throw new UserError(`the model \`${m.stage}\` (${repo}) is not a local model directory (no ${join(dir, "config.json")})`, "itp does not download model weights: download it first and give that folder; paths are relative to the recipe");
    }
    return workerModel(dir, `\`${m.stage}\` (${repo})`, await folderIdentity(dir, ctx), ctx, o);
  }
  throw new UserError(`the model \`${m.stage}\` (${m.kind}) cannot be evaluated`, "evaluate a trained model, an hf_model folder, an openai_compatible endpoint, a serve stage or an onnx_model");
}

/** The model of a stage's model input (`param` names it), its answers through the store's request cache. */
export async function openEvalModel(ctx: StageContext, param = "model", o: EvalModelOptions = {}): Promise<CachedEvalModel> {
  const input = ctx.inputs.get(param) ?? ctx.inputs.get(`param:${param}`);
  if (!input) throw new Error(`stage ${ctx.stage.id} has no model input \`${param}\``);
  const executor = typeof ctx.params["executor"] === "string" ? ctx.params["executor"] : undefined;
  return cachedEvalModel(await evalModel(input, ctx, { ...(executor ? { executor } : {}), ...o }), ctx.requests());
}

/** A local folder's identity: its config and weights as the store digests them (read again only when changed). */
async function folderIdentity(dir: string, ctx: StageContext): Promise<string> {
  const files = readdirSync(dir).filter((f) => f === "config.json" || f.endsWith(".safetensors") || f === "tokenizer.json" || f === "byte_tokenizer.json").sort();
  const parts: string[] = [];
  for (const f of files) {
    const p = join(dir, f);
    parts.push(f, ctx.sourceDigest ? await ctx.sourceDigest(p) : sha256(await readFile(p)));
  }
  return sha256(JSON.stringify(["folder", parts]));
}

async function workerModel(dir: string, describe: string, identity: string, ctx: StageContext, o: EvalModelOptions): Promise<EvalModel> {
  const { loadTokenizer } = await import("../../models/onnx-tokenizer.js");
  const tokenizer = await loadTokenizer(dir);
  const link = await startWorker(dir, ctx, o);
  try {
    // The weights' precision decides the answers too (bf16 on a GPU, float32 on a CPU).
    return await workerEvalModel(link, { tokenizer, maxLength: o.maxLength ?? link.maxLength, identity: sha256(JSON.stringify([identity, link.dtype])), describe });
  } catch (e) {
    await link.stop();
    throw e;
  }
}

/**
 * Starts `python -m itp_trainer evaluate` as a job of the process executor and waits until it listens. The job is
 * cancelled when the run is interrupted (Ctrl-C) or ends, and dies with this itp (the executor's parent-death signal).
 */
async function startWorker(dir: string, ctx: StageContext, o: EvalModelOptions): Promise<WorkerLink & { maxLength: number; dtype: string }> {
  const py = await trainerPython();
  const executor = processExecutor(o.executor ?? "local");
  const gpus = o.gpus ?? (executor.name === "local" && machineGpus().ids.length > 0 ? 1 : 0);
  const work = await ctx.workDir();
  const token = randomBytes(16).toString("hex");
  const args = ["evaluate", "--model", dir, "--device", gpus > 0 ? "cuda" : "cpu", "--host", executor.name === "local" ? "127.0.0.1" : "0.0.0.0"];
  if (o.threads !== undefined) args.push("--threads", String(o.threads));
  if (o.batchTokens !== undefined) args.push("--batch-tokens", String(o.batchTokens));
  if (o.genBatch !== undefined) args.push("--gen-batch", String(o.genBatch));
  type Listening = { host: string; port: number; maxLength: number; dtype: string };
  let listening: (v: Listening) => void = () => undefined;
  const ready = new Promise<Listening>((r) => (listening = r));
  const fiber = Effect.runFork(
    runProcess(
      executor,
      { stage: ctx.stage.id, python: py.python, module: "itp_trainer", args, pythonPath: [trainerRoot()], env: { ITP_WORKER_TOKEN: token }, cwd: work, resources: { gpus, nodes: 1 }, logFile: join(work, "eval-worker.log") },
      {
        onEvent: (e) => {
          if (e["event"] === "listening") listening({ host: String(e["host"]), port: Number(e["port"]), maxLength: Number(e["max_length"]), dtype: String(e["dtype"]) });
          else ctx.log(`eval_worker_${String(e["event"])}`, e as Record<string, unknown>);
        },
      },
    ),
  );
  const ended: Promise<Error | undefined> = Effect.runPromise(Fiber.await(fiber)).then((exit) =>
    Exit.isSuccess(exit) ? undefined : Cause.hasInterruptsOnly(exit.cause) ? new Error(`${ctx.stage.id}: the evaluation worker was stopped`) : (Cause.squash(exit.cause) as Error),
  );
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      ctx.signal.removeEventListener("abort", onAbort);
      // Asked to exit by the client; a worker still busy after a while is cancelled.
      const timer = setTimeout(() => void Effect.runPromise(Fiber.interrupt(fiber)), 10_000);
      await ended;
      clearTimeout(timer);
    })());
  const onAbort = () => void Effect.runPromise(Fiber.interrupt(fiber));
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  atRunEnd(async () => {
    await Effect.runPromise(Fiber.interrupt(fiber));
  });
  const timeoutMs = o.startTimeoutMs ?? 600_000;
  let timer: NodeJS.Timeout | undefined;
  const at = await Promise.race([
    ready,
    ended.then((e) => Promise.reject(e ?? new Error(`${ctx.stage.id}: the evaluation worker exited before it listened (log: ${join(work, "eval-worker.log")})`))),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new UserError(`${ctx.stage.id}: the evaluation worker did not start within ${timeoutMs / 1000} s (log: ${join(work, "eval-worker.log")})`)), timeoutMs))),
  ]).finally(() => clearTimeout(timer)).catch(async (e: unknown) => {
    await Effect.runPromise(Fiber.interrupt(fiber));
    throw e;
  });
  return { host: at.host, port: at.port, token, ended, stop, maxLength: at.maxLength, dtype: at.dtype };
}
