import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/main.js";
import { format } from "../../src/format/format.js";
import { fastParse } from "../../src/syntax/fast-parser.js";
import { parse } from "../../src/syntax/parser.js";
import { mulberry32 } from "../../src/core/random.js";

/** A small deterministic PRNG (mulberry32): the same seed gives the same cases. */
export const rng = mulberry32;

const alphabet = `abcdefghijklmnopqrstuvwxyz_0123456789 {}()[]<>=:,.|>-"'\\/\n\t#?!@$%^&*+~\`é🙂\u0000`;
const tokens = ["{", "}", "(", ")", "[", "]", "=", ":", ",", "|>", "->", '"', '"""', "dataset", "recipe", "output", "import", "type", "mix", "take(3)", "all", "env(\"X\")", "secret(\"K\")", "1e999", "-0", "52_000", "30s", "//", "///", "std/", "true", "null", "<", ">", "Dataset<", "x.y.z", "repeat", "repeat r(2) from { x: a } {", "from", "prev.x", "[2]", "r.last.x"];

type Unit = "char" | "token" | "line";
type Op = "delete" | "insert" | "duplicate" | "swap";

/** One mutation of a recipe text: delete, insert, duplicate or swap characters, tokens or lines. */
export function mutate(text: string, r: () => number): { text: string; op: string } {
  const unit: Unit = (["char", "token", "line"] as const)[Math.floor(r() * 3)]!;
  const op: Op = (["delete", "insert", "duplicate", "swap"] as const)[Math.floor(r() * 4)]!;
  const pieces = unit === "char" ? [...text] : unit === "line" ? text.split(/(?<=\n)/) : text.split(/(?<=[\s{}()[\]=:,])|(?=[\s{}()[\]=:,])/);
  if (pieces.length === 0) return { text: tokens[Math.floor(r() * tokens.length)]!, op: "insert into empty" };
  const i = Math.floor(r() * pieces.length);
  const j = Math.floor(r() * pieces.length);
  switch (op) {
    case "delete":
      pieces.splice(i, 1 + Math.floor(r() * 3));
      break;
    case "insert": {
      const what = unit === "char" ? alphabet[Math.floor(r() * alphabet.length)]! : unit === "token" ? ` ${tokens[Math.floor(r() * tokens.length)]} ` : pieces[j]!;
      pieces.splice(i, 0, what);
      break;
    }
    case "duplicate":
      pieces.splice(i, 0, pieces[i]!);
      break;
    case "swap":
      [pieces[i], pieces[j]] = [pieces[j]!, pieces[i]!];
      break;
  }
  return { text: pieces.join(""), op: `${op} ${unit}` };
}

export interface FuzzFailure {
  readonly seed: number;
  readonly source: string;
  readonly op: string;
  readonly problem: string;
  readonly text: string;
}

/** Run `fn` with process.stdout/stderr captured; returns what it wrote. */
async function captured(fn: () => Promise<number>): Promise<{ code: number | "crash"; out: string; err: string; crash?: string }> {
  let out = "";
  let err = "";
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => ((out += String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => ((err += String(s)), true)) as typeof process.stderr.write;
  try {
    return { code: await fn(), out, err };
  } catch (e) {
    return { code: "crash", out, err, crash: (e as Error).stack ?? String(e) };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

/**
 * Mutate the shipped recipes `cases` times and check each mutant through the CLI's entry point (in process, so
 * thousands of cases run in seconds): the exit code is 0 or 1, no stack trace is printed, and every diagnostic
 * lies inside the file. Mutants that still parse must also format idempotently, to text that parses the same.
 */
export async function fuzz(cases: number, seed = 1, roots = ["pipelines", "stdlib"]): Promise<{ cases: number; crashes: number; failures: FuzzFailure[] }> {
  const repo = process.cwd(); // the repository root: vitest and `npm run bench` both run there
  const sources = roots.flatMap((r) => listItp(join(repo, r)));
  const dir = join(tmpdir(), `itp-fuzz-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  // Mutants live beside copies of the std library so their imports resolve as in the originals.
  mkdirSync(join(dir, "pipelines"), { recursive: true });
  const failures: FuzzFailure[] = [];
  let crashes = 0;
  const r = rng(seed);
  const cwd = process.cwd();
  process.chdir(repo);
  try {
    for (let n = 0; n < cases; n++) {
      const src = sources[Math.floor(r() * sources.length)]!;
      let text = readFileSync(src, "utf8");
      const steps = 1 + Math.floor(r() * 3);
      const ops: string[] = [];
      for (let k = 0; k < steps; k++) {
        const m = mutate(text, r);
        text = m.text;
        ops.push(m.op);
      }
      const file = join(dir, "pipelines", `case${n % 50}.itp`);
      writeFileSync(file, text);
      const fail = (problem: string) => failures.push({ seed: n, source: src, op: ops.join(", "), problem, text });
      const res = await captured(() => main(["check", file, "--json"]));
      if (res.code === "crash") {
        crashes++;
        fail(`crash: ${res.crash}`);
        continue;
      }
      if (res.code !== 0 && res.code !== 1) fail(`exit code ${res.code}`);
      if (/\n\s+at /.test(res.out + res.err)) fail("stack trace in output");
      let diags: { file: string | null; line: number | null; col: number | null; endLine: number | null; endCol: number | null }[] = [];
      try {
        diags = JSON.parse(res.out).diagnostics;
      } catch {
        fail(`--json output is not JSON: ${res.out.slice(0, 200)}`);
      }
      for (const d of diags) {
        if (d.file === null) continue;
        const content = d.file.endsWith(`case${n % 50}.itp`) ? text : readFileSync(d.file, "utf8");
        const lines = content.split("\n");
        const inside = (l: number | null, c: number | null) => l !== null && c !== null && l >= 1 && l <= lines.length && c >= 1 && c <= lines[l - 1]!.length + 1;
        if (!inside(d.line, d.col) || !inside(d.endLine, d.endCol)) fail(`diagnostic outside the file: ${JSON.stringify(d)}`);
      }
      // The fast path and the Chevrotain parser agree: the same tree (positions included), or both refuse.
      const parsed = parse(text, file);
      const reference = parse(text, file, { fast: false });
      const quick = fastParse(text);
      if (reference.diagnostics.length === 0) {
        if (!quick) fail("the fast parser refused a file the Chevrotain parser accepts");
        else if (JSON.stringify({ i: quick.imports, d: quick.decls }, noFile) !== JSON.stringify({ i: reference.module.imports, d: reference.module.decls }, noFile)) fail("the fast parser built a different tree");
      } else if (quick) fail(`the fast parser accepted a file with a syntax error: ${reference.diagnostics[0]!.message}`);
      // The formatter on whatever still parses: idempotent, and the result parses to the same program.
      if (parsed.diagnostics.length === 0) {
        try {
          const once = format(parsed.module);
          const again = parse(once, file);
          if (again.diagnostics.length > 0) fail(`formatted text does not parse: ${again.diagnostics[0]!.message}`);
          else if (format(again.module) !== once) fail("formatting is not idempotent");
          else if (shape(again.module) !== shape(parsed.module)) fail("formatting changed the program");
        } catch (e) {
          crashes++;
          fail(`formatter crash: ${(e as Error).stack}`);
        }
      }
    }
  } finally {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
  return { cases, crashes, failures };
}

const noFile = (k: string, v: unknown) => (k === "file" || k === "doc" ? undefined : v);

/** The program without positions or comments: what formatting must preserve. */
function shape(m: { imports: unknown; decls: unknown }): string {
  const drop = new Set(["start", "end", "paramsEnd", "file", "parens", "raw", "doc"]);
  return JSON.stringify({ i: m.imports, d: m.decls }, (k, v) => (drop.has(k) || (k === "block" && v.entries.length === 0) ? undefined : v));
}

function listItp(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listItp(p));
    else if (e.name.endsWith(".itp")) out.push(p);
  }
  return out.sort();
}
