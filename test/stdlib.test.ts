import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { itp, itpAsync, stackTrace, tempTree } from "./support/cli.js";

// The standard library's recipes run offline, on local files shaped like their sources, passed in as the recipes'
// parameters (see the top of stdlib/tulu.itp, flan.itp and lima.itp). Tulu 2 runs at full size: every component
// gives exactly the count the recipe says, and the mention filter's drops are listed with their reasons.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const jsonl = (records: readonly unknown[]) => records.map((r) => JSON.stringify(r)).join("\n") + "\n";

/** Words that contain none of the mention filter's terms, even as substrings (no "palm", "bard", "gpt", ...). */
const WORDS = ["river", "stone", "garden", "number", "window", "silver", "orange", "planet", "letter", "bridge", "forest", "market", "candle", "winter", "summer", "engine", "pencil", "castle", "ticket", "mirror"];
const text = (seed: number, n = 8) => Array.from({ length: n }, (_, k) => WORDS[(seed * 7 + k * 13) % WORDS.length]).join(" ") + ` ${seed}.`;

/** Records planted with a mention of another model or lab: each carries this marker, so the test can find them. */
const MARK = "(planted mention)";
const planted = (term: string, i: number) => `As ${term} would say ${MARK}, item ${i}.`;

/**
 * Every Tulu 2 component in its source's native shape, sized so that each gives exactly the recipe's count: the
 * sampled ones have more records than they take, the `all` ones as many as the recipe counts. Some records of most
 * components mention other models.
 */
function tuluFixtures(): Record<string, string> {
  const files: Record<string, string> = {};
  // FLAN v2 and its CoT submixes (FlanExample: inputs, targets, task): 50,000 and 25,000 + 25,000 taken.
  const flan = (n: number, task: string, term: string, every: number) =>
    Array.from({ length: n }, (_, i) => ({ inputs: i % every === 0 ? planted(term, i) : `${task} question: ${text(i)}`, targets: `answer ${text(i + 1, 3)}`, task }));
  files["data/flan_v2_resampled_50k.jsonl"] = jsonl(flan(51_000, "flan", "OpenAI", 1_700));
  files["data/cot_zsopt.jsonl"] = jsonl(flan(25_500, "cot_gsm8k", "GPT-4", 2_550));
  files["data/cot_fsopt.jsonl"] = jsonl(flan(25_500, "cot_strategyqa", "GPT-3.5", 5_100));
  // OASST1 messages (OasstMessage): 7,708 trees with an answer, each giving one chat (its best-ranked path), plus
  // two prompts nobody answered and a deleted reply. Some trees mention ChatGPT only in a reply off the best path:
  // those chats are kept.
  const oasst: unknown[] = [];
  for (let t = 0; t < 7_708; t++) {
    const id = (s: string) => `t${t}-${s}`;
    const msg = (m: string, parent: string | null, role: string, txt: string, rank: number | null, extra: Record<string, unknown> = {}) =>
      oasst.push({ message_id: id(m), parent_id: parent === null ? null : id(parent), message_tree_id: id("p"), text: txt, role, rank, lang: t % 3 === 0 ? "es" : "en", deleted: false, ...extra });
    msg("p", null, "prompter", `question ${text(t)}`, null);
    msg("a0", "p", "assistant", t % 1_000 === 1 ? planted("Open Assistant", t) : `reply ${text(t + 2)}`, 0);
    msg("a1", "p", "assistant", t % 500 === 0 ? `I am ChatGPT, reply ${text(t + 3)}` : `other ${text(t + 3)}`, 1);
    if (t % 2 === 0) {
      msg("p2", "a0", "prompter", `follow-up ${text(t + 4)}`, 0);
      msg("a2", "p2", "assistant", `second reply ${text(t + 5)}`, 0);
    }
    if (t === 7) msg("a9", "p", "assistant", "a deleted reply", 2, { deleted: true });
  }
  for (const u of [0, 1]) oasst.push({ message_id: `lone${u}`, parent_id: null, message_tree_id: `lone${u}`, text: `unanswered ${text(u)}`, role: "prompter", rank: null, lang: "en", deleted: false });
  files["data/oasst1_messages.jsonl"] = jsonl(oasst);
  // ShareGPT (a JSON array of {id, conversations: [{from, value}]}): 114,046 blocks of at most 4,096 tokens
  // ("bytes" tokenizer): 110,046 short conversations, 2,000 long ones split in two, two with speakers open-instruct's
  // conversion drops (system, bing), and one whose turns do not alternate: the conversion keeps it, the split drops it
  // (FastChat's filter_invalid_roles, which open-instruct's split script runs).
  const share: unknown[] = [];
  const long = "x".repeat(1_200);
  for (let i = 0; i < 110_046; i++) {
    share.push({ id: `sg${i}`, conversations: [{ from: "human", value: `ask ${text(i)}` }, { from: "gpt", value: i % 5_000 === 3 ? planted("ChatGPT", i) : `tell ${text(i + 1)}` }] });
  }
  for (let i = 0; i < 2_000; i++) {
    // The second exchange of a few mentions a model: only that block is dropped.
    const second = `${i % 400 === 0 ? planted("Bard", i) : "more"} ${long}`;
    share.push({ id: `sglong${i}`, conversations: [{ from: "human", value: `first ${long}` }, { from: "gpt", value: `answer ${long}` }, { from: "human", value: `again ${long}` }, { from: "gpt", value: second }] });
  }
  share.push({ id: "sys", conversations: [{ from: "system", value: "be brief" }, { from: "human", value: "hi" }, { from: "gpt", value: "hello" }] });
  share.push({ id: "bing", conversations: [{ from: "human", value: "hi" }, { from: "bing", value: "hello" }] });
  share.push({ id: "twice", conversations: [{ from: "human", value: "hi" }, { from: "human", value: "hello?" }] });
  files["data/sg_90k_html_cleaned.json"] = JSON.stringify(share);
  // GPT-4 Alpaca and Code Alpaca (Alpaca's JSON arrays of {instruction, input, output}): 20,000 taken of 20,400; all
  // 20,022.
  const alpaca = (n: number, kind: string, term: string, every: number) =>
    Array.from({ length: n }, (_, i) => ({ instruction: `${kind} ${text(i)}`, input: i % 3 === 0 ? `context ${text(i + 7, 4)}` : "", output: i % every === 5 ? planted(term, i) : `done ${text(i + 9)}` }));
  files["data/alpaca_gpt4_data.json"] = JSON.stringify(alpaca(20_400, "describe", "GPT4", 1_600));
  files["data/code_alpaca_20k.json"] = JSON.stringify(alpaca(20_022, "code", "Chat GPT", 2_500));
  // LIMA (GAIR/lima: {conversations: [strings], source}): all 1,030, a few of them multi-turn.
  // Ten end with an unanswered turn (cut off, as open-instruct does), and one more has no answer at all (dropped).
  const limaTurns = (i: number) =>
    i % 100 === 0 ? [`ask ${text(i)}`, `answer ${text(i + 1)}`, `and ${text(i + 2)}`, `then ${text(i + 3)}`] : i % 100 === 50 ? [`ask ${text(i)}`, `answer ${text(i + 1)}`, "and?"] : [`ask ${text(i)}`, i % 300 === 7 ? planted("Claude", i) : `answer ${text(i + 1)}`];
  files["data/lima_train.jsonl"] = jsonl([
    ...Array.from({ length: 1_030 }, (_, i) => ({ conversations: limaTurns(i), source: ["stackexchange", "wikihow", "multi_turn", "writing_prompts"][i % 4] })),
    { conversations: ["a prompt with no answer"], source: "multi_turn" },
  ]);
  // WizardLM Evol-Instruct V2 (ShareGPT-shaped JSON): 30,000 taken of 30,600.
  files["data/wizardlm_evol_instruct_v2.json"] = JSON.stringify(
    Array.from({ length: 30_600 }, (_, i) => ({ id: `wiz${i}`, conversations: [{ from: "human", value: `evolve ${text(i)}` }, { from: "gpt", value: i % 2_000 === 11 ? planted("Bing Chat", i) : `evolved ${text(i + 1)}` }] })),
  );
  // OpenOrca GPT-4 completions ({id, system_prompt, question, response}): 30,000 taken of 30,600.
  files["data/open_orca_gpt4.jsonl"] = jsonl(
    Array.from({ length: 30_600 }, (_, i) => ({ id: `orca${i}`, system_prompt: i % 2_000 === 13 ? planted("Anthropic", i) : i % 2 === 0 ? "You are a helpful assistant." : "", question: `solve ${text(i)}`, response: `solved ${text(i + 1)}` })),
  );
  // Science literature ({dataset, input, output}): all 7,544.
  files["data/science_train.jsonl"] = jsonl(
    Array.from({ length: 7_544 }, (_, i) => ({ dataset: ["scifact", "qasper", "evidence_inference"][i % 3], input: `paper ${text(i)}`, output: i % 2_000 === 17 ? planted("PaLM", i) : `finding ${text(i + 1)}` })),
  );
  return files;
}

const TULU2 = `// Tulu 2 on local copies of its sources, each in its native shape.
import std/tulu {
  ScienceExample,
  tulu2_mixture,
  tulu2_oasst1_chats,
  tulu_flan_chats,
  tulu_instruction_chats,
  tulu_lima_chats,
  tulu_open_orca_chats,
  tulu_science_chats,
  tulu_sharegpt_chats,
  tulu_wizardlm_chats,
}

dataset flan_v2_raw: FlanExample = jsonl("data/flan_v2_resampled_50k.jsonl")
dataset cot_zsopt_raw: FlanExample = jsonl("data/cot_zsopt.jsonl")
dataset cot_fsopt_raw: FlanExample = jsonl("data/cot_fsopt.jsonl")
dataset oasst1_raw: OasstMessage = jsonl("data/oasst1_messages.jsonl")
dataset sharegpt_raw: ShareGPT = json("data/sg_90k_html_cleaned.json")
dataset gpt4_alpaca_raw: Instruction = json("data/alpaca_gpt4_data.json")
dataset code_alpaca_raw: Instruction = json("data/code_alpaca_20k.json")
dataset lima_raw: Lima = jsonl("data/lima_train.jsonl")
dataset wizardlm_raw: ShareGPT = json("data/wizardlm_evol_instruct_v2.json")
dataset open_orca_raw: OpenOrca = jsonl("data/open_orca_gpt4.jsonl")
dataset science_raw: ScienceExample = jsonl("data/science_train.jsonl")

mix tulu2 = tulu2_mixture() {
  flan_v2 = tulu_flan_chats(flan_v2_raw)
  cot_zero_shot = tulu_flan_chats(cot_zsopt_raw, source: "cot")
  cot_few_shot = tulu_flan_chats(cot_fsopt_raw, source: "cot")
  oasst1 = tulu2_oasst1_chats(oasst1_raw)
  sharegpt = tulu_sharegpt_chats(sharegpt_raw, tokenizer: "bytes")
  gpt4_alpaca = tulu_instruction_chats(gpt4_alpaca_raw, source: "gpt4_alpaca")
  code_alpaca = tulu_instruction_chats(code_alpaca_raw, source: "code_alpaca")
  lima = tulu_lima_chats(lima_raw)
  wizardlm = tulu_wizardlm_chats(wizardlm_raw)
  open_orca = tulu_open_orca_chats(open_orca_raw)
  science = tulu_science_chats(science_raw)
}
`;

/** The Tulu 2 recipe's counts (domain facts, section 1). */
const TULU2_COUNTS: Record<string, number> = {
  flan_v2: 50_000,
  cot_zero_shot: 25_000,
  cot_few_shot: 25_000,
  oasst1: 7_708,
  sharegpt: 114_046,
  gpt4_alpaca: 20_000,
  code_alpaca: 20_022,
  lima: 1_030,
  wizardlm: 30_000,
  open_orca: 30_000,
  science: 7_544,
  hard_coded_tagged: 140,
};

interface Shown {
  path: string;
  records: number;
  counts: Record<string, number>;
}

const shown = (dir: string, file: string, stage: string): Shown => {
  const r = itp(["show", file, stage, "--json"], { cwd: dir });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Shown;
};

const runOk = (dir: string, file: string) => {
  const r = itp(["run", file], { cwd: dir });
  expect(r.stderr).not.toMatch(stackTrace);
  expect(r.code, r.stderr).toBe(0);
  return r;
};

describe("std/tulu offline", () => {
  let dir = "";
  let run: { code: number | null; stdout: string; stderr: string };
  beforeAll(async () => {
    dir = tempTree({ ...tuluFixtures(), "tulu2.itp": TULU2 });
    dirs.push(dir);
    run = await itpAsync(["run", "tulu2.itp", "--json"], { cwd: dir });
  }, 120_000);

  it("the Tulu 2 recipe on local fixtures reports per-component counts matching the recipe, and lists the mention filter's drops", () => {
    expect(run.stderr).not.toMatch(stackTrace);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as { failed: number; stages: { id: string; status: string }[] };
    expect(summary.failed).toBe(0);
    // Nothing from the hub: every component came from the local files.
    expect(summary.stages.map((s) => s.id).filter((id) => id.startsWith("tulu.") && id !== "tulu.tulu_hard_coded")).toEqual([]);

    const mixture = shown(dir, "tulu2.itp", "tulu2.mixture");
    for (const [name, n] of Object.entries(TULU2_COUNTS)) expect(mixture.counts[`component: ${name}`], name).toBe(n);
    expect(mixture.records).toBe(330_490);
    expect(shown(dir, "tulu2.itp", "tulu2.lima").counts).toMatchObject({ kept: 1_030, "dropped: no answer": 1, "turns dropped: trailing turn with no answer": 10 });
    // ShareGPT by open-instruct's rules: the system and bing conversations dropped (and kept), the non-alternating one
    // kept by the conversion and dropped by the split.
    const sharegpt = "tulu2.sharegpt.chats";
    expect(shown(dir, "tulu2.itp", sharegpt).counts).toMatchObject({ kept: 112_047, "dropped: speaker system": 1, "dropped: speaker bing": 1 });
    expect(shown(dir, "tulu2.itp", "tulu2.sharegpt").counts).toMatchObject({ kept: 114_046, "dropped: roles do not alternate user/assistant": 1 });
    const sgDropped = itp(["show", "tulu2.itp", sharegpt, "--dropped"], { cwd: dir });
    expect(sgDropped.stdout).toMatch(new RegExp(`^${sharegpt.replace(/\./g, "\\.")}: 2 dropped \\(speaker (system 1, speaker bing|bing 1, speaker system) 1\\)`));
    expect(sgDropped.stdout).toContain('[speaker system, turn 1 is from "system"] {"id":"sys"');
    expect(sgDropped.stdout).toContain('[speaker bing, turn 2 is from "bing"] {"id":"bing"');

    // The planted mentions that the mixture drew (the sampled components drew some of theirs, the others all).
    const drawn = readFileSync(join(dir, mixture.path), "utf8").split("\n").filter((l) => l.includes(MARK)).length;
    expect(drawn).toBeGreaterThan(40);
    const filtered = shown(dir, "tulu2.itp", "tulu2");
    // Exactly the planted records are dropped: none of the others mention anything, and the hard-coded examples
    // (which name ChatGPT and Anthropic) are exempt.
    expect(filtered.records).toBe(330_490 - drawn);
    expect(filtered.counts["kept: exempt source"]).toBe(140);

    const dropped = itp(["show", "tulu2.itp", "tulu2", "--dropped", "--json", "--records", "1000"], { cwd: dir });
    expect(dropped.code, dropped.stderr).toBe(0);
    const d = JSON.parse(dropped.stdout) as { dropped: number; records: { reason: string; record: { messages: { content: string }[]; source: string } }[] };
    expect(d.dropped).toBe(drawn);
    expect(d.records.length).toBe(drawn);
    for (const r of d.records) {
      const all = r.record.messages.map((m) => m.content).join("\n");
      expect(all).toContain(MARK);
      const term = /^mentions (.+)$/.exec(r.reason)?.[1];
      expect(term, r.reason).toBeDefined();
      expect(all.toLowerCase()).toContain(term!.toLowerCase());
    }
    // Every component that had mentions drawn shows up among the drops.
    const sources = new Set(d.records.map((r) => r.record.source));
    for (const s of ["flan_v2", "oasst1", "sharegpt", "code_alpaca", "lima", "science"]) expect(sources, s).toContain(s);

    // The human-readable listing names each reason.
    const text = itp(["show", "tulu2.itp", "tulu2", "--dropped", "--reason", "Claude"], { cwd: dir });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`tulu2: ${drawn} dropped`);
    expect(text.stdout).toContain('[mentions Claude, term "Claude" matched "');
  });
});

describe("std/tulu offline: Tulu v1", () => {
  it("runs on small local fixtures: the sampled components give what they have, OASST1 one chat per reply", () => {
    const chat = (n: number, what: string) => Array.from({ length: n }, (_, i) => ({ instruction: `${what} ${text(i)}`, output: `ok ${text(i + 1)}` }));
    const oasst = Array.from({ length: 30 }, (_, t) => [
      { message_id: `p${t}`, parent_id: null, text: `question ${text(t)}`, role: "prompter", rank: null, lang: "en" },
      { message_id: `a${t}`, parent_id: `p${t}`, text: `reply ${text(t)}`, role: "assistant", rank: 0, lang: "en" },
      { message_id: `b${t}`, parent_id: `p${t}`, text: `another ${text(t)}`, role: "assistant", rank: 1, lang: "en" },
    ]).flat();
    const dir = tempTree({
      "data/flan.jsonl": jsonl(Array.from({ length: 120 }, (_, i) => ({ inputs: `q ${text(i)}`, targets: "a" }))),
      "data/cot_zs.jsonl": jsonl(Array.from({ length: 40 }, (_, i) => ({ inputs: `think ${text(i)}`, targets: "so" }))),
      "data/cot_fs.jsonl": jsonl(Array.from({ length: 30 }, (_, i) => ({ inputs: `think ${text(i)}`, targets: "so" }))),
      "data/oasst.jsonl": jsonl(oasst),
      "data/dolly.jsonl": jsonl(Array.from({ length: 25 }, (_, i) => ({ instruction: `dolly ${text(i)}`, context: i % 2 ? `ctx ${i}` : "", response: "r", category: "qa" }))),
      "data/gpt4_alpaca.json": JSON.stringify(chat(35, "describe")),
      "data/code_alpaca.json": JSON.stringify(chat(22, "code")),
      "data/sharegpt.json": JSON.stringify(Array.from({ length: 45 }, (_, i) => ({ id: `s${i}`, conversations: [{ from: "human", value: `ask ${"y".repeat(i < 5 ? 900 : 10)}` }, { from: "gpt", value: `tell ${"z".repeat(i < 5 ? 900 : 10)}` }, { from: "human", value: `more ${"y".repeat(i < 5 ? 900 : 10)}` }, { from: "gpt", value: "sure" }] }))),
      "tulu1.itp": `import std/tulu { tulu1_mixture, tulu1_oasst1_chats, tulu_dolly_chats, tulu_flan_chats, tulu_instruction_chats, tulu_sharegpt_chats }

dataset flan: FlanExample = jsonl("data/flan.jsonl")
dataset cot_zs: FlanExample = jsonl("data/cot_zs.jsonl")
dataset cot_fs: FlanExample = jsonl("data/cot_fs.jsonl")
dataset oasst: OasstMessage = jsonl("data/oasst.jsonl")
dataset dolly: Dolly = jsonl("data/dolly.jsonl")
dataset gpt4_alpaca: Instruction = json("data/gpt4_alpaca.json")
dataset code_alpaca: Instruction = json("data/code_alpaca.json")
dataset sharegpt: ShareGPT = json("data/sharegpt.json")

mix tulu1 = tulu1_mixture() {
  flan_v2 = tulu_flan_chats(flan)
  cot_zero_shot = tulu_flan_chats(cot_zs, source: "cot")
  cot_few_shot = tulu_flan_chats(cot_fs, source: "cot")
  oasst1 = tulu1_oasst1_chats(oasst)
  dolly = tulu_dolly_chats(dolly)
  gpt4_alpaca = tulu_instruction_chats(gpt4_alpaca, source: "gpt4_alpaca")
  code_alpaca = tulu_instruction_chats(code_alpaca, source: "code_alpaca")
  sharegpt = tulu_sharegpt_chats(sharegpt, max_tokens: 2_048, tokenizer: "bytes")
}
`,
    });
    dirs.push(dir);
    runOk(dir, "tulu1.itp");
    const m = shown(dir, "tulu1.itp", "tulu1");
    // take(100,000) of 120 is all 120; every reply of OASST1 is followed (2 per tree); the first 5 ShareGPT
    // conversations are over 2,048 bytes ("bytes" tokenizer) and split in two.
    const want = { flan_v2: 120, cot_zero_shot: 40, cot_few_shot: 30, oasst1: 60, dolly: 25, gpt4_alpaca: 35, code_alpaca: 22, sharegpt: 50 };
    for (const [name, n] of Object.entries(want)) expect(m.counts[`component: ${name}`], name).toBe(n);
    expect(m.records).toBe(382);
  });
});

describe("std/flan offline", () => {
  it("Flan 2021: each task capped at the rate maximum, templated zero-shot with options (itp's own template sets)", () => {
    const raw = [
      ...Array.from({ length: 700 }, (_, i) => ({ premise: `p ${text(i)}`, hypothesis: `h ${text(i + 1, 3)}`, options: ["yes", "no"], answer: i % 2 ? "yes" : "no", task: "rte" })),
      ...Array.from({ length: 260 }, (_, i) => ({ sentence: `s ${text(i)}`, options: ["negative", "positive"], answer: "positive", task: "sst2" })),
      ...Array.from({ length: 540 }, (_, i) => ({ document: `d ${text(i, 20)}`, summary: `sum ${text(i, 4)}`, task: "xsum" })),
    ];
    const dir = tempTree({
      "data/all_tasks.jsonl": jsonl(raw),
      // Raw task examples have their task's own fields (not inputs/targets): read without the FlanExample type.
      "flan2021.itp": `import std/flan { flan2021_mixture }

dataset all_tasks = jsonl("data/all_tasks.jsonl")

dataset flan2021 = flan2021_mixture(all_tasks, templates: "std", maximum: 500)
`,
    });
    dirs.push(dir);
    runOk(dir, "flan2021.itp");
    const capped = shown(dir, "flan2021.itp", "flan2021.proportional");
    expect(capped.records).toBe(500 + 260 + 500);
    expect(capped.counts["tasks capped"]).toBe(2);
    const out = shown(dir, "flan2021.itp", "flan2021");
    expect(out.records).toBe(1_260);
    expect(out.counts).toMatchObject({ "variant: zs_opt": 1_260, kept: 1_260 });
  });

  it("Flan 2022: per-task caps, template variants and the final weights, with a templates file of the user's", () => {
    const ex = (n: number, task: string) => Array.from({ length: n }, (_, i) => ({ inputs: `${task} ${text(i)}`, targets: `t ${i}`, options: ["a", "b"], task }));
    const variants = (task: string) => [
      { inputs: `${task}: {inputs}\n\n{options_}`, targets: "{targets}" },
      { inputs: `Answer this (${task}).\n{inputs}\n{options_}`, targets: "{targets}" },
    ];
    const tasks = ["muffin_a", "muffin_b", "t0_a", "niv2_a", "niv2_b", "cot_a", "dialog_a"];
    const dir = tempTree({
      "data/flan2021.jsonl": jsonl([...ex(300, "muffin_a"), ...ex(300, "muffin_b")]),
      "data/t0.jsonl": jsonl(ex(400, "t0_a")),
      "data/niv2.jsonl": jsonl([...ex(5_300, "niv2_a"), ...ex(200, "niv2_b")]),
      "data/cot.jsonl": jsonl(ex(300, "cot_a")),
      "data/dialog.jsonl": jsonl(ex(200, "dialog_a")),
      "data/templates.json": JSON.stringify(Object.fromEntries(tasks.map((t) => [t, variants(t)]))),
      "flan2022.itp": `import std/flan { flan2022_mixture }

dataset flan2021_raw: FlanExample = jsonl("data/flan2021.jsonl")
dataset t0_raw: FlanExample = jsonl("data/t0.jsonl")
dataset niv2_raw: FlanExample = jsonl("data/niv2.jsonl")
dataset cot_raw: FlanExample = jsonl("data/cot.jsonl")
dataset dialog_raw: FlanExample = jsonl("data/dialog.jsonl")

mix flan2022 = flan2022_mixture() {
  flan2021_raw = flan2021_raw
  t0_raw = t0_raw
  niv2_raw = niv2_raw
  cot_raw = cot_raw
  dialog_raw = dialog_raw
  templates = "data/templates.json"
  total = 2_000
}
`,
    });
    dirs.push(dir);
    runOk(dir, "flan2022.itp");
    // NIV2's cap of 5,000 examples per task cuts niv2_a; the others are under theirs.
    expect(shown(dir, "flan2022.itp", "flan2022.niv2.capped").records).toBe(5_200);
    expect(shown(dir, "flan2022.itp", "flan2022.flan2021.capped").records).toBe(600);
    // Variants: all four for flan2021 and t0, zero- and few-shot with options for the others, about 1:1.
    const variantsOf = (sub: string) => Object.entries(shown(dir, "flan2022.itp", `flan2022.${sub}`).counts).filter(([k]) => k.startsWith("variant: "));
    for (const [sub, want] of [["flan2021", ["fs_noopt", "fs_opt", "zs_noopt", "zs_opt"]], ["t0", ["fs_noopt", "fs_opt", "zs_noopt", "zs_opt"]], ["niv2", ["fs_opt", "zs_opt"]], ["cot", ["fs_opt", "zs_opt"]], ["dialog", ["fs_opt", "zs_opt"]]] as const) {
      const v = variantsOf(sub);
      expect(v.map(([k]) => k.slice(9)).sort(), sub).toEqual(want);
      const total = v.reduce((a, [, n]) => a + n, 0);
      for (const [k, n] of v) expect(n / total, `${sub} ${k}`).toBeGreaterThan(0.6 / want.length);
    }
    // The weights 0.4 / 0.32 / 0.2 / 0.05 / 0.03 of 2,000.
    const m = shown(dir, "flan2022.itp", "flan2022");
    expect(m.records).toBe(2_000);
    expect(m.counts).toMatchObject({ "component: flan2021": 800, "component: t0": 640, "component: niv2": 400, "component: cot": 100, "component: dialog": 60 });
  });
});

describe("std/lima offline", () => {
  it("the LIMA composition: 200 + 200 + 200 + 150 + 50 + 200 from the six pools", () => {
    const pool = (n: number, name: string) => jsonl(Array.from({ length: n }, (_, i) => ({ messages: [{ role: "user", content: `${name} ${text(i)}` }, { role: "assistant", content: `answer ${text(i + 1)}` }], source: name })));
    const sizes = { stack_exchange_stem: 260, stack_exchange_other: 230, wikihow: 200, writing_prompts: 180, natural_instructions: 75, authors: 200 };
    const files: Record<string, string> = {};
    for (const [name, n] of Object.entries(sizes)) files[`data/${name}.jsonl`] = pool(n, name);
    const decls = Object.keys(sizes).map((n) => `dataset ${n}: Chat = jsonl("data/${n}.jsonl")`).join("\n");
    const args = Object.keys(sizes).map((n) => `  ${n} = ${n}`).join("\n");
    const dir = tempTree({ ...files, "lima.itp": `import std/lima { lima_mixture }\n\n${decls}\n\nmix lima = lima_mixture() {\n${args}\n}\n` });
    dirs.push(dir);
    runOk(dir, "lima.itp");
    const m = shown(dir, "lima.itp", "lima");
    expect(m.records).toBe(1_000);
    expect(m.counts).toMatchObject({
      "component: stack_exchange_stem": 200,
      "component: stack_exchange_other": 200,
      "component: wikihow": 200,
      "component: writing_prompts": 150,
      "component: natural_instructions": 50,
      "component: authors": 200,
    });
  });
});

describe("lima_to_chat", () => {
  it("a record whose conversations are not a list of strings is an error naming the stage and the record", () => {
    const dir = tempTree({
      "lima.jsonl": jsonl([{ conversations: ["q", "a"] }, { conversations: "q then a" }]),
      "lima.itp": `dataset raw = jsonl("lima.jsonl")\n\ndataset chats = raw |> lima_to_chat()\n`,
    });
    dirs.push(dir);
    const r = itp(["run", "lima.itp"], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(stackTrace);
    expect(r.stderr).toContain("chats: record 2: field `conversations` is not a list of strings");
    expect(r.stderr).toContain("hint: expected a Lima record");
  });
});
