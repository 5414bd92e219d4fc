import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";

const useTime = existsSync("/usr/bin/time");

/**
 * Run a command for a benchmark: its wall time, its peak resident set in MB (from `/usr/bin/time -v` where it
 * exists, else by polling VmHWM every 20 ms) and its output. A command that fails ends the benchmark, with its
 * output, exit 1.
 */
export async function measured(args: readonly string[], cwd: string): Promise<{ seconds: number; mb: number; stdout: string; stderr: string }> {
  const t0 = performance.now();
  const child = useTime ? spawn("/usr/bin/time", ["-v", ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] }) : spawn(args[0]!, args.slice(1), { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let stdout = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  let polledKb = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
      if (m) polledKb = Math.max(polledKb, Number(m[1]));
    } catch {
      // exited
    }
  }, 20);
  const [code] = (await once(child, "exit")) as [number | null];
  clearInterval(poll);
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) {
    console.error(`${args.join(" ")} failed (exit ${code}):\n${stderr.slice(-2000)}\n${stdout.slice(-2000)}`);
    process.exit(1);
  }
  const timeKb = useTime ? Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1] ?? NaN) : NaN;
  return { seconds, mb: (Number.isFinite(timeKb) ? timeKb : polledKb) / 1024, stdout, stderr };
}
