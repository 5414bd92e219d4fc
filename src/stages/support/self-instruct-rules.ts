import type { Verdict } from "./records.js";
import { pyStrip, pyWords, wordsRegex } from "./text.js";

/** Python's `string.punctuation`. */
const ASCII_PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

export interface SelfInstructRules {
  minWords: number;
  maxWords: number;
  words: readonly string[];
  blockedPrefixes: readonly string[];
  dropPunctuationStart: boolean;
  dropNonAsciiStart: boolean;
}

/**
 * Self-Instruct's instruction rules (`bootstrap_instructions.py`), in its order, on the stripped instruction:
 * word count (Python `split()`), blocklist (whole words, any case), blocked prefixes (case-sensitive
 * `startswith`), a first character in `string.punctuation`, a non-ASCII first character. Returns the reason, or
 * undefined to keep.
 */
export function selfInstructVerdict(rules: SelfInstructRules): (instruction: string) => string | undefined {
  const detailed = selfInstructDetailed(rules);
  return (raw) => {
    const v = detailed(raw);
    return typeof v === "string" ? v : v?.reason;
  };
}

/** The same rules, with the blocklisted word that matched as the detail. */
export function selfInstructDetailed(rules: SelfInstructRules): (instruction: string) => Verdict {
  const block = rules.words.length > 0 ? wordsRegex(rules.words, true, true) : undefined;
  return (raw) => {
    const inst = pyStrip(raw);
    const n = pyWords(inst).length;
    if (n < rules.minWords) return "too few words";
    if (n > rules.maxWords) return "too many words";
    const word = block && matchedWord(block, inst);
    if (word !== undefined) return { reason: "blocklisted word", detail: `"${word}"` };
    if (rules.blockedPrefixes.some((p) => inst.startsWith(p))) return "blocked prefix";
    const first = inst.codePointAt(0);
    if (first !== undefined && rules.dropPunctuationStart && ASCII_PUNCTUATION.has(String.fromCodePoint(first))) return "starts with punctuation";
    if (first !== undefined && rules.dropNonAsciiStart && first > 0x7f) return "starts with a non-ASCII character";
    return undefined;
  };
}

/** The text a word regex matched in `text`, or undefined (the regex may be global or sticky: its state is reset). */
export function matchedWord(re: RegExp, text: string): string | undefined {
  re.lastIndex = 0;
  const m = re.exec(text);
  re.lastIndex = 0;
  return m ? m[0] : undefined;
}
