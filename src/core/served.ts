/**
 * Model servers of this itp (`serve` stages), by id: a served model's artifact names its id, and a stage that uses
 * it asks here for the server's address. The serve stage registers how to start its server (and starts it at once
 * when the stage runs); a stage reading the artifact from the cache on a later run starts it on first use, so a run
 * whose users of the model are all cached never starts a server. Servers stop when the run ends.
 */
export interface ServedModel {
  /** The stage that serves it (messages). */
  readonly stage: string;
  /** The server's base URL (up to /v1), starting the server first when it is not running. */
  ensure(signal?: AbortSignal): Promise<string>;
}

const servers = new Map<string, ServedModel>();

export function registerServed(id: string, s: ServedModel): void {
  servers.set(id, s);
}

export function servedModel(id: string): ServedModel | undefined {
  return servers.get(id);
}

export function unregisterServed(id: string): void {
  servers.delete(id);
}
