/**
 * Things a run opens on demand and closes at its end (connection pools of model endpoints): registered by whoever
 * opens them, closed by the scheduler when the run ends, so a finished run exits at once rather than when idle
 * keep-alive sockets time out.
 */
const hooks = new Set<() => Promise<void>>();

export function atRunEnd(close: () => Promise<void>): void {
  hooks.add(close);
}

export async function runEnd(): Promise<void> {
  const all = [...hooks];
  hooks.clear();
  await Promise.allSettled(all.map((h) => h()));
}
