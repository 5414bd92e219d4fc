// Bundles the CLI into dist/ so it starts fast: one file to load, verbs split into lazily loaded chunks.
import { build } from "esbuild";
import { rmSync } from "node:fs";

rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: { itp: "src/cli/bin.ts" },
  outdir: "dist",
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
