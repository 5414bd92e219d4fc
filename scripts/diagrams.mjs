#!/usr/bin/env node
// Generates grammar/diagrams.html: railroad syntax diagrams of the recipe grammar, drawn from the Chevrotain parser
// itself (src/syntax/parser.ts), so they can't drift from what the parser accepts.
//
//   node scripts/diagrams.mjs           write grammar/diagrams.html   (npm run diagrams)
//   node scripts/diagrams.mjs --check   exit 1 if grammar/diagrams.html differs from a fresh generation
//
// The page is self-contained (works offline): chevrotain's createSyntaxDiagramsCode links its renderer and
// stylesheet from unpkg by default, so we point those links at placeholders and inline the files chevrotain ships
// in node_modules/chevrotain/diagrams/ instead. The output is deterministic: same parser -> byte-identical file.

import { build } from "esbuild";
import { createSyntaxDiagramsCode } from "chevrotain";
import { createRequire } from "node:module";
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const target = join(root, "grammar", "diagrams.html");
const targetRel = relative(root, target).split("\\").join("/");

/** Bundles src/syntax/parser.ts (TypeScript) to a temporary ESM file and imports it. */
async function loadParserModule() {
  const dir = mkdtempSync(join(tmpdir(), "itp-diagrams-"));
  const outfile = join(dir, "parser.mjs");
  try {
    await build({
      entryPoints: [join(root, "src", "syntax", "parser.ts")],
      outfile,
      bundle: true, // the temp file can't resolve node_modules from os.tmpdir(), so chevrotain goes in the bundle
      format: "esm",
      platform: "node",
      target: "node20",
      logLevel: "silent",
    });
    return await import(pathToFileURL(outfile).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The directory of chevrotain's shipped diagram renderer (diagrams/src, diagrams/vendor, diagrams/diagrams.css). */
function chevrotainDiagramsDir() {
  const require = createRequire(join(root, "package.json"));
  // chevrotain's "exports" may not expose package.json; resolve the main entry and walk up to the package root.
  let dir = dirname(require.resolve("chevrotain"));
  while (!existsSync(join(dir, "package.json")) || JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).name !== "chevrotain") {
    const up = dirname(dir);
    if (up === dir) throw new Error("could not locate the chevrotain package directory");
    dir = up;
  }
  const diagrams = join(dir, "diagrams");
  if (!existsSync(join(diagrams, "diagrams.css"))) throw new Error(`chevrotain does not ship ${diagrams}/diagrams.css`);
  return diagrams;
}

const readText = (path) => readFileSync(path, "utf8").replace(/\r\n?/g, "\n");
/** Text placed inside <script>/<style> must not close the element early. */
const escapeRawText = (text, tag) => text.replace(new RegExp(`</(${tag})`, "gi"), "<\\/$1");

export async function generate() {
  const { parserInstance } = await loadParserModule();
  const grammar = parserInstance().getSerializedGastProductions();
  const base = "@@ITP_DIAGRAMS_BASE@@/";
  const css = "@@ITP_DIAGRAMS_CSS@@";
  const linked = createSyntaxDiagramsCode(grammar, { resourceBase: base, css });
  const diagramsDir = chevrotainDiagramsDir();

  let inlined = 0;
  let html = linked
    .replace(/<link rel='stylesheet' href='@@ITP_DIAGRAMS_CSS@@'>/, () => {
      inlined++;
      return `<style>\n${escapeRawText(readText(join(diagramsDir, "diagrams.css")), "style")}</style>`;
    })
    .replace(/<script src='@@ITP_DIAGRAMS_BASE@@\/([A-Za-z0-9_./-]+)'><\/script>/g, (_m, file) => {
      inlined++;
      return `<script>\n/* ${file} (inlined from chevrotain/diagrams) */\n${escapeRawText(readText(join(diagramsDir, file)), "script")}</script>`;
    });
  // css + railroad-diagrams + builder + behavior + main: if chevrotain changes its template, fail loudly.
  if (inlined !== 5 || html.includes("@@ITP_DIAGRAMS_") || /\bsrc=['"]https?:|href=['"]https?:/.test(html)) {
    throw new Error("createSyntaxDiagramsCode output changed shape; could not inline its resources (update scripts/diagrams.mjs)");
  }
  // The serialized grammar holds token labels like '<' and '>': keep `</` out of the inline JSON (`<\/` is the same string).
  html = html.replace(/(window\.serializedGrammar = )([\s\S]*?)(;\n<\/script>)/, (_m, head, json, tail) => head + json.replaceAll("</", "<\\/") + tail);
  html = html.trimStart().replace(
    /^<!-- This is a generated file -->\s*<!DOCTYPE html>\s*<meta charset="utf-8">/,
    [
      "<!DOCTYPE html>",
      "<!-- Generated file, do not edit: `npm run diagrams` (scripts/diagrams.mjs) regenerates it from src/syntax/parser.ts. -->",
      '<meta charset="utf-8">',
      "<title>itp recipe grammar: syntax diagrams</title>",
    ].join("\n"),
  );
  if (!html.startsWith("<!DOCTYPE html>")) throw new Error("createSyntaxDiagramsCode output changed shape; could not rewrite its header");
  return html.trimEnd() + "\n";
}

async function main() {
  const check = process.argv.includes("--check");
  const fresh = await generate();
  if (check) {
    // A CRLF checkout (git autocrlf) of an otherwise current file is not stale.
    const current = existsSync(target) ? readFileSync(target, "utf8").replace(/\r\n/g, "\n") : undefined;
    if (current !== fresh) {
      console.error(`${targetRel} is stale: run npm run diagrams`);
      process.exit(1);
    }
    console.log(`${targetRel} is up to date`);
    return;
  }
  writeFileSync(target, fresh);
  console.log(`wrote ${targetRel}`);
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (invokedDirectly) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(2);
  });
}
