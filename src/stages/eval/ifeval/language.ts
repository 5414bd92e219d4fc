// Language identification for IFEval's language:response_language and change_case:english_* checks. The reference
// calls Python's langdetect, which knows 55 languages and answers ISO 639-1 codes ("en", "zh-cn"); here franc (a
// trigram detector, pinned) is asked to choose among those same 55 languages (franc names them in ISO 639-3; Welsh
// it cannot detect), and its answer is mapped back to langdetect's codes. Both are statistical: on short or mixed
// texts they may disagree, as langdetect disagrees with itself between runs (it samples, unseeded in the reference).
import { franc } from "franc";

/** franc's ISO 639-3 code -> langdetect's code, for the 55 languages langdetect has profiles for. */
const LANGDETECT_CODES: Readonly<Record<string, string>> = {
  afr: "af", arb: "ar", bul: "bg", ben: "bn", cat: "ca", ces: "cs", dan: "da", deu: "de", ell: "el", eng: "en",
  spa: "es", ekk: "et", pes: "fa", fin: "fi", fra: "fr", guj: "gu", heb: "he", hin: "hi", hrv: "hr", hun: "hu",
  ind: "id", ita: "it", jpn: "ja", kan: "kn", kor: "ko", lit: "lt", lvs: "lv", mkd: "mk", mal: "ml", mar: "mr",
  npi: "ne", nld: "nl", nob: "no", pan: "pa", pol: "pl", por: "pt", ron: "ro", rus: "ru", slk: "sk", slv: "sl",
  som: "so", als: "sq", swe: "sv", swh: "sw", tam: "ta", tel: "te", tha: "th", tgl: "tl", tur: "tr", ukr: "uk",
  urd: "ur", vie: "vi", cmn: "zh-cn",
};
const ONLY = Object.keys(LANGDETECT_CODES);

/**
 * The language of `text` as a langdetect code, or undefined when it cannot be told (no letters at all: langdetect
 * raises then, and IFEval counts the instruction as followed).
 */
export function detectLanguage(text: string): string | undefined {
  const code = franc(text, { minLength: 1, only: ONLY });
  return code === "und" ? undefined : LANGDETECT_CODES[code];
}
