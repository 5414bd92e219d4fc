#!/usr/bin/env node
// The CLI is the bundle in dist/. `npm ci` runs no install scripts in this project (.npmrc: onnxruntime-node's
// would download GPU extras from the network), so the first run after a fresh install builds it, once.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

if (!existsSync(new URL("../dist/itp.js", import.meta.url))) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const r = spawnSync(process.execPath, ["scripts/build.mjs"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
  if (r.status !== 0) {
    console.error("itp: building the CLI into dist/ failed; `npm run build` shows why");
    process.exit(1);
  }
}
await import("../dist/itp.js");
