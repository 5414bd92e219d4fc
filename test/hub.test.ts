import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { writeParquet } from "../src/formats/parquet.js";
import { cardConfigs } from "../src/hub/card.js";
import { openHubDataset } from "../src/hub/client.js";
import { selectDataFiles } from "../src/hub/data-files.js";
import { globToRegExp } from "../src/hub/glob.js";
import { hubSettings } from "../src/hub/settings.js";
import { nextLink, type TreeFile } from "../src/hub/tree.js";
import { TransientError, UserError } from "../src/core/errors.js";
import type { RecordValue } from "../src/core/records.js";
import { hubImpls } from "../src/stages/sources/hub.js";
import { itpBin, stackTrace, tempTree, type CliResult } from "./support/cli.js";
import { HubServer } from "./support/hub-server.js";
import { runImpl } from "./support/stage-ctx.js";

// The Hugging Face Hub client and `hf_dataset`: file selection as `datasets` does it, then downloads from a local
// hub (a real HTTP server) with resume, checksums, the cache, offline mode and tokens; last, a run through the CLI.

const REV_A = "1111111111111111111111111111111111111111";
const REV_B = "2222222222222222222222222222222222222222";
const impl = hubImpls["hf_dataset"]!;

const tree = (...paths: string[]): TreeFile[] => paths.map((path) => ({ path, size: 1, oid: "0".repeat(40) }));
const picked = (t: TreeFile[], o: Parameters<typeof selectDataFiles>[1]) => selectDataFiles(t, o, "o/n@r").files.map((f) => f.entry.path);
const userError = (f: () => unknown): UserError => {
  try {
    f();
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  throw new Error("expected a UserError");
};

describe("which files hold a split", () => {
  it("takes data/{split}-NNNNN-of-NNNNN shards first, in shard order, and names the splits it has", () => {
    const t = tree("README.md", "data/test-00000-of-00001.parquet", "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "train.csv");
    expect(picked(t, { split: "train" })).toEqual(["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]);
    expect(picked(t, { split: "test" })).toEqual(["data/test-00000-of-00001.parquet"]);
    const e = userError(() => picked(t, { split: "validation" }));
    expect(e.message).toBe("o/n@r: no split `validation` in default patterns; it has `train`, `test`");
  });

  it("recognizes split keywords in folder names before file names, and maps dev/valid to validation", () => {
    const dirs = tree("dev/a.jsonl", "train/a.jsonl", "train/b.jsonl", "train_notes.txt");
    expect(picked(dirs, { split: "train" })).toEqual(["train/a.jsonl", "train/b.jsonl"]);
    expect(picked(dirs, { split: "validation" })).toEqual(["dev/a.jsonl"]);
    const names = tree("my_test.json", "my_train_file.json", "training1.json", "trainee.json");
    expect(picked(names, { split: "train" })).toEqual(["my_train_file.json", "training1.json"]);
    expect(picked(names, { split: "test" })).toEqual(["my_test.json"]);
  });

  it("reads every data file as train when nothing names a split, skipping hidden files and the card", () => {
    const t = tree(".hidden/x.jsonl", "README.md", "alpaca_data.json", "extra/more.json", "script.py");
    expect(picked(t, { split: "train" })).toEqual(["alpaca_data.json", "extra/more.json"]);
    expect(userError(() => picked(t, { split: "test" })).message).toContain("no split `test`");
  });

  it("keeps the most common format when several are mixed, and reports compressed data", () => {
    expect(picked(tree("data/train-00000-of-00001.json", "data/train-00000-of-00001.parquet"), { split: "train" })).toEqual(["data/train-00000-of-00001.parquet"]);
    expect(picked(tree("train/a.parquet", "train/b.parquet", "train/stats.json"), { split: "train" })).toEqual(["train/a.parquet", "train/b.parquet"]);
    const e = userError(() => picked(tree("train.jsonl.gz"), { split: "train" }));
    expect(e.message).toBe("o/n@r: cannot read train.jsonl.gz: it is compressed (.gz)");
    expect(e.hint).toContain("refs/convert/parquet");
  });

  it("lets explicit `files` (paths and globs, in the order given) win over everything, with a suggestion for a typo", () => {
    const t = tree("a/x.jsonl", "a/y.jsonl", "b.parquet", "data/train-00000-of-00001.parquet");
    expect(picked(t, { split: "test", files: ["b.parquet", "a/*.jsonl", "a/x.jsonl"] })).toEqual(["b.parquet", "a/x.jsonl", "a/y.jsonl"]);
    const e = userError(() => picked(t, { split: "train", files: ["b.parquett"] }));
    expect(e.message).toBe('o/n@r: `files` entry "b.parquett" matches no file at this revision');
    expect(e.hint).toBe('did you mean "b.parquet"?');
  });

  it("treats a configuration as a top-level folder when the card declares none (the parquet-conversion layout)", () => {
    const t = tree("default/train/0000.parquet", "en/test/0000.parquet", "en/train/0000.parquet", "en/train/0001.parquet");
    expect(picked(t, { split: "train", config: "en" })).toEqual(["en/train/0000.parquet", "en/train/0001.parquet"]);
    const e = userError(() => picked(t, { split: "train", config: "eng" }));
    expect(e.message).toContain("no configuration `eng`");
    expect(e.hint).toBe("did you mean `en`?");
  });
});

describe("dataset card configurations", () => {
  const card = `---
license: mit
configs:
- config_name: en
  data_files:
  - split: train
    path: "en/train-*"   # shards
  - split: test
    path: [en/test.jsonl]
  default: true
- config_name: fr
  data_dir: fr
  data_files: "*.csv"
dataset_info:
  features:
  - name: text
    dtype: string
---
# A dataset
`;

  it("reads configs, their data files per split, data_dir and the default", () => {
    const c = cardConfigs(card, "README.md")!;
    expect(c.map((x) => [x.name, x.isDefault, x.dataDir, Object.fromEntries(x.dataFiles ?? [])])).toEqual([
      ["en", true, undefined, { train: ["en/train-*"], test: ["en/test.jsonl"] }],
      ["fr", false, "fr", { train: ["*.csv"] }],
    ]);
    const t = tree("README.md", "en/test.jsonl", "en/train-0.jsonl", "en/train-1.jsonl", "fr/a.csv", "fr/b.csv");
    expect(picked(t, { split: "train", card: c })).toEqual(["en/train-0.jsonl", "en/train-1.jsonl"]);
    expect(picked(t, { split: "train", config: "fr", card: c })).toEqual(["fr/a.csv", "fr/b.csv"]);
    expect(userError(() => picked(t, { split: "test", config: "fr", card: c })).message).toBe("o/n@r: no split `test` in the dataset card's configuration `fr`; it has `train`");
    expect(userError(() => picked(t, { split: "train", config: "de", card: c })).message).toBe("o/n@r: no configuration `de`; the dataset card declares `en`, `fr`");
  });

  it("has no configurations without a header or a configs key, and asks for `config` when none is the default", () => {
    expect(cardConfigs("# Just text\n", "README.md")).toBeUndefined();
    expect(cardConfigs("---\nlicense: mit\n---\n", "README.md")).toBeUndefined();
    const two = cardConfigs("---\nconfigs:\n  - config_name: a\n    data_files: a/*\n  - config_name: b\n    data_files: b/*\n---\n", "README.md")!;
    expect(userError(() => picked(tree("a/x.csv"), { split: "train", card: two })).message).toBe("o/n@r: the dataset has several configurations and none is the default: `a`, `b`");
  });

  it("reports a header it cannot read, with the file's line", () => {
    const e = userError(() => cardConfigs("---\nlicense: mit\nconfigs:\n- config_name: a\n  data_files: [a/*\n---\n", "o/n@r: README.md"));
    expect(e.message).toMatch(/^o\/n@r: README\.md: cannot read the dataset card's YAML header: line 5: Flow sequence in block collection must be sufficiently indented and end with a \]$/);
    expect(e.hint).toBe("name the data files yourself with `files = [...]`");
  });

  it("reads the YAML that cards use: quoting, flow collections, comments, block scalars, anchors and aliases; numbers keep their spelling", () => {
    const card = [
      "---",
      "license: mit",
      "dataset_info: &info",
      "  features:",
      "  - {name: text, dtype: string}",
      "configs:",
      "- config_name: 'it''s' # a comment",
      '  data_files: {train: "train/*.csv", test: [t1.csv, 1.0]}',
      "- config_name: 2024",
      "  default: true",
      "  data_dir: |-",
      "    data",
      "  data_files: &files",
      "  - split: train",
      "    path: x/*",
      "- config_name: copy",
      "  data_files: *files",
      "---",
      "# Title",
    ].join("\n");
    expect(cardConfigs(card, "README.md")).toEqual([
      { name: "it's", isDefault: false, dataFiles: new Map([["train", ["train/*.csv"]], ["test", ["t1.csv", "1.0"]]]) },
      { name: "2024", isDefault: true, dataDir: "data", dataFiles: new Map([["train", ["x/*"]]]) },
      { name: "copy", isDefault: false, dataFiles: new Map([["train", ["x/*"]]]) },
    ]);
  });
});

describe("globs and links", () => {
  it("match as Python's glob does: * within a segment, ** across segments, classes", () => {
    const m = (p: string, s: string) => globToRegExp(p).test(s);
    expect(m("data/*.parquet", "data/a.parquet")).toBe(true);
    expect(m("data/*.parquet", "data/x/a.parquet")).toBe(false);
    expect(m("**/train[-._ 0-9]*", "train.csv")).toBe(true);
    expect(m("**/train[-._ 0-9]*", "x/y/train-1.csv")).toBe(true);
    expect(m("**/train[-._ 0-9]*", "trainee.csv")).toBe(false);
    expect(m("data/**", "data/a/b.csv")).toBe(true);
    expect(m("a[!b]c", "axc")).toBe(true);
    expect(m("a[!b]c", "abc")).toBe(false);
    expect(m("a[!b]c", "a/c")).toBe(false);
    // Python's rules where picomatch's differ: `^` and backslash in a class are members, `**` glued to a name is
    // `*`, parentheses, braces and `+` are plain, a backslash is itself.
    expect(m("a[^b]c", "a^c")).toBe(true);
    expect(m("a[^b]c", "axc")).toBe(false);
    expect(m("a[\\\\x]c", "a\\c")).toBe(true);
    expect(m("**.csv", "x/y.csv")).toBe(false);
    expect(m("**.csv", "y.csv")).toBe(true);
    expect(m("x/**.csv", "x/a/y.csv")).toBe(false);
    expect(m("(a)+{b,c}.csv", "(a)+{b,c}.csv")).toBe(true);
    expect(m("(a)+{b,c}.csv", "aab.csv")).toBe(false);
    expect(m("d\\\\*.csv", "d\\\\e.csv")).toBe(true);
    expect(m(".hidden/*", ".hidden/a")).toBe(true);
  });

  it("finds the next page of a Link header", () => {
    expect(nextLink('<https://h/api/x?cursor=2>; rel="next"')).toBe("https://h/api/x?cursor=2");
    expect(nextLink('<https://h/a>; rel="prev", <https://h/b>; rel="next"')).toBe("https://h/b");
    expect(nextLink('<https://h/a>; rel="prev"')).toBeUndefined();
    expect(nextLink(undefined)).toBeUndefined();
  });
});

describe("hub settings from the environment", () => {
  it("picks the endpoint, the cache folder, offline mode and the token as huggingface_hub does", () => {
    const home = homedir();
    expect(hubSettings({})).toEqual({ endpoint: "https://huggingface.co", token: undefined, offline: undefined, cacheDir: join(home, ".cache", "itp", "hub") });
    expect(hubSettings({ HF_ENDPOINT: "http://mirror.local/", HF_HOME: "/hf", HF_TOKEN: "t1" })).toMatchObject({ endpoint: "http://mirror.local", cacheDir: "/hf/itp-hub", token: "t1" });
    expect(hubSettings({ HF_HOME: "/hf", ITP_HUB_CACHE: "/c" }, "t2").cacheDir).toBe("/c");
    expect(hubSettings({ HF_TOKEN: "t1" }, "t2").token).toBe("t2");
    expect(hubSettings({ HF_HUB_OFFLINE: "1" }).offline).toBe("HF_HUB_OFFLINE");
    expect(hubSettings({ ITP_OFFLINE: "true" }).offline).toBe("ITP_OFFLINE");
    expect(hubSettings({ HF_HUB_OFFLINE: "0", ITP_OFFLINE: "" }).offline).toBeUndefined();
  });
});

// ---- against a local hub ----

const ENV_KEYS = ["HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE", "ITP_OFFLINE", "ITP_HUB_CACHE", "HF_HOME"] as const;

async function parquetBytes(records: RecordValue[]): Promise<Buffer> {
  const p = join(mkdtempSync(join(tmpdir(), "itp-hub-fx-")), "f.parquet");
  await writeParquet(p, records);
  return readFileSync(p);
}

const rows = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: i, text: `${prefix} record ${i}`, messages: [{ role: "user", content: `${prefix} ${i}` }] }));

describe("hf_dataset against a local hub", () => {
  let server: HubServer;
  let cache: string;
  const saved: Record<string, string | undefined> = {};
  const big = rows("big", 3000);
  let bigParquet: Buffer;

  beforeAll(async () => {
    server = await HubServer.start({ pageSize: 2 });
    server.addFile("acme/chat", REV_A, "README.md", "# acme/chat\n");
    server.addFile("acme/chat", REV_A, ".gitattributes", "*.parquet filter=lfs\n");
    server.addFile("acme/chat", REV_A, "data/train-00000-of-00002.parquet", await parquetBytes(rows("a0", 3)));
    server.addFile("acme/chat", REV_A, "data/train-00001-of-00002.parquet", await parquetBytes(rows("a1", 2)));
    server.addFile("acme/chat", REV_A, "data/test-00000-of-00001.parquet", await parquetBytes(rows("a-test", 1)));
    server.addFile("acme/chat", REV_B, "data/train-00000-of-00001.parquet", await parquetBytes(rows("b", 4)));
    server.addFile("acme/big", REV_A, "train.jsonl", big.map((r) => JSON.stringify(r)).join("\n") + "\n");
    bigParquet = await parquetBytes(big);
    server.addFile("acme/big", REV_A, "data.parquet", bigParquet);
    server.addFile(
      "acme/cards",
      REV_A,
      "README.md",
      "---\nconfigs:\n- config_name: en\n  data_files: en/*.json\n- config_name: fr\n  data_files:\n  - split: train\n    path: fr/train.csv\n---\n",
    );
    server.addFile("acme/cards", REV_A, "en/a.json", JSON.stringify([{ t: "hello" }, { t: "world" }]));
    // `.json` holding JSON Lines, as many hub datasets have it.
    server.addFile("acme/cards", REV_A, "en/b.json", '{"t": "again"}\n{"t": "and again"}\n');
    server.addFile("acme/cards", REV_A, "fr/train.csv", "t,n\nbonjour,1\n");
  });
  afterAll(() => server.stop());

  beforeEach(() => {
    for (const k of ENV_KEYS) saved[k] = process.env[k];
    for (const k of ENV_KEYS) delete process.env[k];
    cache = mkdtempSync(join(tmpdir(), "itp-hub-cache-"));
    process.env["HF_ENDPOINT"] = server.url;
    process.env["ITP_HUB_CACHE"] = cache;
    server.requests.length = 0;
    server.requireToken = undefined;
    server.clearFaults();
  });
  afterEach(() => {
    for (const k of ENV_KEYS) if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  });

  const texts = (rs: RecordValue[]) => rs.map((r) => r["text"]);

  it("downloads a pinned revision's split (listing paged by Link headers, LFS files from the storage host), in shard order", async () => {
    const { records, counts } = await runImpl(impl, { repo: "acme/chat", revision: REV_A, split: "train" }, {});
    expect(texts(records)).toEqual(["a0 record 0", "a0 record 1", "a0 record 2", "a1 record 0", "a1 record 1"]);
    expect(records[0]!["messages"]).toEqual([{ role: "user", content: "a0 0" }]);
    expect(counts["files read"]).toBe(2);
    // The listing came in pages of 2 entries (folders included): several tree requests, each after the last.
    const listings = server.requestsFor("/tree/");
    expect(listings.length).toBeGreaterThan(2);
    expect(listings.slice(1).every((r) => r.path.includes("cursor="))).toBe(true);
    expect(server.requests.filter((r) => r.server === "cdn").map((r) => r.path.split("path=")[1])).toEqual([
      "data%2Ftrain-00000-of-00002.parquet",
      "data%2Ftrain-00001-of-00002.parquet",
    ]);
    const test = await runImpl(impl, { repo: "acme/chat", revision: REV_A, split: "test" }, {});
    expect(texts(test.records)).toEqual(["a-test record 0"]);
  });

  it("gives other records for another revision, and reads a cached pinned revision without asking the hub", async () => {
    const a = await runImpl(impl, { repo: "acme/chat", revision: REV_A, split: "train" }, {});
    const b = await runImpl(impl, { repo: "acme/chat", revision: REV_B, split: "train" }, {});
    expect(texts(b.records)).toEqual(["b record 0", "b record 1", "b record 2", "b record 3"]);
    expect(texts(b.records)).not.toEqual(texts(a.records));
    expect(readdirSync(join(cache, "datasets", "acme", "chat")).sort()).toEqual([REV_A, REV_B]);
    server.requests.length = 0;
    const again = await runImpl(impl, { repo: "acme/chat", revision: REV_A, split: "train", limit: 4 }, {});
    expect(texts(again.records)).toEqual(texts(a.records).slice(0, 4));
    expect(server.requests).toEqual([]);
  });

  it("reads configurations from the dataset card, each file in its format", async () => {
    const en = await runImpl(impl, { repo: "acme/cards", revision: REV_A, config: "en", split: "train" }, {});
    expect(en.records).toEqual([{ t: "hello" }, { t: "world" }, { t: "again" }, { t: "and again" }]);
    const fr = await runImpl(impl, { repo: "acme/cards", revision: REV_A, config: "fr", split: "train" }, {});
    expect(fr.records).toEqual([{ t: "bonjour", n: "1" }]);
    await expect(runImpl(impl, { repo: "acme/cards", revision: REV_A, split: "train" }, {})).rejects.toThrow("the dataset has several configurations and none is the default: `en`, `fr`");
  });

  it("resumes a download whose connection dropped, with a Range request, and the file checks out", async () => {
    server.dropAfter("train.jsonl", 100_000);
    const { records } = await runImpl(impl, { repo: "acme/big", revision: REV_A, files: ["train.jsonl"] }, {});
    expect(records).toEqual(big);
    const gets = server.requestsFor("train.jsonl");
    expect(gets.map((r) => r.status)).toEqual([200, 206]);
    expect(gets[0]!.range).toBeUndefined();
    // Every byte that arrived before the drop was kept: the retry asks for exactly the rest.
    expect(gets[1]!.range).toBe("bytes=100000-");
    const file = join(cache, "datasets", "acme", "big", REV_A, "files", "train.jsonl");
    expect(statSync(file).size).toBe(Buffer.byteLength(big.map((r) => JSON.stringify(r)).join("\n") + "\n"));
    expect(existsSync(`${file}.incomplete`)).toBe(false);
  });

  it("keeps the partial file of a download that gave up, and the next run continues it (LFS file, sha256)", async () => {
    server.dropAfter("data.parquet", bigParquet.length >> 1, 1);
    const settings = hubSettings(process.env);
    const ds = await openHubDataset({ repo: "acme/big", revision: REV_A, split: "train", files: ["data.parquet"], settings, retry: { times: 0, initialMs: 1, maxMs: 1 } });
    const err = await ds.local(ds.files[0]!).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TransientError);
    const part = join(cache, "datasets", "acme", "big", REV_A, "files", "data.parquet.incomplete");
    const kept = statSync(part).size;
    expect(kept).toBe(bigParquet.length >> 1);
    // A later run (a new stage run, the cached listing reused) asks for the rest only.
    server.requests.length = 0;
    const { records } = await runImpl(impl, { repo: "acme/big", revision: REV_A, files: ["data.parquet"], limit: 10 }, {});
    expect(records).toEqual(big.slice(0, 10));
    const cdn = server.requests.filter((r) => r.server === "cdn");
    expect(cdn.map((r) => [r.range, r.status])).toEqual([[`bytes=${kept}-`, 206]]);
    expect(existsSync(part)).toBe(false);
  });

  it("rejects bytes that do not match the listing's checksum, naming the file and both digests, and removes them", async () => {
    server.corruptFile("data/test-00000-of-00001.parquet");
    try {
      const e = await runImpl(impl, { repo: "acme/chat", revision: REV_A, split: "test" }, {}).then(
        () => undefined,
        (x: unknown) => x as UserError,
      );
      expect(e).toBeInstanceOf(UserError);
      expect(e!.message).toMatch(
        new RegExp(`^acme/chat@${REV_A}: checksum mismatch for data/test-00000-of-00001\\.parquet: expected sha256 [0-9a-f]{64}, got sha256 [0-9a-f]{64}$`),
      );
      const [, want, got] = /expected sha256 (\w+), got sha256 (\w+)/.exec(e!.message)!;
      expect(want).not.toBe(got);
      expect(e!.hint).toContain("removed");
      const dir = join(cache, "datasets", "acme", "chat", REV_A, "files", "data");
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      // The server is shared by the tests: serve the right bytes again.
      server.clearFaults();
    }
    // Plain (non-LFS) files are checked by their git blob id (a fresh cache: README.md is cached by now).
    process.env["ITP_HUB_CACHE"] = mkdtempSync(join(tmpdir(), "itp-hub-cache-"));
    server.corruptFile("README.md");
    try {
      await expect(runImpl(impl, { repo: "acme/chat", revision: REV_A, split: "test" }, {})).rejects.toThrow(
        /checksum mismatch for README\.md: expected git blob sha1 [0-9a-f]{40}, got git blob sha1 [0-9a-f]{40}/,
      );
    } finally {
      server.clearFaults();
    }
  });

  it("re-downloads a cached file that no longer matches, instead of trusting it", async () => {
    await runImpl(impl, { repo: "acme/chat", revision: REV_A, split: "test" }, {});
    const file = join(cache, "datasets", "acme", "chat", REV_A, "files", "data", "test-00000-of-00001.parquet");
    truncateSync(file, 10);
    server.requests.length = 0;
    const { records } = await runImpl(impl, { repo: "acme/chat", revision: REV_A, split: "test" }, {});
    expect(texts(records)).toEqual(["a-test record 0"]);
    expect(server.requests.filter((r) => r.server === "cdn")).toHaveLength(1);
  });

  it("retries a 503 (honouring Retry-After) and goes on", async () => {
    server.failNext("tree", 503, 1);
    server.failNext("data/train-00000-of-00001.parquet", 503, 1);
    const { records } = await runImpl(impl, { repo: "acme/chat", revision: REV_B, split: "train" }, {});
    expect(records).toHaveLength(4);
    expect(server.requestsFor("/tree/").map((r) => r.status)).toEqual([503, 200]);
    expect(server.requestsFor("/resolve/").map((r) => r.status)).toEqual([503, 302]);
  });

  it("works offline from its cache with the server gone, and says what is missing when it is not cached", async () => {
    const online = await runImpl(impl, { repo: "acme/chat", revision: REV_A, split: "train" }, {});
    const other = await HubServer.start();
    const gone = other.url;
    await other.stop();
    // Nothing listens there any more: a request would fail.
    process.env["HF_ENDPOINT"] = gone;
    process.env["HF_HUB_OFFLINE"] = "1";
    const offline = await runImpl(impl, { repo: "acme/chat", revision: REV_A, split: "train" }, {});
    expect(offline.records).toEqual(online.records);
    delete process.env["HF_HUB_OFFLINE"];
    process.env["ITP_OFFLINE"] = "1";
    const e = await runImpl(impl, { repo: "acme/chat", revision: REV_B, split: "train" }, {}).then(
      () => undefined,
      (x: unknown) => x as UserError,
    );
    expect(e).toBeInstanceOf(UserError);
    expect(e!.message).toBe(`acme/chat@${REV_B}: the file listing is not in the hub cache (${join(cache, "datasets", "acme", "chat", REV_B)}), and ITP_OFFLINE=1 forbids downloading it`);
    expect(e!.hint).toContain("unset ITP_OFFLINE");
    // Listed but a split never downloaded: the file is named.
    await expect(runImpl(impl, { repo: "acme/chat", revision: REV_A, split: "test" }, {})).rejects.toThrow(
      `acme/chat@${REV_A}: data/test-00000-of-00001.parquet is not in the hub cache`,
    );
  });

  it("sends the token to the hub only (not to the storage host), from HF_TOKEN or the stage's secret, and never shows it", async () => {
    const token = "hf_SecretTokenValue123";
    server.requireToken = token;
    const noToken = await runImpl(impl, { repo: "acme/chat", revision: REV_B, split: "train" }, {}).then(
      () => undefined,
      (x: unknown) => x as UserError,
    );
    expect(noToken).toBeInstanceOf(UserError);
    expect(noToken!.message).toBe(
      `acme/chat@${REV_B}: the hub refused the file listing (HTTP 401 GatedRepo: Access to this dataset is restricted. You must be authenticated to access it.)`,
    );
    expect(noToken!.hint).toContain("set HF_TOKEN");

    process.env["HF_TOKEN"] = token;
    const { records } = await runImpl(impl, { repo: "acme/chat", revision: REV_B, split: "train" }, {});
    expect(records).toHaveLength(4);
    expect(server.requests.filter((r) => r.server === "hub" && r.status !== 401).every((r) => r.authorization === `Bearer ${token}`)).toBe(true);
    const cdn = server.requests.filter((r) => r.server === "cdn");
    expect(cdn.length).toBeGreaterThan(0);
    expect(cdn.every((r) => r.authorization === undefined)).toBe(true);

    // A wrong token: refused, with a hint about the token, and the token is nowhere in the error.
    delete process.env["HF_TOKEN"];
    const wrong = "hf_WrongTokenValue456";
    const e = await runImpl(impl, { repo: "acme/chat", revision: REV_A, split: "train", token: wrong }, {}).then(
      () => undefined,
      (x: unknown) => x as UserError,
    );
    expect(e!.message).toContain("HTTP 401");
    expect(e!.hint).toContain("the token was not accepted");
    expect(`${e!.message} ${e!.hint}`).not.toContain(wrong);
    expect(server.requests.at(-1)!.authorization).toBe(`Bearer ${wrong}`);
  });

  it("explains a missing revision or repository, and refuses the placeholder revision before any request", async () => {
    await expect(runImpl(impl, { repo: "acme/chat", revision: "3".repeat(40), split: "train" }, {})).rejects.toMatchObject({
      message: `acme/chat@${"3".repeat(40)}: revision \`${"3".repeat(40)}\` not found in acme/chat (HTTP 404: Invalid rev id: ${"3".repeat(40)})`,
      hint: expect.stringContaining("pin a real commit sha"),
    });
    await expect(runImpl(impl, { repo: "acme/nope", revision: REV_A, split: "train" }, {})).rejects.toThrow(
      `acme/nope@${REV_A}: dataset repository \`acme/nope\` not found (HTTP 404: Repository not found)`,
    );
    server.requests.length = 0;
    await expect(runImpl(impl, { repo: "acme/chat", revision: "0".repeat(40), split: "train" }, {})).rejects.toMatchObject({
      message: `acme/chat: revision ${"0".repeat(40)} is a placeholder, not a commit`,
    });
    expect(server.requests).toEqual([]);
  });
});

// ---- through the CLI ----

/** `itp` in a child process, asynchronously: the local hub answers from this process's event loop meanwhile. */
function itpAsync(args: string[], cwd: string, env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [itpBin, ...args], { cwd, env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}

describe("itp run with hf_dataset", () => {
  it("reads Parquet shards of a pinned revision from the hub named by HF_ENDPOINT, caches them, and never shows the token", async () => {
    const server = await HubServer.start();
    try {
      const token = "hf_CliSecretToken789";
      server.requireToken = token;
      server.addFile("owner/name", REV_A, "README.md", "---\nlicense: mit\n---\n# owner/name\n");
      server.addFile("owner/name", REV_A, "data/train-00000-of-00001.parquet", await parquetBytes(rows("cli", 5)));
      server.addFile("owner/name", REV_A, "data/validation-00000-of-00001.parquet", await parquetBytes(rows("val", 2)));
      const dir = tempTree({
        "r.itp": `type Row = {
  id: int
  text: string
}

dataset d: Row = hf_dataset("owner/name") {
  revision = "${REV_A}"
  split = "train"
  token = secret("HF_TOKEN")
}

dataset out = export(d, path: "out.jsonl")
`,
      });
      const cacheDir = join(dir, "hub-cache");
      const env = { HF_ENDPOINT: server.url, ITP_HUB_CACHE: cacheDir, HF_TOKEN: token, HF_HUB_OFFLINE: "", ITP_OFFLINE: "" };
      const r = await itpAsync(["run", "r.itp", "--store", join(dir, "store")], dir, env);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const out = readFileSync(join(dir, "out.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as RecordValue);
      expect(out.map((x) => x["text"])).toEqual(["cli record 0", "cli record 1", "cli record 2", "cli record 3", "cli record 4"]);
      expect(server.requests.filter((q) => q.server === "hub").every((q) => q.authorization === `Bearer ${token}`)).toBe(true);
      // The token is in no output, no stored artifact or manifest, no cached file.
      expect(r.stdout + r.stderr).not.toContain(token);
      for (const f of [...filesUnder(join(dir, "store")), ...filesUnder(cacheDir)]) expect(readFileSync(f).includes(token), f).toBe(false);

      // A wrong token: exit 1, a hint, no stack trace, no token.
      const wrong = "hf_NotTheRightOne000";
      writeFileSync(join(dir, "r.itp"), readFileSync(join(dir, "r.itp"), "utf8").replace('split = "train"', 'split = "validation"'));
      const bad = await itpAsync(["run", "r.itp", "--store", join(dir, "store")], dir, { ...env, HF_TOKEN: wrong });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain("HTTP 401");
      expect(bad.stderr).toContain("the token was not accepted");
      expect(bad.stdout + bad.stderr).not.toContain(wrong);
      expect(bad.stderr).not.toMatch(stackTrace);
    } finally {
      await server.stop();
    }
  });
});
