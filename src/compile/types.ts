import { error, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { SourceFile } from "../diagnostics/source.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";
import type * as A from "../syntax/ast.js";
import { builtinRecordTypes, scalarTypes } from "../types/builtins.js";
import { dataset, list, MODEL, REPORT, TEMPLATE, type Field, type Ty } from "../types/types.js";

/** Resolves written types (`Dataset<Instruction>`, `list<string>`, a declared record) to Ty, reporting unknown names. */
export class TypeResolver {
  private readonly resolved = new Map<A.TypeDecl, Ty>();
  private readonly inProgress = new Set<A.TypeDecl>();

  constructor(
    /** Record type declarations visible from a module, by name. */
    private readonly lookup: (file: SourceFile, name: string) => { decl: A.TypeDecl; file: SourceFile } | "poisoned" | undefined,
    private readonly visibleNames: (file: SourceFile) => string[],
    private readonly diagnostics: Diagnostic[],
  ) {}

  resolve(t: A.TypeExpr, file: SourceFile): Ty | undefined {
    const name = t.name.text;
    const range = { file, start: t.name.start, end: t.name.end };
    const arity = (n: number): boolean => {
      if (t.args.length === n) return true;
      this.diagnostics.push(error("E042", `\`${name}\` takes ${n} type argument${n === 1 ? "" : "s"}, got ${t.args.length}`, { file, start: t.start, end: t.end }, n === 1 ? `write \`${name}<Instruction>\`` : `write \`${name}\``));
      return false;
    };
    switch (name) {
      case "Dataset": {
        if (!arity(1)) return undefined;
        const of = this.resolve(t.args[0]!, file);
        return of && dataset(of);
      }
      case "list": {
        if (!arity(1)) return undefined;
        const of = this.resolve(t.args[0]!, file);
        return of && list(of);
      }
      case "Model":
        return arity(0) ? MODEL : undefined;
      case "Report":
        return arity(0) ? REPORT : undefined;
      case "Template":
        return arity(0) ? TEMPLATE : undefined;
    }
    const s = scalarTypes.get(name);
    if (s) return arity(0) ? s : undefined;
    const user = this.lookup(file, name);
    if (user === "poisoned") return undefined; // its failed import is already reported
    if (user) return arity(0) ? this.declared(user.decl, user.file) : undefined;
    const b = builtinRecordTypes.get(name);
    if (b) return arity(0) ? b : undefined;
    const candidates = ["Dataset", "list", "Model", "Report", "Template", ...scalarTypes.keys(), ...builtinRecordTypes.keys(), ...this.visibleNames(file)];
    this.diagnostics.push(error("E042", `unknown type \`${name}\``, range, hintDidYouMean(name, candidates) ?? "declare it with `type Name = { field: string }`"));
    return undefined;
  }

  declared(decl: A.TypeDecl, file: SourceFile): Ty {
    const done = this.resolved.get(decl);
    if (done) return done;
    if (this.inProgress.has(decl)) {
      this.diagnostics.push(error("E050", `type \`${decl.name.text}\` contains itself`, { file, start: decl.name.start, end: decl.name.end }, "records cannot be recursive"));
      return { k: "scalar", name: "any" };
    }
    this.inProgress.add(decl);
    const fields = new Map<string, Field>();
    for (const f of decl.fields) {
      if (fields.has(f.name.text)) {
        this.diagnostics.push(error("E021", `field \`${f.name.text}\` is declared twice`, { file, start: f.name.start, end: f.name.end }, "remove one of them"));
        continue;
      }
      fields.set(f.name.text, { ty: this.resolve(f.fieldType, file) ?? { k: "scalar", name: "any" }, optional: f.optional });
    }
    this.inProgress.delete(decl);
    const ty: Ty = { k: "record", name: decl.name.text, fields, open: false };
    this.resolved.set(decl, ty);
    return ty;
  }
}
