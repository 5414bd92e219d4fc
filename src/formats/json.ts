import { readFile } from "node:fs/promises";
import { UserError } from "../core/errors.js";
import type { RecordValue } from "../core/records.js";
import { passes, reportBad, type RecordReadOptions } from "./bad-record.js";

export interface JsonReadOptions extends RecordReadOptions {
  /** Member of the top-level object that holds the array; default: the file is the array. */
  readonly key?: string;
}

/** Line and column (from 1) of a character offset, for a parse error that names a position. */
function lineCol(text: string, pos: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf("\n"); i >= 0 && i < pos; i = text.indexOf("\n", i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return `${line}:${pos - lineStart + 1}`;
}

/** What most likely went wrong when a .json file does not parse, judged from where the parser stopped. */
function parseHint(text: string, msg: string, pos: number | undefined): string | undefined {
  if (/Unexpected end of JSON input/.test(msg) || (pos !== undefined && pos >= text.trimEnd().length)) return "the file ends before its JSON does: it looks truncated (an interrupted download or copy?)";
  if (/after JSON/.test(msg)) {
    const first = text.trimStart().split("\n", 1)[0]!;
    try {
      JSON.parse(first);
      return "it holds one JSON value per line: a JSON Lines file is read with jsonl(...)";
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Records of a JSON file holding an array of objects (or an object whose member `key` is that array). The whole
 * file is parsed at once: JSON has no record boundaries to stream by. A file that does not parse fails whatever
 * `onBad` says; an element that is not an object, or fails the check, is a bad record (`element N`, from 0).
 */
export async function* readJsonRecords(path: string, shown: string, opts: JsonReadOptions = {}): AsyncGenerator<RecordValue> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new UserError(`cannot read ${shown} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, "paths are relative to the recipe's folder");
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const pos = /at position (\d+)/.exec(msg);
    throw new UserError(`${shown}${pos ? `:${lineCol(text, Number(pos[1]))}` : ""}: not valid JSON (${pos ? msg.slice(0, pos.index).replace(/ in JSON $/, "") : msg})`, parseHint(text, msg, pos ? Number(pos[1]) : undefined));
  }
  const key = opts.key;
  const arr = key !== undefined && v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : v;
  if (!Array.isArray(arr)) throw new UserError(`${shown}: expected an array of records${key ? ` under \`${key}\`` : ""}`, key ? undefined : "set `key` to the member that holds the array");
  for (let element = 0; element < arr.length; element++) {
    const r: unknown = arr[element];
    if (r === null || typeof r !== "object" || Array.isArray(r)) {
      reportBad({ file: shown, at: { element }, problem: "not a record (a JSON object)", reason: "not a JSON object", raw: JSON.stringify(r) ?? "" }, opts.onBad);
      continue;
    }
    if (passes(r as RecordValue, shown, { element }, opts)) yield r as RecordValue;
  }
}
