import type { KeyedArtifact, KeyedArtifacts, KeyedEntry } from "../core/stage.js";
import type { Manifest, Store } from "./store.js";

/**
 * The store as a stage's keyed artifacts (core/stage.ts): an entry like a stage's, under the key the stage chose,
 * its data an object named by its digest. A damaged entry is quarantined on `get`, so the stage makes it again.
 */
export function keyedArtifacts(store: Store): KeyedArtifacts {
  const found = (m: Manifest): KeyedArtifact => ({ key: m.key, path: store.objectPath(m.output.digest), entry: m });
  return {
    async get(key) {
      const v = await store.verify(key);
      if (v?.ok) return found(v.manifest);
      if (v) await store.quarantine(key, v.reason);
      return undefined;
    },
    tmpPath: (ext) => store.tmpPath(ext),
    async put(key: string, file: string, entry: KeyedEntry) {
      const format = entry.output.format;
      if (format !== "jsonl" && format !== "json" && format !== "safetensors") throw new Error(`a keyed artifact is one file (jsonl, json or safetensors), not ${format}`);
      store.publish(file, entry.output.digest);
      const finished = new Date();
      const manifest: Manifest = {
        ...entry,
        format: 1,
        key,
        output: { ...entry.output, format },
        finished_at: finished.toISOString(),
        duration_ms: Math.max(0, finished.getTime() - Date.parse(entry.started_at)),
        attempts: 1,
      };
      await store.commit(manifest);
      return found(manifest);
    },
  };
}
