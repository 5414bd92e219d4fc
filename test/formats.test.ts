import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { Effect } from "effect";
import { ByteWriter, parquetWrite } from "hyparquet-writer";
import { afterAll, describe, expect, it } from "vitest";
import type { IrStage } from "../src/core/ir.js";
import type { BadRecord } from "../src/formats/bad-record.js";
import { readCsvRecords } from "../src/formats/csv.js";
import { globFiles, globMatcher } from "../src/formats/glob.js";
import { readJsonRecords } from "../src/formats/json.js";
import { readJsonlRecords } from "../src/formats/jsonl.js";
import { parquetFooter, ParquetSchemaBuilder, readParquet, writeParquet, writeParquetColumns } from "../src/formats/parquet.js";
import { recordCheck } from "../src/formats/record-type.js";
import { formatOfPath, readRecordsFile } from "../src/formats/records-file.js";
import { UserError } from "../src/core/errors.js";
import { JsonlWriter, LineSplitter, readJsonl, readJsonlBuffer, type RecordValue } from "../src/core/records.js";
import { exportImpls } from "../src/stages/export/export.js";
import { sourceImpls } from "../src/stages/sources/files.js";
import { builtinRecordTypes } from "../src/types/builtins.js";
import { dataset, record, scalar, type Ty } from "../src/types/types.js";
import { itp, repoRoot, stackTrace, tempTree } from "./support/cli.js";
import { rng } from "./support/fuzz.js";
import { makeCtx, recordSink, runImpl } from "./support/stage-ctx.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh folder holding the given files (text or bytes). */
function folder(files: Record<string, string | Buffer> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "itp-formats-"));
  dirs.push(dir);
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(join(dir, p, ".."), { recursive: true });
    writeFileSync(join(dir, p), data);
  }
  return dir;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** The error a read throws (it must throw), as message and hint. */
async function failure(it: AsyncIterable<unknown>): Promise<{ message: string; hint: string | undefined }> {
  try {
    await collect(it);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return { message: (e as UserError).message, hint: (e as UserError).hint };
  }
  throw new Error("expected the read to fail");
}

/** Records and bad records of a read that skips. */
async function skipping(read: (onBad: (b: BadRecord) => void) => AsyncIterable<RecordValue>) {
  const bad: BadRecord[] = [];
  const records = await collect(read((b) => bad.push(b)));
  return { records, bad: bad.map((b) => ({ at: b.at, reason: b.reason, problem: b.problem })) };
}

const INSTRUCTION = dataset(builtinRecordTypes.get("Instruction")!);
const CHAT = dataset(builtinRecordTypes.get("Chat")!);

describe("record type checks", () => {
  const instruction = recordCheck(INSTRUCTION)!;
  const chat = recordCheck(CHAT)!;

  it("missing and null required fields name the field and the type's fields", () => {
    expect(instruction({ instruction: "i", output: "o" })).toBeUndefined();
    expect(instruction({ instruction: "i", input: null, output: "o", extra: 1 })).toBeUndefined();
    expect(instruction({ instruction: "i" })).toEqual({ problem: "field `output` is missing (Instruction needs instruction, input?, output)", reason: "field output missing" });
    expect(instruction({ instruction: "i", output: null })).toEqual({ problem: "field `output` is null (Instruction needs instruction, input?, output)", reason: "field output null" });
  });

  it("wrong types, nested paths included; the reason has no list index", () => {
    expect(instruction({ instruction: "i", output: 3 })).toEqual({ problem: "field `output` is an integer (Instruction needs a string there)", reason: "field output not a string" });
    expect(instruction({ instruction: ["i"], output: "o" })?.problem).toBe("field `instruction` is a list (Instruction needs a string there)");
    expect(chat({ messages: [{ role: "user", content: "hi" }] })).toBeUndefined();
    expect(chat({ messages: "hi" })?.problem).toBe("field `messages` is a string (Chat needs a list<Message> there)");
    expect(chat({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: 7.5 }] })).toEqual({ problem: "field `messages[1].content` is a number (Chat needs a string there)", reason: "field messages[].content not a string" });
    expect(chat({ messages: [{ role: "user" }] })?.problem).toBe("field `messages[0].content` is missing (Message needs role, content)");
    const t = record("Scored", { score: scalar("float"), n: scalar("int"), ok: scalar("bool") });
    const scored = recordCheck(dataset(t))!;
    expect(scored({ score: 1, n: 2, ok: true })).toBeUndefined();
    expect(scored({ score: 1, n: 2.5, ok: true })?.problem).toBe("field `n` is a number (Scored needs an integer there)");
    expect(scored({ score: "1", n: 2, ok: true })?.problem).toBe("field `score` is a string (Scored needs a number there)");
  });

  it("open records (Json, an unannotated source) and non-dataset types check nothing", () => {
    expect(recordCheck(dataset(builtinRecordTypes.get("Json")!))).toBeUndefined();
    expect(recordCheck(undefined)).toBeUndefined();
    expect(recordCheck(scalar("string"))).toBeUndefined();
  });
});

describe("JSON Lines", () => {
  it("splits lines of chunks cut anywhere (inside a UTF-8 character too) the same as the whole text", () => {
    const text = '\ufeff{"a":"é🙂"}\r\n\n{"b":"x"}\n  \n{"c":"' + "y".repeat(3000) + '"}';
    const bytes = Buffer.from(text, "utf8");
    const expected = ['{"a":"é🙂"}', "", '{"b":"x"}', "  ", `{"c":"${"y".repeat(3000)}"}`];
    const rand = rng(3);
    for (let k = 0; k < 200; k++) {
      const s = new LineSplitter();
      const lines: string[] = [];
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(rand() * (k % 2 ? 8 : 400));
        lines.push(...s.push(bytes.subarray(at, at + n)));
        at += n;
      }
      lines.push(...s.end());
      expect(lines).toEqual(expected);
    }
  });

  it("reads records, skipping blank lines, a byte order mark and CR; artifacts read the same from a buffer", async () => {
    const dir = folder({ "x.jsonl": '\ufeff{"a":1}\r\n\n   \n{"b":"é"}\n{"c":[1,{"d":null}]}' });
    const want = [{ a: 1 }, { b: "é" }, { c: [1, { d: null }] }];
    expect(await collect(readJsonlRecords(join(dir, "x.jsonl"), "x.jsonl"))).toEqual(want);
    expect(await collect(readJsonl(join(dir, "x.jsonl")))).toEqual(want);
    expect(await collect(readJsonlBuffer(readFileSync(join(dir, "x.jsonl")), "x"))).toEqual(want);
  });

  it("a broken line names the file and line; with a handler it is skipped and reading goes on", async () => {
    const dir = folder({ "x.jsonl": '{"a":1}\n\n{"a": 2,\n[1,2]\n{"a":3}\n' });
    const f = await failure(readJsonlRecords(join(dir, "x.jsonl"), "data/x.jsonl"));
    expect(f.message).toMatch(/^data\/x\.jsonl:3: not valid JSON \(.+\)$/);
    expect(f.hint).toBe('each line must hold one whole JSON object; or set on_error = "skip" to drop bad records (they are counted as dropped)');
    const s = await skipping((onBad) => readJsonlRecords(join(dir, "x.jsonl"), "x.jsonl", { onBad }));
    expect(s.records).toEqual([{ a: 1 }, { a: 3 }]);
    expect(s.bad.map((b) => [b.at, b.reason])).toEqual([
      [{ line: 3 }, "not valid JSON"],
      [{ line: 4 }, "not a JSON object"],
    ]);
    // The runtime's reader (artifacts) fails the same way.
    await expect(collect(readJsonl(join(dir, "x.jsonl"), "x.jsonl"))).rejects.toThrow(/^x\.jsonl:3: not valid JSON/);
  });

  it("records of the declared type are checked at the line they are on", async () => {
    const dir = folder({ "x.jsonl": '{"instruction":"i","output":"o"}\n{"instruction":"i"}\n' });
    const f = await failure(readJsonlRecords(join(dir, "x.jsonl"), "x.jsonl", { check: recordCheck(INSTRUCTION)! }));
    expect(f.message).toBe("x.jsonl:2: field `output` is missing (Instruction needs instruction, input?, output)");
  });

  it("JsonlWriter writes what JSON.stringify gives, across blocks and for lines longer than a block, with its sha256", async () => {
    const dir = folder();
    const rand = rng(5);
    const recs: RecordValue[] = Array.from({ length: 3000 }, (_, i) => ({ i, t: "é🙂x".repeat(Math.floor(rand() * (i % 500 === 0 ? 200_000 : 300))) }));
    const w = new JsonlWriter(join(dir, "a.jsonl"));
    for (const r of recs) await w.write(r);
    const { digest, data } = await w.finish(1 << 30);
    const expected = Buffer.from(recs.map((r) => JSON.stringify(r) + "\n").join(""), "utf8");
    expect(data).toBeUndefined(); // large: it went to the file
    const written = readFileSync(join(dir, "a.jsonl"));
    expect(written.equals(expected)).toBe(true);
    expect(digest).toBe(createHash("sha256").update(expected).digest("hex"));
    expect([w.records, w.bytes]).toEqual([3000, expected.length]);
    // A small output stays in memory when asked to.
    const small = new JsonlWriter(join(dir, "b.jsonl"));
    await small.write({ a: "é" });
    const kept = await small.finish(100);
    expect(kept.data?.toString("utf8")).toBe('{"a":"é"}\n');
    expect(readdirSync(dir).sort()).toEqual(["a.jsonl"]);
  });
});

describe("JSON", () => {
  it("reads an array, or the array under a key; elements that are not objects are bad records", async () => {
    const dir = folder({ "a.json": '[{"a":1},{"a":2}]', "b.json": '{"rows":[{"a":1},3,{"a":2}]}', "c.json": '[\n  {"a": 1},\n  {"a" 1}\n]' });
    expect(await collect(readJsonRecords(join(dir, "a.json"), "a.json"))).toEqual([{ a: 1 }, { a: 2 }]);
    expect((await failure(readJsonRecords(join(dir, "b.json"), "b.json", { key: "rows" }))).message).toBe("b.json element 1: not a record (a JSON object)");
    const s = await skipping((onBad) => readJsonRecords(join(dir, "b.json"), "b.json", { key: "rows", onBad }));
    expect(s.records).toEqual([{ a: 1 }, { a: 2 }]);
    expect(s.bad).toEqual([{ at: { element: 1 }, reason: "not a JSON object", problem: "not a record (a JSON object)" }]);
    // A file that does not parse fails with the line and column, whatever onBad says.
    expect((await failure(readJsonRecords(join(dir, "c.json"), "c.json", { onBad: () => undefined }))).message).toBe("c.json:3:8: not valid JSON (Expected ':' after property name)");
    expect((await failure(readJsonRecords(join(dir, "b.json"), "b.json", { key: "data" }))).message).toBe("b.json: expected an array of records under `data`");
  });

  it("a file that does not parse gets the hint that fits: truncated array, or JSON Lines", async () => {
    const dir = folder({ "cut.json": '[\n  {"a": 1},\n  {"a": 2', "lines.json": '{"a": 1}\n{"a": 2}\n', "comma.json": '[{"a": 1},]' });
    const cut = (await failure(readJsonRecords(join(dir, "cut.json"), "cut.json"))) as Error & { hint?: string };
    expect(cut.message).toMatch(/^cut\.json:3:10: not valid JSON/);
    expect(cut.hint).toMatch(/truncated/);
    expect(cut.hint).not.toMatch(/JSON Lines/);
    const lines = (await failure(readJsonRecords(join(dir, "lines.json"), "lines.json"))) as Error & { hint?: string };
    expect(lines.hint).toMatch(/JSON Lines file is read with jsonl/);
    const comma = (await failure(readJsonRecords(join(dir, "comma.json"), "comma.json"))) as Error & { hint?: string };
    expect(comma.hint ?? "").not.toMatch(/JSON Lines|truncated/);
  });
});

describe("CSV and TSV", () => {
  const csv = (text: string, opts: Parameters<typeof readCsvRecords>[2] = {}) => {
    const dir = folder({ "x.csv": text });
    return readCsvRecords(join(dir, "x.csv"), "x.csv", opts);
  };

  it("RFC 4180: quoted delimiters, doubled quotes, line breaks inside quotes, CRLF, empty fields, no final newline", async () => {
    const text = 'id,text,note\r\n1,"a, b",\r\n2,"say ""hi""","two\r\nlines"\r\n3,,"x\n\ny"\r\n4,plain,"é🙂"';
    expect(await collect(csv(text))).toEqual([
      { id: "1", text: "a, b", note: "" },
      { id: "2", text: 'say "hi"', note: "two\r\nlines" },
      { id: "3", text: "", note: "x\n\ny" },
      { id: "4", text: "plain", note: "é🙂" },
    ]);
  });

  it("a byte order mark, blank and space-only lines, LF and lone CR line ends; header cells trimmed, empty ones named", async () => {
    expect(await collect(csv("\ufeff a ,,c\n1,2,3\n\n   \n4,5,6\r7,8,9\n"))).toEqual([
      { a: "1", col1: "2", c: "3" },
      { a: "4", col1: "5", c: "6" },
      { a: "7", col1: "8", c: "9" },
    ]);
  });

  it("without a header the columns are col0, col1, ...; other delimiter and quote characters", async () => {
    expect(await collect(csv("1;'a;b'\n2;'it''s'\n", { header: false, delimiter: ";", quote: "'" }))).toEqual([
      { col0: "1", col1: "a;b" },
      { col0: "2", col1: "it's" },
    ]);
  });

  it("TSV is CSV with tabs: commas are plain characters, a quoted field may hold a tab", async () => {
    const dir = folder({ "x.tsv": 'q\ta\nwhat, then?\t"tab\there"\n' });
    expect(await collect(readRecordsFile(join(dir, "x.tsv"), "x.tsv", "tsv"))).toEqual([{ q: "what, then?", a: "tab\there" }]);
  });

  it("a row with the wrong number of fields names its first line (after a multi-line field); skipped with a handler", async () => {
    const text = 'a,b\n1,"two\nlines"\n3,4,5\n6,7\n8\n';
    const f = await failure(csv(text));
    expect(f.message).toBe("x.csv:4: 3 fields, but the header has 2 (a, b)");
    expect(f.hint).toMatch(/^put a field holding the delimiter, a quote or a line break in quotes.*; or set on_error = "skip"/);
    const s = await skipping((onBad) => csv(text, { onBad }));
    expect(s.records).toEqual([
      { a: "1", b: "two\nlines" },
      { a: "6", b: "7" },
    ]);
    expect(s.bad).toEqual([
      { at: { line: 4 }, reason: "wrong number of columns", problem: "3 fields, but the header has 2 (a, b)" },
      { at: { line: 6 }, reason: "wrong number of columns", problem: "1 field, but the header has 2 (a, b)" },
    ]);
    expect((await failure(csv("1,2\n3\n", { header: false }))).message).toBe("x.csv:2: 1 field, but the first row has 2");
  });

  it("quoting errors name the line; a quote that is never closed names the line it opens on", async () => {
    expect((await failure(csv('a,b\n1,2\n3,"x"y\n'))).message).toBe("x.csv:3: a closing quote is followed by `y` instead of the delimiter or the end of the line");
    expect((await failure(csv('a,b\n1,2\n3,x"y\n'))).message).toBe("x.csv:3: a quote inside a field that does not start with one");
    expect((await failure(csv('a,b\n1,2\n3,"open\n4,5\n6,7\n'))).message).toBe("x.csv:3: a quoted field is never closed (it runs to the end of the file)");
    const s = await skipping((onBad) => csv('a,b\n1,2\n3,x"y\n4,5\n', { onBad }));
    expect(s.records).toEqual([
      { a: "1", b: "2" },
      { a: "4", b: "5" },
    ]);
    expect(s.bad).toEqual([{ at: { line: 3 }, reason: "bad CSV quoting", problem: "a quote inside a field that does not start with one" }]);
  });

  it("a header naming a column twice is an error; so is a missing file", async () => {
    expect((await failure(csv("a,b,a\n1,2,3\n"))).message).toBe("x.csv:1: column `a` appears twice in the header");
    expect((await failure(readCsvRecords("/nonexistent/x.csv", "x.csv"))).message).toBe("cannot read x.csv (ENOENT)");
  });

  it("values are strings, so a typed source catches a missing column, at its line", async () => {
    const f = await failure(csv("instruction,input\ni,x\n", { check: recordCheck(INSTRUCTION)! }));
    expect(f.message).toBe("x.csv:2: field `output` is missing (Instruction needs instruction, input?, output)");
  });
});

describe("Parquet", () => {
  const chat = (i: number) => [
    { role: "user", content: `question ${i}: ¿qué tal? 你好 🙂` },
    { role: "assistant", content: i % 2 ? "yes" : "no", extra: { score: i / 4, tags: ["a", null] } },
  ];
  const records: RecordValue[] = Array.from({ length: 25 }, (_, i) => ({
    id: i,
    text: i === 3 ? "" : `row ${i} é🙂`,
    score: i / 3,
    ok: i % 3 === 0,
    messages: chat(i),
    maybe: i % 4 === 0 ? null : `m${i}`,
    mixed: i % 2 ? "s" : i,
    big: 2 ** 60,
    ...(i % 5 === 0 ? {} : { sometimes: i }),
  }));

  it("round trip: nested values, nulls, unicode, integers, doubles, booleans, a mixed column, absent fields", async () => {
    const dir = folder();
    await writeParquet(join(dir, "a.parquet"), records);
    const back = await collect(readParquet(join(dir, "a.parquet"), "a.parquet"));
    expect(back).toEqual(records);
    // Key order of each record is the column order: first-seen.
    expect(Object.keys(back[0]!)).toEqual(["id", "text", "score", "ok", "messages", "maybe", "mixed", "big"]);
    expect(Object.keys(back[1]!)).toEqual(["id", "text", "score", "ok", "messages", "maybe", "mixed", "big", "sometimes"]);
    const footer = await parquetFooter(join(dir, "a.parquet"), "a.parquet");
    const types = Object.fromEntries(footer.schema.slice(1).map((e) => [e.name, `${e.type}${e.converted_type ? `/${e.converted_type}` : ""}`]));
    expect(types).toEqual({ id: "INT64", text: "BYTE_ARRAY/UTF8", score: "DOUBLE", ok: "BOOLEAN", messages: "BYTE_ARRAY/JSON", maybe: "BYTE_ARRAY/UTF8", mixed: "BYTE_ARRAY/JSON", big: "DOUBLE", sometimes: "INT64" });
  });

  it("parquet -> records -> parquet -> records is the identity, and the same records give the same bytes", async () => {
    const dir = folder();
    async function* once(): AsyncGenerator<RecordValue> {
      yield* records; // iterable once: spooled
    }
    await writeParquet(join(dir, "1.parquet"), once());
    const first = await collect(readParquet(join(dir, "1.parquet"), "1.parquet"));
    await writeParquet(join(dir, "2.parquet"), readParquet(join(dir, "1.parquet"), "1.parquet"));
    expect(await collect(readParquet(join(dir, "2.parquet"), "2.parquet"))).toEqual(first);
    expect(readFileSync(join(dir, "2.parquet")).equals(readFileSync(join(dir, "1.parquet")))).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(["1.parquet", "2.parquet"]); // no spool or temporary file left
  });

  it("a field that is null in some records and absent in others reads back as null in both", async () => {
    const dir = folder();
    await writeParquet(join(dir, "a.parquet"), [{ a: 1, b: null }, { a: 2 }, { a: 3, b: "x" }]);
    expect(await collect(readParquet(join(dir, "a.parquet"), "a.parquet"))).toEqual([
      { a: 1, b: null },
      { a: 2, b: null },
      { a: 3, b: "x" },
    ]);
  });

  it("row group by row group; only the columns asked for; an empty dataset", async () => {
    const dir = folder();
    const schema = new ParquetSchemaBuilder();
    for (const r of records) schema.add(r);
    await writeParquetColumns(join(dir, "g.parquet"), schema.columns(), records, { groupRows: 7 });
    expect((await parquetFooter(join(dir, "g.parquet"), "g.parquet")).row_groups.map((g) => Number(g.num_rows))).toEqual([7, 7, 7, 4]);
    expect(await collect(readParquet(join(dir, "g.parquet"), "g.parquet"))).toEqual(records);
    expect(await collect(readParquet(join(dir, "g.parquet"), "g.parquet", { columns: ["messages", "id"] }))).toEqual(records.map((r) => ({ messages: r["messages"], id: r["id"] })));
    const f = await failure(readParquet(join(dir, "g.parquet"), "g.parquet", { columns: ["nope"] }));
    expect(f.message).toBe("g.parquet has no column `nope`");
    expect(f.hint).toBe("its columns: id, text, score, ok, messages, maybe, mixed, big, sometimes");
    await writeParquet(join(dir, "empty.parquet"), []);
    expect(await collect(readParquet(join(dir, "empty.parquet"), "empty.parquet"))).toEqual([]);
  });

  it("reads other writers' files: GZIP and Brotli pages, nested LIST<STRUCT> columns, INT64 beyond 2^53", async () => {
    const dir = folder();
    const w = new ByteWriter();
    parquetWrite({
      writer: w,
      codec: "GZIP",
      compressors: { GZIP: (x: Uint8Array) => gzipSync(x) },
      columnData: [
        { name: "id", data: [1n, 2n ** 60n], type: "INT64" },
        { name: "t", data: ["a", "é"], type: "STRING" },
      ],
    });
    writeFileSync(join(dir, "gz.parquet"), Buffer.from(w.getBuffer()));
    expect(await collect(readParquet(join(dir, "gz.parquet"), "gz.parquet"))).toEqual([
      { id: 1, t: "a" },
      { id: "1152921504606846976", t: "é" },
    ]);
    const n = new ByteWriter();
    parquetWrite({
      writer: n,
      codec: "BROTLI",
      compressors: { BROTLI: (x: Uint8Array) => brotliCompressSync(x) },
      schema: [
        { name: "root", num_children: 1 },
        { name: "messages", repetition_type: "OPTIONAL", num_children: 1, converted_type: "LIST" },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
        { name: "role", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
        { name: "content", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
      ],
      columnData: [{ name: "messages", data: [[{ role: "user", content: "hi" }], []] }],
    });
    writeFileSync(join(dir, "nested.parquet"), Buffer.from(n.getBuffer()));
    expect(await collect(readParquet(join(dir, "nested.parquet"), "nested.parquet"))).toEqual([{ messages: [{ role: "user", content: "hi" }] }, { messages: [] }]);
    // A string column whose values look like JSON stays strings: only the JSON annotation is parsed.
    await writeParquet(join(dir, "s.parquet"), [{ s: '{"a":1}' }, { s: "[1]" }]);
    expect(await collect(readParquet(join(dir, "s.parquet"), "s.parquet"))).toEqual([{ s: '{"a":1}' }, { s: "[1]" }]);
  });

  it("a truncated file, a corrupt row group, invalid JSON in a JSON column: the file, the row, a hint", async () => {
    const dir = folder();
    await writeParquet(join(dir, "a.parquet"), Array.from({ length: 10 }, (_, i) => ({ i, s: `row ${i} ${"x".repeat(40)}` })));
    const bytes = readFileSync(join(dir, "a.parquet"));
    writeFileSync(join(dir, "truncated.parquet"), bytes.subarray(0, bytes.length - 20));
    const t = await failure(readParquet(join(dir, "truncated.parquet"), "truncated.parquet"));
    expect(t.message).toBe("truncated.parquet is not a readable Parquet file (file invalid (footer != PAR1))");
    expect(t.hint).toBe("the file is truncated or not Parquet: download or export it again");
    // Skipping does not help a file without a footer: there is nothing to skip to.
    await expect(collect(readParquet(join(dir, "truncated.parquet"), "truncated.parquet", { onBad: () => undefined }))).rejects.toThrow(/not a readable Parquet file/);
    writeFileSync(join(dir, "text.parquet"), "a,b\n1,2\n");
    expect((await failure(readParquet(join(dir, "text.parquet"), "text.parquet"))).message).toMatch(/^text\.parquet is not a readable Parquet file \(/);
    const corrupt = Buffer.from(bytes);
    corrupt.fill(0xff, 4, 12); // the first page header
    writeFileSync(join(dir, "corrupt.parquet"), corrupt);
    expect((await failure(readParquet(join(dir, "corrupt.parquet"), "corrupt.parquet"))).message).toMatch(/^corrupt\.parquet row 0: row group 0 \(rows 0 to 9\) cannot be decoded \(.+\)$/);
    const s = await skipping((onBad) => readParquet(join(dir, "corrupt.parquet"), "corrupt.parquet", { onBad }));
    expect(s.records).toEqual([]);
    expect(s.bad.map((b) => [b.at, b.reason])).toEqual(Array.from({ length: 10 }, (_, row) => [{ row }, "unreadable Parquet row group"]));
    // A JSON column holding text that is not JSON: written as a string column, then its footer entry's converted
    // type patched from UTF8 (0) to JSON (19, zigzag 0x26) after the name `j` (Thrift compact: length 1, "j",
    // field 6 as i32 two fields on: 0x25). The writer itself only ever writes valid JSON there.
    const w = new ByteWriter();
    parquetWrite({ writer: w, statistics: false, columnData: [{ name: "j", data: ['{"a":1}', "{oops", "2"], type: "STRING" }] });
    const j = Buffer.from(w.getBuffer());
    const at = j.lastIndexOf(Buffer.from([0x01, 0x6a, 0x25, 0x00]));
    expect(at).toBeGreaterThan(0);
    j[at + 3] = 0x26;
    writeFileSync(join(dir, "j.parquet"), j);
    expect((await failure(readParquet(join(dir, "j.parquet"), "j.parquet"))).message).toMatch(/^j\.parquet row 1: field `j` is annotated JSON but does not parse \(.+\)$/);
    const sj = await skipping((onBad) => readParquet(join(dir, "j.parquet"), "j.parquet", { onBad }));
    expect(sj.records).toEqual([{ j: { a: 1 } }, { j: 2 }]);
  });

  it("columns of the wrong type for the declared record type name the row and field", async () => {
    const dir = folder();
    await writeParquet(join(dir, "a.parquet"), [
      { instruction: "i", output: "o" },
      { instruction: "i", output: 42 },
    ]);
    const f = await failure(readParquet(join(dir, "a.parquet"), "a.parquet", { check: recordCheck(INSTRUCTION)! }));
    expect(f.message).toBe("a.parquet row 1: field `output` is an integer (Instruction needs a string there)");
  });
});

describe("glob", () => {
  it("*, ? and ** over path segments; hidden names only for patterns that name them", () => {
    const cases: [string, string, boolean][] = [
      ["*.jsonl", "a.jsonl", true],
      ["*.jsonl", "sub/a.jsonl", false],
      ["*.jsonl", ".a.jsonl", false],
      [".*.jsonl", ".a.jsonl", true],
      ["train-?????.parquet", "train-00001.parquet", true],
      ["train-?????.parquet", "train-0001.parquet", false],
      ["**/*.jsonl", "a.jsonl", true],
      ["**/*.jsonl", "x/y/a.jsonl", true],
      ["**/*.jsonl", "x/.git/a.jsonl", false],
      ["data/**/part-*.csv", "data/part-1.csv", true],
      ["data/**/part-*.csv", "data/2024/01/part-1.csv", true],
      ["data/**/part-*.csv", "other/part-1.csv", false],
      ["a**b", "aXYb", true],
      ["a**b", "a/b", false],
      ["**", "x/y/z", true],
      ["(x)+[y].jsonl", "(x)+[y].jsonl", true],
      ["(x)+[y].jsonl", "xx[y].jsonl", false],
      // A leading `**` glued to a name is a `*` too; characters that picomatch would read as syntax are plain.
      ["**.jsonl", "a.jsonl", true],
      ["**.jsonl", "x/a.jsonl", false],
      ["{a,b}.jsonl", "{a,b}.jsonl", true],
      ["{a,b}.jsonl", "a.jsonl", false],
      ["!a.jsonl", "b.jsonl", false],
      ["a\\\\b|$^@.jsonl", "a\\\\b|$^@.jsonl", true],
      ["a\\*", "a\\\\x", true],
      ["'a'.jsonl", "a.jsonl", false],
    ];
    for (const [pattern, path, want] of cases) expect(globMatcher(pattern)(path), `${pattern} ~ ${path}`).toBe(want);
  });

  it("lists matching files in code-unit order, recursing only for **, following file links, skipping hidden folders", () => {
    const dir = folder({ "b.jsonl": "", "a.jsonl": "", "B.jsonl": "", "a-1.jsonl": "", ".tmp.jsonl": "", "x.txt": "", "sub/c.jsonl": "", "sub/deep/d.jsonl": "", ".git/e.jsonl": "" });
    symlinkSync(join(dir, "sub/c.jsonl"), join(dir, "link.jsonl"));
    symlinkSync(dir, join(dir, "sub/loop"));
    expect(globFiles(dir, "*.jsonl")).toEqual(["B.jsonl", "a-1.jsonl", "a.jsonl", "b.jsonl", "link.jsonl"]);
    expect(globFiles(dir, "**/*.jsonl")).toEqual(["B.jsonl", "a-1.jsonl", "a.jsonl", "b.jsonl", "link.jsonl", "sub/c.jsonl", "sub/deep/d.jsonl"]);
    expect(globFiles(dir, "sub/*.jsonl")).toEqual(["sub/c.jsonl"]);
    expect(globFiles(dir, ".git/*.jsonl")).toEqual([".git/e.jsonl"]);
    expect(() => globFiles(dir, "../*.jsonl")).toThrow(/must be a relative path inside the folder/);
    expect(() => globFiles(join(dir, "nope"), "*.jsonl", "nope")).toThrow(/^cannot list nope \(ENOENT\)$/);
  });

  it("the format of a file name", () => {
    expect(["a.jsonl", "a.NDJSON", "a.json", "t.csv", "t.tsv", "train-00000-of-00002.parquet", "a.json.gz", "a"].map(formatOfPath)).toEqual(["jsonl", "jsonl", "json", "csv", "tsv", "parquet", undefined, undefined]);
  });
});

/** Run a stage implementation with a declared output type (the checker's IR carries it as the stage's type). */
async function runTyped(kind: string, params: Record<string, unknown>, baseDir: string, type?: Ty) {
  const { ctx, records, counts, dropped } = makeCtx(params, {}, baseDir);
  const typed = { ...ctx, stage: { ...ctx.stage, ...(type ? { type } : {}) } as IrStage };
  await Effect.runPromise(sourceImpls[kind]!.run(typed, recordSink(records)));
  return { records, counts, dropped };
}

describe("source stages", () => {
  it('on_error: "skip" drops bad lines and records of the wrong type, counted by reason, located in the detail', async () => {
    const dir = folder({ "x.jsonl": '{"instruction":"a","output":"b"}\n{"instruction":"c"}\nnot json\n{"instruction":"d","output":"e"}\n' });
    const r = await runTyped("jsonl", { path: "x.jsonl", on_error: "skip" }, dir, INSTRUCTION);
    expect(r.records).toEqual([
      { instruction: "a", output: "b" },
      { instruction: "d", output: "e" },
    ]);
    expect(r.counts).toEqual({ "dropped: field output missing": 1, "dropped: not valid JSON": 1 });
    expect(r.dropped.map((d) => [d.reason, d.record])).toEqual([
      ["field output missing", { instruction: "c" }],
      ["not valid JSON", { line: 3, text: "not json" }],
    ]);
    await expect(runTyped("jsonl", { path: "x.jsonl", on_error: "fail" }, dir, INSTRUCTION)).rejects.toThrow("x.jsonl:2: field `output` is missing (Instruction needs instruction, input?, output)");
    // Unannotated: records are open, only the broken line is bad.
    await expect(runTyped("jsonl", { path: "x.jsonl" }, dir)).rejects.toThrow(/^x\.jsonl:3: not valid JSON/);
    // limit stops reading: the bad lines after it are never reached.
    expect((await runTyped("jsonl", { path: "x.jsonl", limit: 2 }, dir)).records).toHaveLength(2);
  });

  it("csv, tsv, json and parquet sources read with their parameters", async () => {
    const dir = folder({ "a.csv": "x;y\n1;'2;3'\n", "a.tsv": "x\ty\n1\t2\n", "a.json": '{"data":[{"x":1}]}' });
    await writeParquet(join(dir, "a.parquet"), [{ x: 1, y: [1, 2] }]);
    expect((await runTyped("csv", { path: "a.csv", delimiter: ";", quote: "'", header: true }, dir)).records).toEqual([{ x: "1", y: "2;3" }]);
    expect((await runTyped("tsv", { path: "a.tsv", header: false }, dir)).records).toEqual([
      { col0: "x", col1: "y" },
      { col0: "1", col1: "2" },
    ]);
    expect((await runTyped("json", { path: "a.json", key: "data" }, dir)).records).toEqual([{ x: 1 }]);
    expect((await runTyped("parquet", { path: "a.parquet", columns: ["y"] }, dir)).records).toEqual([{ y: [1, 2] }]);
    expect(sourceImpls["parquet"]!.files!({ path: "a.parquet" })).toEqual(["a.parquet"]);
  });

  it("shards: every matching file in sorted order, each read with the format's reader; the files enter the cache key", async () => {
    const dir = folder({ "d/part-2.jsonl": '{"i":2}\n', "d/part-1.jsonl": '{"i":1}\n{"i":11}\n', "d/sub/part-3.jsonl": '{"i":3}\n', "d/notes.txt": "x" });
    const r = await runTyped("shards", { dir: "d", pattern: "**/part-*.jsonl", format: "jsonl" }, dir);
    expect(r.records).toEqual([{ i: 1 }, { i: 11 }, { i: 2 }, { i: 3 }]);
    expect(r.counts).toEqual({ shards: 3 });
    const files = sourceImpls["shards"]!.files as (p: Record<string, unknown>, baseDir?: string) => string[];
    expect(files({ dir: "d", pattern: "**/part-*.jsonl" }, dir)).toEqual(["d/part-1.jsonl", "d/part-2.jsonl", "d/sub/part-3.jsonl"]);
    expect(files({ dir: join(dir, "d"), pattern: "*.jsonl" })).toEqual([join(dir, "d/part-1.jsonl"), join(dir, "d/part-2.jsonl")]);
    await expect(runTyped("shards", { dir: "d", pattern: "*.parquet", format: "parquet" }, dir)).rejects.toThrow("no file in d matches `*.parquet`");
    // A bad record in a shard names the shard.
    writeFileSync(join(dir, "d/part-0.jsonl"), '{"i":0}\n{oops\n');
    await expect(runTyped("shards", { dir: "d", pattern: "*.jsonl", format: "jsonl" }, dir)).rejects.toThrow(/^d\/part-0\.jsonl:2: not valid JSON/);
    await writeParquet(join(dir, "p/a.parquet"), [{ i: 1 }]);
    await writeParquet(join(dir, "p/b.parquet"), [{ i: 2 }]);
    expect((await runTyped("shards", { dir: "p", pattern: "*.parquet", format: "parquet" }, dir)).records).toEqual([{ i: 1 }, { i: 2 }]);
  });

  it("inline records are checked against the declared type", async () => {
    expect((await runTyped("records", { items: [{ instruction: "i", output: "o" }] }, tmpdir(), INSTRUCTION)).records).toHaveLength(1);
    await expect(runTyped("records", { items: [{ instruction: "i", output: "o" }, { instruction: "i" }] }, tmpdir(), INSTRUCTION)).rejects.toThrow("s: record 1: field `output` is missing (Instruction needs instruction, input?, output)");
  });
});

describe("export to Parquet", () => {
  it("writes atomically, passes the records through, and re-materializes from the cache only when the file differs", async () => {
    const dir = folder();
    const data: RecordValue[] = [
      { messages: [{ role: "user", content: "hé" }], n: 1 },
      { messages: [], n: 2, extra: true },
    ];
    const params = { path: "out/x.parquet", format: "parquet", overwrite: true };
    const r = await runImpl(exportImpls["export"]!, params, { data }, dir);
    expect(r.records).toEqual(data);
    expect(r.counts).toEqual({ written: 2 });
    expect(readdirSync(join(dir, "out"))).toEqual(["x.parquet"]);
    expect(await collect(readParquet(join(dir, "out/x.parquet"), "x.parquet"))).toEqual(data);
    const bytes = readFileSync(join(dir, "out/x.parquet"));

    // From the cache: the artifact is the JSON Lines of the records; the footer remembers its digest.
    const text = data.map((d) => JSON.stringify(d) + "\n").join("");
    const object = join(dir, "object");
    writeFileSync(object, text);
    const digest = createHash("sha256").update(text).digest("hex");
    const artifact = { stage: "s", digest, records: 2, path: object, read: () => readJsonl(object), json: async () => null, bytes: () => createReadStream(object) };
    const { ctx } = makeCtx(params, {}, dir);
    // The run's file was written from an input whose digest the test context calls "0": not this artifact's.
    await Effect.runPromise(exportImpls["export"]!.onCached!(ctx, artifact));
    const rewritten = readFileSync(join(dir, "out/x.parquet"));
    expect(rewritten.equals(bytes)).toBe(false);
    expect(await collect(readParquet(join(dir, "out/x.parquet"), "x.parquet"))).toEqual(data);
    rmSync(join(dir, "out/x.parquet"));
    await Effect.runPromise(exportImpls["export"]!.onCached!(ctx, artifact));
    expect(readFileSync(join(dir, "out/x.parquet")).equals(rewritten)).toBe(true);
    writeFileSync(join(dir, "out/x.parquet"), "garbage");
    await Effect.runPromise(exportImpls["export"]!.onCached!(ctx, artifact));
    expect(readFileSync(join(dir, "out/x.parquet")).equals(rewritten)).toBe(true);
    expect(readdirSync(join(dir, "out"))).toEqual(["x.parquet"]);

    // overwrite = false: a different file is an error, and is left alone.
    await expect(runImpl(exportImpls["export"]!, { ...params, overwrite: false }, { data: [{ n: 3 }] }, dir)).rejects.toThrow("s: out/x.parquet exists and differs from this export");
    expect(readdirSync(join(dir, "out"))).toEqual(["x.parquet"]);
  });
});

describe("data files through the CLI", () => {
  /** `itp run` in a fresh store: exit code and everything printed. */
  function run(dir: string, recipe = "r.itp") {
    const r = itp(["run", recipe, "--store", join(dir, "store")], { cwd: dir });
    dirs.push(dir);
    return { code: r.code, out: r.stdout + r.stderr };
  }

  it("a broken JSON line: exit 1, the file and line, a hint, no stack trace", () => {
    const dir = tempTree({ "r.itp": 'dataset d = jsonl("x.jsonl")\n', "x.jsonl": '{"a":1}\n{"a":\n' });
    const r = run(dir);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAILED +d: x\.jsonl:2: not valid JSON \(.+\)\n +hint: each line must hold one whole JSON object; or set on_error = "skip"/);
    expect(r.out).not.toMatch(stackTrace);
  });

  it("a CSV row with the wrong number of columns, a truncated Parquet file, a missing field of the declared type", () => {
    const dir = tempTree({
      "r.itp": 'dataset c = csv("x.csv")\n\ndataset p = parquet("x.parquet")\n\ndataset t: Instruction = jsonl("t.jsonl")\n',
      "x.csv": "a,b\n1,2\n3,4,5\n",
      "x.parquet": "PAR1 this is not really parquet",
      "t.jsonl": '{"instruction":"i","output":"o"}\n\n{"instruction":"i","input":"x"}\n',
    });
    const r = run(dir);
    expect(r.code).toBe(1);
    expect(r.out).toContain("c: x.csv:3: 3 fields, but the header has 2 (a, b)");
    expect(r.out).toMatch(/p: x\.parquet is not a readable Parquet file \(.+\)\n +hint: the file is truncated or not Parquet/);
    expect(r.out).toContain("t: t.jsonl:3: field `output` is missing (Instruction needs instruction, input?, output)");
    expect(r.out).not.toMatch(stackTrace);
  });

  it('on_error = "skip": the run goes on, and show counts the dropped records by reason and lists where they were', () => {
    const dir = tempTree({
      "r.itp": 'dataset t: Instruction = jsonl("t.jsonl") { on_error = "skip" }\n\ndataset c = csv("x.csv", on_error: "skip")\n',
      "t.jsonl": '{"instruction":"i","output":"o"}\n{"instruction":"i"}\nnot json\n{"instruction":"j","output":"p"}\n{"output":"q"}\n',
      "x.csv": "a,b\n1,2\n3,4,5\n6,7\n",
    });
    const r = run(dir);
    expect(r.out).not.toMatch(stackTrace);
    expect(r.code).toBe(0);
    const show = itp(["show", "r.itp", "t", "--store", join(dir, "store")], { cwd: dir });
    expect(show.stdout).toMatch(/records +2;/);
    expect(show.stdout).toContain("counts    dropped: field output missing 1, dropped: not valid JSON 1, dropped: field instruction missing 1");
    const dropped = itp(["show", "r.itp", "t", "--dropped", "--store", join(dir, "store")], { cwd: dir });
    expect(dropped.stdout).toContain("[not valid JSON, t.jsonl:3: not valid JSON");
    expect(dropped.stdout).toContain('[field output missing, t.jsonl:2: field `output` is missing (Instruction needs instruction, input?, output)] {"instruction":"i"}');
    const csv = itp(["show", "r.itp", "c", "--store", join(dir, "store")], { cwd: dir });
    expect(csv.stdout).toContain("counts    dropped: wrong number of columns 1");
  });

  it("export to Parquet and read it back: nested chat messages survive", () => {
    const chats = [
      { messages: [{ role: "user", content: "¿Hola? 🙂" }, { role: "assistant", content: "hi" }], id: "a" },
      { messages: [{ role: "user", content: "x" }], id: "b", source: null },
    ];
    const dir = tempTree({
      "r.itp": 'dataset c: Chat = jsonl("c.jsonl")\n\ndataset e = export(c, path: "out/c.parquet", format: "parquet")\n',
      "back.itp": 'dataset p: Chat = parquet("out/c.parquet")\n\ndataset j = export(p, path: "out/back.jsonl")\n',
      "c.jsonl": chats.map((c) => JSON.stringify(c)).join("\n") + "\n",
    });
    expect(run(dir).code).toBe(0);
    const back = run(dir, "back.itp");
    expect(back.out).not.toMatch(stackTrace);
    expect(back.code).toBe(0);
    const lines = readFileSync(join(dir, "out/back.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as unknown);
    expect(lines).toEqual([{ ...chats[0], source: null }, chats[1]]);
  });
});

describe("the parallel JSON Lines reader", () => {
  // Worker threads read files of any size here (ITP_PARALLEL_MIN_BYTES=1) in chunks of 4 KiB, on any number of cores
  // (ITP_PARALLEL=1); the same recipe with ITP_PARALLEL=0 reads serially. Both must store exactly the same objects:
  // artifacts and dropped records. The run logs say which stages the workers read.
  const parallel = { ITP_PARALLEL: "1", ITP_PARALLEL_MIN_BYTES: "1", ITP_PARALLEL_CHUNK_BYTES: "4096" };
  const serial = { ITP_PARALLEL: "0" };
  const objectsOf = (store: string) =>
    Object.fromEntries(
      readdirSync(join(store, "objects"), { recursive: true })
        .map(String)
        .filter((f) => f.length > 3)
        .sort()
        .map((f) => [f, readFileSync(join(store, "objects", f)).length]),
    );

  /** The `stage_note`s of a store's run logs: which stages say they were read by worker threads. */
  const readByWorkers = (store: string) =>
    readdirSync(join(store, "runs"))
      .flatMap((f) => readFileSync(join(store, "runs", f), "utf8").trim().split("\n"))
      .map((l) => JSON.parse(l) as { type: string; stage?: string; note?: string })
      .filter((e) => e.type === "stage_note" && /read by \d+ worker threads$/.test(e.note ?? ""))
      .map((e) => e.stage)
      .sort();

  function lines(): Buffer {
    const parts: Buffer[] = [Buffer.from([0xef, 0xbb, 0xbf])];
    for (let i = 0; i < 3000; i++) {
      const r = { i, lang: i % 3 === 0 ? "en" : "fr", text: i % 7 === 0 ? `café ${"é".repeat(i % 50)} 🙂` : "x".repeat(i % 90) };
      // Spacing, CRLF ends and blank lines that the stored artifact normalizes or keeps as read.
      const line = i % 11 === 0 ? JSON.stringify(r, null, 0).replace(/,/g, ", ") : JSON.stringify(r);
      parts.push(Buffer.from(line + (i % 13 === 0 ? "\r\n" : "\n") + (i % 101 === 0 ? "\n  \n" : "")));
    }
    parts.push(Buffer.from(`{"i":3000,"lang":"en","text":"${"long ".repeat(3000)}"}\n`)); // longer than a chunk
    parts.push(Buffer.concat([Buffer.from('{"i":3001,"lang":"en","text":"bad '), Buffer.from([0xff, 0xfe]), Buffer.from(' bytes"}\n')]));
    parts.push(Buffer.from('{"i":3002,"lang":"en","text":"no line break at the end"}'));
    return Buffer.concat(parts);
  }

  it("stores the same artifacts and dropped records as the serial reader, through where and export", () => {
    expect(existsSync(join(repoRoot, "dist/lines-worker.js")), "the build has the worker script").toBe(true);
    const dir = tempTree({ "r.itp": 'dataset src = jsonl("x.jsonl")\n\ndataset en = where(src, expr: "lang == \\"en\\" and len(text) > 3")\n\ndataset out = export(en, path: "out.jsonl")\n' });
    dirs.push(dir);
    writeFileSync(join(dir, "x.jsonl"), lines());
    const a = itp(["run", "r.itp", "--store", join(dir, "p")], { cwd: dir, env: parallel });
    expect(a.code, a.stderr).toBe(0);
    const outParallel = readFileSync(join(dir, "out.jsonl"));
    const b = itp(["run", "r.itp", "--store", join(dir, "s")], { cwd: dir, env: serial });
    expect(b.code, b.stderr).toBe(0);
    expect(readFileSync(join(dir, "out.jsonl"))).toEqual(outParallel);
    expect(readByWorkers(join(dir, "p")), "the parallel path ran").toEqual(["en", "src"]);
    expect(readByWorkers(join(dir, "s"))).toEqual([]);
    expect(objectsOf(join(dir, "p"))).toEqual(objectsOf(join(dir, "s")));
    const show = (store: string) => JSON.parse(itp(["show", "r.itp", "en", "--store", join(dir, store), "--json"], { cwd: dir }).stdout) as { records: number; counts: Record<string, number> };
    expect(show("p")).toMatchObject({ records: show("s").records, counts: show("s").counts });
    const kept = outParallel.toString("utf8").trim().split("\n").map((l) => JSON.parse(l) as { i: number; lang: string; text: string });
    expect(kept.every((r) => r.lang === "en" && r.text.length > 3)).toBe(true);
    expect(kept.map((r) => r.i)).toContain(3002);
    expect(kept.find((r) => r.i === 3001)!.text).toBe("bad \ufffd\ufffd bytes");
  });

  it("a bad line in a later chunk: the same error, naming the file and line; on_error skip: the same drops", () => {
    const good = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ instruction: `task ${i}`, output: "o".repeat(i % 40) })).join("\n");
    const dir = tempTree({
      "r.itp": 'dataset t: Instruction = jsonl("t.jsonl")\n',
      "skip.itp": 'dataset t: Instruction = jsonl("t.jsonl") { on_error = "skip" }\n',
      "t.jsonl": `${good}\n{"instruction":"no output"}\n${good}\n{"instruction": oops}\n${good}\n`,
    });
    dirs.push(dir);
    for (const env of [parallel, serial]) {
      const r = itp(["run", "r.itp", "--store", join(dir, "fail")], { cwd: dir, env });
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).toContain("t: t.jsonl:2001: field `output` is missing (Instruction needs instruction, input?, output)");
      expect(r.stdout + r.stderr).not.toMatch(stackTrace);
    }
    const p = itp(["run", "skip.itp", "--store", join(dir, "p")], { cwd: dir, env: parallel });
    const s = itp(["run", "skip.itp", "--store", join(dir, "s")], { cwd: dir, env: serial });
    expect([p.code, s.code]).toEqual([0, 0]);
    expect([readByWorkers(join(dir, "p")), readByWorkers(join(dir, "s"))]).toEqual([["t"], []]);
    expect(objectsOf(join(dir, "p"))).toEqual(objectsOf(join(dir, "s")));
    const dropped = itp(["show", "skip.itp", "t", "--dropped", "--store", join(dir, "p")], { cwd: dir });
    expect(dropped.stdout).toContain("t.jsonl:2001: field `output` is missing");
    expect(dropped.stdout).toContain("t.jsonl:4002: not valid JSON");
  });
});
