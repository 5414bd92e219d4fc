import type { Diagnostic } from "../diagnostics/diagnostic.js";
import { hintDidYouMean } from "../diagnostics/suggest.js";
import type * as A from "../syntax/ast.js";
import { errorAt } from "./elaboration.js";
import type { LoadedModule, ModuleGraph } from "./modules.js";

/** What a top-level name of a module stands for. */
export type Binding =
  | { readonly k: "stage"; readonly decl: A.StageDecl; readonly mod: LoadedModule }
  | { readonly k: "recipe"; readonly decl: A.RecipeDecl; readonly mod: LoadedModule }
  | { readonly k: "type"; readonly decl: A.TypeDecl; readonly mod: LoadedModule }
  | { readonly k: "repeat"; readonly decl: A.RepeatDecl; readonly mod: LoadedModule }
  /** A name from an import that failed: already reported, so uses of it stay quiet. */
  | { readonly k: "poisoned" };

/**
 * The first phase: each module's top-level names, its own declarations and its imports, resolved to the
 * declarations they stand for. Duplicate names and imports of names a module does not declare are reported here,
 * once per module.
 */
export class Scopes {
  /** Declarations that reuse a name: reported once as duplicates, never as unused. */
  readonly duplicates = new Set<A.Decl>();
  private readonly scopes = new Map<string, Map<string, Binding>>();

  constructor(
    private readonly graph: ModuleGraph,
    private readonly diagnostics: Diagnostic[],
  ) {}

  scope(mod: LoadedModule): Map<string, Binding> {
    const cached = this.scopes.get(mod.path);
    if (cached) return cached;
    const scope = new Map<string, Binding>();
    this.scopes.set(mod.path, scope);
    const file = mod.ast.file;
    const defined = new Map<string, A.Span>();
    const define = (name: A.Name, b: Binding | "import") => {
      const prev = defined.get(name.text);
      if (prev) {
        if (b !== "import" && b.k !== "poisoned") this.duplicates.add(b.decl);
        const line = file.position(prev.start).line;
        errorAt(this.diagnostics, "E021", `\`${name.text}\` is already defined (line ${line})`, file, name, "give each declaration and import a unique name");
        return;
      }
      defined.set(name.text, name);
      if (b !== "import") scope.set(name.text, b);
    };
    mod.ast.imports.forEach((imp, i) => this.bindImport(mod, imp, i, scope, define));
    for (const d of mod.ast.decls) {
      // A declaration broken by a syntax error may have a made-up name (recovery inserts tokens): declared quietly.
      if (d.broken) {
        if (d.name?.text && Number.isFinite(d.name.start) && !scope.has(d.name.text)) scope.set(d.name.text, { k: "poisoned" });
      } else define(d.name, bindingOf(d, mod));
    }
    for (const n of mod.ast.brokenNames) if (!scope.has(n.text)) scope.set(n.text, { k: "poisoned" });
    return scope;
  }

  private bindImport(mod: LoadedModule, imp: A.Import, i: number, scope: Map<string, Binding>, define: (name: A.Name, b: "import") => void): void {
    const file = mod.ast.file;
    const target = mod.importPaths[i];
    const tmod = target === undefined ? undefined : this.graph.modules.get(target);
    for (const { name, alias } of imp.names) {
      const local = alias ?? name;
      if (imp.broken) {
        if (local?.text && Number.isFinite(local.start) && !scope.has(local.text)) scope.set(local.text, { k: "poisoned" });
        continue;
      }
      define(local, "import");
      if (!tmod) {
        scope.set(local.text, { k: "poisoned" });
        continue;
      }
      const b = ownDecls(tmod).get(name.text);
      if (!b) {
        scope.set(local.text, { k: "poisoned" });
        const exported = [...ownDecls(tmod).keys()];
        errorAt(this.diagnostics, "E012", `\`${imp.path}\` has no declaration \`${name.text}\``, file, name, hintDidYouMean(name.text, exported) ?? `it declares: ${exported.slice(0, 12).join(", ")}`);
        continue;
      }
      scope.set(local.text, b);
    }
  }

  lookup(mod: LoadedModule, name: string): Binding | undefined {
    return this.scope(mod).get(name);
  }
}

/** A module's own top-level declarations: what it exports. */
function ownDecls(mod: LoadedModule): Map<string, Binding> {
  const m = new Map<string, Binding>();
  for (const d of mod.ast.decls) if (!m.has(d.name.text)) m.set(d.name.text, bindingOf(d, mod));
  return m;
}

function bindingOf(d: A.Decl, mod: LoadedModule): Binding {
  if (d.broken) return { k: "poisoned" };
  switch (d.type) {
    case "StageDecl":
      return { k: "stage", decl: d, mod };
    case "RecipeDecl":
      return { k: "recipe", decl: d, mod };
    case "TypeDecl":
      return { k: "type", decl: d, mod };
    case "RepeatDecl":
      return { k: "repeat", decl: d, mod };
  }
}
