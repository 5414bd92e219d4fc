import type { Verb } from "./args.js";
import { InputError, UsageError } from "./host.js";

const verbs: Record<string, { summary: string; load: () => Promise<Verb> }> = {
  check: { summary: "parse, resolve and type-check recipes", load: async () => (await import("./check.js")).checkVerb },
  fmt: { summary: "format recipes canonically (--check, --diff)", load: async () => (await import("./fmt.js")).fmtVerb },
  graph: { summary: "print the typed DAG (--format dot|mermaid|json)", load: async () => (await import("./graph.js")).graphVerb },
  diff: { summary: "explain what changed between two recipes", load: async () => (await import("./diff.js")).diffVerb },
  lock: { summary: "pin every hub dataset and model a recipe reads to a commit (<recipe>.lock)", load: async () => (await import("./lock.js")).lockVerb },
  kinds: { summary: "list the stage kinds, or document one", load: async () => (await import("./kinds.js")).kindsVerb },
  run: { summary: "run a recipe: cached stages are reused, the rest run; resumes after a crash", load: async () => (await import("./run.js")).runVerb },
  plan: { summary: "show which stages are cached and which will run, and why", load: async () => (await import("./plan.js")).planVerb },
  show: { summary: "show a stage's artifact: location, count, schema, sample, lineage", load: async () => (await import("./show.js")).showVerb },
  report: { summary: "write an offline HTML page of what runs made: DAG, counts, drops, mixture, cost, loss, evals", load: async () => (await import("./report-page.js")).reportPageVerb },
  "report-diff": { summary: "compare two recipe versions' evaluation reports, metric by metric", load: async () => (await import("./report-diff.js")).reportDiffVerb },
  cache: { summary: "the store: ls, verify, gc", load: async () => (await import("./cache.js")).cacheVerb },
};

const usage = `usage: itp <command> [options]

commands:
${Object.entries(verbs)
  .map(([k, v]) => `  ${k.padEnd(11)} ${v.summary}`)
  .join("\n")}

Every command takes --json for machine-readable output. Exit codes: 0 success, 1 errors in the input, 2 usage.`;

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === "help" || verb === "--help" || verb === "-h") {
    process.stdout.write(usage + "\n");
    return verb === undefined ? 2 : 0;
  }
  if (verb === "--version" || verb === "-V") {
    process.stdout.write(`itp ${process.env["ITP_VERSION"] ?? "0.1.0"}\n`);
    return 0;
  }
  const v = verbs[verb];
  if (!v) {
    process.stderr.write(`itp: unknown command '${verb}'\n\n${usage}\n`);
    return 2;
  }
  try {
    return await (await v.load())(rest);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`itp ${verb}: ${(e as Error).message}\nrun 'itp ${verb} --help' for its options\n`);
      return 2;
    }
    if (e instanceof InputError) {
      process.stderr.write(`itp ${verb}: error: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
