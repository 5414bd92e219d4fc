import { describe, expect, it } from "vitest";
import { IFEVAL_INSTRUCTION_IDS, ifevalChecker, type IfevalKwargs } from "../src/stages/eval/ifeval/checkers.js";
import { detectLanguage } from "../src/stages/eval/ifeval/language.js";
import { ifevalMetrics } from "../src/stages/eval/ifeval/metrics.js";
import { punktSentences } from "../src/stages/eval/ifeval/punkt.js";
import { ifevalVerdict, looseVariants, type IfevalItem } from "../src/stages/eval/ifeval/verdict.js";
import { treebankTokens, wordTokenize } from "../src/stages/eval/ifeval/word-tokenize.js";

const SPANISH =
  "El río atraviesa el valle durante todo el año y los habitantes del pueblo dependen de sus aguas para regar los campos, criar el ganado y mantener vivas las tradiciones que heredaron de sus abuelos.";
const ENGLISH =
  "The river crosses the valley all year long and the people of the village depend on its water to irrigate their fields, raise their cattle and keep alive the traditions they inherited from their grandparents.";

// [instruction id, kwargs, response, strict, loose]: for every id a response that follows it and one that does not;
// then responses that only the loose variants accept (markup, an intro line, a closing line).
const CASES: [string, IfevalKwargs, string, boolean, boolean][] = [
  ["keywords:existence", { keywords: ["river", "Bridge"] }, "The river runs under the bridge.", true, true],
  ["keywords:existence", { keywords: ["river", "Bridge"] }, "The river runs fast.", false, false],
  ["keywords:frequency", { keyword: "cat", frequency: 3, relation: "at least" }, "cat, CAT and a category", true, true],
  ["keywords:frequency", { keyword: "cat", frequency: 3, relation: "at least" }, "a cat and a dog", false, false],
  ["keywords:forbidden_words", { forbidden_words: ["apple", "pie"] }, "I like pineapple and pies.", true, true],
  ["keywords:forbidden_words", { forbidden_words: ["apple", "pie"] }, "An Apple a day.", false, false],
  ["keywords:letter_frequency", { letter: "Z", let_frequency: 2, let_relation: "less than" }, "Zoo", true, true],
  ["keywords:letter_frequency", { letter: "z", let_frequency: 2, let_relation: "less than" }, "Pizza zone", false, false],
  ["language:response_language", { language: "es" }, SPANISH, true, true],
  ["language:response_language", { language: "es" }, ENGLISH, false, false],
  ["length_constraints:number_sentences", { num_sentences: 3, relation: "less than" }, "Dr. Smith arrived at 5 p.m. yesterday. He left.", true, true],
  ["length_constraints:number_sentences", { num_sentences: 3, relation: "less than" }, "One. Two. Three.", false, false],
  ["length_constraints:number_paragraphs", { num_paragraphs: 2 }, "First part.\n***\nSecond part.", true, true],
  ["length_constraints:number_paragraphs", { num_paragraphs: 2 }, "First.\n***\n\n***\nSecond.", false, false],
  ["length_constraints:number_words", { num_words: 5, relation: "at least" }, "one two three four five", true, true],
  ["length_constraints:number_words", { num_words: 5, relation: "at least" }, "only three words", false, false],
  ["length_constraints:nth_paragraph_first_word", { num_paragraphs: 2, nth_paragraph: 2, first_word: "However" }, 'Intro.\n\n"However, things changed."', true, true],
  ["length_constraints:nth_paragraph_first_word", { num_paragraphs: 2, nth_paragraph: 2, first_word: "however" }, "Intro.\n\nBut not this time.", false, false],
  ["detectable_content:number_placeholders", { num_placeholders: 2 }, "Dear [name], I live at [address].", true, true],
  ["detectable_content:number_placeholders", { num_placeholders: 2 }, "Dear [name].", false, false],
  ["detectable_content:postscript", { postscript_marker: "P.S." }, "Thanks.\nP.S. See you soon.", true, true],
  ["detectable_content:postscript", { postscript_marker: "P.P.S" }, "Thanks. PS see you.", false, false],
  ["detectable_format:number_bullet_lists", { num_bullets: 2 }, "Items:\n* one\n* two", true, true],
  ["detectable_format:number_bullet_lists", { num_bullets: 2 }, "* only one", false, false],
  // Three bullets, but without the last line the loose verdict sees two.
  ["detectable_format:number_bullet_lists", { num_bullets: 2 }, "* one\n- two\n* three", false, true],
  ["detectable_format:constrained_response", {}, "My answer is yes.", true, true],
  ["detectable_format:constrained_response", {}, "Yes.", false, false],
  ["detectable_format:number_highlighted_sections", { num_highlights: 2 }, "*one* and **two**", true, true],
  ["detectable_format:number_highlighted_sections", { num_highlights: 2 }, "*only one* and ** **", false, false],
  ["detectable_format:multiple_sections", { section_spliter: "Section", num_sections: 2 }, "Section 1\nIntro\nSection 2\nBody", true, true],
  ["detectable_format:multiple_sections", { section_spliter: "SECTION", num_sections: 2 }, "SECTION 1 only", false, false],
  ["detectable_format:json_format", {}, '```json\n{"a": [1, NaN]}\n```', true, true],
  ["detectable_format:json_format", {}, "{a: 1}", false, false],
  ["detectable_format:title", {}, "<<My Poem>>\nRoses are red.", true, true],
  ["detectable_format:title", {}, "<< >> untitled", false, false],
  ["combination:two_responses", {}, "Answer one.\n******\nAnswer two.", true, true],
  ["combination:two_responses", {}, "Same.\n******\nSame.", false, false],
  ["combination:repeat_prompt", { prompt_to_repeat: "Write a haiku about rain." }, "write a haiku about rain. Drops on the roof.", true, true],
  ["combination:repeat_prompt", { prompt_to_repeat: "Write a haiku about rain." }, "Here is a haiku about rain.", false, false],
  ["startend:end_checker", { end_phrase: "Any other questions?" }, '"That is all. Any other questions?"', true, true],
  ["startend:end_checker", { end_phrase: "Any other questions?" }, "Any other questions? Thanks.", false, false],
  ["startend:quotation", {}, '"Hello"', true, true],
  ["startend:quotation", {}, '"', false, false],
  // NLTK's tokenizer splits "DON'T" into "DO" and "N'T": three upper-case words.
  ["change_case:capital_word_frequency", { capital_frequency: 3, capital_relation: "at least" }, "I DON'T know", true, true],
  ["change_case:capital_word_frequency", { capital_frequency: 3, capital_relation: "at least" }, "I know THIS", false, false],
  ["change_case:english_capital", {}, ENGLISH.toUpperCase(), true, true],
  ["change_case:english_capital", {}, SPANISH.toUpperCase(), false, false],
  ["change_case:english_lowercase", {}, ENGLISH.toLowerCase(), true, true],
  ["change_case:english_lowercase", {}, `Not ${ENGLISH.toLowerCase()}`, false, false],
  ["punctuation:no_comma", {}, "No commas here.", true, true],
  ["punctuation:no_comma", {}, "Commas, here.", false, false],
  // Only the loose variants follow these.
  ["startend:quotation", {}, 'Sure, here it is:\n"Hello world"', false, true],
  ["startend:quotation", {}, '**"Bold quote"**', false, true],
  ["punctuation:no_comma", {}, "Sure, here you go:\nNo commas in this answer.", false, true],
  ["detectable_format:json_format", {}, 'Here is the JSON:\n{"a": 1}', false, true],
  ["startend:end_checker", { end_phrase: "Any other questions?" }, "Done. Any other questions?\nCheers", false, true],
  ["change_case:english_lowercase", {}, `Intro Line\n${ENGLISH.toLowerCase()}`, false, true],
  ["detectable_format:title", {}, "", false, false],
  ["punctuation:no_comma", {}, "  \n ", false, false],
];

describe("IFEval checkers, strict and loose", () => {
  it("covers all 25 instruction ids, each followed and not followed", () => {
    expect(IFEVAL_INSTRUCTION_IDS).toHaveLength(25);
    for (const id of IFEVAL_INSTRUCTION_IDS) {
      expect(CASES.some(([i, , , s]) => i === id && s)).toBe(true);
      expect(CASES.some(([i, , , s, l]) => i === id && !s && !l)).toBe(true);
    }
  });

  it.each(CASES)("%s %j on %j: strict %s, loose %s", (id, kwargs, response, strict, loose) => {
    const item: IfevalItem = { prompt: "p", instruction_id_list: [id], kwargs: [kwargs] };
    expect(ifevalVerdict(item, response)).toEqual({ strict: [strict], loose: [loose] });
  });

  it("tries the reference's 8 variants in order", () => {
    expect(looseVariants("*Intro*\nBody *x*\nEnd")).toEqual([
      "*Intro*\nBody *x*\nEnd",
      "Intro\nBody x\nEnd",
      "Body *x*\nEnd",
      "*Intro*\nBody *x*",
      "Body *x*",
      "Body x\nEnd",
      "Intro\nBody x",
      "Body x",
    ]);
  });

  it("drops null and falsy arguments as the reference does, and rejects what no score can depend on", () => {
    const check = ifevalChecker("punctuation:no_comma", { keywords: null, num_words: null, relation: "" });
    expect(check("ok")).toBe(true);
    expect(() => ifevalChecker("keywords:frequency", { keyword: "x", relation: "at least" })).toThrow(/frequency is missing/);
    expect(() => ifevalChecker("keywords:frequency", { keyword: "x", frequency: 2, relation: "at most" })).toThrow(/"less than" or "at least"/);
    expect(() => ifevalChecker("punctuation:no_comma", { keyword: "x" })).toThrow(/takes no argument "keyword"/);
    expect(() => ifevalChecker("keywords:key_sentences", {})).toThrow(/unknown IFEval instruction id/);
    expect(() => ifevalChecker("keywords:letter_frequency", { letter: "ab", let_frequency: 1, let_relation: "at least" })).toThrow(/one ASCII letter/);
    expect(() => ifevalChecker("length_constraints:nth_paragraph_first_word", { num_paragraphs: 2, nth_paragraph: 3, first_word: "a" })).toThrow(/1\.\.num_paragraphs/);
    expect(() => ifevalVerdict({ prompt: "p", instruction_id_list: ["punctuation:no_comma"], kwargs: [] }, "x")).toThrow(/1 instruction ids but 0 kwargs/);
    // A keyword that is no valid pattern is matched literally.
    expect(ifevalChecker("keywords:existence", { keywords: ["C++"] })("I write C++ daily")).toBe(true);
  });
});

describe("IFEval aggregate", () => {
  // Four prompts, seven instructions; the expected numbers are counted by hand below.
  const items: [IfevalItem, string][] = [
    // no_comma: strict no ("Sure,"), loose yes (first line removed); end_checker: both yes.
    [{ prompt: "a", instruction_id_list: ["punctuation:no_comma", "startend:end_checker"], kwargs: [{}, { end_phrase: "Any other questions?" }] }, "Sure, here:\nAll done. Any other questions?"],
    // quotation: both yes.
    [{ prompt: "b", instruction_id_list: ["startend:quotation"], kwargs: [{}] }, '"Hello"'],
    // constrained_response and title: both no.
    [{ prompt: "c", instruction_id_list: ["detectable_format:constrained_response", "detectable_format:title"], kwargs: [{}, {}] }, "Yes."],
    // number_words: both yes; english_lowercase: strict no ("Bold Title"), loose yes (first line removed).
    [
      { prompt: "d", instruction_id_list: ["length_constraints:number_words", "change_case:english_lowercase"], kwargs: [{ num_words: 3, relation: "at least" }, {}] },
      `**Bold Title**\n${ENGLISH.toLowerCase()}`,
    ],
  ];

  it("gives prompt- and instruction-level accuracy, strict and loose, and per instruction id", () => {
    const scored = items.map(([item, response]) => ({ instruction_id_list: item.instruction_id_list, ...ifevalVerdict(item, response) }));
    expect(scored.map((s) => [s.strict, s.loose])).toEqual([
      [[false, true], [true, true]],
      [[true], [true]],
      [[false, false], [false, false]],
      [[true, false], [true, true]],
    ]);
    const m = ifevalMetrics(scored);
    // Strict: only prompt b follows all (1/4); 3 of 7 instructions. Loose: a, b and d (3/4); 5 of 7.
    expect(m.prompt_level_strict_acc.value).toBe(1 / 4);
    expect(m.inst_level_strict_acc.value).toBe(3 / 7);
    expect(m.prompt_level_loose_acc.value).toBe(3 / 4);
    expect(m.inst_level_loose_acc.value).toBe(5 / 7);
    // [0, 1, 0, 0]: sample standard deviation 0.5, over sqrt(4).
    expect(m.prompt_level_strict_acc.stderr).toBeCloseTo(0.25, 12);
    expect(m.prompt_level_strict_acc.n).toBe(4);
    expect(m.inst_level_loose_acc.n).toBe(7);
    expect(Object.keys(m.per_instruction)).toHaveLength(7);
    expect(m.per_instruction["punctuation:no_comma"]).toEqual({ strict: 0, loose: 1, n: 1 });
    expect(m.per_instruction["change_case:english_lowercase"]).toEqual({ strict: 0, loose: 1, n: 1 });
    expect(m.per_instruction["detectable_format:title"]).toEqual({ strict: 0, loose: 0, n: 1 });
    expect(m.per_instruction["startend:quotation"]).toEqual({ strict: 1, loose: 1, n: 1 });
  });

  it("over the whole hand-made set: 25 of 59 instructions strictly followed, 32 loosely", () => {
    const scored = CASES.map(([id, kwargs, response]) => ({ instruction_id_list: [id], ...ifevalVerdict({ prompt: "p", instruction_id_list: [id], kwargs: [kwargs] }, response) }));
    const m = ifevalMetrics(scored);
    // 25 ids each followed once; the loose verdict adds the 7 responses that only a variant follows.
    expect(m.inst_level_strict_acc.value).toBe(25 / 59);
    expect(m.prompt_level_strict_acc.value).toBe(25 / 59);
    expect(m.inst_level_loose_acc.value).toBe(32 / 59);
    expect(m.prompt_level_loose_acc.value).toBe(32 / 59);
    expect(m.per_instruction["startend:quotation"]).toEqual({ strict: 1 / 4, loose: 3 / 4, n: 4 });
  });
});

describe("the NLTK tokenizers IFEval relies on", () => {
  // Expected splits from NLTK's own tests (nltk/test/unit/test_tokenize.py test_sent_tokenize, tokenize.doctest).
  it.each([
    ["this is a test. . new sentence.", ["this is a test.", ".", "new sentence."]],
    ["This. . . That", ["This.", ".", ".", "That"]],
    ["This..... That", ["This..... That"]],
    ["This... That", ["This... That"]],
    ["This.. . That", ["This.. .", "That"]],
    ["This. .. That", ["This.", ".. That"]],
    ["This. ,. That", ["This.", ",.", "That"]],
    ["This!!! That", ["This!!!", "That"]],
    ["This! That", ["This!", "That"]],
    ["1. This is R .\n2. This is A .\n3. That's all", ["1.", "This is R .", "2.", "This is A .", "3.", "That's all"]],
    ["1. This is R .\t2. This is A .\t3. That's all", ["1.", "This is R .", "2.", "This is A .", "3.", "That's all"]],
    ["Hello.\tThere", ["Hello.", "There"]],
    ["See Section 3).  Or Section 2).  ", ["See Section 3).", "Or Section 2)."]],
    ["See Section 3.)  Or Section 2.)  ", ["See Section 3.)", "Or Section 2.)"]],
    [". This input starts with a dot. This used to cause issues.", [".", "This input starts with a dot.", "This used to cause issues."]],
  ])("Punkt (English model) splits %j", (text, expected) => {
    expect(punktSentences(text)).toEqual(expected);
  });

  it("keeps known abbreviations inside sentences", () => {
    expect(punktSentences("Mr. Smith went to Washington D.C. in Jan. 2020. He met Dr. Jones at 5 p.m. on the U.S. Capitol steps.")).toEqual([
      "Mr. Smith went to Washington D.C. in Jan. 2020.",
      "He met Dr. Jones at 5 p.m. on the U.S. Capitol steps.",
    ]);
    expect(punktSentences("")).toEqual([]);
  });

  it("word-tokenizes as nltk.word_tokenize", () => {
    // nltk.word_tokenize's docstring example.
    expect(wordTokenize("Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\nThanks.")).toEqual(
      ["Good", "muffins", "cost", "$", "3.88", "in", "New", "York", ".", "Please", "buy", "me", "two", "of", "them", ".", "Thanks", "."],
    );
    // From NLTK's test_tokenize.py (word_tokenize cases).
    expect(treebankTokens("The 'v', I've been fooled but I'll seek revenge.")).toEqual(
      ["The", "'", "v", "'", ",", "I", "'ve", "been", "fooled", "but", "I", "'ll", "seek", "revenge", "."],
    );
    expect(wordTokenize("I cannot, gonna \"quote\" (paren) -- dash")).toEqual(["I", "can", "not", ",", "gon", "na", "``", "quote", "''", "(", "paren", ")", "--", "dash"]);
  });

  it("detects languages with langdetect's codes, and nothing without letters", () => {
    expect(detectLanguage(ENGLISH)).toBe("en");
    expect(detectLanguage(SPANISH)).toBe("es");
    expect(detectLanguage("Быстрая коричневая лиса прыгает через ленивую собаку, пока солнце медленно садится за холмы.")).toBe("ru");
    expect(detectLanguage("素早い茶色の狐が怠け者の犬を飛び越える間、太陽はゆっくりと沈んでいく。")).toBe("ja");
    expect(detectLanguage("1234 !!")).toBeUndefined();
  });
});
