// Bundles the CLI into dist/ so it starts fast: one file to load, verbs split into lazily loaded chunks.
// Built into a fresh folder and swapped in, so a build never leaves dist/ half-written under a running itp.
import { build } from "esbuild";
import { renameSync, rmSync } from "node:fs";

const out = new URL("../dist", import.meta.url).pathname;
const next = `${out}.next-${process.pid}`;
const old = `${out}.old-${process.pid}`;
rmSync(next, { recursive: true, force: true });
await build({
  entryPoints: { itp: "src/cli/bin.ts" },
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
  banner: { js: "import { createRequire as __itpCreateRequire } from 'node:module'; const require = __itpCreateRequire(import.meta.url);" },
});
try {
  renameSync(out, old);
} catch {
  // no previous build
}
renameSync(next, out);
rmSync(old, { recursive: true, force: true });
