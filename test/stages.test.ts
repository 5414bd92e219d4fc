import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { defaultRegistry } from "../src/stages/index.js";
import { elementOf, markerOf, unwrap } from "../src/stages/schema.js";
import { parseType } from "../src/types/parse-type.js";
import { TULU_MENTION_TERMS, templatePlaceholders } from "../src/stages/common.js";

const reg = defaultRegistry();
const stages = [...reg.allStages()];
const values = [...reg.allValues()];
const R = (name: string) => ({ $ref: name });

/** The required parameters of every entry, with a valid value each: parsing these alone must succeed. */
const required: Record<string, Record<string, unknown>> = {
  jsonl: { path: "x.jsonl" },
  json: { path: "x.json" },
  csv: { path: "x.csv" },
  tsv: { path: "x.tsv" },
  parquet: { path: "x.parquet" },
  shards: { dir: "data" },
  hf_dataset: { repo: "allenai/tulu-v2-sft-mixture" },
  records: { items: [{ instruction: "a", output: "b" }] },
  chat_template: { name: "tulu" },
  hf_chat_template: { path: "tok" },
  prompt_template: { text: "{instruction}" },
  flan_templates: { templates: "templates.json" },
  render: { template: R("t") },
  sample: { n: 10 },
  split: { validation: 0.1 },
  where: { expr: 'lang == "en"' },
  rename: { fields: { a: "b" } },
  select: { fields: ["a"] },
  set_fields: { values: { source: "x" } },
  split_conversations: { tokenizer: "tok" },
  cap: { per_task: 100 },
  length: { field: "instruction", max: 150 },
  blocklist: { field: "instruction", words: ["image"] },
  regex: { field: "instruction", pattern: "^Write" },
  decontaminate: { fields: ["instruction"], against: [R("mmlu_test")] },
  minhash_dedup: { field: "instruction" },
  rouge_dedup: { field: "instruction" },
  openai_compatible: { model: "gpt-4o-mini" },
  onnx_model: { path: "m.onnx" },
  hf_model: { repo: "meta-llama/Llama-2-7b-hf" },
  generate: { model: R("m"), prompt: "Answer: {question}" },
  self_instruct: { model: R("m") },
  generate_alpaca: { model: R("m") },
  evol_instruct: { model: R("m") },
  distill: { model: R("m") },
  spin_pairs: { model: R("m") },
  self_chat: { model: R("m") },
  backtranslate: { model: R("m") },
  judge: { model: R("m") },
  quality_filter: { model: R("m") },
  sft: { base: "meta-llama/Llama-2-7b-hf" },
  lora: { base: "meta-llama/Llama-2-7b-hf" },
  qlora: { base: R("base") },
  dpo: { base: R("sft") },
  evaluate: { tasks: [{ fn: "mmlu", data: R("mmlu_test"), shots: 5 }] },
  export: { path: "out.jsonl" },
  // value functions
  take: { n: 50_000 },
  fraction: { f: 0.5 },
  repeat: { times: 10 },
  weight: { w: 0.4 },
  mmlu: { data: R("mmlu_test"), dev: R("mmlu_dev") },
  gsm8k: { data: R("gsm8k_test"), train: R("gsm8k_train") },
  ifeval: { data: R("ifeval_prompts") },
  alpaca_eval: { data: R("alpaca_eval_set"), judge: R("gpt4") },
  mt_bench: { data: R("mt_bench_questions"), judge: R("gpt4") },
  multiple_choice: { data: R("questions") },
  generate_and_check: { data: R("problems"), prompt: "{question}" },
};

/** Parameters listed above that are optional one by one but needed by a cross-parameter rule (one of n/fraction...). */
const neededByRule: Record<string, string[]> = { sample: ["n"], length: ["max"], mmlu: ["dev"], gsm8k: ["train"] };

const shapeOf = (o: z.ZodObject): Record<string, z.ZodType> => o.shape as Record<string, z.ZodType>;
const isRequired = (s: z.ZodType) => !s.safeParse(undefined).success;

describe("registry", () => {
  it("builds once, without duplicate names", () => {
    expect(defaultRegistry()).toBe(reg);
    // Stage kinds and value functions are separate namespaces; one name may be in both (`take`).
    const stageNames = stages.map((s) => s.name);
    const valueNames = values.map((v) => v.name);
    expect(new Set(stageNames).size).toBe(stageNames.length);
    expect(new Set(valueNames).size).toBe(valueNames.length);
    expect(stages.length).toBeGreaterThan(50);
  });

  it("builds each parameter schema once, on first read", () => {
    for (const e of [...stages, ...values]) expect(e.params, e.name).toBe(e.params);
  });

  it("every stage has a doc, a version (a whole number) and well-formed types", () => {
    for (const s of stages) {
      expect(s.doc.length, s.name).toBeGreaterThan(10);
      expect(s.version).toMatch(/^[1-9]\d*$/);
      expect(() => parseType(s.output), `${s.name} output`).not.toThrow();
      for (const i of s.inputs) {
        expect(() => parseType(i.type), `${s.name} input ${i.name}`).not.toThrow();
        expect(i.doc.length, `${s.name} input ${i.name}`).toBeGreaterThan(0);
      }
      if (s.components) expect(() => parseType(s.components!.type)).not.toThrow();
      // a type variable in the output must be bound by an input (or by the components)
      if (/Dataset<T>/.test(s.output)) {
        const binders = [...s.inputs.map((i) => i.type), s.components?.type ?? ""];
        expect(binders.some((t) => t === "Dataset<T>"), `${s.name} binds T`).toBe(true);
      }
    }
  });

  it("every parameter of every entry has a description", () => {
    for (const e of [...stages, ...values]) {
      for (const [k, s] of Object.entries(shapeOf(e.params))) expect(s.description, `${e.name}.${k}`).toBeTruthy();
    }
  });

  it("required parameters are exactly the listed ones, and defaults parse", () => {
    for (const e of [...stages, ...values]) {
      const req = required[e.name] ?? {};
      const actual = Object.entries(shapeOf(e.params))
        .filter(([, s]) => isRequired(s))
        .map(([k]) => k)
        .sort();
      const listed = Object.keys(req).filter((k) => !(neededByRule[e.name] ?? []).includes(k));
      expect(actual, e.name).toEqual(listed.sort());
      const r = e.params.safeParse(req);
      expect(r.success, `${e.name}: ${r.success ? "" : r.error.message}`).toBe(true);
    }
  });

  it("value functions name existing parameters positionally", () => {
    for (const v of values) {
      expect(v.doc.length).toBeGreaterThan(5);
      for (const p of v.positional) expect(Object.keys(shapeOf(v.params)), v.name).toContain(p);
    }
    expect(reg.value("all")?.constant).toBe(true);
  });

  it("sources have no inputs and their primary parameter first", () => {
    const first: Record<string, string> = {
      jsonl: "path",
      json: "path",
      csv: "path",
      tsv: "path",
      parquet: "path",
      shards: "dir",
      hf_dataset: "repo",
      records: "items",
    };
    const sources = stages.filter((s) => s.category === "source");
    expect(sources.map((s) => s.name).sort()).toEqual(Object.keys(first).sort());
    for (const s of sources) {
      expect(s.inputs).toEqual([]);
      expect(s.output).toBe("Dataset<Json>");
      expect(Object.keys(shapeOf(s.params))[0]).toBe(first[s.name]);
    }
  });
});

describe("converters", () => {
  it("take exactly one Dataset<Record> input", () => {
    for (const s of stages.filter((s) => s.category === "convert")) {
      expect(s.inputs.length, s.name).toBe(1);
      expect(s.inputs[0]!.type, s.name).toMatch(/^Dataset<[A-Z][A-Za-z]*>$/);
    }
  });

  it("are found by the record type they convert from", () => {
    const from = (t: string) => reg.convertersFrom(t).map((s) => s.name);
    expect(from("Dolly")).toEqual(["dolly_to_instruction"]);
    expect(from("FlanExample")).toEqual(["flan_to_instruction"]);
    expect(from("ShareGPT")).toEqual(["sharegpt_to_chat"]);
    expect(from("OasstMessage")).toEqual(["oasst_to_chat"]);
    expect(from("OpenOrca")).toEqual(["orca_to_chat"]);
    expect(from("Preference")).toEqual(["preference_to_pairs"]);
    expect(from("Instruction").sort()).toEqual(["instruction_to_chat", "instruction_to_prompt_completion"]);
    expect(from("Chat")).toEqual(["chat_to_instruction"]);
    expect(from("PromptCompletion")).toEqual(["prompt_completion_to_instruction"]);
  });

  it("oasst_to_chat follows the best reply by default (Tulu 2)", () => {
    expect(reg.stage("oasst_to_chat")!.params.parse({})).toMatchObject({ top_k_reply: 1 });
    expect(reg.stage("oasst_to_chat")!.params.safeParse({ top_k_reply: null }).success).toBe(true);
    expect(reg.stage("oasst_to_chat")!.params.safeParse({ top_k_reply: 0 }).success).toBe(false);
  });
});

describe("markers survive documentation", () => {
  const param = (stage: string, p: string) => shapeOf(reg.stage(stage)!.params)[p]!;
  const marker = (s: z.ZodType) => markerOf(unwrap(s));

  it("field parameters", () => {
    for (const [st, p] of [
      ["length", "field"],
      ["blocklist", "field"],
      ["regex", "field"],
      ["minhash_dedup", "field"],
      ["rouge_dedup", "field"],
      ["cap", "field"],
      ["self_instruct_filter", "field"],
    ] as const)
      expect(marker(param(st, p)), `${st}.${p}`).toEqual({ kind: "field" });
    for (const [st, p] of [
      ["exact_dedup", "fields"],
      ["decontaminate", "fields"],
      ["select", "fields"],
      ["judge", "candidates"],
    ] as const)
      expect(markerOf(elementOf(param(st, p))!), `${st}.${p}`).toEqual({ kind: "field" });
  });

  it("references, values and secrets", () => {
    expect(marker(param("generate", "model"))).toEqual({ kind: "ref", type: "Model" });
    expect(marker(param("render", "template"))).toEqual({ kind: "ref", type: "Template" });
    expect(marker(param("sft", "template"))).toEqual({ kind: "ref", type: "Template" });
    expect(markerOf(elementOf(param("decontaminate", "against"))!)).toEqual({ kind: "ref", type: "Dataset<Json>" });
    expect(markerOf(elementOf(param("evaluate", "tasks"))!)).toEqual({ kind: "value", category: "eval_task" });
    expect(marker(param("openai_compatible", "api_key"))).toEqual({ kind: "secret" });
    expect(marker(param("openai_compatible", "retry"))).toEqual({ kind: "value", category: "retry_policy" });
    expect(marker(param("hf_dataset", "token"))).toEqual({ kind: "secret" });
    expect(markerOf(reg.stage("mix")!.components!.rule)).toEqual({ kind: "value", category: "mix_rule" });
    expect(marker(shapeOf(reg.value("alpaca_eval")!.params).judge!)).toEqual({ kind: "ref", type: "Model" });
  });
});

describe("defaults are the documented facts", () => {
  const defaults = (name: string, req: Record<string, unknown> = required[name] ?? {}) =>
    (reg.stage(name) ?? reg.value(name))!.params.parse(req) as Record<string, unknown>;

  it("Alpaca and Self-Instruct generation", () => {
    expect(defaults("generate_alpaca")).toMatchObject({ target: 52_000, per_call: 20, seeds_per_prompt: 3, temperature: 1, top_p: 1, max_tokens: 3072, rouge_max: 0.7 });
    expect(defaults("self_instruct")).toMatchObject({
      human_per_prompt: 6,
      machine_per_prompt: 2,
      temperature: 0.7,
      top_p: 0.5,
      presence_penalty: 2,
      max_tokens: 1024,
      stop: ["\n\n", "\n16", "16.", "16 ."],
      max_instances_per_task: 5,
    });
    expect(defaults("self_instruct_filter")).toMatchObject({ min_words: 4, max_words: 150, blocked_prefixes: ["Write a program"] });
    expect(defaults("rouge_dedup")).toMatchObject({ max: 0.7 });
    expect(defaults("evol_instruct")).toMatchObject({ rounds: 4 });
  });

  it("Tulu", () => {
    expect(TULU_MENTION_TERMS).toHaveLength(22);
    expect(defaults("mention_filter")).toMatchObject({ terms: [...TULU_MENTION_TERMS] });
    expect(defaults("mix")).toMatchObject({ seed: 42, shuffle: true });
    expect(defaults("sft")).toMatchObject({ lr: 2e-5, epochs: 3, warmup_ratio: 0.03, weight_decay: 0, schedule: "linear", batch_size: 128, loss_on: "assistant" });
    expect(defaults("dpo")).toMatchObject({ lr: 5e-7, epochs: 3 });
    expect(defaults("split_conversations")).toMatchObject({ max_tokens: 4096 });
  });

  it("evaluation tasks and dedup", () => {
    expect(defaults("mmlu")).toMatchObject({ shots: 5 });
    expect(defaults("ifeval")).toMatchObject({ mode: "both" });
    expect(defaults("decontaminate")).toMatchObject({ ngram: 13 });
    expect(defaults("minhash_dedup")).toMatchObject({ shingle: 5, permutations: 128, threshold: 0.8, clustering: "union_find" });
    // No default banding: it is chosen from the threshold when the stage runs.
    expect(defaults("minhash_dedup")).not.toHaveProperty("bands");
    expect(defaults("openai_compatible")).toMatchObject({ timeout: { duration_ms: 120_000 }, kind: "chat" });
  });
});

describe("range and consistency rejections", () => {
  const ok = (name: string, extra: Record<string, unknown>) =>
    (reg.stage(name) ?? reg.value(name))!.params.safeParse({ ...(required[name] ?? {}), ...extra }).success;

  it("numbers out of range", () => {
    expect(ok("sft", { lr: 1 })).toBe(false);
    expect(ok("sft", { lr: 0 })).toBe(false);
    expect(ok("sft", { gpus: -1 })).toBe(false);
    expect(ok("sft", { gpus: 1.5 })).toBe(false);
    expect(ok("sft", { gpus: 0 })).toBe(true);
    expect(ok("rouge_dedup", { max: 1.2 })).toBe(false);
    expect(ok("fraction", { f: 0 })).toBe(false);
    expect(ok("fraction", { f: 1 })).toBe(true);
    expect(ok("take", { n: 0 })).toBe(false);
    expect(ok("take", { n: 2.5 })).toBe(false);
    expect(ok("split", { validation: 1 })).toBe(false);
    expect(ok("qlora", { bits: 3 })).toBe(false);
    expect(ok("qlora", { bits: 8 })).toBe(true);
    expect(ok("generate_alpaca", { temperature: -0.1 })).toBe(false);
  });

  it("cross-parameter rules", () => {
    expect(ok("minhash_dedup", { permutations: 100, bands: 16, rows: 7 })).toBe(false);
    expect(ok("minhash_dedup", { permutations: 100, bands: 16, rows: 6 })).toBe(true);
    expect(ok("minhash_dedup", { permutations: 100, bands: 16 })).toBe(true); // 6 rows, 4 values unbanded
    expect(ok("minhash_dedup", { permutations: 256, bands: 32 })).toBe(true);
    expect(ok("minhash_dedup", { clustering: "greedy" })).toBe(false);
    expect(ok("length", { min: 10, max: 5 })).toBe(false);
    expect(ok("length", { unit: "tokens" })).toBe(false);
    expect(ok("length", { unit: "tokens", tokenizer: "tok" })).toBe(true);
    expect(ok("sample", { fraction: 0.5 })).toBe(false); // both n and fraction
    expect(reg.stage("sample")!.params.safeParse({ fraction: 0.5 }).success).toBe(true);
    expect(reg.stage("sample")!.params.safeParse({}).success).toBe(false);
    expect(ok("mix", { mode: "weight" })).toBe(false);
    expect(ok("mix", { mode: "weight", total: 1000 })).toBe(true);
    expect(ok("generate", { parser: "regex" })).toBe(false);
    expect(ok("generate", { parser: "regex", pattern: "(?<q>.+)" })).toBe(true);
    expect(ok("judge", { mode: "pairwise" })).toBe(false);
    expect(ok("quality_filter", { min_score: 7 })).toBe(false);
  });

  it("strings that must be well-formed", () => {
    expect(ok("regex", { pattern: "(unclosed" })).toBe(false);
    expect(ok("csv", { delimiter: ";;" })).toBe(false);
    expect(ok("hf_dataset", { repo: "not a repo" })).toBe(false);
    expect(reg.stage("hf_dataset")!.params.safeParse({ repo: "a/b", revision: "" }).success).toBe(false); // a revision, when given, is not empty
    expect(ok("prompt_template", { text: "{instruction" })).toBe(false);
    expect(ok("prompt_template", { text: "literal {{braces}} and {input}" })).toBe(true);
    expect(ok("sft", { memory: "lots" })).toBe(false);
    expect(ok("sft", { memory: "64G", time: { duration_ms: 86_400_000 } })).toBe(true);
    expect(ok("sft", { time: 30 })).toBe(false);
    expect(ok("backoff", { initial: { duration_ms: 10_000 }, max: { duration_ms: 1_000 } })).toBe(false);
  });

  it("template placeholders", () => {
    expect(templatePlaceholders("### Instruction:\n{instruction}\n\n### Input:\n{input}")).toEqual({ fields: ["instruction", "input"] });
    expect("error" in templatePlaceholders("{not a field}")).toBe(true);
    expect("error" in templatePlaceholders("stray }")).toBe(true);
  });
});
