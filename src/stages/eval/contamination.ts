import type { RecordValue } from "../../core/records.js";
import { messageContents, ngrams, ngramWords } from "../support/text.js";

/**
 * Contamination, side by side with the scores: how many test items of each task share a word n-gram with the
 * training data of the model under evaluation. The measure is the `decontaminate` filter's (words after NFKC,
 * lowercasing and splitting at every run of non-letters and non-digits; a text shorter than n words is one gram,
 * itself), so an item counted here is one that `decontaminate` would have protected.
 */
export class ContaminationIndex {
  /** Gram -> the items (task index, item index) whose texts contain it. */
  private readonly grams = new Map<string, number[]>();
  private readonly hit: boolean[][];

  constructor(
    /** Per task, per item, the texts checked (a question, a prompt, a conversation's turns). */
    items: readonly (readonly (readonly string[])[])[],
    readonly n: number,
  ) {
    this.hit = items.map((t) => t.map(() => false));
    items.forEach((task, ti) =>
      task.forEach((texts, ii) => {
        const code = ti * 2 ** 26 + ii;
        for (const t of texts)
          for (const g of ngrams(ngramWords(t), n)) {
            const list = this.grams.get(g);
            if (!list) this.grams.set(g, [code]);
            else if (list[list.length - 1] !== code) list.push(code);
          }
      }),
    );
  }

  /** Mark the items sharing a gram with this training record (its string fields and message contents). */
  add(r: RecordValue): void {
    if (this.grams.size === 0) return;
    for (const v of Object.values(r)) {
      const texts = typeof v === "string" ? [v] : (messageContents(v) ?? []);
      for (const t of texts)
        for (const g of ngrams(ngramWords(t), this.n)) {
          const codes = this.grams.get(g);
          if (codes) for (const c of codes) this.hit[Math.floor(c / 2 ** 26)]![c % 2 ** 26] = true;
        }
    }
  }

  /** Per task, the number of items marked. */
  counts(): number[] {
    return this.hit.map((t) => t.filter(Boolean).length);
  }

  /** Whether an item of a task was marked. */
  contaminated(task: number, item: number): boolean {
    return this.hit[task]?.[item] === true;
  }
}
