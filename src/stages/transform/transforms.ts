import { open } from "node:fs/promises";
import { filePieces } from "../../core/file-pieces.js";
import { ChunkLines, classifiedChunks, DROP, KEEP, readerThreads, readsInParallel, REENCODE } from "../../formats/parallel-lines.js";
import { takeVerdicts } from "../../formats/line-verdicts.js";
import type { InputArtifact, OutputSink, StageContext, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import { loadTokenizer } from "../../tokenize/load.js";
import { tokenizerFiles } from "../../tokenize/locate.js";
import { splitChat, type SplitMessage, type SplitOptions } from "../../tokenize/split-chat.js";
import { compilePredicate } from "../../formats/predicate.js";
import { asyncImpl, checkAbort, dataInput, mapRecords, seededTake, unitHash } from "../support/records.js";

export const transformImpls: Record<string, StageImpl> = {
  take: asyncImpl(async (ctx, out) => {
    const n = ctx.params["n"] as number;
    const input = dataInput(ctx);
    let i = 0;
    for await (const r of input.read()) {
      if (i >= n) break;
      await out.write(r);
      if (++i % 4096 === 0) checkAbort(ctx);
    }
    ctx.count("kept", i);
  }),

  sample: asyncImpl(async (ctx, out) => {
    const input = dataInput(ctx);
    const seed = ctx.params["seed"] as number;
    let n = ctx.params["n"] as number | undefined;
    if (n === undefined) {
      let total = input.records;
      if (total === null) {
        total = 0;
        for await (const _ of input.read()) total++;
      }
      n = Math.floor((ctx.params["fraction"] as number) * total);
    }
    const kept = await seededTake(input.read(), n, seed, (i) => i % 4096 === 0 && (checkAbort(ctx), ctx.progress(i, input.records ?? undefined)));
    for (const r of kept) await out.write(r);
    ctx.count("kept", kept.length);
  }),

  shuffle: asyncImpl(async (ctx, out) => {
    const input = dataInput(ctx);
    const all = await seededTake(input.read(), Number.MAX_SAFE_INTEGER, ctx.params["seed"] as number, () => undefined);
    for (const r of all) await out.write(r);
  }),

  where: asyncImpl(async (ctx, out) => {
    const expr = String(ctx.params["expr"]);
    const pred = compilePredicate(expr);
    const input = dataInput(ctx);
    // The reader of the input may have evaluated the predicate already, while it parsed the records.
    const verdicts = takeVerdicts(input.digest, expr, input.records);
    if (verdicts) {
      ctx.count("kept", await whereByVerdicts(ctx, out, input, verdicts));
      ctx.note(`the predicate's verdicts came from ${input.stage}'s reader: lines split, not parsed`);
      return;
    }
    if (readsInParallel(input.path)) {
      ctx.count("kept", await parallelWhere(ctx, out, input.path, expr));
      return;
    }
    let kept = 0;
    await mapRecords(ctx, out, (r, i, line) => {
      if (pred(r)) {
        kept++;
        return r;
      }
      ctx.dropInputLine(i, line, "predicate false");
      return undefined;
    });
    ctx.count("kept", kept);
  }),

  split: asyncImpl(async (ctx, out) => {
    const seed = (ctx.params["seed"] as number | undefined) ?? 42;
    const share = ctx.params["validation"] as number;
    const wantValidation = ctx.params["part"] === "validation";
    let kept = 0;
    let other = 0;
    await mapRecords(ctx, out, (r, i) => (inValidation(seed, i, share) === wantValidation ? (kept++, r) : (other++, undefined)));
    ctx.count("kept", kept);
    ctx.count(`dropped: in the ${wantValidation ? "train" : "validation"} part`, other);
  }),

  rename: asyncImpl(async (ctx, out) => {
    const fields = ctx.params["fields"] as Record<string, string>;
    let missing = 0;
    await mapRecords(ctx, out, (r) => {
      if (Object.keys(fields).some((k) => !(k in r))) missing++;
      return renameFields(r, fields);
    });
    if (missing) ctx.count("records missing a renamed field", missing);
  }),

  select: asyncImpl(async (ctx, out) => {
    const fields = ctx.params["fields"] as string[];
    await mapRecords(ctx, out, (r) => {
      const o: RecordValue = {};
      for (const f of fields) if (r[f] !== undefined) o[f] = r[f];
      return o;
    });
  }),

  set_fields: asyncImpl(async (ctx, out) => {
    const values = ctx.params["values"] as Record<string, unknown>;
    await mapRecords(ctx, out, (r) => ({ ...r, ...values }));
  }),

  cap: asyncImpl(async (ctx, out) => {
    const perTask = ctx.params["per_task"] as number;
    const field = (ctx.params["field"] as string | undefined) ?? "task";
    const seed = (ctx.params["seed"] as number | undefined) ?? 42;
    const input = dataInput(ctx);
    // First pass: the indices of each task's records. Second pass: every record among its task's first per_task
    // of a seeded shuffle, in the input's order.
    const byTask = new Map<string, number[]>();
    let n = 0;
    for await (const r of input.read()) {
      const t = taskKey(r[field]);
      let l = byTask.get(t);
      if (!l) byTask.set(t, (l = []));
      l.push(n);
      if (++n % 4096 === 0) checkAbort(ctx);
    }
    const keep = capIndices(byTask, n, perTask, seed);
    let capped = 0;
    for (const l of byTask.values()) if (l.length > perTask) capped++;
    let kept = 0;
    await mapRecords(ctx, out, (r, i) => {
      if (keep[i]) {
        kept++;
        return r;
      }
      ctx.drop(r, "over the per-task cap", `task ${taskKey(r[field])}`);
      return undefined;
    });
    ctx.count("kept", kept);
    ctx.count("tasks", byTask.size);
    if (capped) ctx.count("tasks capped", capped);
  }),

  split_conversations: asyncImpl(
    async (ctx, out) => {
      const tok = await loadTokenizer(String(ctx.params["tokenizer"]), ctx.baseDir, ctx.stage.id);
      const opts: SplitOptions = {
        maxTokens: (ctx.params["max_tokens"] as number | undefined) ?? 4096,
        messageOverhead: (ctx.params["message_overhead"] as number | undefined) ?? 6,
        longExchanges: ctx.params["long_exchanges"] === "keep" ? "keep" : "drop",
      };
      // FastChat counts `tokenizer(content).input_ids`: the special tokens the tokenizer adds (BOS) included.
      const count = (text: string) => tok.count(text, true);
      const input = dataInput(ctx);
      let i = 0;
      let blocks = 0;
      let split = 0;
      for await (const r of input.read()) {
        const msgs = r["messages"];
        if (!Array.isArray(msgs) || msgs.some((m) => m === null || typeof m !== "object" || typeof m.role !== "string" || typeof m.content !== "string")) {
          throw new UserError(`${ctx.stage.id}: record ${i + 1}: field \`messages\` is not a list of {role, content} strings`, "split_conversations reads Chat records");
        }
        const res = splitChat(msgs as SplitMessage[], count, opts);
        if ("problem" in res) {
          ctx.drop(r, res.problem);
        } else {
          for (const ex of res.dropped) ctx.drop({ ...r, messages: ex }, "exchange over max_tokens");
          const id = r["id"];
          for (const b of res.blocks) {
            await out.write({ ...r, messages: b.messages, ...(typeof id === "string" || typeof id === "number" ? { id: `${id}_${b.start}` } : {}) });
          }
          blocks += res.blocks.length;
          if (res.blocks.length > 1) split++;
        }
        if (++i % 1024 === 0) {
          checkAbort(ctx);
          ctx.progress(i, input.records ?? undefined);
        }
      }
      ctx.progress(i, input.records ?? undefined);
      ctx.count("kept", blocks);
      if (split) ctx.count("chats split", split);
    },
    { files: (p) => tokenizerFiles(p["tokenizer"]) },
  ),

  concat: asyncImpl(async (ctx, out) => {
    const roles = [...ctx.inputs.keys()].sort((a, b) => roleIndex(a) - roleIndex(b));
    for (const role of roles) for await (const r of ctx.inputs.get(role)!.read()) await out.write(r);
  }),
};

function roleIndex(role: string): number {
  const m = /\[(\d+)\]$/.exec(role);
  return m ? Number(m[1]) : role === "data" ? -1 : 0;
}

/** Whether record `index` is in the validation part of a split with this seed and share. */
export function inValidation(seed: number, index: number, share: number): boolean {
  return unitHash(seed, index) < share;
}

/** A record with fields renamed in place (a renamed field keeps its position; the new name wins over an old field of that name). */
export function renameFields(r: RecordValue, fields: Readonly<Record<string, string>>): RecordValue {
  const targets = new Set(Object.entries(fields).filter(([from]) => from in r).map(([, to]) => to));
  const o: RecordValue = {};
  for (const [k, v] of Object.entries(r)) {
    const to = Object.prototype.hasOwnProperty.call(fields, k) ? fields[k]! : k;
    if (to === k && targets.has(k) && !Object.prototype.hasOwnProperty.call(fields, k)) continue;
    o[to] = v;
  }
  return o;
}

function taskKey(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v ?? null);
}

/** Which records a per-task cap keeps: for each task, its per_task records with the smallest seeded keys. */
export function capIndices(byTask: ReadonlyMap<string, readonly number[]>, n: number, perTask: number, seed: number): Uint8Array {
  const keep = new Uint8Array(n);
  for (const idx of byTask.values()) {
    if (idx.length <= perTask) {
      for (const i of idx) keep[i] = 1;
      continue;
    }
    const keyed = idx.map((i) => ({ i, k: unitHash(seed, i) }));
    keyed.sort((a, b) => a.k - b.k || a.i - b.i);
    for (let j = 0; j < perTask; j++) keep[keyed[j]!.i] = 1;
  }
  return keep;
}

/**
 * `where` with the predicate's verdict on each line known (see src/formats/line-verdicts.ts): the input's lines are
 * split, not parsed, and written or dropped as by the other paths (runs of kept lines as slices); the kept count.
 */
async function whereByVerdicts(ctx: StageContext, out: OutputSink, input: InputArtifact, keep: Uint8Array): Promise<number> {
  let i = 0;
  let kept = 0;
  let carry: Buffer | undefined;
  for await (const chunk of await artifactPieces(input)) {
    checkAbort(ctx);
    let first = 0;
    if (carry) {
      // The line that began in the previous piece: joined on its own, not the whole piece copied.
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        carry = Buffer.concat([carry, chunk]);
        continue;
      }
      const line = Buffer.concat([carry, chunk.subarray(0, nl + 1)]);
      if (keep[i]) {
        await out.writeBytes(line, 1);
        kept++;
      } else ctx.dropInputLine(i, line.subarray(0, line.length - 1), "predicate false");
      i++;
      carry = undefined;
      first = nl + 1;
    }
    const last = chunk.lastIndexOf(10);
    if (last < first) {
      if (first < chunk.length) carry = Buffer.from(chunk.subarray(first));
      continue;
    }
    carry = last + 1 < chunk.length ? Buffer.from(chunk.subarray(last + 1)) : undefined;
    let run = -1;
    let runLines = 0;
    for (let start = first; start <= last; i++) {
      const nl = chunk.indexOf(10, start);
      if (keep[i]) {
        if (run < 0) run = start;
        runLines++;
        kept++;
      } else {
        if (runLines > 0) await out.writeBytes(chunk.subarray(run, start), runLines);
        run = -1;
        runLines = 0;
        ctx.dropInputLine(i, chunk.subarray(start, nl), "predicate false");
      }
      start = nl + 1;
    }
    if (runLines > 0) await out.writeBytes(chunk.subarray(run, last + 1), runLines);
    ctx.progress(i, keep.length);
  }
  if (carry || i !== keep.length) throw new Error(`where: ${input.stage}'s artifact has ${i} lines${carry ? " and an unfinished one" : ""}; its reader saw ${keep.length}`);
  return kept;
}

/**
 * The bytes of an input artifact in pieces. A stored file is read into two buffers in turn (the next piece read while
 * this one is used), not a fresh buffer per piece: a piece is valid until the next one comes. An artifact in a pack
 * has no file of its own: its stream.
 */
async function artifactPieces(input: InputArtifact): Promise<AsyncIterable<Buffer>> {
  const fh = await open(input.path).catch(() => undefined);
  return fh ? filePieces(fh, 1 << 20) : (input.bytes() as AsyncIterable<Buffer>);
}

/** `where` over a large artifact file, its records parsed and tested by worker threads; the kept count. */
async function parallelWhere(ctx: StageContext, out: OutputSink, path: string, expr: string): Promise<number> {
  const total = dataInput(ctx).records ?? undefined;
  let kept = 0;
  let n = 0;
  ctx.note(`input read by ${readerThreads()} worker threads`);
  for await (const { chunk, verdict } of classifiedChunks(path, { predicate: expr })) {
    checkAbort(ctx);
    if (verdict.fatal) throw new UserError(verdict.fatal.message, verdict.fatal.hint);
    if (verdict.clean) {
      await out.writeBytes(chunk, verdict.lines);
    } else {
      // Runs of kept lines are written as one slice of the chunk (artifacts end lines in LF alone).
      const lines = new ChunkLines(chunk);
      let run = -1;
      let runLines = 0;
      const flush = async (end: number) => {
        if (runLines > 0) await out.writeBytes(chunk.subarray(run, end), runLines);
        run = -1;
        runLines = 0;
      };
      for (let i = 0; lines.advance(); i++) {
        const flag = verdict.flags[i];
        if (flag === KEEP && !verdict.cr && lines.end < chunk.length) {
          if (run < 0) run = lines.start;
          runLines++;
          continue;
        }
        await flush(lines.start);
        const line = chunk.subarray(lines.start, lines.end);
        if (flag === KEEP) await out.writeLine(line);
        else if (flag === DROP) ctx.dropInputLine(n + i, line, "predicate false");
        else if (flag === REENCODE) await out.write(JSON.parse(line.toString("utf8")) as RecordValue);
      }
      await flush(chunk.length);
    }
    kept += verdict.kept;
    ctx.progress((n += verdict.lines), total);
  }
  return kept;
}
