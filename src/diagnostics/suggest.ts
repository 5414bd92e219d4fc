/**
 * Edit distance with adjacent transpositions (optimal string alignment), bounded: returns max+1 as soon as the
 * distance is known to exceed max. `shrot` is one edit from `short`, as a reader would count it.
 */
export function editDistance(a: string, b: string, max = Infinity): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2]! + 1);
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    prev2 = prev;
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest candidate to `name`, if close enough to be a likely typo. */
export function didYouMean(name: string, candidatesIn: Iterable<string>): string | undefined {
  const candidates = [...candidatesIn];
  // One- and two-letter names are too short for a typo to be told from another name.
  const max = name.length <= 2 ? 0 : Math.max(1, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestD = max + 1;
  const lower = name.toLowerCase();
  for (const c of candidates) {
    const d = c.toLowerCase() === lower ? 0 : editDistance(lower, c.toLowerCase(), max);
    if (d < bestD || (d === bestD && best !== undefined && c < best)) {
      best = c;
      bestD = d;
    }
  }
  if (bestD <= max) return best;
  // An abbreviation of a longer name (`str` for `string`): the shortest candidate it begins.
  if (name.length >= 3) {
    const prefixed = [...candidates].filter((c) => c.toLowerCase().startsWith(lower)).sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
    if (prefixed.length > 0) return prefixed[0];
  }
  return undefined;
}

export const hintDidYouMean = (name: string, candidates: Iterable<string>): string | undefined => {
  const s = didYouMean(name, candidates);
  return s === undefined ? undefined : `did you mean \`${s}\`?`;
};
