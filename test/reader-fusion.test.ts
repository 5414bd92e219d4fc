import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { itp, repoRoot, tempTree } from "./support/cli.js";

// The parallel jsonl source's two shortcuts: a source artifact that is the file's own bytes is copied under the
// digest its cache key has (not written and hashed again), and the `where` stages that read it get the verdicts of
// their predicates from the source's workers (records parsed once). Serial, parallel and fused runs must store
// exactly the same objects; the run log says which path ran.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const parallel = { ITP_PARALLEL_MIN_BYTES: "1", ITP_PARALLEL_CHUNK_BYTES: "4096" };
const serial = { ITP_PARALLEL: "0" };

/**
 * Every stored object (artifacts and dropped records larger than a pack's share), by name, with the sha256 of its
 * bytes; and each stage's output digest, record count and counts (`itp show`), which covers packed artifacts.
 */
const storedOf = (dir: string, store: string, shown = true) => ({
  objects: Object.fromEntries(
    readdirSync(join(dir, store, "objects"), { recursive: true })
      .map(String)
      .filter((f) => f.length > 3)
      .map((f) => [f, createHash("sha256").update(readFileSync(join(dir, store, "objects", f))).digest("hex")]),
  ),
  stages: (shown ? ["src", "en", "fr", "out"] : []).map((stage) => {
    const r = JSON.parse(itp(["show", "r.itp", stage, "--store", join(dir, store), "--json"], { cwd: dir }).stdout) as { records: number; digest: string; counts: Record<string, number> };
    return { stage, records: r.records, digest: r.digest, counts: r.counts };
  }),
});

/** The shortcuts the runs of a store took, from their logs' stage notes: [stage, which]. */
const events = (store: string) =>
  readdirSync(join(store, "runs"))
    .flatMap((f) => readFileSync(join(store, "runs", f), "utf8").trim().split("\n"))
    .map((l) => JSON.parse(l) as { type: string; stage?: string; note?: string })
    .filter((e) => e.type === "stage_note" && !/worker threads$/.test(e.note!))
    .map((e) => ({ stage: e.stage, type: /stored as it is/.test(e.note!) ? "source_copied" : /verdicts came from/.test(e.note!) ? "where_by_reader_verdicts" : e.note! }));

const recipe = `type Rec = {
  i: int
  lang: string
  text: string
}

dataset src: Rec = jsonl("x.jsonl")

dataset en = where(src, expr: "lang == \\"en\\" and len(text) > 3")

dataset fr = where(src, expr: "lang == \\"fr\\"")

dataset out = export(en, path: "out.jsonl")
`;

function records(n: number): string[] {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ i, lang: i % 3 === 0 ? "en" : "fr", text: i % 7 === 0 ? `café ${"é".repeat(i % 50)} 🙂` : "x".repeat(i % 90) }));
}

describe("the parallel reader's shortcuts", () => {
  it("a clean file: copied, the wheres use the reader's verdicts; serial, parallel and fused store the same objects", () => {
    expect(existsSync(join(repoRoot, "dist/lines-worker.js")), "the build has the worker script").toBe(true);
    const dir = tempTree({ "r.itp": recipe, "x.jsonl": records(3000).join("\n") + "\n" });
    dirs.push(dir);
    const run = (store: string, env: Record<string, string>, ...more: string[]) => {
      const r = itp(["run", "r.itp", "--store", join(dir, store), ...more], { cwd: dir, env });
      expect(r.code, r.stderr).toBe(0);
      return readFileSync(join(dir, "out.jsonl"));
    };
    const s = run("s", serial);
    // Parallel, not fused: the source in a run of its own, the wheres in the next one (a fresh process).
    run("p", parallel, "--only", "src");
    const p = run("p", parallel);
    const f = run("f", parallel);
    expect(p).toEqual(s);
    expect(f).toEqual(s);
    const stored = storedOf(dir, "s");
    expect(storedOf(dir, "p")).toEqual(stored);
    expect(storedOf(dir, "f")).toEqual(stored);
    // The artifacts are larger than a pack's share: objects, the source's named by the file's own digest.
    expect(Object.keys(stored.objects).length).toBeGreaterThanOrEqual(4);
    expect(stored.stages[0]!.digest).toBe(createHash("sha256").update(readFileSync(join(dir, "x.jsonl"))).digest("hex"));
    const en = records(3000).filter((l) => {
      const r = JSON.parse(l) as { lang: string; text: string };
      return r.lang === "en" && r.text.length > 3;
    }).length;
    expect(stored.stages.map((x) => x.records)).toEqual([3000, en, 2000, en]);
    // Which path ran: the run log.
    expect(events(join(dir, "s"))).toEqual([]);
    expect(events(join(dir, "p")).map((e) => [e.type, e.stage])).toEqual([["source_copied", "src"]]);
    expect(events(join(dir, "f")).map((e) => [e.type, e.stage]).sort()).toEqual([
      ["source_copied", "src"],
      ["where_by_reader_verdicts", "en"],
      ["where_by_reader_verdicts", "fr"],
    ]);
  });

  it("a file that is not its own artifact (no final line break, a CRLF, a byte order mark): written as read, the same objects, no shortcut", () => {
    const lines = records(2500);
    const variants: Record<string, Buffer> = {
      "no final line break": Buffer.from(lines.join("\n")),
      "a CRLF in a late chunk": Buffer.from(lines.slice(0, 2000).join("\n") + "\r\n" + lines.slice(2000).join("\n") + "\n"),
      "a byte order mark": Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(lines.join("\n") + "\n")]),
    };
    for (const [what, bytes] of Object.entries(variants)) {
      const dir = tempTree({ "r.itp": recipe });
      dirs.push(dir);
      writeFileSync(join(dir, "x.jsonl"), bytes);
      for (const [store, env] of [["s", serial], ["f", parallel]] as const) {
        const r = itp(["run", "r.itp", "--store", join(dir, store)], { cwd: dir, env });
        expect(r.code, `${what}: ${r.stderr}`).toBe(0);
      }
      const stored = storedOf(dir, "s", false);
      expect(Object.keys(stored.objects).length, what).toBeGreaterThanOrEqual(4);
      expect(storedOf(dir, "f", false), what).toEqual(stored);
      expect(events(join(dir, "f")), what).toEqual([]);
    }
  });

  it("an untyped source (its lines read as latin1 where that is safe): escapes, raw UTF-8, bad lines; the same objects", () => {
    const untyped = recipe.replace("dataset src: Rec = jsonl(\"x.jsonl\")", 'dataset src = jsonl("x.jsonl", on_error: "skip")').replace('expr: "lang == \\"fr\\""', 'expr: "text contains \\"é\\" or len(text) == 7"');
    expect(untyped).not.toBe(recipe);
    const lines = records(2500);
    // \u escapes (alone, and beside raw UTF-8 on one line), emoji (surrogate pairs for len), and lines that are not records.
    for (let i = 0; i < lines.length; i += 11) lines[i] = `{"i":${i},"lang":"en","text":"\\u00e9t\\u00e9 caf\\u00e9"}`;
    for (let i = 5; i < lines.length; i += 17) lines[i] = `{"i":${i},"lang":"fr","text":"\\u00e9 é 🙂🙂"}`;
    const bad = lines.slice();
    bad[100] = "\u00a0";
    bad[700] = '{"i":700,"text":"é"x}';
    bad[1300] = "\ufeff{}";
    for (const [what, text] of [["clean", lines], ["bad lines", bad]] as const) {
      const dir = tempTree({ "r.itp": untyped, "x.jsonl": text.join("\n") + "\n" });
      dirs.push(dir);
      for (const [store, env, ...more] of [["s", serial], ["p", parallel, "--only", "src"], ["p", parallel], ["f", parallel]] as const) {
        const r = itp(["run", "r.itp", "--store", join(dir, store), ...more], { cwd: dir, env });
        expect(r.code, `${what}: ${r.stderr}`).toBe(0);
      }
      const stored = storedOf(dir, "s");
      expect(storedOf(dir, "p"), what).toEqual(stored);
      expect(storedOf(dir, "f"), what).toEqual(stored);
      expect(stored.stages[2]!.records, what).toBeGreaterThan(0);
      const shown = (store: string) => itp(["show", "r.itp", "src", "--dropped", "--store", join(dir, store)], { cwd: dir }).stdout;
      expect(shown("f"), what).toBe(shown("s"));
    }
  });

  it("a source file whose records are not all of the type fails the same way, whether the lines came before or after", () => {
    const lines = records(2500);
    lines[2200] = JSON.stringify({ i: 2200, lang: "en" });
    const dir = tempTree({ "r.itp": recipe, "x.jsonl": lines.join("\n") + "\n" });
    dirs.push(dir);
    for (const env of [serial, parallel]) {
      const r = itp(["run", "r.itp", "--store", join(dir, "store")], { cwd: dir, env });
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).toContain("x.jsonl:2201: field `text` is missing");
    }
  });
});
