import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Effect } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { runEnd } from "../src/core/run-end.js";
import type { InputArtifact, StageContext } from "../src/core/stage.js";
import type { ModelArtifact } from "../src/generate/backend.js";
import { serveImpl } from "../src/stages/model/serve.js";
import { evalModel } from "../src/stages/support/eval-model.js";
import { itpAsync, itpBin, repoRoot } from "./support/cli.js";
import { makeCtx, recordSink } from "./support/stage-ctx.js";

/**
 * The `serve` stage with a stand-in server (test/support/standin-server.mjs, a Node script answering vLLM's
 * OpenAI-compatible routes): started, used by the evaluation models and by `generate`, stopped at the run's end; a
 * cached run starts nothing; a server that never becomes ready fails the stage with its log's tail; Ctrl-C stops it.
 */
const STANDIN = join(repoRoot, "test/support/standin-server.mjs");
const python = process.env["ITP_PYTHON"] ?? "/usr/bin/python3";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
async function gone(pid: number, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function workspace() {
  const dir = mkdtempSync(join(tmpdir(), "itp-serve-"));
  mkdirSync(join(dir, "m"));
  writeFileSync(join(dir, "m/config.json"), JSON.stringify({ architectures: ["LlamaForCausalLM"] }));
  return dir;
}

const command = (dir: string, extra = "") => `node ${STANDIN} --port {port} --name {name} --pid-file ${join(dir, "pid")} --starts ${join(dir, "starts")}${extra}`;
const starts = (dir: string) => (existsSync(join(dir, "starts")) ? readFileSync(join(dir, "starts"), "utf8").trim().split("\n").length : 0);
const pid = (dir: string) => Number(readFileSync(join(dir, "pid"), "utf8"));

afterAll(() => runEnd());

describe("serve: the library side", () => {
  it("starts the server, hands an endpoint model that evaluation uses (log-likelihoods and generation), stops it at the run's end", async () => {
    const dir = workspace();
    const folder: InputArtifact = { stage: "sft", digest: "a".repeat(64), records: null, path: join(dir, "m"), tree: true, read: () => { throw new Error("a folder"); }, json: async () => ({}), bytes: () => Readable.from([]) };
    const { ctx: base } = makeCtx({ command: command(dir), name: "tiny", kind: "completions", timeout: { duration_ms: 20_000 }, concurrency: 4, gpus: 0 }, {});
    const ctx: StageContext = { ...base, inputs: new Map([["model", folder]]), key: "b".repeat(64), store: () => ({ get: async () => undefined, put: async () => { throw new Error("unused"); }, tmpPath: async (ext: string) => join(dir, `serve${ext}`) }) };
    const values: unknown[] = [];
    await Effect.runPromise(serveImpl.run(ctx, recordSink([], values)));
    const artifact = values[0] as ModelArtifact;
    // No address in the artifact: the stages that use it, and their request keys, do not depend on the port.
    expect(artifact).toEqual({ kind: "openai_compatible", stage: "s", params: { model: "tiny", kind: "completions", concurrency: 4, timeout: { duration_ms: 600_000 }, max_retries: 2 }, served: "b".repeat(64), identity: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(JSON.stringify(artifact)).not.toMatch(/127\.0\.0\.1|port/);
    expect(starts(dir)).toBe(1);
    const server = pid(dir);
    expect(alive(server)).toBe(true);

    const input: InputArtifact = { stage: "s", digest: "c".repeat(64), records: null, path: "", read: () => { throw new Error("a value"); }, json: async () => artifact, bytes: () => Readable.from([]) };
    const m = await evalModel(input, makeCtx({}, {}).ctx);
    expect(m.loglik).toBe(true);
    expect(m.identity).toBe(artifact.identity);
    const [a, b] = await m.loglikelihood([{ context: "Question: 2+2?\nAnswer:", continuation: " B" }, { context: "x y", continuation: " two words" }], { signal: base.signal });
    expect(a!.tokens).toBe(1);
    expect(b!.tokens).toBe(2);
    const [g] = await m.generate([{ prompt: "hello. world", stop: ["."], max_tokens: 8, temperature: 0 }], { signal: base.signal });
    expect(g!.text).toBe("echo: hello");
    expect(starts(dir)).toBe(1);

    await runEnd();
    expect(await gone(server)).toBe(true);
  }, 60_000);
});

describe("serve: through the CLI", () => {
  const recipe = (dir: string, extra = "", timeout = "20s") => `model base = hf_model() {
  repo = "m"
}

model served = serve(base) {
  command = "${command(dir, extra)}"
  name = "tiny"
  gpus = 0
  timeout = ${timeout}
}

dataset ideas = generate(model: served) {
  prompt = "List ideas."
  target = 3
  max_tokens = 16
}
`;
  const env = { ITP_PYTHON: python };

  it("a generate uses the served model; the server is stopped at the end; a cached rerun starts no server; a forced one starts it on first use", async () => {
    const dir = workspace();
    writeFileSync(join(dir, "r.itp"), recipe(dir));
    const store = join(dir, "store");
    const r = await itpAsync(["run", "r.itp", "--store", store, "--json"], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(starts(dir)).toBe(1);
    expect(await gone(pid(dir))).toBe(true);
    const show = await itpAsync(["show", "r.itp", "ideas", "--store", store, "--json", "--records", "10"], { cwd: dir, env });
    expect(JSON.parse(show.stdout).sample[0].output).toBe("echo: List ideas.");

    const again = await itpAsync(["run", "r.itp", "--store", store, "--json"], { cwd: dir, env });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ ran: 0 });
    expect(starts(dir)).toBe(1);

    // The generate runs again: the cached serve stage's server starts when it connects, and stops at the end.
    const forced = await itpAsync(["run", "r.itp", "--store", store, "--json", "--force", "ideas"], { cwd: dir, env });
    expect(forced.code, forced.stdout + forced.stderr).toBe(0);
    expect(starts(dir)).toBe(2);
    expect(await gone(pid(dir))).toBe(true);
  }, 120_000);

  it("a server that never becomes ready fails the stage after its timeout, with its log's tail", async () => {
    const dir = workspace();
    writeFileSync(join(dir, "r.itp"), recipe(dir, " --never-ready", "2s"));
    const r = await itpAsync(["run", "r.itp", "--store", join(dir, "store")], { cwd: dir, env });
    expect(r.code).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/the server did not answer http:\/\/127\.0\.0\.1:\d+\/v1\/models within 2 s; the last lines of /);
    expect(out).toMatch(/stand-in: loading tiny \(it never becomes ready\)/);
    expect(out).not.toMatch(/    at /);
    expect(await gone(pid(dir))).toBe(true);
  }, 60_000);

  it("Ctrl-C stops the server", async () => {
    const dir = workspace();
    writeFileSync(join(dir, "r.itp"), recipe(dir, " --delay 60000"));
    const child = spawn(process.execPath, [itpBin, "run", "r.itp", "--store", join(dir, "store")], { cwd: dir, env: { ...process.env, ...env, NO_COLOR: "1" }, stdio: "ignore" });
    const end = Date.now() + 30_000;
    while (!existsSync(join(dir, "pid")) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    const server = pid(dir);
    // Wait until generate's requests are in flight (the server answers /v1/models first).
    await new Promise((r) => setTimeout(r, 1500));
    expect(alive(server)).toBe(true);
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    child.kill("SIGINT");
    const code = await exited;
    expect(code).not.toBe(0);
    expect(await gone(server)).toBe(true);
  }, 60_000);
});
