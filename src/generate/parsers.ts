/**
 * Response parsers: how a model's answer becomes records. Each returns the records it found (possibly none) or a
 * reason why the answer could not be read, which the stage counts and keeps among its dropped records.
 */
export type Parsed = { readonly records: Record<string, unknown>[] } | { readonly error: string };

/** The whole answer, trimmed, as one field. An empty answer is an error (a model that said nothing). */
export function parseText(answer: string, field: string): Parsed {
  const t = answer.trim();
  return t ? { records: [{ [field]: t }] } : { error: "empty answer" };
}

const ITEM = /^\s*(?:(\d{1,4})\s*[.):]|[-*•])\s+(.*)$/;

/**
 * A numbered (or bulleted) list: one record per item. An item runs until the next item; continuation lines are
 * kept with it. Text before the first item (a preamble such as "Here are ten tasks:") is ignored.
 */
export function parseNumberedList(answer: string, field: string): Parsed {
  const items: string[] = [];
  let current: string[] | undefined;
  for (const line of answer.split(/\r?\n/)) {
    const m = ITEM.exec(line);
    if (m) {
      if (current) items.push(current.join("\n").trim());
      current = [m[2]!];
    } else if (current) current.push(line);
  }
  if (current) items.push(current.join("\n").trim());
  const kept = items.filter((s) => s.length > 0);
  return kept.length > 0 ? { records: kept.map((s) => ({ [field]: s })) } : { error: "no list items in the answer" };
}

/**
 * JSON: an object (one record) or an array of objects (one each). The JSON may sit inside a ```json fence or after
 * some prose: the first `{` or `[` that starts a value that parses to the end of its brackets is taken.
 */
export function parseJsonAnswer(answer: string): Parsed {
  const fenced = /```(?:json)?\s*\n([\s\S]*?)```/.exec(answer);
  const text = fenced ? fenced[1]! : answer;
  const v = firstJsonValue(text);
  if (v === undefined) return { error: "no JSON object or array in the answer" };
  const items = Array.isArray(v) ? v : [v];
  const records = items.filter((x): x is Record<string, unknown> => x !== null && typeof x === "object" && !Array.isArray(x));
  if (records.length === 0) return { error: "the JSON in the answer holds no objects" };
  return { records };
}

function firstJsonValue(text: string): unknown {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== "{" && c !== "[") continue;
    const end = matchingBracket(text, i);
    if (end < 0) continue;
    try {
      return JSON.parse(text.slice(i, end + 1));
    } catch {
      // not JSON from here: try the next bracket
    }
  }
  return undefined;
}

/** Index of the bracket closing the one at `start`, skipping strings; -1 if it never closes. */
function matchingBracket(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Every match of a regular expression: its named groups become the record's fields (trimmed). */
export function parseRegex(answer: string, pattern: RegExp): Parsed {
  const re = new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g");
  const records: Record<string, unknown>[] = [];
  for (const m of answer.matchAll(re)) {
    const groups = m.groups ?? {};
    const rec: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(groups)) if (v !== undefined) rec[k] = v.trim();
    if (Object.keys(rec).length > 0) records.push(rec);
  }
  return records.length > 0 ? { records } : { error: "the pattern matches nothing in the answer" };
}

/** A score on a 1..scale rubric: the last "Score: N" (or "N/scale", or a lone number) in the answer. */
export function parseScore(answer: string, scale: number): number | undefined {
  const patterns = [/score\s*[:=]?\s*(\d+(?:\.\d+)?)/gi, /(\d+(?:\.\d+)?)\s*\/\s*\d+/g, /^\s*(\d+(?:\.\d+)?)\s*$/gm];
  for (const re of patterns) {
    const all = [...answer.matchAll(re)];
    if (all.length === 0) continue;
    const v = Number(all[all.length - 1]![1]);
    if (v >= 1 && v <= scale) return v;
  }
  return undefined;
}
