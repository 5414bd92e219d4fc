import { spawnSync } from "node:child_process";
import { Effect, Fiber } from "effect";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LocalProcessExecutor } from "../src/executors/local.js";
import type { ProcessHandle, ProcessSpec } from "../src/executors/process.js";
import { trainerPython } from "../src/executors/python.js";
import { runProcess, type ProgramEvent } from "../src/executors/run-process.js";
import { UserError } from "../src/core/errors.js";
import { tempTree } from "./support/cli.js";
import { torchPython } from "./support/python.js";

// The local process executor runs real Python programs: a small module written for each test prints JSON lines,
// sleeps, fails or ignores SIGTERM, as a trainer might.

const JOB = String.raw`
import json, os, signal, sys, time
mode = sys.argv[1]
def say(**kw):
    # One write per line, as the trainer does: with PYTHONUNBUFFERED, print() writes the text and its newline
    # separately, and two torchrun workers sharing the log interleave them into lines that are not JSON.
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()
if mode == "ok":
    say(event="start", steps=3)
    print("some log text", file=sys.stderr, flush=True)
    for i in range(1, 4):
        say(event="step", step=i, loss=1.0 / i)
    say(event="done", steps=3)
elif mode == "user-error":
    say(event="error", message="the data has no rows", hint="check the input")
    sys.exit(1)
elif mode == "crash":
    print("Traceback (most recent call last):", file=sys.stderr)
    print("ZeroDivisionError: division by zero", file=sys.stderr, flush=True)
    sys.exit(2)
elif mode == "devices":
    say(event="devices", visible=os.environ.get("CUDA_VISIBLE_DEVICES"), t0=time.time())
    time.sleep(float(sys.argv[2]))
    say(event="end", t1=time.time())
elif mode == "sleep":
    say(event="start", pid=os.getpid())
    time.sleep(600)
elif mode == "stubborn":
    signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
    say(event="start", pid=os.getpid())
    while True:
        time.sleep(0.05)
elif mode == "ranks":
    say(event="rank", rank=int(os.environ["RANK"]), world=int(os.environ["WORLD_SIZE"]))
`;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup(python = "python3") {
  const dir = tempTree({ "mods/itpjob.py": JOB });
  dirs.push(dir);
  let n = 0;
  const spec = (args: string[], over: Partial<ProcessSpec> = {}): ProcessSpec => ({
    stage: "t",
    python,
    module: "itpjob",
    args,
    pythonPath: [join(dir, "mods")],
    env: {},
    cwd: dir,
    resources: { gpus: 0, nodes: 1 },
    logFile: join(dir, `job-${++n}.log`),
    ...over,
  });
  return { dir, spec };
}

const collect = () => {
  const events: ProgramEvent[] = [];
  const text: string[] = [];
  return { events, text, o: { onEvent: (e: ProgramEvent) => events.push(e), onText: (l: string) => text.push(l) } };
};

/** Whether any process of a handle's group is alive. */
const groupAlive = (h: ProcessHandle) => {
  try {
    process.kill(-Number(h.id.split(":")[0]), 0);
    return true;
  } catch {
    return false;
  }
};

describe("the local process executor", () => {
  it("runs python -m module, appends stdout and stderr to the log, and passes JSON lines on in order", async () => {
    const { spec } = setup();
    const ex = new LocalProcessExecutor({ gpus: [] });
    const s = spec(["ok"]);
    writeFileSync(s.logFile, "a line of an earlier attempt\n");
    const c = collect();
    await Effect.runPromise(runProcess(ex, s, c.o));
    expect(c.events.map((e) => e["event"])).toEqual(["start", "step", "step", "step", "done"]);
    expect(c.events.filter((e) => e["event"] === "step").map((e) => e["step"])).toEqual([1, 2, 3]);
    expect(c.text).toEqual(["some log text"]);
    const log = readFileSync(s.logFile, "utf8");
    expect(log.startsWith("a line of an earlier attempt\n")).toBe(true);
    expect(log).toContain("some log text");
    expect(log).toContain('"event": "done"');
  });

  it("a program's error line is a user error with its hint; a crash shows the last lines of the log", async () => {
    const { spec } = setup();
    const ex = new LocalProcessExecutor({ gpus: [] });
    const e1 = await Effect.runPromise(Effect.flip(runProcess(ex, spec(["user-error"]))));
    expect(e1).toBeInstanceOf(UserError);
    expect(e1.message).toBe("stage t: the data has no rows");
    expect((e1 as UserError).hint).toBe("check the input");
    const e2 = await Effect.runPromise(Effect.flip(runProcess(ex, spec(["crash"]))));
    expect(e2).not.toBeInstanceOf(UserError);
    expect(e2.message).toMatch(/stage t: the job \(pid \d+\) failed, exit code 2; the last lines of .*job-2\.log:\n {2}Traceback \(most recent call last\):\n {2}ZeroDivisionError: division by zero/);
  });

  it("gives each job its own GPUs: two 1-GPU jobs run side by side on a 2-GPU machine, a third waits for a free one", async () => {
    const { spec } = setup();
    const ex = new LocalProcessExecutor({ gpus: ["0", "1"] });
    const runs = [0, 1, 2].map(() => collect());
    const gpu = { gpus: 1, nodes: 1 };
    await Effect.runPromise(Effect.all(runs.map((c) => runProcess(ex, spec(["devices", "1.5"], { resources: gpu }), c.o)), { concurrency: "unbounded" }));
    const seen = runs.map((c) => c.events.find((e) => e["event"] === "devices")!);
    const ends = runs.map((c) => c.events.find((e) => e["event"] === "end")!["t1"] as number);
    const starts = seen.map((e) => e["t0"] as number);
    expect(new Set(seen.slice(0, 2).map((e) => e["visible"]))).toEqual(new Set(["0", "1"]));
    // The first two overlap; the third starts after one of them ended, on the device it freed.
    expect(starts[1]!).toBeLessThan(ends[0]!);
    expect(starts[2]!).toBeGreaterThanOrEqual(Math.min(ends[0]!, ends[1]!) - 0.05);
    expect(["0", "1"]).toContain(seen[2]!["visible"]);
    // A CPU job sees no GPU.
    const cpu = collect();
    await Effect.runPromise(runProcess(ex, spec(["devices", "0"]), cpu.o));
    expect(cpu.events[0]!["visible"]).toBe("");
    expect(ex.describe({ stage: "t", resources: { gpus: 2, nodes: 1 } })).toEqual(["local: 2 GPUs of 2 (devices 0,1), 2 processes (torchrun)"]);
    expect(ex.describe({ stage: "t", resources: { gpus: 3, nodes: 1 } })).toEqual(["local: cannot run: 3 GPUs requested; this machine has 2 (0,1)"]);
    const tooMany = await Effect.runPromise(Effect.flip(runProcess(ex, spec(["ok"], { resources: { gpus: 3, nodes: 1 } }))));
    expect(tooMany.message).toBe("stage t: 3 GPUs requested; this machine has 2 (0,1)");
  });

  it("cancel sends SIGTERM to the group, then SIGKILL after the grace period; nothing is left", async () => {
    const { spec } = setup();
    const ex = new LocalProcessExecutor({ gpus: [], graceMs: 700 });
    for (const mode of ["sleep", "stubborn"]) {
      const h = await Effect.runPromise(ex.submit(spec([mode])));
      // Wait until it runs (its first line is in the log).
      for (let i = 0; i < 100 && !readFileSync(h.logFile, "utf8").includes('"start"'); i++) await new Promise((r) => setTimeout(r, 50));
      const t0 = Date.now();
      await Effect.runPromise(ex.cancel(h));
      const took = Date.now() - t0;
      expect(groupAlive(h), mode).toBe(false);
      if (mode === "stubborn") {
        expect(took).toBeGreaterThanOrEqual(650);
        expect(readFileSync(h.logFile, "utf8")).toContain("ignoring SIGTERM");
      } else expect(took).toBeLessThan(650);
      expect(await Effect.runPromise(ex.poll(h))).toMatchObject({ state: "failed", reason: "CANCELLED" });
    }
  });

  it("interrupting the follower cancels the job", async () => {
    const { spec } = setup();
    const ex = new LocalProcessExecutor({ gpus: [], graceMs: 2_000 });
    let handle: ProcessHandle | undefined;
    const c = collect();
    const fiber = Effect.runFork(runProcess(ex, spec(["sleep"]), { ...c.o, onSubmitted: (h) => (handle = h) }));
    for (let i = 0; i < 100 && c.events.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(c.events[0]).toMatchObject({ event: "start" });
    await Effect.runPromise(Fiber.interrupt(fiber));
    expect(handle).toBeDefined();
    expect(groupAlive(handle!)).toBe(false);
  });

  it("a job left by an earlier itp is found by its handle and cancelled", async () => {
    const { spec } = setup();
    const earlier = new LocalProcessExecutor({ gpus: [] });
    const h = await Effect.runPromise(earlier.submit(spec(["stubborn"])));
    for (let i = 0; i < 100 && !readFileSync(h.logFile, "utf8").includes('"start"'); i++) await new Promise((r) => setTimeout(r, 50));
    const later = new LocalProcessExecutor({ gpus: [], graceMs: 300 });
    // A handle with the right group but another token is not this job: nothing is touched.
    await Effect.runPromise(later.cancel({ ...h, id: `${h.id.split(":")[0]}:0000000000000000` }));
    expect(groupAlive(h)).toBe(true);
    await Effect.runPromise(later.cancel(h));
    // The earlier executor (this process, in the test) sees its job end, killed.
    let st = await Effect.runPromise(earlier.poll(h));
    while (st.state === "running") st = await Effect.runPromise(earlier.poll(h));
    expect(st).toMatchObject({ state: "failed", message: "killed by SIGKILL (out of memory, or killed by hand)" });
    expect(groupAlive(h)).toBe(false);
  });

  const py = torchPython();
  it.skipIf(!py)("more than one CPU process runs through torchrun (gloo): every rank runs once", async () => {
    const { spec } = setup(py!);
    const ex = new LocalProcessExecutor({ gpus: [] });
    const c = collect();
    await Effect.runPromise(runProcess(ex, spec(["ranks"], { resources: { gpus: 0, nodes: 1, procsPerNode: 2 } }), c.o));
    expect(c.events.filter((e) => e["event"] === "rank").map((e) => `${e["rank"]}/${e["world"]}`).sort()).toEqual(["0/2", "1/2"]);
    expect(ex.describe({ stage: "t", resources: { gpus: 0, nodes: 1, procsPerNode: 2 } })).toEqual(["local: CPU, 2 processes (torchrun, gloo)"]);
  });
});

describe("the trainer's Python (ITP_PYTHON)", () => {
  it("a program that does not exist, or a Python without torch, is a clear error saying how to choose another", async () => {
    const missing = await trainerPython({ ITP_PYTHON: "/nonexistent/python3" }).then(
      () => undefined,
      (e: UserError) => e,
    );
    expect(missing).toBeInstanceOf(UserError);
    expect(missing!.message).toBe("cannot run the trainer's Python `/nonexistent/python3` (ITP_PYTHON): no such program");
    expect(missing!.hint).toMatch(/ITP_PYTHON=\/usr\/bin\/python3/);
    // A Python without torch (a stand-in that fails the import the way Python does).
    const dir = tempTree({ "python": "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n" });
    dirs.push(dir);
    const { chmodSync } = await import("node:fs");
    chmodSync(join(dir, "python"), 0o755);
    const noTorch = await trainerPython({ ITP_PYTHON: join(dir, "python") }).then(
      () => undefined,
      (e: UserError) => e,
    );
    expect(noTorch!.message).toBe(`the trainer's Python \`${join(dir, "python")}\` (ITP_PYTHON) cannot import torch`);
    expect(existsSync(join(dir, "python"))).toBe(true);
  });

  const py = torchPython();
  it.skipIf(!py || py !== "/usr/bin/python3")("without ITP_PYTHON: python3, else Debian's /usr/bin/python3 when python3 cannot import torch", async () => {
    const p = await trainerPython({});
    const pathHasTorch = spawnSync("python3", ["-c", "import torch"]).status === 0;
    expect(p.python).toBe(pathHasTorch ? "python3" : "/usr/bin/python3");
  });

  it.skipIf(!py)("a Python with torch is accepted, with its versions", async () => {
    const p = await trainerPython({ ITP_PYTHON: py! });
    expect(p.python).toBe(py);
    expect(p.torch).toMatch(/^\d+\.\d+/);
  });
});
