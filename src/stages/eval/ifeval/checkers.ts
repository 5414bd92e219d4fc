// The 25 verifiable instructions of IFEval, each a check of a response against the instruction's keyword
// arguments, behaving as the reference checkers (google-research instruction_following_eval, copied in
// lm-evaluation-harness lm_eval/tasks/ifeval/instructions.py). Patterns use Python's classes (../py-text.ts), so
// `\s`, `\w`, `\b`, `.`, `^` and `$` mean what they mean there. Where the reference would draw a random value for a
// missing or empty argument (it drops falsy ones), this is an error instead: a score must not depend on chance.
import { UserError } from "../../../core/errors.js";
import { BOUNDARY, DIGIT, pyIsLower, pyIsUpper, pySplit, pyStrip, stripChars, WORD, WS } from "../py-text.js";
import { detectLanguage } from "./language.js";
import { punktSentences } from "./punkt.js";
import { wordTokenize } from "./word-tokenize.js";

/** One instruction's keyword arguments as the dataset row has them (unused keys may be null). */
export type IfevalKwargs = Readonly<Record<string, unknown>>;

/** A checker for one instruction of one prompt. */
export type IfevalCheck = (response: string) => boolean;

type Relation = "less than" | "at least";

class Args {
  constructor(
    private readonly id: string,
    private readonly kw: Readonly<Record<string, unknown>>,
  ) {}

  private fail(key: string, what: string): never {
    throw new UserError(
      `IFEval instruction ${this.id}: ${key} ${what}`,
      "Each instruction's kwargs must give its arguments (the reference draws a random value for a missing one, which no score can depend on).",
    );
  }
  private need(key: string): unknown {
    const v = this.kw[key];
    if (v === undefined) this.fail(key, "is missing");
    return v;
  }
  str(key: string): string {
    const v = this.need(key);
    if (typeof v !== "string") this.fail(key, `must be a string, not ${JSON.stringify(v)}`);
    return v;
  }
  int(key: string): number {
    const v = this.need(key);
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) this.fail(key, `must be a non-negative integer, not ${JSON.stringify(v)}`);
    return v;
  }
  strList(key: string): string[] {
    const v = this.need(key);
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) this.fail(key, `must be a list of strings, not ${JSON.stringify(v)}`);
    return v as string[];
  }
  relation(key: string): Relation {
    const v = this.str(key);
    if (v !== "less than" && v !== "at least") this.fail(key, `must be "less than" or "at least", not ${JSON.stringify(v)}`);
    return v;
  }
}

const compare = (actual: number, relation: Relation, threshold: number) => (relation === "less than" ? actual < threshold : actual >= threshold);

/** Text the reference hands to Python's `re` as a pattern; one that is no valid pattern here is taken literally. */
function asPattern(source: string): string {
  try {
    new RegExp(source, "u");
    return source;
  } catch {
    return source.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
  }
}

const pattern = (source: string, flags: string) => new RegExp(asPattern(source), `${flags}u`);

const count = (re: RegExp, s: string) => [...s.matchAll(re)].length;

const PARAGRAPH_DIVIDER = new RegExp(`${WS}?\\*\\*\\*${WS}?`, "u");
const WORDS = new RegExp(`${WORD}+`, "gu");
const PLACEHOLDER = /\[[^\n]*?\]/g;
const BULLET_STAR = new RegExp(`(?<![^\\n])${WS}*\\*[^*][^\\n]*`, "gu");
const BULLET_DASH = new RegExp(`(?<![^\\n])${WS}*-[^\\n]*`, "gu");
const HIGHLIGHT = /\*[^\n*]*\*/g;
const DOUBLE_HIGHLIGHT = /\*\*[^\n*]*\*\*/g;
const TITLE = /<<[^\n]+>>/g;
const CONSTRAINED = ["My answer is yes.", "My answer is no.", "My answer is maybe."];
const FIRST_WORD_PUNCTUATION = new Set([".", ",", "?", "!", "'", '"']);

/** Python's json.loads also takes NaN, Infinity and -Infinity outside strings. */
function pyJsonLoads(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    const replaced = text.replace(/"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g, (m) => (m.startsWith('"') ? m : "0"));
    if (replaced === text) return false;
    try {
      JSON.parse(replaced);
      return true;
    } catch {
      return false;
    }
  }
}

function removePrefix(s: string, p: string): string {
  return s.startsWith(p) ? s.slice(p.length) : s;
}

type Factory = { readonly keys: readonly string[]; readonly make: (a: Args) => IfevalCheck };

const CHECKERS: Readonly<Record<string, Factory>> = {
  "keywords:existence": {
    keys: ["keywords"],
    make: (a) => {
      const keywords = a.strList("keywords").map((k) => pattern(k, "i"));
      return (v) => keywords.every((k) => k.test(v));
    },
  },
  "keywords:frequency": {
    keys: ["keyword", "frequency", "relation"],
    make: (a) => {
      const keyword = pattern(pyStrip(a.str("keyword")), "gi");
      const frequency = a.int("frequency");
      const relation = a.relation("relation");
      return (v) => compare(count(keyword, v), relation, frequency);
    },
  },
  "keywords:forbidden_words": {
    keys: ["forbidden_words"],
    make: (a) => {
      const words = [...new Set(a.strList("forbidden_words"))].map((w) => new RegExp(`${BOUNDARY}${asPattern(w)}${BOUNDARY}`, "iu"));
      return (v) => !words.some((w) => w.test(v));
    },
  },
  "keywords:letter_frequency": {
    keys: ["letter", "let_frequency", "let_relation"],
    make: (a) => {
      const letter = a.str("letter");
      if (!/^[a-zA-Z]$/.test(letter)) throw new UserError(`IFEval instruction keywords:letter_frequency: letter must be one ASCII letter, not ${JSON.stringify(letter)}`);
      const lower = letter.toLowerCase();
      const frequency = a.int("let_frequency");
      const relation = a.relation("let_relation");
      return (v) => compare(v.toLowerCase().split(lower).length - 1, relation, frequency);
    },
  },
  "language:response_language": {
    keys: ["language"],
    make: (a) => {
      const language = a.str("language");
      return (v) => {
        const detected = detectLanguage(v);
        return detected === undefined || detected === language;
      };
    },
  },
  "length_constraints:number_sentences": {
    keys: ["num_sentences", "relation"],
    make: (a) => {
      const n = a.int("num_sentences");
      const relation = a.relation("relation");
      return (v) => compare(punktSentences(v).length, relation, n);
    },
  },
  "length_constraints:number_paragraphs": {
    keys: ["num_paragraphs"],
    make: (a) => {
      const n = a.int("num_paragraphs");
      return (v) => {
        const paragraphs = v.split(PARAGRAPH_DIVIDER);
        let count = paragraphs.length;
        for (let i = 0; i < paragraphs.length; i++) {
          if (pyStrip(paragraphs[i]!) !== "") continue;
          if (i === 0 || i === paragraphs.length - 1) count--;
          else return false;
        }
        return count === n;
      };
    },
  },
  "length_constraints:number_words": {
    keys: ["num_words", "relation"],
    make: (a) => {
      const n = a.int("num_words");
      const relation = a.relation("relation");
      return (v) => compare(count(WORDS, v), relation, n);
    },
  },
  "length_constraints:nth_paragraph_first_word": {
    keys: ["num_paragraphs", "nth_paragraph", "first_word"],
    make: (a) => {
      const num = a.int("num_paragraphs");
      const nth = a.int("nth_paragraph");
      if (nth < 1 || nth > num) throw new UserError(`IFEval instruction length_constraints:nth_paragraph_first_word: nth_paragraph ${nth} is not within 1..num_paragraphs (${num})`);
      const firstWord = a.str("first_word").toLowerCase();
      return (v) => {
        const paragraphs = v.split("\n\n");
        const present = paragraphs.filter((p) => pyStrip(p) !== "").length;
        if (nth > present) return false;
        const paragraph = pyStrip(paragraphs[nth - 1]!);
        if (paragraph === "") return false;
        const word = stripChars(stripChars(pyStrip(pySplit(paragraph)[0]!), "'", "left"), '"', "left");
        let first = "";
        for (const ch of word) {
          if (FIRST_WORD_PUNCTUATION.has(ch)) break;
          first += ch.toLowerCase();
        }
        return present === num && first === firstWord;
      };
    },
  },
  "detectable_content:number_placeholders": {
    keys: ["num_placeholders"],
    make: (a) => {
      const n = a.int("num_placeholders");
      return (v) => count(PLACEHOLDER, v) >= n;
    },
  },
  "detectable_content:postscript": {
    keys: ["postscript_marker"],
    make: (a) => {
      const marker = pyStrip(a.str("postscript_marker"));
      // The reference's `\s*{marker}.*$` under MULTILINE: its tail always matches, so a search for the head decides.
      const core = marker === "P.P.S" ? `p\\.${WS}?p\\.${WS}?s` : marker === "P.S." ? `p\\.${WS}?s\\.` : asPattern(marker.toLowerCase());
      const re = new RegExp(`${WS}*${core}`, "u");
      return (v) => re.test(v.toLowerCase());
    },
  },
  "detectable_format:number_bullet_lists": {
    keys: ["num_bullets"],
    make: (a) => {
      const n = a.int("num_bullets");
      return (v) => count(BULLET_STAR, v) + count(BULLET_DASH, v) === n;
    },
  },
  "detectable_format:constrained_response": {
    keys: [],
    make: () => (v) => {
      const s = pyStrip(v);
      return CONSTRAINED.some((o) => s.includes(o));
    },
  },
  "detectable_format:number_highlighted_sections": {
    keys: ["num_highlights"],
    make: (a) => {
      const n = a.int("num_highlights");
      return (v) => {
        let found = 0;
        for (const m of v.matchAll(HIGHLIGHT)) if (pyStrip(stripChars(m[0], "*")) !== "") found++;
        for (const m of v.matchAll(DOUBLE_HIGHLIGHT)) if (pyStrip(m[0].slice(2, -2)) !== "") found++;
        return found >= n;
      };
    },
  },
  "detectable_format:multiple_sections": {
    keys: ["section_spliter", "num_sections"],
    make: (a) => {
      const splitter = new RegExp(`${WS}?${asPattern(pyStrip(a.str("section_spliter")))}${WS}?${DIGIT}+${WS}?`, "u");
      const n = a.int("num_sections");
      return (v) => v.split(splitter).length - 1 >= n;
    },
  },
  "detectable_format:json_format": {
    keys: [],
    make: () => (v) => {
      let s = pyStrip(v);
      for (const p of ["```json", "```Json", "```JSON", "```"]) s = removePrefix(s, p);
      if (s.endsWith("```")) s = s.slice(0, -3);
      return pyJsonLoads(pyStrip(s));
    },
  },
  "detectable_format:title": {
    keys: [],
    make: () => (v) => [...v.matchAll(TITLE)].some((m) => pyStrip(stripChars(stripChars(m[0], "<", "left"), ">", "right")) !== ""),
  },
  "combination:two_responses": {
    keys: [],
    make: () => (v) => {
      const parts = v.split("******");
      const valid: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (pyStrip(parts[i]!) === "") {
          if (i !== 0 && i !== parts.length - 1) return false;
        } else valid.push(parts[i]!);
      }
      return valid.length === 2 && pyStrip(valid[0]!) !== pyStrip(valid[1]!);
    },
  },
  "combination:repeat_prompt": {
    keys: ["prompt_to_repeat"],
    make: (a) => {
      const prompt = pyStrip(a.str("prompt_to_repeat")).toLowerCase();
      return (v) => pyStrip(v).toLowerCase().startsWith(prompt);
    },
  },
  "startend:end_checker": {
    keys: ["end_phrase"],
    make: (a) => {
      const end = pyStrip(a.str("end_phrase")).toLowerCase();
      return (v) => stripChars(pyStrip(v), '"').toLowerCase().endsWith(end);
    },
  },
  "startend:quotation": {
    keys: [],
    make: () => (v) => {
      const s = pyStrip(v);
      return [...s].length > 1 && s.startsWith('"') && s.endsWith('"');
    },
  },
  "change_case:capital_word_frequency": {
    keys: ["capital_frequency", "capital_relation"],
    make: (a) => {
      const n = a.int("capital_frequency");
      const relation = a.relation("capital_relation");
      return (v) => compare(wordTokenize(v).filter(pyIsUpper).length, relation, n);
    },
  },
  "change_case:english_capital": {
    keys: [],
    make: () => (v) => {
      if (!pyIsUpper(v)) return false;
      const detected = detectLanguage(v);
      return detected === undefined || detected === "en";
    },
  },
  "change_case:english_lowercase": {
    keys: [],
    make: () => (v) => {
      if (!pyIsLower(v)) return false;
      const detected = detectLanguage(v);
      return detected === undefined || detected === "en";
    },
  },
  "punctuation:no_comma": {
    keys: [],
    make: () => (v) => !v.includes(","),
  },
};

/** The 25 instruction ids of IFEval, in the reference registry's order. */
export const IFEVAL_INSTRUCTION_IDS: readonly string[] = Object.keys(CHECKERS);

export function isIfevalInstruction(id: string): boolean {
  return Object.hasOwn(CHECKERS, id);
}

/**
 * The checker of instruction `id` with its arguments. As the reference does, arguments whose value is falsy
 * (null, 0, "", empty list) are dropped first; an argument the instruction does not take is an error.
 */
export function ifevalChecker(id: string, kwargs: IfevalKwargs = {}): IfevalCheck {
  if (!isIfevalInstruction(id)) {
    throw new UserError(`unknown IFEval instruction id ${JSON.stringify(id)}`, `The ids are: ${IFEVAL_INSTRUCTION_IDS.join(", ")}.`);
  }
  const factory = CHECKERS[id]!;
  const given: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kwargs ?? {})) {
    if (v === null || v === undefined || v === 0 || v === "" || v === false || (Array.isArray(v) && v.length === 0)) continue;
    if (!factory.keys.includes(k)) {
      throw new UserError(
        `IFEval instruction ${id} takes no argument ${JSON.stringify(k)}`,
        factory.keys.length ? `It takes: ${factory.keys.join(", ")}.` : "It takes no arguments.",
      );
    }
    given[k] = v;
  }
  return factory.make(new Args(id, given));
}
