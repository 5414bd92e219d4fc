// MMLU accuracy per subject, per category and overall, both micro (every question weighs the same: lm-eval's
// `weight_by_size: True` group aggregate) and macro (every subject weighs the same: the mean of subject accuracies,
// as hendrycks/test prints per category). Standard errors: micro is the mean's standard error over the pooled
// questions (what lm-eval's pooled_sample_stderr approximates); macro is sqrt(sum of subject variances)/k, the
// standard error of a mean of k independent estimates.
import { type MmluCategory, mmluCategory } from "./mmlu-subjects.js";
import { asScores, mean, meanStderr } from "./stderr.js";

export interface MmluResult {
  readonly subject: string;
  readonly correct: boolean;
}

export interface Accuracy {
  readonly acc: number;
  readonly stderr: number;
  readonly n: number;
}

export interface GroupAccuracy {
  /** Pooled over the group's questions. */
  readonly micro: Accuracy;
  /** Mean of the group's subject accuracies; `n` counts subjects. */
  readonly macro: Accuracy;
  readonly subjects: number;
}

export interface MmluAccuracy {
  readonly subjects: Readonly<Record<string, Accuracy>>;
  readonly categories: Readonly<Partial<Record<MmluCategory, GroupAccuracy>>>;
  readonly overall: GroupAccuracy;
}

function accuracy(correct: readonly boolean[]): Accuracy {
  const s = asScores(correct);
  return { acc: mean(s), stderr: meanStderr(s), n: s.length };
}

function group(subjects: readonly string[], bySubject: ReadonlyMap<string, boolean[]>, accs: Readonly<Record<string, Accuracy>>): GroupAccuracy {
  const pooled = subjects.flatMap((s) => bySubject.get(s)!);
  const sub = subjects.map((s) => accs[s]!);
  // A one-question subject has no sample variance (NaN): the macro standard error is then unknown too.
  const variance = sub.reduce((v, a) => v + a.stderr ** 2, 0);
  return {
    micro: accuracy(pooled),
    macro: { acc: mean(sub.map((a) => a.acc)), stderr: Math.sqrt(variance) / sub.length, n: sub.length },
    subjects: sub.length,
  };
}

/** Accuracies from per-question results. A subject outside the 57 counts in `overall` and in no category. */
export function mmluAccuracy(results: readonly MmluResult[]): MmluAccuracy {
  const bySubject = new Map<string, boolean[]>();
  for (const r of results) {
    let list = bySubject.get(r.subject);
    if (!list) bySubject.set(r.subject, (list = []));
    list.push(r.correct);
  }
  const subjects: Record<string, Accuracy> = {};
  for (const [s, list] of [...bySubject].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) subjects[s] = accuracy(list);
  const names = Object.keys(subjects);
  const categories: Partial<Record<MmluCategory, GroupAccuracy>> = {};
  for (const c of ["stem", "humanities", "social_sciences", "other"] as const) {
    const members = names.filter((s) => mmluCategory(s) === c);
    if (members.length > 0) categories[c] = group(members, bySubject, subjects);
  }
  return { subjects, categories, overall: group(names, bySubject, subjects) };
}
