import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A real single-node Slurm cluster on localhost, for the tests: munged with a key of its own, slurmctld and slurmd
 * from Debian's slurm-wlm with a generated slurm.conf (cons_tres, 8 GPUs of GRES `gpu` whose device files point at
 * /dev/null, so GPU requests are scheduled; 16 CPUs declared whatever the machine has, so jobs run side by side),
 * its state and ports its own. The client commands find it through SLURM_CONF (in `env`).
 */
export interface SlurmCluster {
  readonly dir: string;
  /** What a process that talks to this cluster needs in its environment (SLURM_CONF). */
  readonly env: Record<string, string>;
  readonly partition: string;
  /** Jobs squeue lists, with their state (`123 RUNNING`): those pending or running, or (`all`) every one it knows. */
  queue(all?: boolean): string[];
  stop(): Promise<void>;
}

const BINARIES = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo"];

/** Why a real cluster cannot be started here, or undefined when it can. */
export function slurmMissing(): string | undefined {
  const missing = BINARIES.filter((b) => spawnSync("sh", ["-c", `command -v ${b} || test -x /usr/sbin/${b}`], { encoding: "utf8" }).status !== 0);
  if (missing.length > 0) return `Slurm is not installed here (missing: ${missing.join(", ")}; .ci/run installs slurm-wlm and munge)`;
  if (process.getuid?.() !== 0) return "the test cluster's daemons run as root (slurmd starts jobs), and this is not root";
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sbin(name: string): string {
  return spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).stdout.trim() || `/usr/sbin/${name}`;
}

export async function startSlurm(): Promise<SlurmCluster> {
  const dir = mkdtempSync(join(tmpdir(), "itp-slurm-"));
  const children: ChildProcess[] = [];
  const name = `itp${randomBytes(3).toString("hex")}`;
  for (const d of ["munge", "state", "spool", "log", "dev"]) mkdirSync(join(dir, d), { recursive: true });
  chmodSync(join(dir, "munge"), 0o700);
  const key = join(dir, "munge", "munge.key");
  writeFileSync(key, randomBytes(1024), { mode: 0o400 });
  const socket = join(dir, "munge", "socket");
  for (let i = 0; i < 8; i++) symlinkSync("/dev/null", join(dir, "dev", `gpu${i}`));
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  const conf = join(dir, "slurm.conf");
  writeFileSync(
    conf,
    [
      `ClusterName=${name}`,
      "SlurmctldHost=localhost",
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      "AuthType=auth/munge",
      "CredType=cred/munge",
      `AuthInfo=socket=${socket}`,
      "SlurmUser=root",
      "SlurmdUser=root",
      `StateSaveLocation=${join(dir, "state")}`,
      `SlurmdSpoolDir=${join(dir, "spool")}`,
      `SlurmctldPidFile=${join(dir, "slurmctld.pid")}`,
      `SlurmdPidFile=${join(dir, "slurmd.pid")}`,
      `SlurmctldLogFile=${join(dir, "log", "slurmctld.log")}`,
      `SlurmdLogFile=${join(dir, "log", "slurmd.log")}`,
      "ProctrackType=proctrack/linuxproc",
      "TaskPlugin=task/none",
      "SelectType=select/cons_tres",
      "SelectTypeParameters=CR_Core",
      "GresTypes=gpu",
      "SchedulerType=sched/backfill",
      "SchedulerParameters=sched_interval=1,bf_interval=1",
      "SlurmdParameters=config_overrides",
      // Ended jobs stay in squeue (there is no accounting database) for the tests to read their state.
      "MinJobAge=600",
      "KillWait=5",
      "InactiveLimit=0",
      "ReturnToService=2",
      "MpiDefault=none",
      "JobAcctGatherType=jobacct_gather/none",
      "AccountingStorageType=accounting_storage/none",
      "MailProg=/bin/true",
      "NodeName=itpnode NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=16 RealMemory=16000 Gres=gpu:8 State=UNKNOWN",
      "PartitionName=debug Nodes=itpnode Default=YES MaxTime=INFINITE State=UP",
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "gres.conf"), `NodeName=itpnode Name=gpu File=${join(dir, "dev")}/gpu[0-7]\n`);
  const env = { SLURM_CONF: conf };
  const daemonEnv = { ...process.env, ...env };
  const start = (program: string, args: string[], log: string) => {
    const out = join(dir, "log", log);
    const c = spawn(sbin(program), args, { env: daemonEnv, stdio: ["ignore", "ignore", "ignore"], detached: false });
    c.on("error", (e) => writeFileSync(out, String(e)));
    children.push(c);
    return c;
  };
  const cluster: SlurmCluster = {
    dir,
    env,
    partition: "debug",
    queue(all = false) {
      const r = spawnSync("squeue", ["-h", "-o", "%i %T", ...(all ? ["--states=all"] : [])], { encoding: "utf8", env: daemonEnv });
      return r.stdout.split("\n").filter(Boolean);
    },
    async stop() {
      // Jobs first (slurmstepd outlives slurmd), then the daemons.
      spawnSync("scancel", ["--full", "-u", "root"], { env: daemonEnv });
      for (let i = 0; i < 100 && cluster.queue().some((l) => /RUNNING|COMPLETING|PENDING/.test(l)); i++) await sleep(200);
      for (const c of children.reverse()) {
        if (c.exitCode === null && c.signalCode === null) {
          c.kill("SIGTERM");
          await Promise.race([new Promise((r) => c.once("exit", r)), sleep(10_000)]);
          if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    start("munged", ["-F", "--force", `--socket=${socket}`, `--key-file=${key}`, `--log-file=${join(dir, "log", "munged.log")}`, `--pid-file=${join(dir, "munge", "munged.pid")}`, `--seed-file=${join(dir, "munge", "seed")}`], "munged.out");
    for (let i = 0; i < 100 && spawnSync("test", ["-S", socket]).status !== 0; i++) await sleep(100);
    start("slurmctld", ["-D", "-f", conf], "slurmctld.out");
    start("slurmd", ["-D", "-N", "itpnode", "-f", conf], "slurmd.out");
    let state = "";
    for (let i = 0; i < 300; i++) {
      state = spawnSync("sinfo", ["-h", "-n", "itpnode", "-o", "%T"], { encoding: "utf8", env: daemonEnv }).stdout.trim();
      if (state === "idle") break;
      if (/drain|down|inval/.test(state)) spawnSync("scontrol", ["update", "nodename=itpnode", "state=resume"], { env: daemonEnv });
      await sleep(200);
    }
    if (state !== "idle") throw new Error(`the test cluster's node is \`${state || "unknown"}\`, not idle; slurmctld.log:\n${tail(join(dir, "log", "slurmctld.log"))}\nslurmd.log:\n${tail(join(dir, "log", "slurmd.log"))}`);
    return cluster;
  } catch (e) {
    await cluster.stop();
    throw e;
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-20).join("\n");
  } catch {
    return "(none)";
  }
}
