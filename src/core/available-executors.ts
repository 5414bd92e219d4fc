/**
 * The process executors this version of itp has, by the name a stage's `executor` parameter (or a profile's
 * `executor`) gives: what `itp check` accepts there. A recipe may name another, but it cannot pass the check until
 * its executor exists: a training job must not look runnable when it is not.
 */
export const AVAILABLE_EXECUTORS: ReadonlySet<string> = new Set(["local", "slurm"]);
