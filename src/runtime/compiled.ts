import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { IrProgram, IrStage, Json } from "../core/ir.js";
import { lockPath } from "../compile/lock.js";
import type { ModuleGraph } from "../compile/modules.js";
import { SourceFile } from "../diagnostics/source.js";
import type { Registry } from "../stages/registry.js";
import type { Ty } from "../types/types.js";
import { canonicalJson, sha256 } from "../core/digest.js";
import type { Store } from "./store.js";

/**
 * The checked program of a recipe, kept in the store so that running an unchanged recipe again skips parsing and
 * checking (most of the time of a fully cached run of a large recipe). Valid only while every module it was
 * compiled from has the same content, with the same `--set` overrides and the same stage registry.
 */
interface CompiledEntry {
  readonly format: 1;
  readonly registry: string;
  readonly modules: { readonly path: string; readonly digest: string }[];
  readonly warnings: number;
  readonly stages: SerializedStage[];
}

interface SerializedStage {
  readonly id: string;
  readonly kind: string;
  readonly category: string;
  readonly keyword?: string;
  readonly params: { [k: string]: Json };
  readonly inputs: IrStage["inputs"];
  readonly type: unknown;
  readonly doc?: string;
  readonly file: string;
  readonly start: number;
  readonly end: number;
  readonly declared: boolean;
  readonly recipe?: string;
}

/** Set by the build (scripts/build.mjs): a digest of the sources. Unset when running from source (tests). */
declare const ITP_BUILD_ID: string | undefined;

/**
 * A fingerprint of the compiler: the build, and the registry's kinds and their versions. A new itp recompiles
 * rather than trust a program an older elaborator made.
 */
export function registryFingerprint(registry: Registry): string {
  const build = typeof ITP_BUILD_ID === "string" ? ITP_BUILD_ID : "source";
  return sha256(canonicalJson([build, [...registry.allStages()].map((k) => [k.name, k.version, k.output, k.inputs.map((i) => i.type)])]));
}

function entryPath(store: Store, recipe: string, sets: readonly string[]): string {
  return join(store.root, "compiled", `${sha256(canonicalJson([recipe, [...sets]])).slice(0, 40)}.json`);
}

export function loadCompiled(store: Store, recipe: string, sets: readonly string[], registry: Registry): { program: IrProgram; warnings: number } | undefined {
  let e: CompiledEntry;
  try {
    e = JSON.parse(readFileSync(entryPath(store, recipe, sets), "utf8")) as CompiledEntry;
  } catch {
    return undefined;
  }
  if (e.format !== 1 || e.registry !== registryFingerprint(registry)) return undefined;
  for (const m of e.modules) {
    // The lock file may be absent: then it must still be absent (a new lock changes the program's revisions).
    if (m.digest === ABSENT) {
      if (existsSync(m.path)) return undefined;
      continue;
    }
    try {
      if (sha256(readFileSync(m.path)) !== m.digest) return undefined;
    } catch {
      return undefined;
    }
  }
  const files = new Map<string, SourceFile>();
  const fileOf = (p: string) => files.get(p) ?? files.set(p, new SourceFile(p, "")).get(p)!;
  const stages = new Map<string, IrStage>();
  for (const s of e.stages) {
    stages.set(s.id, {
      id: s.id,
      kind: s.kind,
      category: s.category,
      ...(s.keyword ? { keyword: s.keyword as IrStage["keyword"] } : {}),
      params: s.params,
      inputs: s.inputs,
      type: decodeType(s.type),
      ...(s.doc ? { doc: s.doc } : {}),
      range: { file: fileOf(s.file), start: s.start, end: s.end },
      declared: s.declared,
      ...(s.recipe ? { recipe: s.recipe } : {}),
    });
  }
  return { program: { entry: recipe, stages }, warnings: e.warnings };
}

const ABSENT = "absent";

/** The recipe's lock file (`itp lock`), which sets the revisions of its hub reads: part of what a program is compiled from. */
function lockDigest(recipe: string): { path: string; digest: string } {
  const path = lockPath(recipe);
  try {
    return { path, digest: sha256(readFileSync(path)) };
  } catch {
    return { path, digest: ABSENT };
  }
}

export function saveCompiled(store: Store, recipe: string, sets: readonly string[], registry: Registry, modules: ModuleGraph, program: IrProgram, warnings: number): void {
  const entry: CompiledEntry = {
    format: 1,
    registry: registryFingerprint(registry),
    modules: [...modules.modules.values()].map((m) => ({ path: m.path, digest: sha256(Buffer.from(m.ast.file.text, "utf8")) })).concat([lockDigest(recipe)]),
    warnings,
    stages: [...program.stages.values()].map((s) => ({
      id: s.id,
      kind: s.kind,
      category: s.category,
      ...(s.keyword ? { keyword: s.keyword } : {}),
      params: s.params,
      inputs: s.inputs,
      type: encodeType(s.type),
      ...(s.doc ? { doc: s.doc } : {}),
      file: s.range.file.path,
      start: s.range.start,
      end: s.range.end,
      declared: s.declared,
      ...(s.recipe ? { recipe: s.recipe } : {}),
    })),
  };
  const dir = join(store.root, "compiled");
  mkdirSync(dir, { recursive: true });
  const path = entryPath(store, recipe, sets);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(entry));
  renameSync(tmp, path);
}

function encodeType(t: Ty): unknown {
  switch (t.k) {
    case "record":
      return { k: "record", name: t.name, open: t.open, fields: [...t.fields].map(([n, f]) => [n, encodeType(f.ty), f.optional]) };
    case "list":
    case "dataset":
      return { k: t.k, of: encodeType(t.of) };
    case "union":
      return { k: "union", options: t.options.map(encodeType) };
    default:
      return t;
  }
}

function decodeType(j: unknown): Ty {
  const t = j as { k: string; of?: unknown; options?: unknown[]; fields?: [string, unknown, boolean][]; name?: string; open?: boolean };
  switch (t.k) {
    case "record":
      return { k: "record", name: t.name!, open: t.open ?? false, fields: new Map((t.fields ?? []).map(([n, ty, optional]) => [n, { ty: decodeType(ty), optional }])) };
    case "list":
    case "dataset":
      return { k: t.k, of: decodeType(t.of) } as Ty;
    case "union":
      return { k: "union", options: (t.options ?? []).map(decodeType) };
    default:
      return j as Ty;
  }
}
