/**
 * Verdicts of a downstream `where`, computed ahead by the reader that parsed the records anyway: the parallel
 * `jsonl` source evaluates the predicates of the `where` stages that read its output while its workers parse the
 * file, and leaves here, for the artifact it wrote (by digest), one bit per line and predicate. The `where` stage
 * then only splits its input's lines and writes or drops each as the bit says: the records are parsed once, not
 * twice. Both stages still write their own artifacts, the same bytes as without this (tested).
 *
 * In memory for the run (one process): a byte per line of the artifact. An entry is taken by its `where` (once).
 */

interface Entry {
  readonly digest: string;
  readonly expr: string;
  readonly lines: number;
  /** Per line of the artifact: 1 where the predicate holds. */
  readonly keep: Uint8Array;
}

const entries: Entry[] = [];
/** Entries kept at most: a reader leaves one per downstream `where`; a `where` that never runs leaves its own. */
const MAX_ENTRIES = 16;

/** Leave the verdicts of predicate `expr` on the lines of the artifact with this digest. */
export function leaveVerdicts(digest: string, expr: string, keep: Uint8Array, lines: number): void {
  entries.push({ digest, expr, lines, keep });
  if (entries.length > MAX_ENTRIES) entries.shift();
}

/** Take the verdicts of `expr` on the artifact with this digest and line count, if a reader left them. */
export function takeVerdicts(digest: string, expr: string, lines: number | null): Uint8Array | undefined {
  const i = entries.findIndex((e) => e.digest === digest && e.expr === expr && e.lines === lines);
  if (i < 0) return undefined;
  return entries.splice(i, 1)[0]!.keep;
}
