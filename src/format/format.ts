import type * as A from "../syntax/ast.js";
import { encodeString } from "../syntax/literals.js";

/** Lines longer than this are broken: argument lists, lists and pipelines go one item per line. */
export const MAX_WIDTH = 100;
const INDENT = "  ";

/**
 * The canonical text of a module. The layout depends only on the syntax tree and the comments (never on the
 * original whitespace), so formatting is idempotent and re-spaced files format to the same text.
 * Every comment is kept: own-line comments before the item that follows them, trailing ones after their line.
 */
export function format(mod: A.Module): string {
  return new Printer(mod).print();
}

class Printer {
  private readonly lines: string[] = [];
  private readonly comments: A.Comment[];
  private next = 0;
  private depth = 0;
  private readonly text: string;

  constructor(private readonly mod: A.Module) {
    this.comments = [...mod.comments].sort((a, b) => a.start - b.start);
    this.text = mod.file.text;
  }

  print(): string {
    const m = this.mod;
    for (const imp of m.imports) {
      this.ownLineComments(imp.start);
      this.emit(this.importText(imp), imp.end);
    }
    m.decls.forEach((d, i) => {
      if (i > 0 || m.imports.length > 0) this.blank();
      this.ownLineComments(d.start);
      this.decl(d);
    });
    if (this.next < this.comments.length && (m.decls.length > 0 || m.imports.length > 0)) this.blank();
    this.ownLineComments(Infinity);
    while (this.lines.length > 0 && this.lines[this.lines.length - 1] === "") this.lines.pop();
    return this.lines.length === 0 ? "" : this.lines.join("\n") + "\n";
  }

  // ---------- lines and comments ----------

  private pad(): string {
    return INDENT.repeat(this.depth);
  }

  private blank(): void {
    if (this.lines.length > 0 && this.lines[this.lines.length - 1] !== "") this.lines.push("");
  }

  /** Emit a line; comments that followed `end` on the same source line go after it. */
  private emit(line: string, end: number): void {
    this.lines.push(this.pad() + line);
    this.trailing(end);
  }

  private trailing(end: number): void {
    while (this.next < this.comments.length) {
      const c = this.comments[this.next]!;
      // Only comments separated from the line's last token by spaces (or a comma) trail it.
      if (c.start < end || !/^[ \t,]*$/.test(this.text.slice(end, c.start))) break;
      this.lines[this.lines.length - 1] += ` ${c.text.trimEnd()}`;
      this.next++;
    }
  }

  private ownLineComments(before: number): void {
    while (this.next < this.comments.length && this.comments[this.next]!.start < before) {
      const c = this.comments[this.next]!;
      this.lines.push(this.pad() + c.text.trimEnd());
      this.next++;
      // A blank line after a comment (a file header, a section title) detaches it from what follows: kept.
      if (this.depth === 0 && /^[ \t\r]*\n[ \t\r]*\n/.test(this.text.slice(c.end))) this.blank();
    }
  }

  private hasComment(start: number, end: number): boolean {
    for (let i = this.next; i < this.comments.length; i++) {
      const c = this.comments[i]!;
      if (c.start >= end) return false;
      if (c.start >= start) return true;
    }
    return false;
  }

  // ---------- declarations ----------

  private importText(imp: A.Import): string {
    const path = imp.std ? imp.path : encodeString(imp.path);
    const names = imp.names.map((n) => (n.alias ? `${n.name.text} as ${n.alias.text}` : n.name.text)).join(", ");
    return `import ${path} { ${names} }`;
  }

  private decl(d: A.Decl): void {
    switch (d.type) {
      case "TypeDecl": {
        if (d.fields.length === 0) {
          this.emit(`type ${d.name.text} = {}`, d.end);
          return;
        }
        this.lines.push(`${this.pad()}type ${d.name.text} = {`);
        this.depth++;
        for (const f of d.fields) {
          this.ownLineComments(f.start);
          this.emit(`${f.name.text}${f.optional ? "?" : ""}: ${typeText(f.fieldType)}`, f.end);
        }
        this.ownLineComments(d.end - 1);
        this.depth--;
        this.emit("}", d.end);
        return;
      }
      case "RecipeDecl":
        return this.recipe(d);
      case "StageDecl":
        return this.stage(d);
      case "RepeatDecl":
        return this.repeat(d);
    }
  }

  private repeat(r: A.RepeatDecl): void {
    const count = this.inline(r.count) ?? "";
    const head = `repeat ${r.name.text}(${count})`;
    if (r.init && r.init.entries.length > 0) {
      const init = r.init.entries.map((en) => {
        const v = this.inline(en.value);
        return v === null ? null : `${en.key.map((k) => k.text).join(".")}: ${v}`;
      });
      const one = `${head} from { ${init.join(", ")} } {`;
      if (init.every((x) => x !== null) && !this.hasComment(r.init.start, r.init.end) && this.fits(one)) this.lines.push(this.pad() + one);
      else this.block(`${head} from `, r.init, " {");
    } else this.lines.push(`${this.pad()}${head}${r.init ? " from {}" : ""} {`);
    this.depth++;
    r.stages.forEach((s, i) => {
      if (i > 0) this.blank();
      this.ownLineComments(s.start);
      this.stage(s);
    });
    this.ownLineComments(r.end - 1);
    this.depth--;
    this.emit("}", r.end);
  }

  private recipe(r: A.RecipeDecl): void {
    const ret = r.returns ? ` -> ${typeText(r.returns)}` : "";
    const params = r.params.map((p) => ({ p, inline: p.default ? this.inline(p.default) : "" }));
    const oneLine = `recipe ${r.name.text}(${params.map(({ p, inline }) => `${p.name.text}: ${typeText(p.paramType)}${p.default ? ` = ${inline}` : ""}`).join(", ")})${ret} {`;
    if (params.every((x) => x.inline !== null) && !this.hasComment(r.start, r.paramsEnd) && this.fits(oneLine)) {
      this.lines.push(this.pad() + oneLine);
    } else {
      this.lines.push(`${this.pad()}recipe ${r.name.text}(`);
      this.depth++;
      for (const p of r.params) {
        this.ownLineComments(p.start);
        const head = `${p.name.text}: ${typeText(p.paramType)}`;
        if (p.default) this.exprLine(`${head} = `, p.default, ",");
        else this.emit(`${head},`, p.end);
      }
      this.ownLineComments(r.paramsEnd - 1);
      this.depth--;
      this.lines.push(`${this.pad()})${ret} {`);
    }
    this.depth++;
    const body: (A.StageDecl | A.RepeatDecl)[] = r.repeats ? [...r.stages, ...r.repeats].sort((a, b) => a.start - b.start) : r.stages;
    body.forEach((s, i) => {
      if (i > 0) this.blank();
      this.ownLineComments(s.start);
      if (s.type === "StageDecl") this.stage(s);
      else this.repeat(s);
    });
    if (r.output) {
      if (body.length > 0) this.blank();
      this.ownLineComments(r.output.start);
      this.emit(`output ${r.output.text}`, r.output.end);
    }
    this.ownLineComments(r.end - 1);
    this.depth--;
    this.emit("}", r.end);
  }

  private stage(s: A.StageDecl): void {
    const ann = s.annotation ? `: ${typeText(s.annotation)}` : "";
    this.exprLine(`${s.keyword} ${s.name.text}${ann} = `, s.value, "");
  }

  // ---------- expressions ----------

  /** The one-line form of an expression, or null if it must span lines (a block, a comment, too long). */
  private inline(e: A.Expr): string | null {
    if (this.hasComment(e.start, e.end)) return null;
    switch (e.type) {
      case "Literal":
        return e.kind === "raw" ? (e.raw.includes("\n") ? null : e.raw) : e.kind === "string" ? encodeString(e.value as string) : e.raw;
      case "Reference":
        return referenceText(e);
      case "List": {
        const items = e.items.map((x) => this.inline(x));
        return items.every((x) => x !== null) ? `[${items.join(", ")}]` : null;
      }
      case "Record":
        return e.block.entries.length === 0 ? "{}" : null;
      case "Call": {
        if (e.block && e.block.entries.length > 0) return null;
        const args = this.inlineArgs(e);
        return args === null ? null : `${e.callee.text}(${args})`;
      }
      case "Pipeline": {
        const head = this.inline(e.head);
        const steps = e.steps.map((s) => this.inline(s));
        return head !== null && steps.every((x) => x !== null) ? [head, ...steps].join(" |> ") : null;
      }
    }
  }

  private inlineArgs(c: A.Call): string | null {
    const parts: string[] = [];
    for (const a of c.args) {
      const v = this.inline(a.value);
      if (v === null) return null;
      parts.push(a.name ? `${a.name.text}: ${v}` : v);
    }
    return parts.join(", ");
  }

  private fits(line: string): boolean {
    return this.pad().length + line.length <= MAX_WIDTH;
  }

  /**
   * Print `prefix + expr + suffix` starting on a new line, spanning further lines as the expression needs.
   * The last line ends with `suffix` (a comma inside lists and argument lists).
   */
  private exprLine(prefix: string, e: A.Expr, suffix: string): void {
    const one = this.inline(e);
    if (one !== null && this.fits(prefix + one + suffix)) {
      this.emit(prefix + one + suffix, e.end);
      return;
    }
    switch (e.type) {
      case "Pipeline": {
        const head = this.inline(e.head);
        if (head !== null) this.emit(prefix + head, e.head.end);
        else this.exprLine(prefix, e.head, "");
        this.depth++;
        e.steps.forEach((s, i) => {
          this.ownLineComments(s.start);
          this.exprLine("|> ", s, i === e.steps.length - 1 ? suffix : "");
        });
        this.depth--;
        return;
      }
      case "Call":
        return this.call(prefix, e, suffix);
      case "List": {
        if (e.items.length === 0) {
          this.emit(`${prefix}[]${suffix}`, e.end);
          return;
        }
        this.lines.push(`${this.pad()}${prefix}[`);
        this.depth++;
        for (const item of e.items) {
          this.ownLineComments(item.start);
          this.exprLine("", item, ",");
        }
        this.ownLineComments(e.end - 1);
        this.depth--;
        this.emit(`]${suffix}`, e.end);
        return;
      }
      case "Record":
        this.block(prefix, e.block, suffix);
        return;
      case "Literal": {
        if (e.kind !== "raw" || !e.raw.includes("\n")) {
          // A literal cannot be broken: it stays whole on its line, however long.
          this.emit(prefix + (e.kind === "string" ? encodeString(e.value as string) : e.raw) + suffix, e.end);
          return;
        }
        // A multi-line raw string is kept byte for byte: its content is the user's text.
        const lines = e.raw.split("\n");
        this.lines.push(this.pad() + prefix + lines[0]);
        for (let i = 1; i < lines.length - 1; i++) this.lines.push(lines[i]!);
        this.lines.push(lines[lines.length - 1]! + suffix);
        this.trailing(e.end);
        return;
      }
      case "Reference":
        this.emit(prefix + referenceText(e) + suffix, e.end);
        return;
    }
  }

  private call(prefix: string, c: A.Call, suffix: string): void {
    const hasBlock = c.block !== undefined && c.block.entries.length > 0;
    const argsEnd = c.args[c.args.length - 1]?.end ?? c.callee.end;
    const args = this.hasComment(c.callee.end, argsEnd + 1) ? null : this.inlineArgs(c);
    const head = `${prefix}${c.callee.text}(`;
    if (args !== null && this.fits(`${head}${args})${hasBlock ? " {" : suffix}`)) {
      if (!hasBlock) {
        this.emit(`${head}${args})${suffix}`, c.end);
        return;
      }
      this.block(`${head}${args}) `, c.block!, suffix);
      return;
    }
    this.lines.push(this.pad() + head);
    this.depth++;
    for (const a of c.args) {
      this.ownLineComments(a.start);
      this.exprLine(a.name ? `${a.name.text}: ` : "", a.value, ",");
    }
    this.ownLineComments(c.block?.start ?? c.end - 1);
    this.depth--;
    if (hasBlock) this.block(")", c.block!, suffix, true);
    else this.emit(`)${suffix}`, c.end);
  }

  /** `{` entries `}` one entry per line. `continued` means `prefix` closes the previous line's construct. */
  private block(prefix: string, b: A.Block, suffix: string, continued = false): void {
    if (b.entries.length === 0) {
      this.emit(`${prefix}{}${suffix}`, b.end);
      return;
    }
    const open = continued ? `${prefix} {` : `${prefix}{`;
    this.lines.push(this.pad() + open);
    this.trailing(b.start + 1);
    this.depth++;
    for (const en of b.entries) {
      this.ownLineComments(en.start);
      const key = en.quoted ? encodeString(en.key[0]!.text) : en.key.map((k) => k.text).join(".");
      this.exprLine(en.op === "=" ? `${key} = ` : `${key}: `, en.value, "");
    }
    this.ownLineComments(b.end - 1);
    this.depth--;
    this.emit(`}${suffix}`, b.end);
  }
}

export function typeText(t: A.TypeExpr): string {
  return t.args.length === 0 ? t.name.text : `${t.name.text}<${t.args.map(typeText).join(", ")}>`;
}

/** `a.b`, or `round[2].x` with a round index after the first name. */
function referenceText(e: A.Reference): string {
  const [first, ...rest] = e.path.map((p) => p.text);
  return [`${first}${e.index ? `[${e.index.value}]` : ""}`, ...rest].join(".");
}
