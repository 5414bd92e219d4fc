import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../src/core/errors.js";
import { renderChat, renderInstruction, type ChatFormat, type Message } from "../src/stages/support/chat-formats.js";
import { optionsBlock, parseTemplateSets, renderFlan, stdTemplateSets, type FlanVariant } from "../src/stages/template/flan-templates.js";
import { readHfChatTemplate, renderHfChat, strftime, type HfChatTemplate } from "../src/stages/support/hf-chat-template.js";
import { templateImpls } from "../src/stages/template/templates.js";
import { FLAN_VARIANTS } from "../src/stages/template/kinds.js";
import { runImpl } from "./support/stage-ctx.js";

const dir = mkdtempSync(join(tmpdir(), "itp-templates-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The chat templates below are the ones the models publish in tokenizer_config.json (Jinja source as the JSON
// string decodes: "\n" inside a Jinja string literal is a newline character, "\\n" is Jinja's own escape).

/** allenai/tulu-2-* (open-instruct's template). */
const TULU2 =
  "{% for message in messages %}\n{% if message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] }}\n{% elif message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

/** HuggingFaceH4/zephyr-7b-beta: like Tulu, but an EOS after every message. */
const ZEPHYR =
  "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

/** Plain ChatML (teknium/OpenHermes-2.5-Mistral-7B and many others). */
const CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** Qwen/Qwen2-7B-Instruct: ChatML with a default system message. */
const QWEN2 =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** meta-llama/Llama-2-7b-chat-hf. */
const LLAMA2 =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

/** The date lines of meta-llama/Llama-3.2-1B-Instruct's template. */
const LLAMA32_DATE =
  '{%- if not date_string is defined %}\n    {%- if strftime_now is defined %}\n        {%- set date_string = strftime_now("%d %b %Y") %}\n    {%- else %}\n        {%- set date_string = "26 Jul 2024" %}\n    {%- endif %}\n{%- endif %}\nToday Date: {{ date_string }}';

/** Special tokens as Llama tokenizer configs write them: AddedToken objects. */
const added = (content: string) => ({ __type: "AddedToken", content, lstrip: false, normalized: false, rstrip: false, single_word: false });

function config(name: string, body: Record<string, unknown>): string {
  mkdirSync(join(dir, name), { recursive: true });
  writeFileSync(join(dir, name, "tokenizer_config.json"), JSON.stringify(body, null, 2));
  return name;
}

config("tulu2", { bos_token: added("<s>"), eos_token: added("</s>"), chat_template: TULU2 });
config("zephyr", { bos_token: "<s>", eos_token: "</s>", chat_template: ZEPHYR });
config("hermes", { bos_token: "<s>", eos_token: "<|im_end|>", chat_template: CHATML });
config("qwen2", { bos_token: null, eos_token: "<|im_end|>", pad_token: "<|endoftext|>", chat_template: QWEN2 });
config("llama2", { bos_token: added("<s>"), eos_token: added("</s>"), unk_token: added("<unk>"), chat_template: LLAMA2 });
config("multi", { eos_token: "</s>", chat_template: [{ name: "default", template: CHATML }, { name: "tulu", template: TULU2 }] });
config("nodefault", { chat_template: [{ name: "tool_use", template: CHATML }] });
config("llama32", { bos_token: "<|begin_of_text|>", chat_template: LLAMA32_DATE });
config("broken", { chat_template: "{% for m in messages %}{{ m.content }}" });
config("nochat", { eos_token: "</s>" });

async function hf(path: string, params: Record<string, unknown> = {}): Promise<HfChatTemplate> {
  const r = await runImpl(templateImpls["hf_chat_template"]!, { path, ...params }, {}, dir);
  return r.values[0] as HfChatTemplate;
}

const single: Message[] = [
  { role: "user", content: "What is 2 + 2?" },
  { role: "assistant", content: "4." },
];
const multi: Message[] = [
  { role: "system", content: "You answer briefly." },
  { role: "user", content: "Name a color." },
  { role: "assistant", content: "Blue." },
  { role: "user", content: "Another one?" },
  { role: "assistant", content: "Green." },
];
const chats = { single, multi, "multi, no system": multi.slice(1) };

/** The prompt of a generation: the chat without its final answer. */
const prompt = (msgs: Message[]) => (msgs[msgs.length - 1]!.role === "assistant" ? msgs.slice(0, -1) : msgs);

describe("hf_chat_template agrees with the built-in formats", () => {
  const cases: [string, ChatFormat, string | undefined, (builtin: string) => string][] = [
    ["hermes", "chatml", undefined, (b) => b],
    ["llama2", "llama2", undefined, (b) => b],
    // open-instruct strips the training text, so the built-in format has no newline after the last EOS; the
    // published template leaves it. Everything else is the same byte for byte.
    ["tulu2", "tulu", undefined, (b) => b + "\n"],
  ];
  for (const [path, format, system, full] of cases) {
    for (const [name, msgs] of Object.entries(chats)) {
      it(`${path} = ${format}: ${name} chat, full text and generation prompt`, async () => {
        const t = await hf(path);
        expect(renderHfChat(t, msgs, false)).toBe(full(renderChat(format, msgs, { system })));
        expect(renderHfChat(t, prompt(msgs), true)).toBe(renderChat(format, msgs, { system, generationPrompt: true }));
      });
    }
  }

  it("Qwen2 = chatml with its default system message", async () => {
    const t = await hf("qwen2");
    for (const msgs of Object.values(chats)) {
      expect(renderHfChat(t, msgs, false)).toBe(renderChat("chatml", msgs, { system: "You are a helpful assistant." }));
      expect(renderHfChat(t, prompt(msgs), true)).toBe(renderChat("chatml", msgs, { system: "You are a helpful assistant.", generationPrompt: true }));
    }
  });

  it("Zephyr, written out by hand (EOS after every message, no built-in equivalent)", async () => {
    const t = await hf("zephyr/tokenizer_config.json");
    expect(renderHfChat(t, multi, false)).toBe("<|system|>\nYou answer briefly.</s>\n<|user|>\nName a color.</s>\n<|assistant|>\nBlue.</s>\n<|user|>\nAnother one?</s>\n<|assistant|>\nGreen.</s>\n");
    expect(renderHfChat(t, [{ role: "user", content: "Hi" }], true)).toBe("<|user|>\nHi</s>\n<|assistant|>\n");
  });

  it("the stage value carries the config's special tokens, AddedToken objects read as their content", async () => {
    expect(await hf("llama2")).toEqual({ jinja: LLAMA2, source: "llama2/tokenizer_config.json", tokens: { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" } });
    expect((await hf("qwen2")).tokens).toEqual({ eos_token: "<|im_end|>", pad_token: "<|endoftext|>" });
  });

  it("render: chats and instruction records through the model's template, as through the built-in one", async () => {
    const data = [{ messages: multi }, { instruction: "Sort these.", input: "3, 1, 2", output: "1, 2, 3" }];
    for (const gen of [false, true]) {
      const viaHf = await runImpl(templateImpls["render"]!, { template: { $ref: "t" }, generation_prompt: gen }, { data, "param:template": await hf("llama2") });
      const viaBuiltin = await runImpl(templateImpls["render"]!, { template: { $ref: "t" }, generation_prompt: gen }, { data, "param:template": { format: "llama2" } });
      expect(viaHf.records).toEqual(viaBuiltin.records);
      expect(viaHf.records[1]).toEqual({ text: gen ? "<s>[INST] Sort these.\n\n3, 1, 2 [/INST]" : "<s>[INST] Sort these.\n\n3, 1, 2 [/INST] 1, 2, 3 </s>" });
    }
    expect(renderInstruction("llama2", { instruction: "Sort these.", input: "3, 1, 2", output: "1, 2, 3" })).toBe("<s>[INST] Sort these.\n\n3, 1, 2 [/INST] 1, 2, 3 </s>");
  });
});

describe("hf_chat_template: configs and errors", () => {
  it("the list form: the named template, else the one named default", async () => {
    expect((await hf("multi")).jinja).toBe(CHATML);
    const tulu = await hf("multi", { name: "tulu" });
    expect(tulu.source).toBe('multi/tokenizer_config.json (template "tulu")');
    expect(renderHfChat(tulu, single, false)).toBe("<|user|>\nWhat is 2 + 2?\n<|assistant|>\n4.</s>\n");
  });

  it("a missing template or name is a user error naming the file, with what there is", async () => {
    await expect(hf("multi", { name: "rag" })).rejects.toThrow('s: multi/tokenizer_config.json: it has no chat template named "rag"; it has "default", "tulu"');
    await expect(hf("nodefault")).rejects.toMatchObject({ message: expect.stringContaining('no chat template named "default"; it has "tool_use"'), hint: "set `name` to one of them" });
    await expect(hf("hermes", { name: "tool_use" })).rejects.toThrow(/it has one chat template, not one named "tool_use"/);
    await expect(hf("nochat")).rejects.toThrow("s: nochat/tokenizer_config.json: it has no `chat_template`");
    await expect(hf("absent")).rejects.toThrow(/s: cannot read absent\/tokenizer_config.json \(ENOENT\)/);
  });

  it("a syntax error is reported when the template is read, naming the file and the parser's message", async () => {
    const e = await hf("broken").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toMatch(/^s: broken\/tokenizer_config.json: the chat template does not parse: .+/);
  });

  it("raise_exception in the template is a user error naming the record, the file and the template's message", async () => {
    const t = await hf("llama2");
    const bad = { messages: [{ role: "assistant", content: "I start." }] };
    await expect(runImpl(templateImpls["render"]!, { template: { $ref: "t" } }, { data: [{ messages: single }, bad], "param:template": t })).rejects.toThrow(
      "s: record 2: the chat template of llama2/tokenizer_config.json raised an exception: Conversation roles must alternate user/assistant/user/assistant/...",
    );
  });

  it("strftime_now is the recipe's date, or undefined so that the template falls back to its own", async () => {
    expect(renderHfChat(await hf("llama32", { date: "2024-12-05" }), [], false)).toBe("Today Date: 05 Dec 2024");
    expect(renderHfChat(await hf("llama32"), [], false)).toBe("Today Date: 26 Jul 2024");
    await expect(hf("llama32", { date: "2024-02-30" })).rejects.toThrow('s: llama32/tokenizer_config.json: date "2024-02-30" is not a YYYY-MM-DD date');
    const unguarded = readHfChatTemplate(JSON.stringify({ chat_template: "{{ strftime_now('%Y') }}" }), "x.json");
    expect(() => renderHfChat(unguarded, [], false)).toThrow(/the chat template of x.json failed/);
    try {
      renderHfChat(unguarded, [], false);
    } catch (e) {
      expect((e as { hint?: string }).hint).toMatch(/set `date = "YYYY-MM-DD"`/);
    }
  });

  it("strftime in the C locale", () => {
    expect(strftime("2024-07-26", "%d %b %Y")).toBe("26 Jul 2024");
    expect(strftime("2024-02-29", "%A %B %e, %y (day %j) %H:%M %% %Q")).toBe("Thursday February 29, 24 (day 060) 00:00 % %Q");
    expect(() => strftime("2024-13-01", "%Y")).toThrow(/not a YYYY-MM-DD date/);
    expect(() => strftime("2023-02-29", "%Y")).toThrow(/not a YYYY-MM-DD date/);
  });

  it("the config file enters the cache key", () => {
    expect(templateImpls["hf_chat_template"]!.files!({ path: "models/tok" })).toEqual(["models/tok/tokenizer_config.json"]);
    expect(templateImpls["hf_chat_template"]!.files!({ path: "cfg.json" })).toEqual(["cfg.json"]);
  });
});

// ---- flan_templates ----

const NLI = { premise: "The cat sat on the mat.", hypothesis: "A cat is sitting.", options: ["yes", "it is not possible to tell", "no"], answer: "yes" };
const FIELDS: Record<string, Record<string, unknown>> = {
  anli: NLI,
  rte: { ...NLI, options: ["yes", "no"] },
  boolq: { passage: "Water boils at 100 C at sea level.", question: "does water boil at 100 C at sea level", options: ["no", "yes"], answer: "yes" },
  sst2: { sentence: "a gorgeous, witty film", options: ["negative", "positive"], answer: "positive" },
  xsum: { document: "The council approved the new park on Monday.", summary: "A new park was approved." },
  translation: { source_lang: "German", target_lang: "English", source: "Guten Morgen.", target: "Good morning." },
  copa: { premise: "The man broke his toe.", question: "cause", options: ["He dropped a hammer on his foot.", "He got a hole in his sock."], answer: "He dropped a hammer on his foot." },
};

describe("flan_templates: itp's own sets", () => {
  const sets = stdTemplateSets();

  it("a handful of representative tasks, about ten templates each", () => {
    expect([...sets.keys()].sort()).toEqual(Object.keys(FIELDS).sort());
    for (const [task, ts] of sets) expect(ts.length, task).toBeGreaterThanOrEqual(10);
  });

  it("every template of every task renders with its task's fields, in every variant", () => {
    for (const [task, ts] of sets) {
      const r = FIELDS[task]!;
      const withOptions = Array.isArray(r["options"]);
      for (const t of ts) {
        for (const v of FLAN_VARIANTS) {
          const out = renderFlan(t, v, r, v.startsWith("fs_") ? [r, r] : []);
          expect(out.output, `${task} ${t.n}`).toBe(task === "xsum" ? r["summary"] : task === "translation" ? r["target"] : r["answer"]);
          expect(out.instruction, `${task} ${t.n} ${v}`).not.toMatch(/[{}]|^\s|\s$/);
          expect(out.instruction.includes("OPTIONS:\n- "), `${task} ${t.n} ${v}`).toBe(withOptions && v.endsWith("_opt") && t.inputs.opt.some((s) => "options" in s));
        }
      }
    }
  });

  it("the options block, Flan's way", () => {
    expect(optionsBlock(["yes", "no"])).toBe("OPTIONS:\n- yes\n- no");
    const t = sets.get("rte")![0]!; // "{premise}\n\nDoes it follow that \"{hypothesis}\"?\n\n{options_}"
    const r = FIELDS["rte"]!;
    expect(renderFlan(t, "zs_opt", r).instruction).toBe('The cat sat on the mat.\n\nDoes it follow that "A cat is sitting."?\n\nOPTIONS:\n- yes\n- no');
    expect(renderFlan(t, "zs_noopt", r).instruction).toBe('The cat sat on the mat.\n\nDoes it follow that "A cat is sitting."?');
  });
});

describe("flan_templates: template files", () => {
  it("placeholders, literal braces, leading options and few-shot delimiters", () => {
    const sets = parseTemplateSets(
      {
        qa: [
          { inputs: "{options_}\n\nQ{{1}}: {question}", targets: "{answer}" },
          { inputs: "{question}", targets: "{answer}", inputs_prefix: "Q: ", targets_prefix: "A: ", x_y_delimiter: "\n", example_separator: "\n\n" },
        ],
      },
      "t.json",
    );
    const [lead, fs] = sets.get("qa")!;
    const r = { question: "2+2?", answer: "4", options: [3, 4] };
    expect(renderFlan(lead!, "zs_opt", r).instruction).toBe("OPTIONS:\n- 3\n- 4\n\nQ{1}: 2+2?");
    expect(renderFlan(lead!, "zs_noopt", r).instruction).toBe("Q{1}: 2+2?");
    const shots = [
      { question: "1+1?", answer: "2" },
      { question: "3+3?", answer: "6" },
    ];
    expect(renderFlan(fs!, "fs_noopt", r, shots)).toEqual({ instruction: "Q: 1+1?\nA: 2\n\nQ: 3+3?\nA: 6\n\nQ: 2+2?\nA:", output: "4" });
    // Flan's FewShotPattern defaults: "\n\n" between input and target, "\n\n\n" between examples.
    const plain = parseTemplateSets({ qa: [{ inputs: "{question}", targets: "{answer}" }] }, "t.json").get("qa")![0]!;
    expect(renderFlan(plain, "fs_opt", r, shots).instruction).toBe("1+1?\n\n2\n\n\n3+3?\n\n6\n\n\n2+2?");
  });

  it("bad templates are errors naming the file, the task and the template", () => {
    const bad = (t: unknown) => () => parseTemplateSets({ nli: [{ inputs: "x", targets: "y" }, t] }, "my.json");
    expect(bad({ inputs: "{premise", targets: "y" })).toThrow('my.json: task "nli", template 2, inputs: unclosed "{" at offset 0');
    expect(bad({ inputs: "{a b}", targets: "y" })).toThrow(/"\{a b\}" at offset 0 is not a field name/);
    expect(bad({ inputs: "a } b", targets: "y" })).toThrow(/unmatched "}" at offset 2/);
    expect(bad({ inputs: "x" })).toThrow('my.json: task "nli", template 2: `targets` is missing');
    expect(bad({ inputs: "x", targets: "{options_}" })).toThrow(/belongs in inputs/);
    expect(bad({ inputs: "x", targets: "y", variants: ["zs"] })).toThrow(/`variants` must be a non-empty list of zs_opt, zs_noopt, fs_opt, fs_noopt/);
    expect(bad({ inputs: "x", targets: "y", input: "typo" })).toThrow(/unknown key `input`/);
    expect(() => parseTemplateSets({ nli: [] }, "my.json")).toThrow(/task "nli": expected a non-empty list/);
    expect(() => parseTemplateSets([], "my.json")).toThrow(/expected a JSON object/);
  });
});

describe("flan_templates: the stage", () => {
  const records = (n: number, task = "rte"): Record<string, unknown>[] => Array.from({ length: n }, (_, i) => ({ ...FIELDS[task]!, premise: `Premise number ${i}.`, task }));
  const run = (params: Record<string, unknown>, data: Record<string, unknown>[]) => runImpl(templateImpls["flan_templates"]!, { templates: "std", ...params }, { data }, dir);

  it("is deterministic per seed, and another seed draws differently", async () => {
    const data = records(60);
    const a = await run({ seed: 1 }, data);
    const b = await run({ seed: 1 }, data);
    const c = await run({ seed: 2 }, data);
    expect(a.records).toEqual(b.records);
    expect(a.records).toHaveLength(60);
    const differ = a.records.filter((r, i) => r["instruction"] !== c.records[i]!["instruction"]).length;
    expect(differ).toBeGreaterThan(30);
  });

  it("draws the variants 1:1 and every template of the task", async () => {
    const r = await run({ seed: 42, variants: ["zs_opt", "zs_noopt"] }, records(400));
    const opt = r.counts["variant: zs_opt"]!;
    expect(opt + r.counts["variant: zs_noopt"]!).toBe(400);
    expect(opt).toBeGreaterThan(160);
    expect(opt).toBeLessThan(240);
    expect(r.records.filter((x) => (x["instruction"] as string).includes("OPTIONS:")).length).toBe(opt);
    // Which template each example got: all ten are drawn.
    const rte = stdTemplateSets().get("rte")!;
    const data = records(400);
    const used = new Set(
      r.records.map((x, i) => {
        const v: FlanVariant = (x["instruction"] as string).includes("OPTIONS:") ? "zs_opt" : "zs_noopt";
        return rte.find((t) => renderFlan(t, v, data[i]!).instruction === x["instruction"])?.n;
      }),
    );
    expect([...used].sort((x, y) => x! - y!)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("few-shot: exemplars from the same task, never the example itself, joined Flan's way", async () => {
    const data: Record<string, unknown>[] = [...records(8, "rte"), ...records(8, "sst2").map((r, i) => ({ ...r, sentence: `Sentence ${i}.` }))];
    const r = await run({ variants: ["fs_noopt"], shots: 3, seed: 5 }, data);
    r.records.forEach((out, i) => {
      const task = data[i]!["task"];
      const text = out["instruction"] as string;
      const parts = text.split(/\n\n\n|\n\n(?=Problem: )/);
      expect(parts.length, text).toBe(4);
      const own = task === "rte" ? `Premise number ${i}.` : `Sentence ${i - 8}.`;
      expect(parts[parts.length - 1]).toContain(own);
      for (const p of parts.slice(0, -1)) {
        expect(p).not.toContain(own);
        expect(p).toMatch(task === "rte" ? /Premise number \d\./ : /Sentence \d\./);
      }
      expect(out["output"]).toBe(data[i]!["answer"]);
    });
  });

  it("counts the examples whose task has too few others for the shots", async () => {
    const r = await run({ variants: ["fs_opt"], shots: 3 }, records(3));
    expect(r.counts["few-shot with fewer than 3 exemplars"]).toBe(3);
    for (const out of r.records) expect((out["instruction"] as string).match(/Premise number/g)).toHaveLength(3); // two others and itself
  });

  it("one task for every record with `task`; unknown tasks list the known ones and suggest the nearest", async () => {
    const data = records(2).map(({ task: _task, ...rest }) => rest);
    expect((await run({ task: "rte" }, data)).records).toHaveLength(2);
    const e = await run({ task: "rtee" }, data).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).message).toBe('s: no templates for task "rtee"; the templates have anli, boolq, copa, rte, sst2, translation, xsum');
    expect((e as UserError).hint).toBe("did you mean `rte`?");
    await expect(run({}, data)).rejects.toThrow(/record 1: has no `task` field/);
    await expect(run({}, [{ ...FIELDS["sst2"], task: "imdb" }])).rejects.toThrow(/s: record 1: no templates for task "imdb"/);
  });

  it("a record without a field its template needs is an error naming the record, task, template and field", async () => {
    const e = (await run({ variants: ["zs_opt"] }, [{ premise: "p", options: ["yes", "no"], answer: "yes", task: "rte" }]).catch((x: unknown) => x)) as Error;
    expect(e.message).toMatch(/^s: record 1 \(task "rte", template \d+, zs_opt\): has no field `hypothesis` \(the template uses \{hypothesis\}; the record has `premise`, `options`, `answer`, `task`\)$/);
    // Nine of sst2's ten templates show the options: some of ten records draw one.
    const noOptions = Array.from({ length: 10 }, () => ({ sentence: "s", answer: "positive" }));
    await expect(run({ variants: ["zs_opt"], task: "sst2" }, noOptions)).rejects.toThrow(/has no `options` list, which \{options_\} needs/);
  });

  it("a user's templates file: read relative to the recipe, restricted variants honored, and in the cache key", async () => {
    writeFileSync(
      join(dir, "mine.json"),
      JSON.stringify({ qa: [{ inputs: "Q: {q}\n\n{options_}", targets: "{a}", variants: ["zs_opt"] }, { inputs: "Question: {q}", targets: "{a}" }] }),
    );
    const data = Array.from({ length: 20 }, (_, i) => ({ q: `q${i}`, a: `a${i}`, options: ["x", "y"], task: "qa" }));
    const r = await run({ templates: "mine.json", variants: ["zs_noopt"] }, data);
    expect(r.records.every((x) => (x["instruction"] as string).startsWith("Question: "))).toBe(true);
    expect(templateImpls["flan_templates"]!.files!({ templates: "mine.json" })).toEqual(["mine.json"]);
    expect(templateImpls["flan_templates"]!.files!({ templates: "std" })).toEqual([]);
    await expect(run({ templates: "nope.json" }, data)).rejects.toThrow(/s: cannot read the templates file nope.json \(ENOENT\)/);
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ qa: [{ inputs: "{q", targets: "{a}" }] }));
    await expect(run({ templates: "bad.json" }, data)).rejects.toThrow('s: bad.json: task "qa", template 1, inputs: unclosed "{" at offset 0');
    writeFileSync(join(dir, "restricted.json"), JSON.stringify({ qa: [{ inputs: "Q: {q}", targets: "{a}", variants: ["zs_opt", "zs_noopt"] }] }));
    await expect(run({ templates: "restricted.json", variants: ["fs_opt"] }, data)).rejects.toThrow('s: record 1: task "qa" has no template for the variant fs_opt');
  });
});
