// NLTK's `word_tokenize` (nltk/tokenize/__init__.py + destructive.py NLTKWordTokenizer, the improved Treebank
// tokenizer): sentences from Punkt, then in each a sequence of regex substitutions that pad quotes, punctuation,
// brackets and contractions with spaces, and a split on whitespace. IFEval's change_case:capital_word_frequency
// counts the upper-case tokens it gives ("DON'T" is two tokens, "DO" and "N'T").
import { BOUNDARY, DIGIT, pySplit, WORD, WS } from "../py-text.js";
import { punktSentences } from "./punkt.js";

type Rule = readonly [RegExp, string];

const re = (source: string, flags = "") => new RegExp(source, `g${flags}u`);

const STARTING_QUOTES: readonly Rule[] = [
  [re("([«“‘„]|[`]+)"), " $1 "],
  [/^"/u, "``"],
  [re("(``)"), " $1 "],
  [re(`([ ([{<])("|'{2})`), "$1 `` "],
  [re(`(')(?!re|ve|ll|m|t|s|d|n)(${WORD})${BOUNDARY}`, "i"), "$1 $2"],
];

const ENDING_QUOTES: readonly Rule[] = [
  [re("([»”’])"), " $1 "],
  [re("''"), " '' "],
  [re('"'), " '' "],
  [re("([^' ])('[sS]|'[mM]|'[dD]|') "), "$1 $2 "],
  [re("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), "$1 $2 "],
];

// Python's `$` without MULTILINE: the end, or just before a final newline.
const END = "(?=\\n?$)";
const PUNCTUATION: readonly Rule[] = [
  [re(`([^.])(\\.)([\\])}>"'»”’ ]*)${WS}*${END}`), "$1 $2 $3 "],
  [re(`([:,])([^${DIGIT}])`), " $1 $2"],
  [re(`([:,])${END}`), " $1 "],
  [re("\\.{2,}"), " $& "],
  [re("[;@#$%&]"), " $& "],
  [re(`([^.])(\\.)([\\])}>"']*)${WS}*${END}`), "$1 $2$3 "],
  [re("[?!]"), " $& "],
  [re("([^'])' "), "$1 ' "],
  [re("[*]"), " $& "],
];

const PARENS_BRACKETS: Rule = [re("[\\][(){}<>]"), " $& "];
const DOUBLE_DASHES: Rule = [re("--"), " -- "];

const CONTRACTIONS: readonly RegExp[] = [
  ...["(can)(not)", "(d)('ye)", "(gim)(me)", "(gon)(na)", "(got)(ta)", "(lem)(me)", "(more)('n)"].map((p) => re(`${BOUNDARY}${p}${BOUNDARY}`, "i")),
  re(`${BOUNDARY}(wan)(na)(?=${WS})`, "i"),
  re(` ('t)(is)${BOUNDARY}`, "i"),
  re(` ('t)(was)${BOUNDARY}`, "i"),
];

function apply(text: string, rules: readonly Rule[]): string {
  let out = text;
  for (const [pattern, replacement] of rules) out = out.replace(pattern, replacement);
  return out;
}

/** `NLTKWordTokenizer().tokenize(sentence)`. */
export function treebankTokens(sentence: string): string[] {
  let text = apply(sentence, STARTING_QUOTES);
  text = apply(text, PUNCTUATION);
  text = apply(text, [PARENS_BRACKETS, DOUBLE_DASHES]);
  text = apply(` ${text} `, ENDING_QUOTES);
  for (const c of CONTRACTIONS) text = text.replace(c, " $1 $2 ");
  return pySplit(text);
}

/** `nltk.word_tokenize(text)`: Punkt sentences, each tokenized. */
export function wordTokenize(text: string): string[] {
  return punktSentences(text).flatMap(treebankTokens);
}
