/**
 * The subset of YAML that dataset cards use for their `configs:` header: block mappings and sequences (a sequence
 * may sit at its key's indentation), flow `[...]` / `{...}` collections (over several lines too), plain, single-
 * and double-quoted scalars, comments, and simple `|` / `>` block scalars (comments and blank lines are taken out
 * of them too). Anchors, aliases and tags are reported as errors, never guessed at. Plain scalars stay strings
 * except true/false/null: configuration names and paths are all this reader is for.
 */
export type Yaml = string | boolean | null | Yaml[] | { [k: string]: Yaml };

export class YamlError extends Error {
  constructor(
    readonly line: number,
    problem: string,
  ) {
    super(`line ${line}: ${problem}`);
  }
}

interface Line {
  readonly indent: number;
  readonly text: string;
  readonly no: number;
}

export function parseYaml(source: string, firstLine = 1): Yaml {
  const lines: Line[] = [];
  source.split(/\r?\n/).forEach((raw, i) => {
    if (/^\s*\t/.test(raw)) throw new YamlError(firstLine + i, "tabs are not allowed for indentation");
    const text = stripComment(raw).trimEnd();
    if (text.trim() === "") return;
    lines.push({ indent: text.length - text.trimStart().length, text: text.trimStart(), no: firstLine + i });
  });
  const p = new Parser(lines);
  if (lines.length === 0) return null;
  const v = p.node(lines[0]!.indent);
  if (p.i < lines.length) throw new YamlError(lines[p.i]!.no, "unexpected indentation");
  return v;
}

/** The line without its comment: a `#` at the start or after a blank, outside quotes. */
function stripComment(s: string): string {
  let q: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q) {
      if (c === "\\" && q === '"') i++;
      else if (c === q) q = undefined;
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s[{,:-]/.test(s[i - 1]!)) q = c;
    } else if (c === "#" && (i === 0 || /\s/.test(s[i - 1]!))) return s.slice(0, i);
  }
  return s;
}

const isSeqItem = (t: string) => t === "-" || t.startsWith("- ");

/** `key: rest` or `key:` at the start of the text (key plain or quoted); undefined when the text is no entry. */
function splitKey(t: string, no: number): { key: string; rest: string } | undefined {
  if (t.startsWith('"') || t.startsWith("'")) {
    const { value, end } = quoted(t, 0, no);
    const m = /^\s*:(\s+|$)/.exec(t.slice(end));
    return m ? { key: value, rest: t.slice(end + m[0].length).trim() } : undefined;
  }
  if (/^[[{]/.test(t)) return undefined;
  const m = /^([^:#]*?[^\s:]|[^:#]):(\s+|$)/.exec(t);
  return m ? { key: m[1]!.trim(), rest: t.slice(m[0].length).trim() } : undefined;
}

function quoted(s: string, at: number, no: number): { value: string; end: number } {
  const q = s[at]!;
  let out = "";
  for (let i = at + 1; i < s.length; i++) {
    const c = s[i]!;
    if (q === "'" && c === "'") {
      if (s[i + 1] === "'") {
        out += "'";
        i++;
        continue;
      }
      return { value: out, end: i + 1 };
    }
    if (q === '"' && c === '"') return { value: out, end: i + 1 };
    if (q === '"' && c === "\\") {
      const e = s[++i];
      const map: Record<string, string> = { n: "\n", t: "\t", r: "\r", "0": "\0", '"': '"', "\\": "\\", "/": "/", " ": " " };
      if (e === "u" || e === "x") {
        const n = e === "u" ? 4 : 2;
        out += String.fromCharCode(parseInt(s.slice(i + 1, i + 1 + n), 16));
        i += n;
      } else if (e !== undefined && e in map) out += map[e];
      else throw new YamlError(no, `unknown escape \\${e ?? ""}`);
      continue;
    }
    out += c;
  }
  throw new YamlError(no, "unterminated quoted string");
}

function plain(t: string, no: number): Yaml {
  if (/^[&*!|>%@`]/.test(t)) throw new YamlError(no, `unsupported YAML (anchors, aliases, tags): ${t.slice(0, 40)}`);
  if (/^(true|True|TRUE)$/.test(t)) return true;
  if (/^(false|False|FALSE)$/.test(t)) return false;
  if (/^(null|Null|NULL|~)$/.test(t)) return null;
  return t;
}

class Parser {
  i = 0;
  constructor(private readonly lines: Line[]) {}

  node(indent: number): Yaml {
    const l = this.lines[this.i]!;
    if (isSeqItem(l.text)) return this.sequence(l.indent);
    if (splitKey(l.text, l.no)) return this.mapping(l.indent);
    this.i++;
    return this.inline(l.text, l, indent);
  }

  private sequence(indent: number): Yaml[] {
    const out: Yaml[] = [];
    for (let l = this.lines[this.i]; l && l.indent === indent && isSeqItem(l.text); l = this.lines[this.i]) {
      const rest = l.text.slice(1).trimStart();
      if (rest === "") {
        this.i++;
        const next = this.lines[this.i];
        out.push(next && next.indent > indent ? this.node(next.indent) : null);
      } else {
        // `- key: v` opens a mapping whose other keys line up with `key`: re-read the item as that line.
        const at = indent + (l.text.length - rest.length);
        this.lines[this.i] = { indent: at, text: rest, no: l.no };
        out.push(this.node(at));
      }
    }
    return out;
  }

  private mapping(indent: number): { [k: string]: Yaml } {
    const out: { [k: string]: Yaml } = {};
    for (let l = this.lines[this.i]; l && l.indent === indent && !isSeqItem(l.text); l = this.lines[this.i]) {
      const kv = splitKey(l.text, l.no);
      if (!kv) throw new YamlError(l.no, `expected \`key: value\`, found ${l.text.slice(0, 40)}`);
      if (Object.hasOwn(out, kv.key)) throw new YamlError(l.no, `duplicate key ${kv.key}`);
      this.i++;
      if (kv.rest !== "") {
        out[kv.key] = this.inline(kv.rest, l, indent);
        continue;
      }
      const next = this.lines[this.i];
      if (next && (next.indent > indent || (next.indent === indent && isSeqItem(next.text)))) out[kv.key] = this.node(next.indent);
      else out[kv.key] = null;
    }
    return out;
  }

  /** A value written on the line itself: a scalar, a flow collection (maybe continued on later lines) or a block scalar. */
  private inline(text: string, l: Line, indent: number): Yaml {
    if (/^[|>][+-]?$/.test(text)) return this.blockScalar(text, indent);
    if (text.startsWith("[") || text.startsWith("{")) {
      let t = text;
      while (!balanced(t) && this.i < this.lines.length) t += " " + this.lines[this.i++]!.text;
      const f = new Flow(t, l.no);
      const v = f.value();
      f.end();
      return v;
    }
    if (text.startsWith('"') || text.startsWith("'")) {
      const { value, end } = quoted(text, 0, l.no);
      if (text.slice(end).trim() !== "") throw new YamlError(l.no, `unexpected text after a quoted string: ${text.slice(end).trim()}`);
      return value;
    }
    // A plain scalar may continue on more-indented lines (folded with spaces).
    let t = text;
    for (let n = this.lines[this.i]; n && n.indent > indent && !splitKey(n.text, n.no) && !isSeqItem(n.text); n = this.lines[this.i]) {
      t += " " + n.text;
      this.i++;
    }
    return plain(t, l.no);
  }

  private blockScalar(indicator: string, indent: number): string {
    const parts: string[] = [];
    while (this.i < this.lines.length && this.lines[this.i]!.indent > indent) parts.push(this.lines[this.i++]!.text);
    const body = indicator.startsWith("|") ? parts.join("\n") : parts.join(" ");
    return indicator.endsWith("-") ? body : body + "\n";
  }
}

function balanced(t: string): boolean {
  let depth = 0;
  let q: string | undefined;
  for (let i = 0; i < t.length; i++) {
    const c = t[i]!;
    if (q) {
      if (c === "\\" && q === '"') i++;
      else if (c === q) q = undefined;
    } else if (c === '"' || c === "'") q = c;
    else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") depth--;
  }
  return depth <= 0;
}

/** Flow collections: `[a, "b", {k: v}]`. */
class Flow {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly no: number,
  ) {}

  private ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }

  end(): void {
    this.ws();
    if (this.i < this.s.length) throw new YamlError(this.no, `unexpected text after a flow collection: ${this.s.slice(this.i, this.i + 40)}`);
  }

  value(): Yaml {
    this.ws();
    const c = this.s[this.i];
    if (c === "[") {
      this.i++;
      const out: Yaml[] = [];
      for (;;) {
        this.ws();
        if (this.s[this.i] === "]") return this.i++, out;
        out.push(this.value());
        this.ws();
        if (this.s[this.i] === ",") this.i++;
        else if (this.s[this.i] !== "]") throw new YamlError(this.no, "expected `,` or `]` in a flow sequence");
      }
    }
    if (c === "{") {
      this.i++;
      const out: { [k: string]: Yaml } = {};
      for (;;) {
        this.ws();
        if (this.s[this.i] === "}") return this.i++, out;
        const k = this.value();
        this.ws();
        if (this.s[this.i] !== ":") throw new YamlError(this.no, "expected `:` in a flow mapping");
        this.i++;
        out[String(k)] = this.value();
        this.ws();
        if (this.s[this.i] === ",") this.i++;
        else if (this.s[this.i] !== "}") throw new YamlError(this.no, "expected `,` or `}` in a flow mapping");
      }
    }
    if (c === '"' || c === "'") {
      const { value, end } = quoted(this.s, this.i, this.no);
      this.i = end;
      return value;
    }
    const run = /^[^,[\]{}]*/.exec(this.s.slice(this.i))![0];
    // In a flow mapping a plain key ends at `: ` (a `:` inside a word, as in a URL, does not end it).
    const cut = /:(\s|$)/.exec(run);
    const raw = cut ? run.slice(0, cut.index) : run;
    this.i += raw.length;
    if (raw.trim() === "") throw new YamlError(this.no, "empty value in a flow collection");
    return plain(raw.trim(), this.no);
  }
}

/**
 * The YAML header of a Markdown file (between a first line `---` and the next `---`), or undefined; `line` is the
 * file line of its first YAML line.
 */
export function frontMatter(markdown: string): { yaml: string; line: number } | undefined {
  const m = /^\uFEFF?---[ \t]*\r?\n([\s\S]*?)\r?\n(---|\.\.\.)[ \t]*(\r?\n|$)/.exec(markdown);
  if (m) return { yaml: m[1]!, line: 2 };
  return /^\uFEFF?---[ \t]*\r?\n(---|\.\.\.)[ \t]*(\r?\n|$)/.test(markdown) ? { yaml: "", line: 2 } : undefined;
}
