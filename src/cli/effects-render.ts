import { effectsDiffEmpty, type Effects, type EffectsDiff, type FileEffect, type HostEffect } from "../compile/effects.js";
import { displayPath } from "./host.js";

/** `itp plan`'s effects section: one line per file, host, name and GPU stage, outside paths marked. */
export function renderEffects(e: Effects): string[] {
  const out: string[] = ["effects:"];
  const file = (f: FileEffect) => {
    const shown = f.resolved === null ? f.path : f.path === f.resolved || displayPath(f.resolved) === f.path ? f.path : `${f.path} (${displayPath(f.resolved)})`;
    const mark = f.resolved === null ? "  [unknown: env not set]" : f.through_symlink ? "  [OUTSIDE the recipe's folder, through a symlink]" : f.outside ? "  [OUTSIDE the recipe's folder]" : "";
    return `${shown}${mark}  <- ${f.by.join(", ")}`;
  };
  const section = (title: string, lines: string[]) => {
    if (lines.length === 0) out.push(`  ${title}: none`);
    else {
      out.push(`  ${title}:`);
      for (const l of lines) out.push(`    ${l}`);
    }
  };
  section("writes", e.writes.map(file));
  section("reads", e.reads.map(file));
  section(
    "hosts",
    e.hosts.map((h) => `${h.host ?? h.url} (${h.what === "hub" ? "the hub" : `model endpoint ${h.url}: ${h.models.join(", ")}`})  <- ${h.stages.length > 0 ? h.stages.join(", ") : "no stage to run"}`),
  );
  section("environment variables (names only)", e.env.map((n) => `${n.name}  <- ${n.by.join(", ")}`));
  section("secrets (names only)", e.secrets.map((n) => `${n.name}  <- ${n.by.join(", ")}`));
  section(
    "GPUs",
    e.gpus.stages.map((g) => `${g.stage} (${g.kind}): ${g.gpus === 0 ? "CPU" : `${g.gpus} GPU${g.gpus === 1 ? "" : "s"}`}, ${g.gpu_hours === null ? "GPU-hours not estimated" : `~${g.gpu_hours} GPU-hours`} (${g.basis})`),
  );
  if (e.gpus.stages.length > 0) out.push(`    total: ${e.gpus.total_gpu_hours === null ? "GPU-hours not known for every stage" : `~${e.gpus.total_gpu_hours} GPU-hours`}, at most ${e.gpus.total_gpus} GPU${e.gpus.total_gpus === 1 ? "" : "s"} per job`);
  section(
    "generation cost (estimate, in the models' price unit)",
    e.cost.stages.map((c) => `${c.stage} (${c.model}): ${c.cost === null ? "not estimated" : `~${c.cost}`}: ${c.basis}`),
  );
  if (e.cost.stages.length > 0) out.push(`    total: ${e.cost.total === null ? "not known" : `~${e.cost.total}${e.cost.partial ? " (stages not estimated left out)" : ""}`}`);
  section("commands run (besides itp's own)", e.commands.map((c) => `${c.command}  <- ${c.stage}`));
  return out;
}

/** `itp diff`'s first lines: the changes in what the recipe may do (new hosts, paths outside its folder). */
export function renderEffectsDiff(d: EffectsDiff): string[] {
  if (effectsDiffEmpty(d)) return [];
  const out = ["effects:"];
  const host = (h: HostEffect) => `${h.host ?? h.url} (${h.what === "hub" ? "the hub" : `model endpoint ${h.url}: ${h.models.join(", ")}`})${h.stages.length > 0 ? `  <- ${h.stages.join(", ")}` : ""}`;
  // Paths outside the folder are shown absolute: where they lead is the point.
  const file = (f: FileEffect) => `${f.resolved ?? f.path}  <- ${f.by.join(", ")}`;
  for (const h of d.hosts.added) out.push(`+ host ${host(h)}`);
  for (const h of d.hosts.removed) out.push(`- host ${host(h)}`);
  for (const f of d.writes_outside.added) out.push(`+ write outside the recipe's folder: ${file(f)}`);
  for (const f of d.writes_outside.removed) out.push(`- write outside the recipe's folder: ${file(f)}`);
  for (const f of d.reads_outside.added) out.push(`+ read outside the recipe's folder: ${file(f)}`);
  for (const f of d.reads_outside.removed) out.push(`- read outside the recipe's folder: ${file(f)}`);
  for (const n of d.env.added) out.push(`+ environment variable ${n}`);
  for (const n of d.env.removed) out.push(`- environment variable ${n}`);
  for (const n of d.secrets.added) out.push(`+ secret ${n}`);
  for (const n of d.secrets.removed) out.push(`- secret ${n}`);
  for (const c of d.commands.added) out.push(`+ command ${c.command}  <- ${c.stage}`);
  for (const c of d.commands.removed) out.push(`- command ${c.command}  <- ${c.stage}`);
  if (d.gpus) out.push(`~ GPUs per job: at most ${d.gpus.old} -> ${d.gpus.new}`);
  return out;
}
