import { Cause, Effect, Exit, Fiber } from "effect";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { open, stat } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { sha256 } from "../../core/digest.js";
import { UserError } from "../../core/errors.js";
import type { Json } from "../../core/ir.js";
import { atRunEnd } from "../../core/run-end.js";
import { registerServed, servedModel, unregisterServed } from "../../core/served.js";
import type { InputArtifact, StageContext, StageImpl } from "../../core/stage.js";
import { processExecutor } from "../../executors/index.js";
import { runProcess } from "../../executors/run-process.js";
import type { ModelArtifact } from "../../generate/backend.js";
import { asyncImpl } from "../support/records.js";
import { trainerRoot } from "../support/trainer-package.js";

/**
 * `serve(model)`: an OpenAI-compatible server for a model, as a job of the local process executor (the command runs
 * through `itp_trainer.exec_command`, so it gets the executor's GPUs, log file, process group and parent-death
 * signal). The stage's artifact is an `openai_compatible` model with no address in it: it names the server by the
 * stage's cache key (`served`), and its `identity` is the served model's digest, so the artifact, the cache keys of
 * the stages that use it and their request keys stay the same from run to run whatever port the server gets.
 *
 * The server is registered in this itp (core/served.ts) when the stage runs, and started at once; when the artifact
 * comes from the cache it is registered only, and started by the first stage that connects to it (a run whose users
 * of the model are all cached starts nothing). It is stopped when the run ends (done, failed or interrupted), and
 * dies with this itp if that is killed.
 */

interface Server {
  ensure(signal?: AbortSignal): Promise<string>;
}

/** The model's folder (or hub id) as the server's command takes it. */
async function modelPath(ctx: StageContext, input: InputArtifact): Promise<{ path: string; identity: string }> {
  if (input.tree) return { path: input.path, identity: input.digest };
  const m = (await input.json()) as ModelArtifact;
  if (m.kind === "hf_model" && typeof m.params["repo"] === "string") {
    const repo = m.params["repo"];
    const local = isAbsolute(repo) ? repo : resolve(ctx.baseDir, repo);
    return { path: (await stat(local).catch(() => undefined))?.isDirectory() ? local : repo, identity: input.digest };
  }
  throw new UserError(`stage \`${ctx.stage.id}\`: \`${input.stage}\` (${m.kind}) is not a model a server can load`, "serve a trained model or an hf_model (a local folder or a hub id)");
}

/** A free TCP port of this machine (the server binds it right after; a port taken in between fails its start). */
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/** The last lines of a log file, for an error message. */
async function tail(file: string, lines = 20): Promise<string> {
  try {
    const fh = await open(file, "r");
    try {
      const { size } = await fh.stat();
      const n = Math.min(size, 16_384);
      const buf = Buffer.alloc(n);
      await fh.read(buf, 0, n, size - n);
      const out = buf.toString("utf8").split("\n").filter((l) => l.trim() !== "").slice(-lines);
      return out.length > 0 ? `; the last lines of ${file}:\n  ${out.join("\n  ")}` : ` (${file} is empty)`;
    } finally {
      await fh.close();
    }
  } catch {
    return ` (no log at ${file})`;
  }
}

function server(ctx: StageContext, path: string): Server {
  const p = ctx.params;
  const name = String(p["name"] ?? "model");
  const timeoutMs = (p["timeout"] as { duration_ms?: number } | undefined)?.duration_ms ?? 600_000;
  const gpus = typeof p["gpus"] === "number" ? p["gpus"] : 1;
  const template = String(p["command"]);
  const stage = ctx.stage.id;
  let started: Promise<string> | undefined;

  const start = async (signal?: AbortSignal): Promise<string> => {
    const python = process.env["ITP_PYTHON"] || "python3";
    const host = "127.0.0.1";
    const port = await freePort();
    const fill: Record<string, string> = { python, path, host, port: String(port), name };
    const argv = template
      .trim()
      .split(/\s+/)
      .map((w) => w.replace(/\{(python|path|host|port|name)\}/g, (_, k: string) => fill[k]!));
    // In the store's work area: the stage's work folder goes once its artifact is committed, the server does not.
    const logFile = await ctx.store().tmpPath(".serve.log");
    const executor = processExecutor("local");
    const fiber = Effect.runFork(
      runProcess(executor, { stage, python, module: "itp_trainer.exec_command", args: argv, pythonPath: [trainerRoot()], env: { ITP_SERVE_TOKEN: randomBytes(4).toString("hex") }, cwd: ctx.baseDir, resources: { gpus, nodes: 1 }, logFile }),
    );
    const ended = Effect.runPromise(Fiber.await(fiber)).then((exit) =>
      Exit.isSuccess(exit) ? new Error(`stage ${stage}: the server exited`) : Cause.hasInterruptsOnly(exit.cause) ? new Error(`stage ${stage}: the server was stopped`) : (Cause.squash(exit.cause) as Error),
    );
    const stop = () => Effect.runPromise(Fiber.interrupt(fiber)).then(() => undefined);
    atRunEnd(async () => {
      await stop();
      started = undefined;
    });
    const base = `http://${host}:${port}/v1`;
    const deadline = Date.now() + timeoutMs;
    let gone: Error | undefined;
    void ended.then((e) => (gone = e));
    for (;;) {
      if (gone) throw new UserError(`${gone.message.startsWith("stage ") ? "" : `stage ${stage}: `}${gone.message}${gone.message.includes("last lines") ? "" : await tail(logFile)}`, "check the server's command (the `command` parameter) and its log");
      if (signal?.aborted) {
        await stop();
        throw signal.reason instanceof Error ? signal.reason : new Error("interrupted");
      }
      if (await answers(`${base}/models`)) return base;
      if (Date.now() > deadline) {
        await stop();
        throw new UserError(`stage ${stage}: the server did not answer ${base}/models within ${Math.round(timeoutMs / 1000)} s${await tail(logFile)}`, "raise `timeout` if the model takes longer to load, or check the server's command");
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  return {
    ensure(signal) {
      started ??= start(signal).catch((e: unknown) => {
        started = undefined;
        throw e;
      });
      return started;
    },
  };
}

/** Whether GET url answers 200 (the server is up and has loaded the model). */
async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Registers the server of this stage (idempotent within a run) and returns the artifact that names it. */
async function register(ctx: StageContext): Promise<{ artifact: ModelArtifact; server: Server }> {
  const input = ctx.inputs.get("model");
  if (!input) throw new Error(`stage ${ctx.stage.id} has no model input`);
  const { path, identity } = await modelPath(ctx, input);
  const id = ctx.key;
  let s = servedModel(id);
  if (!s) {
    const srv = server(ctx, path);
    s = { stage: ctx.stage.id, ensure: (signal) => srv.ensure(signal) };
    registerServed(id, s);
    atRunEnd(async () => unregisterServed(id));
  }
  const p = ctx.params;
  const params: Record<string, Json> = { model: String(p["name"] ?? "model"), kind: p["kind"] === "chat" ? "chat" : "completions", concurrency: typeof p["concurrency"] === "number" ? p["concurrency"] : 32, timeout: { duration_ms: 600_000 }, max_retries: 2 };
  // The served model and the server program decide the answers; the port does not.
  const artifact: ModelArtifact = { kind: "openai_compatible", stage: ctx.stage.id, params, served: id, identity: sha256(JSON.stringify(["served", identity, String(p["command"]), params["model"]])) };
  return { artifact, server: s };
}

export const serveImpl: StageImpl = {
  ...asyncImpl(async (ctx, out) => {
    const { artifact, server: s } = await register(ctx);
    ctx.progress(0, undefined, undefined, "starting the server");
    const url = await s.ensure(ctx.signal);
    ctx.note(`serving at ${url}`);
    await out.writeValue(artifact);
  }),
  onCached: (ctx) =>
    Effect.tryPromise({
      try: () => register(ctx).then(() => undefined),
      catch: (e) => (e instanceof Error ? e : new Error(String(e))),
    }),
};
