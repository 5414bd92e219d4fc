/** Decoding of literal token text into values. Pure; the lexer already guaranteed the shapes. */

export function decodeString(raw: string): string {
  const body = raw.slice(1, -1);
  if (!body.includes("\\")) return body;
  return body.replace(/\\(u\{([0-9A-Fa-f]{1,6})\}|u([0-9A-Fa-f]{4})|.)/g, (_m, esc: string, braced?: string, four?: string) => {
    if (braced !== undefined) return String.fromCodePoint(Math.min(parseInt(braced, 16), 0x10ffff));
    if (four !== undefined) return String.fromCharCode(parseInt(four, 16));
    switch (esc) {
      case "n":
        return "\n";
      case "t":
        return "\t";
      case "r":
        return "\r";
      case "b":
        return "\b";
      case "f":
        return "\f";
      default:
        return esc;
    }
  });
}

/** Canonical source form of a string value. */
export function encodeString(value: string): string {
  let out = '"';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (c < 0x20 || c === 0x7f) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return out + '"';
}

/**
 * A raw string: no escapes; a newline right after the opening quotes is dropped, so is a last line holding only
 * indentation, and the indentation common to all non-blank lines is removed (prompts can be indented with the code).
 */
export function decodeRawString(raw: string): string {
  let body = raw.slice(3, -3);
  if (body.startsWith("\r\n")) body = body.slice(2);
  else if (body.startsWith("\n")) body = body.slice(1);
  const lines = body.split("\n");
  if (lines.length > 1 && /^[ \t]*$/.test(lines[lines.length - 1]!)) lines[lines.length - 1] = "";
  let common: number | undefined;
  for (const l of lines) {
    if (!/\S/.test(l)) continue;
    const ind = /^[ \t]*/.exec(l)![0].length;
    common = common === undefined ? ind : Math.min(common, ind);
  }
  const out = lines.map((l) => (common ? l.slice(Math.min(common, /^[ \t]*/.exec(l)![0].length)) : l)).join("\n");
  return out;
}

export function decodeNumber(raw: string): number {
  return Number(raw.includes("_") ? raw.replace(/_/g, "") : raw);
}

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function decodeDuration(raw: string): number {
  const m = /^(-?[0-9_]+(?:\.[0-9_]+)?)(ms|s|m|h|d)$/.exec(raw)!;
  return Math.round(decodeNumber(m[1]!) * unitMs[m[2]!]!);
}
