import { readFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../core/errors.js";
import { readJsonl } from "../core/records.js";
import { artifactOf } from "../runtime/scheduler.js";
import { keyedArtifacts } from "../runtime/keyed-artifacts.js";
import type { Manifest, Store } from "../runtime/store.js";
import { planProgram } from "../runtime/plan.js";
import { show as showType, showShape } from "../types/types.js";
import { displayPath, InputError, UsageError } from "./host.js";
import { applyProfile, profileHelp, profileOptions } from "./profile.js";
import { parseVerbArgs, useColor } from "./args.js";
import { loadForRun } from "./runtime-setup.js";
import { isReport } from "../stages/eval/report.js";
import { renderExamples, renderReport, selectExamples } from "./report.js";

const help = `
usage: itp show <file> <stage> [--records N] [--dropped [--reason TEXT]] [--set STAGE.PARAM=VALUE]... [--store DIR] [--profile NAME] [--json]
       itp show <file> <eval stage> [--examples [--failed] [--task NAME] [--records N]] [--json]

An artifact: where it is, how many records, their schema, a sample of records, and its lineage (the stages and
artifacts it was made from). A training stage adds its loss summary and its tokens: examples, tokens, truncated
examples, the share of tokens with loss, and the first row (--records N: N rows) decoded with the text that carries
no loss marked. With --dropped: the records the stage dropped, each with the reason (the first N, 20 by
default; --reason keeps those whose reason contains TEXT).

An evaluation's Report: every task's metrics with standard errors and counts, and the contamination counts. With
--examples: its examples (prompt, output, extracted answer, gold, verdict), the first N (20 by default) of every
task or of --task NAME; --failed keeps the failed ones.
${profileHelp}`;

export async function showVerb(args: string[]): Promise<number> {
  const p = parseVerbArgs(
    args,
    {
      records: { type: "string" },
      dropped: { type: "boolean" },
      reason: { type: "string" },
      examples: { type: "boolean" },
      failed: { type: "boolean" },
      task: { type: "string" },
      set: { type: "string", multiple: true },
      store: { type: "string" },
      json: { type: "boolean" },
      ...profileOptions,
    },
    help,
  );
  if (!p) return 0;
  if (p.positionals.length !== 2) throw new UsageError("give a recipe file and a stage name");
  const [file, stageId] = p.positionals as [string, string];
  const sampleSize = Number(p.values.records ?? (p.values.dropped || p.values.examples ? 20 : 3));
  if (!Number.isInteger(sampleSize) || sampleSize < 0) throw new UsageError(`--records takes a whole number, not \`${p.values.records}\``);
  const placed = await applyProfile(file, p.values, p.values.json ?? false);
  if (typeof placed === "number") return placed;
  const storeDir = p.values.store ?? placed.store;
  const loaded = await loadForRun(file, { sets: p.values.set ?? [], ...(storeDir ? { store: storeDir } : {}), json: p.values.json ?? false, stageArgs: [stageId], only: [stageId] });
  if (typeof loaded === "number") return loaded;
  const plan = await planProgram(loaded.program, { ...loaded, force: new Set(), only: new Set([stageId]) });
  const entry = plan.find((s) => s.id === stageId)!;
  if (entry.status !== "cached" || !entry.manifest) {
    const job = entry.key ? runningJob(join(loaded.store.root, "work", entry.key)) : undefined;
    throw new InputError(`\`${stageId}\` has no artifact for the recipe as it is now (${entry.reasons.join("; ") || entry.status})${job ? `; its job: ${job}` : ""}; compute it with: itp run ${file} --only ${stageId}`);
  }
  const m = entry.manifest;
  if (p.values.dropped) return showDropped(loaded.store, m, stageId, sampleSize, p.values.reason, p.values.json ?? false);
  const stage = loaded.program.stages.get(stageId)!;
  const artifact = artifactOf(loaded.store, m);
  if (stage.type.k === "report") return showReport(stageId, await artifact.json(), m.counts, { examples: p.values.examples ?? false, failed: p.values.failed ?? false, task: p.values.task, limit: sampleSize, json: p.values.json ?? false });
  if (p.values.examples || p.values.failed || p.values.task !== undefined) throw new UsageError(`--examples, --failed and --task are for evaluation stages; \`${stageId}\` is ${showType(stage.type)}`);
  const path = artifact.path;
  const sample: unknown[] = [];
  const fields = new Map<string, Set<string>>();
  if (m.output.format === "jsonl") {
    let i = 0;
    for await (const r of artifact.read()) {
      if (i < sampleSize) sample.push(r);
      for (const [k, v] of Object.entries(r)) {
        const t = v === null ? "null" : Array.isArray(v) ? "list" : typeof v;
        (fields.get(k) ?? fields.set(k, new Set()).get(k)!).add(t);
      }
      if (++i >= 1000) break; // the observed schema: from the first thousand records
    }
  }
  const tokens = await tokensOf(loaded.store, m, p.values.records !== undefined ? sampleSize : 1);
  const lineage = plan.filter((s) => s.status === "cached" && s.id !== stageId && s.manifest).map((s) => ({ stage: s.id, kind: s.kind, key: s.key, digest: s.manifest!.output.digest, records: s.manifest!.output.records }));
  const info = {
    stage: stageId,
    kind: stage.kind,
    type: showType(stage.type),
    path: m.packed ? path : displayPath(path),
    key: m.key,
    digest: m.output.digest,
    records: m.output.records,
    bytes: m.output.bytes,
    schema: Object.fromEntries([...fields].map(([k, ts]) => [k, [...ts].join(" | ")])),
    counts: m.counts,
    ...(m.output.format === "tree" ? { files: m.output.tree } : {}),
    ...(m.summary ? { summary: m.summary } : {}),
    ...(tokens ? { tokens } : {}),
    made: { started_at: m.started_at, duration_ms: m.duration_ms, attempts: m.attempts, impl_version: m.impl_version },
    inputs: m.inputs,
    lineage,
    sample,
  };
  if (p.values.json) {
    process.stdout.write(JSON.stringify(info) + "\n");
    return 0;
  }
  const out: string[] = [];
  out.push(`${stageId} (${stage.kind}) : ${showType(stage.type)}${stage.doc ? `\n  ${stage.doc.replace(/\n/g, "\n  ")}` : ""}`);
  out.push(`artifact  ${info.path}`);
  out.push(`key       ${m.key}`);
  if (m.output.format === "tree") out.push(`files     ${m.output.tree?.files ?? "?"} files, ${(m.output.tree?.bytes ?? 0).toLocaleString("en-US")} bytes (a folder: load it with transformers, PEFT or vLLM from the path above)`);
  else out.push(`records   ${m.output.records ?? "(a value)"}; ${m.output.bytes.toLocaleString("en-US")} bytes`);
  out.push(...trainingSummary(m));
  if (tokens) {
    const { formatTokenSummary } = await import("../stages/train/token-summary.js");
    out.push(...("missing" in tokens ? [`tokens    ${tokens.missing}`] : formatTokenSummary(tokens, useColor(process.stdout))));
  }
  const rec = stage.type.k === "dataset" ? stage.type.of : undefined;
  out.push(`schema    ${rec ? showShape(rec) : showType(stage.type)}`);
  if (fields.size > 0) out.push(`observed  ${[...fields].map(([k, ts]) => `${k}: ${[...ts].join(" | ")}`).join(", ")}`);
  if (Object.keys(m.counts).length > 0) out.push(`counts    ${Object.entries(m.counts).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  out.push(`made      ${m.started_at} in ${(m.duration_ms / 1000).toFixed(2)}s (attempt ${m.attempts}, implementation v${m.impl_version})`);
  out.push("lineage");
  for (const l of lineage) out.push(`  ${l.stage} (${l.kind}) ${l.digest.slice(0, 12)}${l.records !== null ? `, ${l.records} records` : ""}`);
  out.push(`sample (${sample.length})`);
  for (const r of sample) out.push(`  ${JSON.stringify(r)}`);
  process.stdout.write(out.join("\n") + "\n");
  return 0;
}

/** The job a training stage's work folder records (job.json, while an itp trains it, or left by one that died). */
function runningJob(work: string): string | undefined {
  try {
    const r = JSON.parse(readFileSync(join(work, "job.json"), "utf8")) as { executor?: string; host?: string; handle?: { describe?: string; logFile?: string } };
    if (!r.handle?.describe) return undefined;
    return `${r.handle.describe}${r.host ? ` (submitted from ${r.host})` : ""}, log ${r.handle.logFile ? displayPath(r.handle.logFile) : join(work, "train.log")}`;
  } catch {
    return undefined;
  }
}

/** An evaluation's Report: its metrics table, or its examples. */
function showReport(stageId: string, value: unknown, counts: Readonly<Record<string, number>>, o: { examples: boolean; failed: boolean; task: string | undefined; limit: number; json: boolean }): number {
  if (!isReport(value)) throw new InputError(`the artifact of \`${stageId}\` is not a Report this version of itp can read`);
  if (o.task !== undefined && !value.tasks.some((t) => t.name === o.task)) throw new InputError(`\`${stageId}\` has no task \`${o.task}\` (its tasks: ${value.tasks.map((t) => t.name).join(", ")})`);
  if (!o.examples) {
    if (o.failed) throw new UsageError("--failed goes with --examples");
    if (o.json) process.stdout.write(JSON.stringify({ stage: stageId, model: value.model, template: value.template, tasks: value.tasks, counts }) + "\n");
    else process.stdout.write(`${stageId}: evaluation report\n${renderReport(value)}${Object.keys(counts).length > 0 ? `counts     ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ")}\n` : ""}`);
    return 0;
  }
  const all = selectExamples(value, { ...(o.task !== undefined ? { task: o.task } : {}), failed: o.failed });
  const list = all.slice(0, o.limit);
  if (o.json) {
    process.stdout.write(JSON.stringify({ stage: stageId, matching: all.length, examples: list }) + "\n");
    return 0;
  }
  const what = `${all.length} ${o.failed ? "failed " : ""}example${all.length === 1 ? "" : "s"}${o.task !== undefined ? ` of ${o.task}` : ""}`;
  process.stdout.write(`${stageId}: ${what}\n${renderExamples(list)}${all.length > list.length ? `... and ${all.length - list.length} more (--records N to see more)\n` : ""}`);
  return 0;
}

/**
 * The token artifact a training stage trained on (its summary names the key): its counts and decoded rows, or why
 * they cannot be shown (the artifact was collected or damaged since; the model is shown all the same).
 */
async function tokensOf(store: Store, m: Manifest, rows: number) {
  const key = m.summary?.["tokens_artifact"];
  if (typeof key !== "string") return undefined;
  const { storedTokenSummary } = await import("../stages/train/token-summary.js");
  try {
    return await storedTokenSummary(keyedArtifacts(store), key, rows);
  } catch (e) {
    if (e instanceof UserError) return { missing: e.message };
    throw e;
  }
}

/** A training stage's loss summary (from its manifest): steps, first, last and lowest loss, tokens/s, time. */
export function trainingSummary(m: Manifest): string[] {
  const s = m.summary as { steps?: number; loss_first?: number; loss_last?: number; loss_min?: number; tokens_per_s?: number; seconds?: number; tokens?: number; reward_accuracy?: number; resumed_from?: number | null } | undefined;
  if (!s || s.loss_last === undefined) return [];
  const f = (x: number | undefined) => (x === undefined ? "?" : x.toFixed(4));
  const parts = [`${s.steps ?? "?"} steps`, `loss ${f(s.loss_first)} -> ${f(s.loss_last)} (lowest ${f(s.loss_min)})`];
  if (s.tokens_per_s !== undefined) parts.push(`${Math.round(s.tokens_per_s).toLocaleString("en-US")} tokens/s`);
  if (s.seconds !== undefined) parts.push(`${s.seconds.toFixed(1)} s of training`);
  if (s.reward_accuracy !== undefined) parts.push(`reward accuracy ${s.reward_accuracy.toFixed(2)}`);
  return [`training  ${parts.join(", ")}`];
}

/** The records a stage dropped, with their reasons: what a filter removed, and why. */
async function showDropped(store: Store, m: Manifest, stageId: string, limit: number, reason: string | undefined, json: boolean): Promise<number> {
  const reasons = Object.entries(m.counts).filter(([k]) => k.startsWith("dropped: "));
  if (!m.dropped) {
    const total = reasons.reduce((a, [, n]) => a + n, 0);
    const why = total > 0 ? `it counted ${total} dropped record(s), but this implementation does not keep them` : "it dropped nothing";
    if (json) process.stdout.write(JSON.stringify({ stage: stageId, dropped: total, records: [] }) + "\n");
    else process.stdout.write(`${stageId}: ${why}\n`);
    return 0;
  }
  const path = store.objectPath(m.dropped.digest);
  const shown: { reason: string; detail?: string; record: unknown }[] = [];
  const input = m.dropped.lines_of === undefined ? undefined : new InputLines(store.objectPath(m.dropped.lines_of), `${stageId}'s input`);
  let matching = 0;
  for await (const line of readJsonl(path, `${stageId} (dropped records, ${path})`)) {
    const d = line as { reason: string; detail?: string; record?: unknown; lines?: [number, number][] };
    if (reason !== undefined && !d.reason.includes(reason)) continue;
    if (!d.lines) {
      if (matching++ < limit) shown.push(d as { reason: string; detail?: string; record: unknown });
      continue;
    }
    // Lines of the input, logged by place: read from it (only those shown).
    for (const [from, to] of d.lines) {
      const take = Math.max(0, Math.min(to - from, limit - matching));
      for (let i = from; i < from + take; i++) shown.push({ reason: d.reason, record: await input!.at(i) });
      matching += to - from;
    }
  }
  if (json) {
    process.stdout.write(JSON.stringify({ stage: stageId, dropped: m.dropped.records, matching, records: shown }) + "\n");
    return 0;
  }
  const out = [`${stageId}: ${m.dropped.records} dropped (${reasons.map(([k, n]) => `${k.slice("dropped: ".length)} ${n}`).join(", ")})`];
  if (reason !== undefined) out.push(`${matching} with a reason containing \`${reason}\``);
  for (const d of shown) out.push(`  [${d.reason}${d.detail ? `, ${d.detail}` : ""}] ${JSON.stringify(d.record)}`);
  if (matching > shown.length) out.push(`  ... and ${matching - shown.length} more (--records N to see more)`);
  process.stdout.write(out.join("\n") + "\n");
  return 0;
}

/** The records of a stored artifact by line number, read forward (a log names them in order). */
class InputLines {
  private lines: AsyncIterator<unknown> | undefined;
  private next = 0;

  constructor(
    private readonly path: string,
    private readonly what: string,
  ) {}

  async at(i: number): Promise<unknown> {
    if (!this.lines || i < this.next) {
      this.lines = readJsonl(this.path, `${this.what} (${this.path})`)[Symbol.asyncIterator]();
      this.next = 0;
    }
    for (;;) {
      const r = await this.lines.next();
      if (r.done) throw new InputError(`${this.what} (${this.path}) has no line ${i + 1}: the log of dropped records does not match it`);
      if (this.next++ === i) return r.value;
    }
  }
}
