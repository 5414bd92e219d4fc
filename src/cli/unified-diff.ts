/** A unified diff of two texts (line-based LCS; recipes are small), for `fmt --diff`. */
export function unifiedDiff(path: string, a: string, b: string, context = 3): string {
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  // LCS table over lines; fine for files of a few thousand lines.
  const dp = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) dp[i]![j] = x[i] === y[j] ? dp[i + 1]![j + 1]! + 1 : Math.max(dp[i + 1]![j]!, dp[i]![j + 1]!);
  const ops: { t: " " | "-" | "+"; s: string; i: number; j: number }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) ops.push({ t: " ", s: x[i]!, i: i++, j: j++ });
    else if (j < m && (i === n || dp[i]![j + 1]! >= dp[i + 1]![j]!)) ops.push({ t: "+", s: y[j]!, i, j: j++ });
    else ops.push({ t: "-", s: x[i]!, i: i++, j });
  }
  const out = [`--- ${path}`, `+++ ${path} (formatted)`];
  let k = 0;
  while (k < ops.length) {
    if (ops[k]!.t === " ") {
      k++;
      continue;
    }
    let start = Math.max(0, k - context);
    let end = k;
    // Extend the hunk while changes are within 2*context lines of each other.
    while (end < ops.length) {
      let e = end;
      while (e < ops.length && ops[e]!.t !== " ") e++;
      let gap = e;
      while (gap < ops.length && ops[gap]!.t === " " && gap - e < 2 * context) gap++;
      if (gap < ops.length && ops[gap]!.t !== " ") end = gap;
      else {
        end = Math.min(ops.length, e + context);
        break;
      }
    }
    const hunk = ops.slice(start, end);
    const oldLen = hunk.filter((o) => o.t !== "+").length;
    const newLen = hunk.filter((o) => o.t !== "-").length;
    out.push(`@@ -${hunk[0]!.i + 1},${oldLen} +${hunk[0]!.j + 1},${newLen} @@`);
    for (const o of hunk) out.push(`${o.t}${o.s}`);
    k = end;
    start = end;
  }
  return out.join("\n") + "\n";
}
