// The layering of src/ (ARCHITECTURE.md), checked by `npm test` (npx depcruise src). Each rule names a layer and
// what it must not import; a cycle anywhere is an error. Type-only imports count: they tie modules together too.

/** Stage kinds' declarations: what `itp check` loads. */
const DECLARATIONS = "^src/stages/(registry|schema|common|values|index)[.]ts$|^src/stages/[^/]+/kinds[.]ts$";
/** Stage implementations: every other file under src/stages/ (the families' other files, support/, impls.ts). */
const IMPLEMENTATIONS = "^src/stages/(impls[.]ts$|[^/]+/(?!kinds[.]ts$)[^/]+$)";
/** The pure front end: text in, values and diagnostics out. */
const FRONT_END = "^src/(diagnostics|syntax|types|compile|graph|format)/";
/** Where I/O begins: libraries the stage implementations use. */
const IO_LIBRARIES = "^src/(formats|hub|models|tokenize|generate)/";

const forbid = (name, comment, from, to) => ({ name, comment, severity: "error", from: { path: from }, to: { path: to } });

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "No import cycles: every dependency points one way (lazy import() counts too).",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    forbid("core-is-dependency-free", "src/core/ (the IR, the stage contract, records, errors) imports nothing else of src/ but two pure leaves: the type language and source positions.", "^src/core/", "^src/(?!core/|types/|diagnostics/source[.]ts$)"),
    forbid("leaves-stay-leaves", "diagnostics/ and types/ are the bottom of the front end.", "^src/(diagnostics|types)/", "^src/(?!diagnostics/|types/)"),
    forbid("front-end-is-pure", "The front end never reaches the runtime, the stage implementations, the I/O libraries, the executors or the CLI.", FRONT_END, `^src/(runtime|executors|cli|formats|hub|models|tokenize|generate)/|${IMPLEMENTATIONS}`),
    forbid("declarations-load-no-implementations", "A family's kinds.ts (and the registry) never loads implementations: `itp check` stays fast.", DECLARATIONS, `^src/(?!stages/|core/|types/)|${IMPLEMENTATIONS}`),
    forbid("io-libraries-below-stages", "formats, hub, models, tokenize and generate know nothing of stages, the runtime, the executors or the CLI.", IO_LIBRARIES, "^src/(stages|runtime|executors|cli|compile)/"),
    forbid("executors-below-stages", "executors/ (where programs run) sits beside the runtime (which may use it), below the stage implementations and the CLI: it imports only core/.", "^src/executors/", "^src/(stages|runtime|cli|compile|formats|hub|models|tokenize|generate)/"),
    forbid("runtime-below-implementations", "The runtime gets implementations handed to it (by the CLI); it never imports them or the I/O libraries.", "^src/runtime/", `^src/(cli|formats|hub|models|tokenize|generate)/|${IMPLEMENTATIONS}`),
    forbid("implementations-below-runtime-and-cli", "A stage implementation uses what StageContext gives it (core/stage.ts: the answer cache, artifacts kept under keys of its own), never the runtime (the store, the scheduler, the plan, the cache keys), the CLI or the compiler.", IMPLEMENTATIONS, "^src/(runtime|cli|compile)/"),
    forbid("family-uses-no-other-family", "A family's implementations use their own folder, the shared support/ and declarations, not another family's implementations.", "^src/stages/([^/]+)/(?!kinds[.]ts$)[^/]+$", "^src/stages/(?!$1/|support/)[^/]+/(?!kinds[.]ts$)[^/]+$"),
    forbid("support-below-families", "stages/support/ holds the helpers shared by families: it imports no family.", "^src/stages/support/", "^src/stages/(?!support/)[^/]+/(?!kinds[.]ts$)"),
    forbid("nothing-imports-the-cli", "The CLI is the top: nothing below imports it.", "^src/(?!cli/)", "^src/cli/"),
    forbid("src-never-imports-tests", "Tests and benchmarks import src/, never the other way.", "^src/", "^test/"),
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^src/trainer/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    moduleSystems: ["es6", "cjs"],
    reporterOptions: { text: { highlightFocused: true } },
  },
};
