import { Readable } from "node:stream";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import type { IrStage, Json } from "../../src/core/ir.js";
import type { InputArtifact, StageContext, StageImpl } from "../../src/core/stage.js";
import type { OutputSink } from "../../src/core/stage.js";
import { readJsonlBuffer, type RecordValue } from "../../src/core/records.js";
import { RequestCache } from "../../src/runtime/request-cache.js";

/** A stage context over in-memory inputs, collecting what the implementation writes, counts and drops. */
export function makeCtx(params: Record<string, unknown>, inputs: Record<string, RecordValue[] | unknown>, baseDir = tmpdir()) {
  const records: RecordValue[] = [];
  const values: unknown[] = [];
  const counts: Record<string, number> = {};
  const dropped: { reason: string; detail?: string; record: RecordValue }[] = [];
  const notes: string[] = [];
  const arts = new Map<string, InputArtifact>();
  for (const [role, v] of Object.entries(inputs)) {
    arts.set(role, {
      stage: role,
      digest: "0",
      records: Array.isArray(v) ? v.length : null,
      path: "",
      bytes: () => Readable.from([Buffer.from(Array.isArray(v) ? v.map((r) => JSON.stringify(r) + "\n").join("") : JSON.stringify(v))]),
      read: () => readJsonlBuffer(Buffer.from((v as RecordValue[]).map((r) => JSON.stringify(r) + "\n").join("")), role),
      json: async () => structuredClone(v),
    });
  }
  let requests: RequestCache | undefined;
  const count = (name: string, n = 1) => void (counts[name] = (counts[name] ?? 0) + n);
  const ctx: StageContext = {
    stage: { id: "s", kind: "test" } as unknown as IrStage,
    params: params as Record<string, Json>,
    inputs: arts,
    baseDir,
    progress: () => undefined,
    count,
    drop: (record, reason, detail) => {
      count(`dropped: ${reason}`);
      dropped.push(detail === undefined ? { reason, record } : { reason, detail, record });
    },
    dropLine: (line, reason, detail) => {
      count(`dropped: ${reason}`);
      const record = JSON.parse(line.toString("utf8")) as RecordValue;
      dropped.push(detail === undefined ? { reason, record } : { reason, detail, record });
    },
    dropInputLine: (_index, line, reason) => {
      count(`dropped: ${reason}`);
      dropped.push({ reason, record: JSON.parse(line.toString("utf8")) as RecordValue });
    },
    note: (message) => void notes.push(message),
    requests: () => (requests ??= RequestCache.open(mkdtempSync(join(tmpdir(), "itp-requests-")))),
    signal: new AbortController().signal,
    key: "0".repeat(64),
    log: () => undefined,
    store: () => {
      throw new Error("no store in a unit test's context");
    },
    summary: () => undefined,
    workDir: async () => mkdtempSync(join(tmpdir(), "itp-work-")),
  };
  return { ctx, records, values, counts, dropped, notes };
}

/** Run an implementation on in-memory inputs: the records (or value) it writes, the counts it reports, what it drops. */
export async function runImpl(impl: StageImpl, params: Record<string, unknown>, inputs: Record<string, RecordValue[] | unknown>, baseDir = tmpdir()) {
  const { ctx, records, values, counts, dropped } = makeCtx(params, inputs, baseDir);
  await Effect.runPromise(impl.run(ctx, recordSink(records, values)));
  return { records, values, counts, dropped };
}

/** An output sink that collects records (lines and copied bytes parsed back) and values in memory. */
export function recordSink(records: RecordValue[], values: unknown[] = []): OutputSink {
  // Copied bytes may end inside a line: whole lines are parsed, the rest waits for the next chunk.
  let rest = Buffer.alloc(0);
  return {
    write: async (r) => void records.push(r),
    writeLine: async (line) => void records.push(JSON.parse(line.toString("utf8")) as RecordValue),
    writeBytes: async (data) => {
      const bytes = Buffer.concat([rest, data]);
      const end = bytes.lastIndexOf(10) + 1;
      for await (const r of readJsonlBuffer(bytes.subarray(0, end), "copy")) records.push(r);
      rest = Buffer.from(bytes.subarray(end));
    },
    writeValue: async (v) => void values.push(v),
    treeDir: async () => {
      const dir = mkdtempSync(join(tmpdir(), "itp-tree-"));
      values.push({ tree: dir });
      return dir;
    },
  };
}
