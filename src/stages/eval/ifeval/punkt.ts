// NLTK's Punkt sentence tokenizer (Kiss & Strunk 2006; nltk/tokenize/punkt.py), tokenizing only (no training),
// with NLTK's English model: IFEval counts sentences with `nltk.data.load("tokenizers/punkt/english.pickle")`, so a
// faithful count needs the same algorithm and the same learned parameters (punkt-english.json: abbreviation types,
// collocations, frequent sentence starters, orthographic contexts, from that model).
//
// The text is scanned for candidate boundaries (".", "?", "!" followed by punctuation or by whitespace and a
// token); each candidate's context is split into Punkt word tokens and annotated in two passes: the first marks
// sentence breaks, abbreviations and ellipses; the second revisits abbreviations, initials and numbers with the
// collocation, sentence-starter and orthographic heuristics. Slices are then realigned over closing quotes and
// brackets.
import { DIGIT, NWS, WS } from "../py-text.js";
import model from "./punkt-english.json" with { type: "json" };

interface PunktParams {
  readonly abbrevTypes: ReadonlySet<string>;
  readonly collocations: ReadonlySet<string>;
  readonly sentStarters: ReadonlySet<string>;
  readonly orthoContext: ReadonlyMap<string, number>;
}

let englishParams: PunktParams | undefined;
function params(): PunktParams {
  englishParams ??= {
    abbrevTypes: new Set(model.abbrevTypes),
    collocations: new Set(model.collocations.map(([a, b]) => `${a} ${b}`)),
    sentStarters: new Set(model.sentStarters),
    orthoContext: new Map(Object.entries(model.orthoContext as Record<string, number>)),
  };
  return englishParams;
}

// Orthographic context flags: where a type was seen capitalized or not.
const ORTHO_MID_UC = 1 << 2;
const ORTHO_BEG_LC = 1 << 4;
const ORTHO_UC = (1 << 1) | (1 << 2) | (1 << 3);
const ORTHO_LC = (1 << 4) | (1 << 5) | (1 << 6);

const SENT_END_CHARS = [".", "?", "!"];
const PUNCTUATION = [";", ":", ",", ".", "!", "?"];

// PunktLanguageVars' patterns, with Python's \s and \S.
const NON_WORD = `(?:[)";}\\]*:@'({\\[?!])`;
const MULTI_CHAR = `(?:-{2,}|\\.{2,}|(?:\\.${WS}){2,}\\.)`;
const WORD_START = `[^("\`{\\[:;&#*@)}\\]\\-,]`;
const WORD_TOKENIZER = new RegExp(
  `${MULTI_CHAR}|(?=${WORD_START})${NWS}+?(?=${WS}|$|${NON_WORD}|${MULTI_CHAR}|,(?=$|${WS}|${NON_WORD}|${MULTI_CHAR}))|${NWS}`,
  "gu",
);
const PERIOD_CONTEXT = new RegExp(`[.?!](?=(?<after_tok>${NON_WORD}|${WS}+(?<next_tok>${NWS}+)))`, "gdu");
const BOUNDARY_REALIGNMENT = new RegExp(`^["')\\]}]+?(?:${WS}+|(?=--)|(?=\\n)|$)`, "u");

// PunktToken's patterns.
const RE_ELLIPSIS = /^\.\.+$/;
const RE_NUMERIC = new RegExp(`^-?[.,]?${DIGIT}[${DIGIT},.\\-]*\\.?$`, "u");
const RE_INITIAL = /^[\p{L}\p{Nl}\p{No}_]\.$/u;
const FIRST_UPPER = /^\p{Uppercase}/u;
const FIRST_LOWER = /^\p{Lowercase}/u;
const BLANK = new RegExp(`^${WS}*$`, "u");
const TRAILING_WS = new RegExp(`${WS}+$`, "u");

class Token {
  readonly type: string;
  readonly periodFinal: boolean;
  parastart = false;
  linestart = false;
  sentbreak = false;
  abbr = false;
  ellipsis = false;

  constructor(readonly tok: string) {
    const lower = tok.toLowerCase();
    this.type = RE_NUMERIC.test(lower) ? "##number##" : lower;
    this.periodFinal = tok.endsWith(".");
  }
  get typeNoPeriod(): string {
    return this.type.length > 1 && this.type.endsWith(".") ? this.type.slice(0, -1) : this.type;
  }
  get typeNoSentperiod(): string {
    return this.sentbreak ? this.typeNoPeriod : this.type;
  }
  get firstUpper(): boolean {
    return FIRST_UPPER.test(this.tok);
  }
  get firstLower(): boolean {
    return FIRST_LOWER.test(this.tok);
  }
  get isEllipsis(): boolean {
    return RE_ELLIPSIS.test(this.tok);
  }
  get isInitial(): boolean {
    return RE_INITIAL.test(this.tok);
  }
}

/** Punkt word tokens of each non-blank line (`_tokenize_words`). */
function tokenizeWords(text: string): Token[] {
  const out: Token[] = [];
  let parastart = false;
  for (const line of text.split("\n")) {
    if (BLANK.test(line)) {
      parastart = true;
      continue;
    }
    let first = true;
    for (const m of line.matchAll(WORD_TOKENIZER)) {
      const t = new Token(m[0]);
      if (first) {
        t.parastart = parastart;
        t.linestart = true;
        parastart = false;
        first = false;
      }
      out.push(t);
    }
  }
  return out;
}

function firstPass(tok: Token, p: PunktParams): void {
  const t = tok.tok;
  if (SENT_END_CHARS.includes(t)) tok.sentbreak = true;
  else if (tok.isEllipsis) tok.ellipsis = true;
  else if (tok.periodFinal && !t.endsWith("..")) {
    const stem = t.slice(0, -1).toLowerCase();
    if (p.abbrevTypes.has(stem) || p.abbrevTypes.has(stem.split("-").pop()!)) tok.abbr = true;
    else tok.sentbreak = true;
  }
}

/** Whether the token after a candidate boundary starts a sentence: true, false or "unknown". */
function orthoHeuristic(tok: Token, p: PunktParams): boolean | "unknown" {
  if (PUNCTUATION.includes(tok.tok)) return false;
  const ctx = p.orthoContext.get(tok.typeNoSentperiod) ?? 0;
  if (tok.firstUpper && ctx & ORTHO_LC && !(ctx & ORTHO_MID_UC)) return true;
  if (tok.firstLower && (ctx & ORTHO_UC || !(ctx & ORTHO_BEG_LC))) return false;
  return "unknown";
}

function secondPass(tok1: Token, tok2: Token | undefined, p: PunktParams): void {
  if (!tok2 || !tok1.periodFinal) return;
  const typ = tok1.typeNoPeriod;
  const nextTyp = tok2.typeNoSentperiod;
  const initial = tok1.isInitial;
  if (p.collocations.has(`${typ} ${nextTyp}`)) {
    tok1.sentbreak = false;
    tok1.abbr = true;
    return;
  }
  if ((tok1.abbr || tok1.ellipsis) && !initial) {
    if (orthoHeuristic(tok2, p) === true) {
      tok1.sentbreak = true;
      return;
    }
    if (tok2.firstUpper && p.sentStarters.has(nextTyp)) {
      tok1.sentbreak = true;
      return;
    }
  }
  if (initial || typ === "##number##") {
    const starter = orthoHeuristic(tok2, p);
    if (starter === false) {
      tok1.sentbreak = false;
      tok1.abbr = true;
      return;
    }
    if (starter === "unknown" && initial && tok2.firstUpper && !((p.orthoContext.get(nextTyp) ?? 0) & ORTHO_LC)) {
      tok1.sentbreak = false;
      tok1.abbr = true;
    }
  }
}

/** `text_contains_sentbreak`: a token after a sentence-breaking one exists (the last token's break is ignored). */
function containsSentbreak(text: string, p: PunktParams): boolean {
  const toks = tokenizeWords(text);
  for (const t of toks) firstPass(t, p);
  let found = false;
  for (let i = 0; i < toks.length; i++) {
    // The second pass looks at the pair (i, i + 1) before token i is examined, as the generator chain does.
    secondPass(toks[i]!, toks[i + 1], p);
    if (found) return true;
    if (toks[i]!.sentbreak) found = true;
  }
  return false;
}

/** Index of the last ASCII whitespace in `s` (Python's string.whitespace), or 0 when none (the reference's own convention). */
function lastWhitespaceIndex(s: string): number {
  for (let i = s.length - 1; i >= 0; i--) if (" \t\n\r\v\f".includes(s[i]!)) return i;
  return 0;
}

interface Candidate {
  readonly end: number;
  readonly nextTokStart: number | undefined;
  readonly context: string;
}

/** `_match_potential_end_contexts`: each candidate boundary with the text from its word to the token after it. */
function potentialEndContexts(text: string): Candidate[] {
  const out: Candidate[] = [];
  let prevStart = 0;
  let prevStop = 0;
  let prev: RegExpExecArray | undefined;
  const candidate = (m: RegExpExecArray, start: number, stop: number): Candidate => ({
    end: m.index + m[0].length,
    nextTokStart: m.groups!.next_tok !== undefined ? m.indices!.groups!.next_tok![0] : undefined,
    context: text.slice(start, stop) + m[0] + m.groups!.after_tok!,
  });
  for (const m of text.matchAll(PERIOD_CONTEXT)) {
    const before = text.slice(prevStop, m.index);
    let wordStart = lastWhitespaceIndex(before);
    wordStart = wordStart ? wordStart + prevStop + 1 : prevStart;
    if (prev && prevStop <= wordStart) out.push(candidate(prev, prevStart, prevStop));
    prev = m as RegExpExecArray;
    prevStart = wordStart;
    prevStop = m.index;
  }
  if (prev) out.push(candidate(prev, prevStart, prevStop));
  return out;
}

/** Sentence spans [start, stop) before realignment (`_slices_from_text`). */
function slices(text: string, p: PunktParams): [number, number][] {
  const out: [number, number][] = [];
  let lastBreak = 0;
  for (const c of potentialEndContexts(text)) {
    if (containsSentbreak(c.context, p)) {
      out.push([lastBreak, c.end]);
      lastBreak = c.nextTokStart ?? c.end;
    }
  }
  out.push([lastBreak, text.replace(TRAILING_WS, "").length]);
  return out;
}

/** Moves closing quotes and brackets that open the next slice onto the end of the previous one (`_realign_boundaries`). */
function realign(text: string, spans: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  let shift = 0;
  for (let i = 0; i < spans.length; i++) {
    const s1: [number, number] = [spans[i]![0] + shift, spans[i]![1]];
    const s2 = spans[i + 1];
    const nonEmpty = text.slice(s1[0], s1[1]) !== "";
    if (!s2) {
      if (nonEmpty) out.push(s1);
      continue;
    }
    const m = BOUNDARY_REALIGNMENT.exec(text.slice(s2[0], s2[1]));
    if (m) {
      out.push([s1[0], s2[0] + m[0].replace(TRAILING_WS, "").length]);
      shift = m[0].length;
    } else {
      shift = 0;
      if (nonEmpty) out.push(s1);
    }
  }
  return out;
}

/** `PunktSentenceTokenizer.tokenize(text)` with NLTK's English model. */
export function punktSentences(text: string): string[] {
  return realign(text, slices(text, params())).map(([a, b]) => text.slice(a, b));
}
