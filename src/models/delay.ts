/**
 * Wait `ms` milliseconds, or until the signal aborts: then reject with the signal's own reason (as undici and the
 * permit queue do), not with timers/promises' AbortError wrapping it, so a caller sees one kind of cancellation.
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    if (!signal) return void setTimeout(resolve, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
