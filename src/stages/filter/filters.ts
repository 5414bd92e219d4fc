import type { StageContext, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import { SELF_INSTRUCT_BLOCKLIST, TULU_MENTION_TERMS } from "../common.js";
import { loadTokenizer } from "../../tokenize/load.js";
import { tokenizerFiles } from "../../tokenize/locate.js";
import { asyncImpl, checkAbort, listInputs, mapRecords, type Verdict } from "../support/records.js";
import { matchedWord, selfInstructDetailed } from "../support/self-instruct-rules.js";
import {
  codePoints,
  fieldText,
  fieldTexts,
  messageContents,
  ngrams,
  ngramWords,
  pyWords,
  wordsRegex,
} from "../support/text.js";

/**
 * Filters. Every one keeps the order of the records it keeps and counts what it does in the manifest: `kept`, and
 * `dropped: <reason>` for each reason that dropped something.
 */

const param = <T>(ctx: StageContext, name: string, dflt: T): T => (ctx.params[name] === undefined ? dflt : (ctx.params[name] as T));
const at = (ctx: StageContext, i: number) => () => `${ctx.stage.id}: record ${i + 1}`;

/** A filter from a per-record verdict: undefined keeps the record, a reason (with detail) drops it. */
function filterImpl(prepare: (ctx: StageContext) => Promise<(r: RecordValue, i: number) => Verdict> | ((r: RecordValue, i: number) => Verdict)): StageImpl {
  return asyncImpl(async (ctx, out) => {
    const verdict = await prepare(ctx);
    let kept = 0;
    await mapRecords(ctx, out, (r, i) => {
      const why = verdict(r, i);
      if (why === undefined) {
        kept++;
        return r;
      }
      if (typeof why === "string") ctx.drop(r, why);
      else ctx.drop(r, why.reason, why.detail);
      return undefined;
    });
    ctx.count("kept", kept);
  });
}

/** The texts that mention_filter searches: message contents, instruction/input/output; else every string field. */
export function mentionTexts(r: RecordValue): string[] {
  const out: string[] = [];
  const msgs = messageContents(r["messages"]);
  if (msgs) out.push(...msgs);
  for (const f of ["instruction", "input", "output"]) if (typeof r[f] === "string") out.push(r[f] as string);
  if (msgs === undefined && out.length === 0) {
    for (const [k, v] of Object.entries(r)) if (k !== "source" && k !== "id" && typeof v === "string") out.push(v);
  }
  return out;
}

/** Where a term was found: the matched text with a few words around it, and which text. */
function mentionDetail(texts: readonly string[], term: string, caseInsensitive: boolean): string {
  const needle = caseInsensitive ? term.toLowerCase() : term;
  for (let k = 0; k < texts.length; k++) {
    const t = texts[k]!;
    const at = (caseInsensitive ? t.toLowerCase() : t).indexOf(needle);
    if (at < 0) continue;
    const from = Math.max(0, at - 30);
    const to = Math.min(t.length, at + needle.length + 30);
    return `term "${term}" matched "${t.slice(at, at + needle.length)}" in text ${k + 1}: "${from > 0 ? "..." : ""}${t.slice(from, to).replace(/\s+/g, " ")}${to < t.length ? "..." : ""}"`;
  }
  return `term "${term}"`;
}

/** The first term (in the list's order) that any text contains as a substring, or undefined. */
export function firstMention(texts: readonly string[], terms: readonly string[], caseInsensitive: boolean): string | undefined {
  const hay = caseInsensitive ? texts.map((t) => t.toLowerCase()) : texts;
  for (const term of terms) {
    const needle = caseInsensitive ? term.toLowerCase() : term;
    if (hay.some((t) => t.includes(needle))) return term;
  }
  return undefined;
}

export const filterImpls: Record<string, StageImpl> = {
  length: {
    ...filterImpl(async (ctx) => {
      const field = String(ctx.params["field"]);
      const unit = param<string>(ctx, "unit", "words");
      const min = ctx.params["min"] as number | undefined;
      const max = ctx.params["max"] as number | undefined;
      const spec = ctx.params["tokenizer"];
      if (unit === "tokens" && typeof spec !== "string") throw new UserError(`${ctx.stage.id}: length in tokens needs a tokenizer`, 'set tokenizer = "path/to/tokenizer_dir" (or "bytes" to count UTF-8 bytes)');
      // Tokens are the field's own, without the BOS/EOS a tokenizer adds around a sequence.
      const tok = unit === "tokens" ? await loadTokenizer(spec as string, ctx.baseDir, ctx.stage.id) : undefined;
      return (r, i) => {
        const text = fieldText(r, field, at(ctx, i));
        const n = tok ? tok.count(text) : unit === "chars" ? codePoints(text) : pyWords(text).length;
        if (min !== undefined && n < min) return "too short";
        if (max !== undefined && n > max) return "too long";
        return undefined;
      };
    }),
    files: (p) => (p["unit"] === "tokens" ? tokenizerFiles(p["tokenizer"]) : []),
  },

  blocklist: filterImpl((ctx) => {
    const field = String(ctx.params["field"]);
    const re = wordsRegex(ctx.params["words"] as string[], param(ctx, "word_boundary", true), param(ctx, "case_insensitive", true));
    return (r, i) => {
      const word = matchedWord(re, fieldText(r, field, at(ctx, i)));
      return word === undefined ? undefined : { reason: "blocklisted word", detail: `"${word}" in ${field}` };
    };
  }),

  regex: filterImpl((ctx) => {
    const field = String(ctx.params["field"]);
    let re: RegExp;
    try {
      re = new RegExp(String(ctx.params["pattern"]), param(ctx, "case_insensitive", false) ? "iu" : "u");
    } catch (e) {
      throw new UserError(`${ctx.stage.id}: invalid regular expression: ${(e as Error).message}`);
    }
    const keepMatch = param(ctx, "keep", "match") === "match";
    return (r, i) => {
      const m = re.test(fieldText(r, field, at(ctx, i)));
      return m === keepMatch ? undefined : m ? "matches" : "does not match";
    };
  }),

  self_instruct_filter: filterImpl((ctx) => {
    const field = param(ctx, "field", "instruction");
    const verdict = selfInstructDetailed({
      minWords: param(ctx, "min_words", 4),
      maxWords: param(ctx, "max_words", 150),
      words: [...param<string[]>(ctx, "words", [...SELF_INSTRUCT_BLOCKLIST]), ...param<string[]>(ctx, "extra_words", [])],
      blockedPrefixes: param(ctx, "blocked_prefixes", ["Write a program"]),
      dropPunctuationStart: param(ctx, "drop_punctuation_start", true),
      dropNonAsciiStart: param(ctx, "drop_non_ascii_start", true),
    });
    return (r, i) => verdict(fieldText(r, field, at(ctx, i)));
  }),

  mention_filter: asyncImpl(async (ctx, out) => {
    const terms = param<string[]>(ctx, "terms", [...TULU_MENTION_TERMS]);
    const exempt = new Set(param<string[]>(ctx, "exempt_sources", []));
    const ci = param(ctx, "case_insensitive", true);
    let kept = 0;
    let exempted = 0;
    await mapRecords(ctx, out, (r) => {
      if (typeof r["source"] === "string" && exempt.has(r["source"])) {
        exempted++;
        kept++;
        return r;
      }
      const texts = mentionTexts(r);
      const term = firstMention(texts, terms, ci);
      if (term === undefined) {
        kept++;
        return r;
      }
      ctx.drop(r, `mentions ${term}`, mentionDetail(texts, term, ci));
      return undefined;
    });
    ctx.count("kept", kept);
    if (exempted) ctx.count("kept: exempt source", exempted);
  }),

  decontaminate: asyncImpl(async (ctx, out) => {
    const fields = ctx.params["fields"] as string[];
    const againstFields = ctx.params["against_fields"] as string[] | undefined;
    const n = param(ctx, "ngram", 13);
    const grams = new Set<string>();
    for (const a of listInputs(ctx, "against")) {
      for await (const r of a.read()) {
        const texts: string[] = [];
        if (againstFields) for (const f of againstFields) texts.push(...fieldTexts(r, f));
        else
          for (const v of Object.values(r)) {
            if (typeof v === "string") texts.push(v);
            else texts.push(...(messageContents(v) ?? []));
          }
        for (const t of texts) for (const g of ngrams(ngramWords(t), n)) grams.add(g);
      }
      checkAbort(ctx);
    }
    let kept = 0;
    await mapRecords(ctx, out, (r) => {
      for (const f of fields) {
        for (const t of fieldTexts(r, f)) {
          for (const g of ngrams(ngramWords(t), n)) {
            if (grams.has(g)) {
              ctx.drop(r, `shares a ${n}-gram with an evaluation set`, `"${g}" in ${f}`);
              return undefined;
            }
          }
        }
      }
      kept++;
      return r;
    });
    ctx.count("kept", kept);
  }),
};
