// Planted near-duplicates with a known Jaccard similarity, for the MinHash tests and benchmark: documents of
// Zipf-distributed pseudo-words, copies edited to a target similarity, and the exact Jaccard similarity of word
// shingle sets computed here on strings (independently of the MinHash module's tokenizer and 32-bit hashes).

/** Pseudo-words from syllables, drawn by Zipf's law (s = 1) through the inverse of the cumulative distribution. */
export function zipfWords(r: () => number, size: number): () => string {
  const syll = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "dan", "el", "or", "qu", "is", "ber", "tor", "an", "gle", "mu", "sa"];
  const vocab = Array.from({ length: size }, (_, i) => {
    let w = "";
    for (let n = i + 1; n > 0; n = Math.floor(n / syll.length)) w += syll[n % syll.length];
    return w;
  });
  const cdf = new Float64Array(size);
  for (let i = 0, s = 0; i < size; i++) cdf[i] = s += 1 / (i + 1);
  return () => {
    const x = r() * cdf[size - 1]!;
    let lo = 0;
    let hi = size - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return vocab[lo]!;
  };
}

/**
 * A copy of `words` edited towards Jaccard similarity `target` of `shingle`-word shingles: each word is edited with
 * probability e, replaced (70%), deleted (15%) or doubled (15%). An edit breaks about `shingle` shingles, so a
 * share e of edits leaves J ~ (1 - k e) / (1 + k e); e is solved from that. The result is near the target, not on it:
 * measure it with {@link exactJaccard}.
 */
export function editedCopy(words: readonly string[], target: number, shingle: number, r: () => number, word: () => string): string[] {
  const rate = Math.min(1, (1 - target) / (shingle * (1 + target)));
  const out: string[] = [];
  for (const w of words) {
    if (r() >= rate) out.push(w);
    else {
      const op = r();
      if (op < 0.7) out.push(word());
      else if (op >= 0.85) out.push(w, w);
    }
  }
  return out;
}

/** The set of `k`-word shingles of a text of space-separated lowercase words (one shingle of all words when shorter). */
export function shingleSet(text: string, k: number): Set<string> {
  const w = text.split(" ").filter((x) => x.length > 0);
  const out = new Set<string>();
  if (w.length === 0) return out;
  const n = Math.min(k, w.length);
  for (let i = 0; i + n <= w.length; i++) out.add(w.slice(i, i + n).join(" "));
  return out;
}

/** |A ∩ B| / |A ∪ B|. */
export function exactJaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  let inter = 0;
  for (const x of small) if (large.has(x)) inter++;
  const union = a.size + b.size - inter;
  return union === 0 ? 0 : inter / union;
}
