// Bundles the CLI into dist/ so it starts fast: one file to load, verbs split into lazily loaded chunks.
// Built into a fresh folder and swapped in, so a build never leaves dist/ half-written under a running itp.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

const out = new URL("../dist", import.meta.url).pathname;
const next = `${out}.next-${process.pid}`;
const old = `${out}.old-${process.pid}`;
rmSync(next, { recursive: true, force: true });
// The build's identity: a digest of the sources. Caches of compiled recipes are keyed by it, so a new compiler never
// reuses what an older one made.
const sources = createHash("sha256");
for (const f of readdirSync("src", { recursive: true }).map(String).filter((f) => f.endsWith(".ts")).sort()) sources.update(f).update(readFileSync(join("src", f)));
await build({
  // The worker threads of the parallel JSON Lines reader load a script of their own.
  entryPoints: { itp: "src/cli/bin.ts", "lines-worker": "src/formats/lines-worker.ts" },
  outdir: next,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minify: true,
  keepNames: false,
  sourcemap: "linked",
  legalComments: "none",
  logLevel: "warning",
  // Native and worker-based packages are loaded from node_modules at run time.
  external: ["onnxruntime-node"],
  define: { ITP_BUILD_ID: JSON.stringify(sources.digest("hex").slice(0, 16)) },
  banner: { js: "import { createRequire as __itpCreateRequire } from 'node:module'; const require = __itpCreateRequire(import.meta.url);" },
});
try {
  renameSync(out, old);
} catch {
  // no previous build
}
renameSync(next, out);
rmSync(old, { recursive: true, force: true });
