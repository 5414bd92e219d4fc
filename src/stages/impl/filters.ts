import type { StageContext, StageImpl } from "../../runtime/impl.js";
import { UserError } from "../../runtime/impl.js";
import type { RecordValue } from "../../runtime/records.js";
import { SELF_INSTRUCT_BLOCKLIST, TULU_MENTION_TERMS } from "../common.js";
import { asyncImpl, checkAbort, mapRecords } from "./support.js";
import {
  codePoints,
  dedupKey,
  fieldText,
  fieldTexts,
  mayExceed,
  messageContents,
  ngrams,
  ngramWords,
  pyStrip,
  pyWords,
  rougeLF1,
  rougeTokens,
  Vocabulary,
  wordsRegex,
} from "./text.js";

/**
 * Filters and deduplication. Every one keeps the order of the records it keeps and counts what it does in the
 * manifest: `kept`, and `dropped: <reason>` for each reason that dropped something.
 */

const param = <T>(ctx: StageContext, name: string, dflt: T): T => (ctx.params[name] === undefined ? dflt : (ctx.params[name] as T));
const at = (ctx: StageContext, i: number) => () => `${ctx.stage.id}: record ${i + 1}`;

/** A filter from a per-record verdict: undefined keeps the record, a string is the reason it is dropped. */
function filterImpl(prepare: (ctx: StageContext) => Promise<(r: RecordValue, i: number) => string | undefined> | ((r: RecordValue, i: number) => string | undefined)): StageImpl {
  return asyncImpl(async (ctx, out) => {
    const verdict = await prepare(ctx);
    const dropped = new Map<string, number>();
    let kept = 0;
    await mapRecords(ctx, out, (r, i) => {
      const why = verdict(r, i);
      if (why === undefined) {
        kept++;
        return r;
      }
      dropped.set(why, (dropped.get(why) ?? 0) + 1);
      return undefined;
    });
    ctx.count("kept", kept);
    for (const [why, n] of [...dropped].sort(([a], [b]) => (a < b ? -1 : 1))) ctx.count(`dropped: ${why}`, n);
  });
}

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
  const block = rules.words.length > 0 ? wordsRegex(rules.words, true, true) : undefined;
  return (raw) => {
    const inst = pyStrip(raw);
    const n = pyWords(inst).length;
    if (n < rules.minWords) return "too few words";
    if (n > rules.maxWords) return "too many words";
    if (block?.test(inst)) return "blocklisted word";
    if (rules.blockedPrefixes.some((p) => inst.startsWith(p))) return "blocked prefix";
    const first = inst.codePointAt(0);
    if (first !== undefined && rules.dropPunctuationStart && ASCII_PUNCTUATION.has(String.fromCodePoint(first))) return "starts with punctuation";
    if (first !== undefined && rules.dropNonAsciiStart && first > 0x7f) return "starts with a non-ASCII character";
    return undefined;
  };
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

/** The first term (in the list's order) that any text contains as a substring, or undefined. */
export function firstMention(texts: readonly string[], terms: readonly string[], caseInsensitive: boolean): string | undefined {
  const hay = caseInsensitive ? texts.map((t) => t.toLowerCase()) : texts;
  for (const term of terms) {
    const needle = caseInsensitive ? term.toLowerCase() : term;
    if (hay.some((t) => t.includes(needle))) return term;
  }
  return undefined;
}

/**
 * Self-Instruct's ROUGE-L similarity filter: texts in order, each kept unless its ROUGE-L F1 against an earlier kept
 * text (or a text of `against`) is above `max`. Returns the indices kept. Pairs whose lengths bound F1 at or
 * below `max` (F1 <= 2 min(a, b) / (a + b)) are not compared.
 */
export function rougeDedup(texts: Iterable<string>, max: number, against: Iterable<string> = [], onEach?: (i: number) => void): number[] {
  const vocab = new Vocabulary();
  const pool: Int32Array[] = [];
  for (const t of against) pool.push(vocab.encode(rougeTokens(t)));
  const keptIdx: number[] = [];
  let i = 0;
  for (const t of texts) {
    const toks = vocab.encode(rougeTokens(t));
    let dup = false;
    if (toks.length > 0) {
      for (let k = 0; k < pool.length; k++) {
        const other = pool[k]!;
        if (!mayExceed(toks.length, other.length, max)) continue;
        if (rougeLF1(toks, other) > max) {
          dup = true;
          break;
        }
      }
    }
    if (!dup) {
      pool.push(toks);
      keptIdx.push(i);
    }
    i++;
    onEach?.(i);
  }
  return keptIdx;
}

/** Inputs of a list-of-datasets parameter (`against`), in order: roles `param:against[0]`, `param:against[1]`, ... */
function listInputs(ctx: StageContext, name: string) {
  const prefix = `param:${name}[`;
  return [...ctx.inputs]
    .filter(([role]) => role.startsWith(prefix))
    .sort(([a], [b]) => Number(a.slice(prefix.length, -1)) - Number(b.slice(prefix.length, -1)))
    .map(([, a]) => a);
}

export const filterImpls: Record<string, StageImpl> = {
  length: filterImpl((ctx) => {
    const field = String(ctx.params["field"]);
    const unit = param<string>(ctx, "unit", "words");
    const min = ctx.params["min"] as number | undefined;
    const max = ctx.params["max"] as number | undefined;
    if (unit === "tokens") {
      throw new UserError(`${ctx.stage.id}: length in tokens needs a tokenizer, which comes with a later version of itp`, 'count words or characters for now: unit = "words" or unit = "chars"');
    }
    return (r, i) => {
      const text = fieldText(r, field, at(ctx, i));
      const n = unit === "chars" ? codePoints(text) : pyWords(text).length;
      if (min !== undefined && n < min) return "too short";
      if (max !== undefined && n > max) return "too long";
      return undefined;
    };
  }),

  blocklist: filterImpl((ctx) => {
    const field = String(ctx.params["field"]);
    const re = wordsRegex(ctx.params["words"] as string[], param(ctx, "word_boundary", true), param(ctx, "case_insensitive", true));
    return (r, i) => (re.test(fieldText(r, field, at(ctx, i))) ? "blocklisted word" : undefined);
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
    const verdict = selfInstructVerdict({
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
    const dropped = new Map<string, number>();
    let kept = 0;
    let exempted = 0;
    await mapRecords(ctx, out, (r) => {
      if (typeof r["source"] === "string" && exempt.has(r["source"])) {
        exempted++;
        kept++;
        return r;
      }
      const term = firstMention(mentionTexts(r), terms, ci);
      if (term === undefined) {
        kept++;
        return r;
      }
      dropped.set(term, (dropped.get(term) ?? 0) + 1);
      return undefined;
    });
    ctx.count("kept", kept);
    if (exempted) ctx.count("kept: exempt source", exempted);
    for (const [t, n] of [...dropped].sort(([a], [b]) => (a < b ? -1 : 1))) ctx.count(`dropped: mentions ${t}`, n);
  }),

  exact_dedup: filterImpl((ctx) => {
    const fields = ctx.params["fields"] as string[] | undefined;
    const normalize = param(ctx, "normalize", true);
    const seen = new Set<string>();
    return (r) => {
      const k = dedupKey(r, fields, normalize);
      if (seen.has(k)) return "duplicate";
      seen.add(k);
      return undefined;
    };
  }),

  rouge_dedup: asyncImpl(async (ctx, out) => {
    const field = String(ctx.params["field"]);
    const max = param(ctx, "max", 0.7);
    const against: string[] = [];
    for (const a of listInputs(ctx, "against")) {
      let i = 0;
      for await (const r of a.read()) against.push(fieldText(r, field, () => `${a.stage}: record ${++i}`));
    }
    // The texts are compared in memory (every kept one against every later one); records are read again to write.
    const input = ctx.inputs.get("data")!;
    const texts: string[] = [];
    let i = 0;
    for await (const r of input.read()) {
      texts.push(fieldText(r, field, at(ctx, i)));
      i++;
    }
    const kept = rougeDedup(texts, max, against, (n) => {
      if (n % 256 === 0) {
        checkAbort(ctx);
        ctx.progress(n, texts.length);
      }
    });
    const keep = new Uint8Array(texts.length);
    for (const k of kept) keep[k] = 1;
    await mapRecords(ctx, out, (r, j) => (keep[j] ? r : undefined));
    ctx.count("kept", kept.length);
    if (texts.length - kept.length > 0) ctx.count("dropped: ROUGE-L above max", texts.length - kept.length);
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
    let dropped = 0;
    await mapRecords(ctx, out, (r) => {
      for (const f of fields) {
        for (const t of fieldTexts(r, f)) {
          for (const g of ngrams(ngramWords(t), n)) {
            if (grams.has(g)) {
              dropped++;
              return undefined;
            }
          }
        }
      }
      kept++;
      return r;
    });
    ctx.count("kept", kept);
    if (dropped) ctx.count(`dropped: shares a ${n}-gram with an evaluation set`, dropped);
  }),
};
