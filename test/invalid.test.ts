/**
 * The invalid-program corpus: every file (or folder) under test/invalid/ is a small, realistic mistake, with the
 * diagnostics it must produce written next to the offending line:
 *
 *   filter x = seeds |> rouge_dedup(field: instrution)   //~ E041@40
 *   ...                                                   //~ E030@5 E032@20     (several on one line)
 *   //~^ E003@36                                           (the line above; //~^^ two lines above, ...)
 *
 * `CODE@COL` means "a diagnostic with this code starting at this line, column COL". The set of (line, col, code)
 * reported for a file must equal the annotated set exactly: nothing missing (a check that does not fire, a
 * did-you-mean that is absent) and nothing extra (cascades of follow-on errors, duplicates, wrong positions).
 *
 * A folder is a multi-file case: its entry is `main.itp` when there is one (else each of its files), and
 * annotations may sit in any of its files (an import cycle is reported in the importing file).
 *
 * The whole corpus is checked by ONE `itp check --json` run over every entry; diagnostics are grouped by file.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { codes } from "../src/diagnostics/diagnostic.js";
import { itp, repoRoot, stackTrace, tempTree, type CliResult } from "./support/cli.js";

interface JsonDiagnostic {
  file: string | null;
  line: number | null;
  col: number | null;
  endLine: number | null;
  endCol: number | null;
  severity: "error" | "warning";
  code: string;
  message: string;
  hint?: string;
}

interface Case {
  /** File or folder name under test/invalid/. */
  readonly name: string;
  /** Every .itp file of the case, as paths relative to the repository root (what the CLI prints). */
  readonly files: string[];
  /** The paths given to `itp check`. */
  readonly entries: string[];
}

interface Expected {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly code: string;
}

const corpus = "test/invalid";

function discover(): Case[] {
  const cases: Case[] = [];
  for (const name of readdirSync(join(repoRoot, corpus)).sort()) {
    const rel = `${corpus}/${name}`;
    if (statSync(join(repoRoot, rel)).isDirectory()) {
      const files = readdirSync(join(repoRoot, rel))
        .filter((f) => f.endsWith(".itp"))
        .sort()
        .map((f) => `${rel}/${f}`);
      const main = `${rel}/main.itp`;
      cases.push({ name, files, entries: existsSync(join(repoRoot, main)) ? [main] : files });
    } else if (name.endsWith(".itp")) {
      cases.push({ name, files: [rel], entries: [rel] });
    }
  }
  return cases;
}

/** The `//~` annotations of one file. Malformed annotations throw: a typo must not silently weaken a case. */
function annotations(file: string): Expected[] {
  const out: Expected[] = [];
  readFileSync(join(repoRoot, file), "utf8")
    .split("\n")
    .forEach((text, i) => {
      const m = /\/\/~(\^*)(.*)$/.exec(text);
      if (!m) return;
      const line = i + 1 - m[1]!.length;
      const items = m[2]!.trim().split(/\s+/).filter(Boolean);
      if (items.length === 0) throw new Error(`${file}:${i + 1}: empty //~ annotation`);
      for (const item of items) {
        const a = /^([EW]\d{3})@(\d+)$/.exec(item);
        if (!a) throw new Error(`${file}:${i + 1}: malformed annotation \`${item}\` (expected CODE@COL, e.g. E040@18)`);
        if (!(a[1]! in codes)) throw new Error(`${file}:${i + 1}: \`${a[1]}\` is not a diagnostic code`);
        out.push({ file, line, col: Number(a[2]), code: a[1]! });
      }
    });
  return out;
}

const key = (d: { file: string | null; line: number | null; col: number | null; code: string }) => `${d.file}:${d.line}:${d.col} ${d.code}`;

const cases = discover();
const expected = new Map(cases.map((c) => [c.name, c.files.flatMap(annotations)] as const));
const hasError = (c: Case) => expected.get(c.name)!.some((e) => e.code.startsWith("E"));

let run: CliResult;
let all: JsonDiagnostic[] = [];
const byFile = new Map<string, JsonDiagnostic[]>();

beforeAll(() => {
  run = itp(["check", ...cases.flatMap((c) => c.entries), "--json"]);
  all = (JSON.parse(run.stdout) as { diagnostics: JsonDiagnostic[] }).diagnostics;
  for (const d of all) {
    const list = byFile.get(d.file ?? "") ?? [];
    list.push(d);
    byFile.set(d.file ?? "", list);
  }
});

const diagnosticsOf = (c: Case): JsonDiagnostic[] => c.files.flatMap((f) => byFile.get(f) ?? []);

describe("invalid programs: one `check --json` over the corpus", () => {
  it("has at least 45 cases, each with at least one annotation", () => {
    expect(cases.length).toBeGreaterThanOrEqual(45);
    for (const c of cases) expect(expected.get(c.name)!.length, `${c.name} has no //~ annotation`).toBeGreaterThan(0);
  });

  it("exits 1, prints JSON only, and never a stack trace", () => {
    expect(run.code).toBe(1);
    expect(run.stderr).toBe("");
    expect(run.stdout + run.stderr).not.toMatch(stackTrace);
  });

  it("reports every diagnostic against a file of the corpus", () => {
    const known = new Set(cases.flatMap((c) => c.files));
    expect(all.filter((d) => !known.has(d.file ?? "")).map((d) => `${d.file}: ${d.code} ${d.message}`)).toEqual([]);
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const got = diagnosticsOf(c);
    const want = expected.get(c.name)!.map(key).sort();
    const have = got.map(key).sort();
    // On failure, show the messages too: they say what the checker thought.
    const detail = got.map((d) => `${key(d)}: ${d.message}${d.hint ? ` (hint: ${d.hint})` : ""}`).join("\n");
    expect(have, `diagnostics of ${c.name}:\n${detail}`).toEqual(want);
    for (const d of got) {
      expect(d.severity, key(d)).toBe(d.code.startsWith("W") ? "warning" : "error");
      expect(d.line !== null && d.col !== null && d.endLine !== null && d.endCol !== null, `${key(d)} has a position`).toBe(true);
      expect(d.endLine! > d.line! || (d.endLine === d.line && d.endCol! >= d.col!), `${key(d)} ends after it starts`).toBe(true);
      expect(d.message, `${key(d)}: message has stray whitespace`).toBe(d.message.trim());
      if (d.hint !== undefined) expect(d.hint, `${key(d)}: hint has stray whitespace`).toBe(d.hint.trim());
    }
  });
});

/**
 * Beyond positions: what the messages and hints must say. `hint`/`message` must match one diagnostic of `code` in
 * the case; `notHint`/`notMessage` must match none of them.
 */
const wording: { name: string; code: string; message?: RegExp; hint?: RegExp; notMessage?: RegExp; notHint?: RegExp }[] = [
  // Type mismatches name the converter that fixes them.
  { name: "E040-dolly-into-sft.itp", code: "E040", message: /Dataset<Dolly>/, hint: /`dolly \|> dolly_to_instruction\(\)`/ },
  { name: "E040-dolly-into-instruction-filter.itp", code: "E040", message: /distill/, hint: /dolly_to_instruction/ },
  { name: "E040-chat-into-self-instruct.itp", code: "E040", hint: /chat_to_instruction/ },
  { name: "E040-mix-components-differ.itp", code: "E040", hint: /chat_to_instruction/ },
  { name: "E040-dataset-as-model.itp", code: "E040", message: /expects Model/ },
  // Did-you-mean wherever a near name exists.
  { name: "E020-unknown-name-typo.itp", code: "E020", hint: /did you mean `teacher`\?/ },
  { name: "E020-unknown-mix-component.itp", code: "E020", hint: /did you mean `lima`\?/ },
  { name: "E020-recipe-output-typo.itp", code: "E020", hint: /did you mean `deduped`\?/ },
  { name: "E022-unknown-kind-typo.itp", code: "E022", hint: /did you mean `jsonl`\?/ },
  { name: "E022-in-unused-recipe.itp", code: "E022", hint: /did you mean `length`\?/ },
  { name: "E030-unknown-param-typo.itp", code: "E030", hint: /did you mean `temperature`\?/ },
  { name: "E030-recipe-unknown-param.itp", code: "E030", hint: /did you mean `max_words`\?/ },
  { name: "E030-recipe-inner-override-typo.itp", code: "E030", hint: /did you mean `max`\?/ },
  { name: "E030-unknown-param-no-suggestion.itp", code: "E030", hint: /\blr\b/ },
  { name: "E041-field-typo.itp", code: "E041", hint: /did you mean `instruction`\?/ },
  { name: "E041-field-in-list.itp", code: "E041", hint: /did you mean `answer`\?/ },
  { name: "E041-field-of-other-type.itp", code: "E041", hint: /messages/ },
  { name: "E042-unknown-type.itp", code: "E042", hint: /did you mean `Instruction`\?/ },
  // `str` is what a Python user writes for `string`.
  { name: "E042-unknown-field-type.itp", code: "E042", hint: /`string`/ },
  { name: "E012-typo-did-you-mean", code: "E012", hint: /did you mean `teacher`\?/ },
  { name: "E012-name-not-exported", code: "E012", message: /judge_model/, hint: /teacher, judge/ },
  // Messages that say what is wrong.
  { name: "W003-unpinned-hub-read.itp", code: "W003", message: /neither pinned nor locked/, hint: /itp lock/ },
  { name: "E031-missing-model.itp", code: "E031", message: /`model`/ },
  { name: "E032-out-of-range.itp", code: "E032", message: /`temperature`.*at most 2/ },
  { name: "E032-enum.itp", code: "E032", message: /"chars", "words", "tokens"/ },
  { name: "E032-min-greater-than-max.itp", code: "E032", message: /min is greater than max/ },
  // `timeout = 30` is a number where a duration (`30s`) is wanted: "expected a record" is not what the user can act on.
  { name: "E032-wrong-type.itp", code: "E032", message: /`timeout`.*(duration|30s)/, notMessage: /record/ },
  { name: "E032-recipe-param-type.itp", code: "E032", notHint: /\ba int\b/ },
  { name: "E032-wrong-value-category.itp", code: "E032", message: /mix rule/, notMessage: /\ba eval\b/ },
  { name: "E010-missing-std-module.itp", code: "E010", message: /std\/alpca/, hint: /did you mean `std\/alpaca`\?/ },
  // A stray token in the middle of a file: "expected EOF" is the parser's view, not the user's.
  { name: "E001-stray-token.itp", code: "E001", message: /'\)'/, notMessage: /\bEOF\b/ },
  { name: "E011-import-cycle", code: "E011", message: /data\.itp -> models\.itp -> data\.itp/ },
  { name: "E043-annotation-mismatch.itp", code: "E043", message: /Dataset<Chat>/ },
  { name: "E044-keyword-mismatch.itp", code: "E044", hint: /use `model`/ },
  { name: "E045-recipe-without-output.itp", code: "E045", message: /`clean`/ },
  { name: "E050-cycle-two-stages.itp", code: "E050", message: /a -> b -> a/ },
  { name: "E061-secret-in-non-credential.itp", code: "E061", message: /`model`/ },
  // The hint must not send the user to an option that does not exist.
  { name: "E022-stage-called-as-kind.itp", code: "E022", notHint: /--list-kinds/ },
];

describe("invalid programs: wording of messages and hints", () => {
  it.each(wording.map((w) => [`${w.name} ${w.code}`, w] as const))("%s", (_n, w) => {
    const c = cases.find((x) => x.name === w.name);
    expect(c, `no case ${w.name}`).toBeDefined();
    const ds = diagnosticsOf(c!).filter((d) => d.code === w.code);
    expect(ds.length, `${w.name} has no ${w.code}`).toBeGreaterThan(0);
    const show = ds.map((d) => `${d.message} | hint: ${d.hint ?? "(none)"}`).join("\n");
    if (w.message) expect(ds.some((d) => w.message!.test(d.message)), show).toBe(true);
    if (w.hint) expect(ds.some((d) => d.hint !== undefined && w.hint!.test(d.hint)), show).toBe(true);
    if (w.notMessage) expect(ds.some((d) => w.notMessage!.test(d.message)), show).toBe(false);
    if (w.notHint) expect(ds.some((d) => d.hint !== undefined && w.notHint!.test(d.hint)), show).toBe(false);
  });

  it("hints only mention commands and options that exist", () => {
    const commands = new Set<string>();
    for (const d of all) for (const m of (d.hint ?? "").matchAll(/`itp ([a-z]+(?: --[a-z-]+)*)/g)) commands.add(m[1]!);
    for (const c of commands) {
      const [verb, ...options] = c.split(" ");
      const r = itp([verb!, ...options, "--help"]);
      expect(r.code, `\`itp ${c}\` is suggested by a hint but is not a command line itp accepts:\n${r.stderr}`).toBe(0);
    }
  });
});

describe("invalid programs: exit codes", () => {
  const warningOnly = cases.filter((c) => !hasError(c));

  it("the corpus has warning-only cases", () => {
    expect(warningOnly.length).toBeGreaterThan(0);
  });

  it("a file with only warnings exits 0; with an error, 1", () => {
    // One run for all warning-only cases: any error among them would make it exit 1.
    const w = itp(["check", ...warningOnly.flatMap((c) => c.entries)]);
    expect(w.stdout + w.stderr).not.toMatch(stackTrace);
    expect(w.stderr).toMatch(/warning\[W001\]/);
    expect(w.code).toBe(0);
    // And one error case added to them flips it.
    const e = itp(["check", ...warningOnly.flatMap((c) => c.entries), `${corpus}/E041-field-typo.itp`]);
    expect(e.code).toBe(1);
  });
});

describe("invalid programs: the human format", () => {
  // Three cases: a hint with a converter, a did-you-mean, and no hint at all.
  const picked = ["E040-dolly-into-sft.itp", "E041-field-typo.itp", "E044-plain-value.itp"].map((n) => `${corpus}/${n}`);
  let text: CliResult;
  beforeAll(() => {
    text = itp(["check", ...picked]);
  });

  it("exits 1 without a stack trace, and ends with the count", () => {
    expect(text.code).toBe(1);
    expect(text.stdout + text.stderr).not.toMatch(stackTrace);
    expect(text.stderr.trimEnd()).toMatch(/\n\d+ errors?(, \d+ warnings?)?$/);
  });

  it.each(picked)("%s: header, source line, caret, hint", (file) => {
    const ds = byFile.get(file) ?? [];
    expect(ds.length).toBeGreaterThan(0);
    const source = readFileSync(join(repoRoot, file), "utf8").split("\n");
    const lines = text.stderr.split("\n");
    for (const d of ds) {
      const header = `${file}:${d.line}:${d.col}: ${d.severity}[${d.code}]: ${d.message}`;
      const at = lines.indexOf(header);
      expect(at, `no line \`${header}\` in:\n${text.stderr}`).toBeGreaterThanOrEqual(0);
      const gutter = String(d.line);
      const pad = " ".repeat(gutter.length);
      expect(lines[at + 1]).toBe(`${pad} |`);
      expect(lines[at + 2]).toBe(`${gutter} | ${source[d.line! - 1]}`);
      const width = d.endLine === d.line ? Math.max(1, d.endCol! - d.col!) : Math.max(1, source[d.line! - 1]!.length - d.col! + 1);
      expect(lines[at + 3]).toBe(`${pad} | ${" ".repeat(d.col! - 1)}${"^".repeat(width)}`);
      if (d.hint !== undefined) expect(lines[at + 4]).toBe(`${pad} = hint: ${d.hint}`);
      else expect(lines[at + 4]).toBe("");
    }
  });

  it("the picked cases include one with a hint and one without", () => {
    const ds = picked.flatMap((f) => byFile.get(f) ?? []);
    expect(ds.some((d) => d.hint !== undefined)).toBe(true);
    expect(ds.some((d) => d.hint === undefined)).toBe(true);
  });
});

describe("E060: invalid --set overrides", () => {
  const valid = `model teacher = openai_compatible { model = "gpt-4o-mini" }

dataset seeds: Instruction = jsonl("data/seed_tasks.jsonl")

generate raw = generate_alpaca(seeds) { model = teacher, target = 1_000 }

filter clean = raw |> rouge_dedup(field: instruction, max: 0.7)

dataset sample = take(clean, n: 500)
`;
  let dir: string;
  beforeAll(() => {
    dir = tempTree({ "r.itp": valid, "data/seed_tasks.jsonl": "" });
  });
  const check = (...sets: string[]) => {
    const r = itp(["check", "r.itp", ...sets.flatMap((s) => ["--set", s]), "--json"], { cwd: dir });
    expect(r.stdout + r.stderr).not.toMatch(stackTrace);
    return { code: r.code, diagnostics: (JSON.parse(r.stdout) as { diagnostics: JsonDiagnostic[] }).diagnostics };
  };

  it("the recipe is valid, and a good override keeps it so", () => {
    expect(check()).toEqual({ code: 0, diagnostics: [] });
    expect(check("sample.n=100", "clean.max=0.8")).toEqual({ code: 0, diagnostics: [] });
  });

  it.each([
    ["an unknown stage", "nosuch.param=1", /no stage `nosuch`/],
    ["an unknown parameter", "sample.nosuch=1", /`take` has no parameter `nosuch`/],
    ["a malformed override", "x=1", /expected STAGE\.PARAM=VALUE/],
    ["a malformed value", "sample.n=abc def", /def/],
  ])("%s: --set %s gives E060 and exit 1", (_what, set, message) => {
    const r = check(set);
    expect(r.code).toBe(1);
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E060"]);
    expect(r.diagnostics[0]!.message).toMatch(message);
  });

  it("did-you-mean for a misspelled stage or parameter", () => {
    expect(check("clean.maxx=0.5").diagnostics[0]).toMatchObject({ code: "E060", hint: "did you mean `max`?" });
    expect(check("smaple.n=3").diagnostics[0]).toMatchObject({ code: "E060", hint: "did you mean `sample`?" });
  });

  it("in the human format, an override error has no position", () => {
    const r = itp(["check", "r.itp", "--set", "nosuch.param=1"], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("itp: error[E060]: --set nosuch.param: no stage `nosuch`");
    expect(r.stdout + r.stderr).not.toMatch(stackTrace);
  });
});

describe("coverage", () => {
  it("the corpus (and the --set tests, for E060) covers every diagnostic code", () => {
    const covered = new Set([...expected.values()].flat().map((e) => e.code));
    covered.add("E060"); // the --set tests above
    covered.add("E070"); // plan and run, not check: test/cli.test.ts ("a local input that does not exist")
    covered.add("E062"); // a lock file, not a recipe: test/lock.test.ts
    // Against a repository and a lock: test/packages.test.ts (a moved ref, an unpinned git import, a package bump).
    for (const c of ["E015", "W004", "W005"]) covered.add(c);
    covered.add("E076"); // every executor the language names exists now: test/runnable.test.ts, against a smaller set
    for (const c of ["E090", "E091", "E092"]) covered.add(c); // the profile file, not a recipe: test/profiles.test.ts
    covered.add("E082"); // only under --deny-read-outside: test/effects.test.ts
    covered.add("E075"); // every kind of this version is implemented: test/runnable.test.ts declares one unimplemented
    expect(Object.keys(codes).filter((c) => !covered.has(c))).toEqual([]);
  });

  it("the important codes have several cases each", () => {
    const count = (code: string) => cases.filter((c) => expected.get(c.name)!.some((e) => e.code === code)).length;
    for (const code of ["E001", "E020", "E030", "E032", "E040", "E041"]) expect(count(code), code).toBeGreaterThanOrEqual(3);
  });
});
