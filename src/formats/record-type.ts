import type { RecordValue } from "../core/records.js";
import { builtinRecordTypes, nativeConverters } from "../types/builtins.js";
import { recordOf, show, type Ty } from "../types/types.js";

/**
 * Checking records against the record type a source declares (`dataset seeds: Instruction = jsonl(...)`), as they
 * are read: the checker trusts the annotation, so this is where a file that does not hold what it says is caught,
 * at the record, before any stage downstream sees it.
 *
 * Records are structural, as in the checker: every required field must be present and not null, present fields
 * must have their type, other fields are allowed. An optional field may be missing or null (a Parquet column of
 * a field some records lack reads back as null).
 */

/** What is wrong with a record: a sentence for the message, and a short reason for counts. */
export interface RecordProblem {
  readonly problem: string;
  readonly reason: string;
  /** When the record has the shape of a type a built-in converter takes: which type and converter. */
  readonly hint?: string;
}

export type RecordCheck = (r: RecordValue) => RecordProblem | undefined;

const article = (t: string) => (/^[aeiou]/i.test(t) ? `an ${t}` : `a ${t}`);

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "number") return Number.isInteger(v) ? "an integer" : "a number";
  if (typeof v === "object") return "an object";
  return article(typeof v === "boolean" ? "boolean" : typeof v);
}

function expected(t: Ty): string {
  if (t.k === "scalar") return t.name === "float" ? "a number" : t.name === "int" ? "an integer" : t.name === "bool" ? "a boolean" : article(t.name);
  if (t.k === "record") return `${article(t.name)} object`;
  return article(show(t));
}

type RecordTy = Ty & { k: "record" };

/** The first mismatch between a value and a type: where (a field path), what was wanted, what was found. */
interface Mismatch {
  readonly path: string;
  readonly want: string;
  readonly found: string;
  /** For a missing (or null) field: the record type that requires it. */
  readonly owner?: RecordTy;
}

function mismatch(v: unknown, t: Ty, path: string): Mismatch | undefined {
  switch (t.k) {
    case "scalar": {
      const ok =
        t.name === "any" ||
        (t.name === "string" && typeof v === "string") ||
        (t.name === "int" && Number.isInteger(v)) ||
        (t.name === "float" && typeof v === "number") ||
        (t.name === "bool" && typeof v === "boolean") ||
        (t.name === "duration" && (typeof v === "string" || typeof v === "number"));
      return ok ? undefined : { path, want: expected(t), found: describe(v) };
    }
    case "list": {
      if (!Array.isArray(v)) return { path, want: article(show(t)), found: describe(v) };
      for (let i = 0; i < v.length; i++) {
        const m = mismatch(v[i], t.of, `${path}[${i}]`);
        if (m) return m;
      }
      return undefined;
    }
    case "record": {
      if (v === null || typeof v !== "object" || Array.isArray(v)) return { path, want: expected(t), found: describe(v) };
      for (const [name, f] of t.fields) {
        const x = (v as RecordValue)[name];
        const at = path ? `${path}.${name}` : name;
        if (x === undefined || x === null) {
          if (f.optional) continue;
          return { path: at, want: expected(f.ty), found: x === null ? "null" : "missing", owner: t };
        }
        const m = mismatch(x, f.ty, at);
        if (m) return m;
      }
      return undefined;
    }
    case "union":
      return t.options.some((o) => !mismatch(v, o, path)) ? undefined : { path, want: t.options.map(expected).join(" or "), found: describe(v) };
    default:
      return undefined;
  }
}

const fieldList = (t: RecordTy) => [...t.fields].map(([n, f]) => `${n}${f.optional ? "?" : ""}`).join(", ");

/**
 * A check for records of a dataset type, or undefined when there is nothing to check (an open record such as
 * `Json`, the type of an unannotated source).
 */
export function recordCheck(datasetType: Ty | undefined): RecordCheck | undefined {
  const t = datasetType && recordOf(datasetType);
  if (!t || t.k !== "record" || t.open || t.fields.size === 0) return undefined;
  return (r) => {
    const m = mismatch(r, t, "");
    if (!m) return undefined;
    // The reason leaves out list indexes, so one count covers every record with the same fault.
    const field = m.path.replace(/\[\d+\]/g, "[]");
    const hint = nativeHint(r, t.name);
    if (m.owner) return { problem: `field \`${m.path}\` is ${m.found} (${m.owner.name} needs ${fieldList(m.owner)})`, reason: `field ${field} ${m.found}`, ...(hint ? { hint } : {}) };
    return { problem: `field \`${m.path}\` is ${m.found} (${t.name} needs ${m.want} there)`, reason: `field ${field} not ${m.want}`, ...(hint ? { hint } : {}) };
  };
}

/** A record of the wrong type that has the shape of one a built-in converter turns into the wanted type. */
function nativeHint(r: RecordValue, wanted: string): string | undefined {
  for (const n of nativeConverters) {
    const ty = n.to === wanted ? builtinRecordTypes.get(n.native) : undefined;
    if (ty && !mismatch(r, ty, "")) return `these records have the shape of ${n.native}: declare the source as \`${n.native}\` and convert it with \`${n.converter}\` (e.g. \`dataset raw: ${n.native} = jsonl(...)\`, then \`${n.converter}(raw)\`)`;
  }
  return undefined;
}
