// npm run bench -- NAME [args]: runs test/bench/NAME.ts (bundled with esbuild) and passes the arguments on.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";

const [name, ...args] = process.argv.slice(2);
const benches = readdirSync("test/bench").filter((f) => /\.(ts|mjs)$/.test(f) && !f.includes("-scale") && !f.startsWith("_")).map((f) => f.replace(/\.(ts|mjs)$/, ""));
if (!name || !existsSync(`test/bench/${name}.ts`)) {
  console.error(`usage: npm run bench -- NAME [args]\nbenchmarks: ${benches.join(", ")}`);
  process.exit(2);
}
// Inside the repository, so the bundle's external imports resolve from node_modules.
const cache = join("node_modules", ".cache", "itp-bench");
mkdirSync(cache, { recursive: true });
const out = join(process.cwd(), cache, `${name}.mjs`);
await build({
  entryPoints: [`test/bench/${name}.ts`],
  outfile: out,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  logLevel: "warning",
});
const r = spawnSync(process.execPath, [out, ...args], { stdio: "inherit" });
process.exit(r.status ?? 1);
