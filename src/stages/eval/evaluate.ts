import { openModelSession } from "../support/model-session.js";
import type { EvalModel, GenRequest, LoglikRequest } from "../../generate/eval-model.js";
import { ModelSession } from "../../generate/session.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import type { OutputSink, StageContext, StageImpl } from "../../core/stage.js";
import { asTemplate, FormatError, isChatTemplate, renderChat, renderPromptTemplate, type Message, type Template } from "../support/chat-formats.js";
import { HfTemplateError, isHfChatTemplate, renderHfChat, type HfChatTemplate } from "../support/hf-chat-template.js";
import { folderTemplate } from "../support/model-template.js";
import { asyncImpl, checkAbort } from "../support/records.js";
import { ContaminationIndex } from "./contamination.js";
import { TRAIN_DATA_ROLE } from "./kinds.js";
import { REPORT_FORMAT, type Contamination, type Report, type TaskReport } from "./report.js";
import type { TaskEnv, TaskOutcome, TaskRunner, Turn } from "./task-env.js";

/**
 * The `evaluate` stage: each task builds its requests from its datasets, the model answers them in batches (every
 * answer through the request cache, so a rerun or a resumed run asks only what it lacks), the task scores them, and
 * the stage writes one Report with every task's metrics, examples and contamination count.
 */

/** How generation prompts reach the model: a chat endpoint takes messages; otherwise a template renders them. */
interface PromptWrapper {
  readonly describe: string;
  wrap(turns: readonly Turn[]): Pick<GenRequest, "prompt" | "messages">;
}

/** The template of the `template` parameter, or the chat template in the model's folder, or none. */
async function promptWrapper(ctx: StageContext, model: EvalModel): Promise<PromptWrapper> {
  if (model.chat) return { describe: "chat messages (the endpoint applies its own template)", wrap: (turns) => ({ messages: turns.map((t) => ({ role: t.role, content: t.content })) }) };
  const param = ctx.inputs.get("param:template");
  let t: Template | HfChatTemplate | undefined;
  let source: string | undefined;
  if (param) {
    const v = await param.json();
    try {
      t = isHfChatTemplate(v) ? v : asTemplate(v);
    } catch (e) {
      if (e instanceof FormatError) throw new UserError(`stage \`${ctx.stage.id}\`: template \`${param.stage}\`: ${e.message}`);
      throw e;
    }
    source = `\`${param.stage}\``;
  } else {
    // A trained model is prompted in the format it was trained with (model-template.ts).
    const m = ctx.inputs.get("model");
    t = m?.tree ? await folderTemplate(m.path, m.stage, `stage \`${ctx.stage.id}\``) : undefined;
    if (t) source = isHfChatTemplate(t) ? `the chat template of \`${m!.stage}\`` : `the template \`${m!.stage}\` was trained with`;
  }
  if (!t) {
    return {
      describe: "none (plain prompts)",
      wrap: (turns) => {
        if (turns.length !== 1) throw new UserError(`stage \`${ctx.stage.id}\`: a conversation of ${turns.length} turns needs a chat template to become one prompt`, "give the stage a `template` (e.g. chat_template(name: \"tulu\")), or evaluate a model that has one");
        return { prompt: turns[0]!.content };
      },
    };
  }
  const tmpl = t;
  const render = (msgs: readonly Message[]): string => {
    try {
      if (isHfChatTemplate(tmpl)) return renderHfChat(tmpl, msgs, true);
      if (isChatTemplate(tmpl)) return renderChat(tmpl.format, msgs, { system: tmpl.system, generationPrompt: true });
      if (msgs.length !== 1) throw new FormatError("a prompt template holds one exchange; this conversation has more turns");
      return renderPromptTemplate(tmpl, { instruction: msgs[0]!.content, input: "", prompt: msgs[0]!.content }, true);
    } catch (e) {
      if (e instanceof FormatError || e instanceof HfTemplateError) throw new UserError(`stage \`${ctx.stage.id}\`: template ${source}: ${e.message}`);
      throw e;
    }
  };
  const what = isHfChatTemplate(tmpl) ? `hf chat template from ${tmpl.source}` : isChatTemplate(tmpl) ? `chat format ${tmpl.format}` : "prompt template";
  return { describe: `${source} (${what})`, wrap: (turns) => ({ prompt: render(turns) }) };
}

/** The task's parameters with datasets and models named by their stage ids. */
function shownParams(ctx: StageContext, index: number, task: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(task)) {
    if (k === "fn") continue;
    const ref = v !== null && typeof v === "object" && typeof (v as { $ref?: unknown }).$ref === "string" ? ctx.inputs.get(`param:tasks[${index}].${k}`) : undefined;
    out[k] = ref ? { stage: ref.stage } : v;
  }
  return out;
}

/** Sends requests to the model in batches, reporting progress under the task's name. */
class Batcher {
  constructor(
    private readonly ctx: StageContext,
    private readonly model: EvalModel,
    private readonly size: number,
  ) {}

  async run<Q, A>(what: string, reqs: readonly Q[], ask: (batch: readonly Q[]) => Promise<A[]>): Promise<A[]> {
    const out: A[] = [];
    this.ctx.progress(0, reqs.length, undefined, what);
    for (let i = 0; i < reqs.length; i += this.size) {
      checkAbort(this.ctx);
      const batch = reqs.slice(i, i + this.size);
      const answers = await ask(batch);
      if (answers.length !== batch.length) throw new Error(`${this.model.describe} answered ${answers.length} of ${batch.length} requests`);
      out.push(...answers);
      this.ctx.progress(out.length, reqs.length, undefined, what);
    }
    return out;
  }
}

function taskEnv(ctx: StageContext, index: number, name: string, task: Readonly<Record<string, unknown>>, model: EvalModel, wrapper: PromptWrapper, batcher: Batcher, judges: ModelSession[]): TaskEnv {
  const maxTokens = Number(ctx.params["max_tokens"] ?? 1024);
  const seed = typeof ctx.params["seed"] === "number" ? ctx.params["seed"] : undefined;
  const input = (param: string) => ctx.inputs.get(`param:tasks[${index}].${param}`);
  const where = `stage \`${ctx.stage.id}\`, task \`${name}\``;
  return {
    params: task,
    name,
    maxTokens,
    signal: ctx.signal,
    has: (param) => input(param) !== undefined,
    async rows(param) {
      const a = input(param);
      if (!a) throw new UserError(`${where}: \`${param}\` is not given`, `give the task its ${param} dataset: \`${String(task["fn"])}(..., ${param}: some_dataset)\``);
      const rows: RecordValue[] = [];
      for await (const r of a.read()) rows.push(r);
      return rows;
    },
    rowError(param, i, message, hint) {
      return new UserError(`${where}: record ${i + 1} of ${param} (\`${input(param)?.stage ?? param}\`): ${message}`, hint);
    },
    async loglikelihood(reqs: readonly LoglikRequest[]) {
      if (!model.loglik) {
        throw new UserError(`${where}: ${model.describe} cannot give log-probabilities, and \`${String(task["fn"])}\` scores by log-likelihood`, "evaluate this task on a model that gives them: a trained model, an onnx_model, or a completions endpoint with `echo` and `logprobs`");
      }
      return batcher.run(name, reqs, (b) => model.loglikelihood(b, { signal: ctx.signal }));
    },
    async generate(reqs) {
      const full = reqs.map((r) => ({ ...wrapper.wrap(r.turns), stop: r.stop, max_tokens: r.max_tokens ?? maxTokens, temperature: 0, ...(seed !== undefined ? { seed } : {}) }) as GenRequest);
      const answers = await batcher.run(name, full, (b) => model.generate(b, { signal: ctx.signal }));
      return answers.map((result, i) => ({ prompt: full[i]!.prompt ?? full[i]!.messages, result }));
    },
    async judge(param) {
      if (!input(param)) throw new UserError(`${where}: no \`${param}\` model`);
      const s = await openModelSession(ctx, `tasks[${index}].${param}`);
      judges.push(s);
      return s;
    },
  };
}

/** Contamination of every task's items against the training data inputs (none: says why). */
async function contamination(ctx: StageContext, outcomes: readonly TaskOutcome[]): Promise<Contamination[]> {
  const train = [...ctx.inputs].filter(([role]) => role.startsWith(TRAIN_DATA_ROLE)).map(([, a]) => a);
  if (train.length === 0) return outcomes.map(() => ({ unavailable: "the training data of the model is not in this recipe" }));
  const n = Number(ctx.params["contamination_ngram"] ?? 13);
  const index = new ContaminationIndex(
    outcomes.map((o) => o.itemTexts),
    n,
  );
  let seen = 0;
  for (const a of train) {
    for await (const r of a.read()) {
      index.add(r);
      if (++seen % 4096 === 0) {
        checkAbort(ctx);
        ctx.progress(seen, undefined, undefined, "contamination");
      }
    }
  }
  const counts = index.counts();
  return outcomes.map((o, i) => ({ ngram: n, items: o.itemTexts.length, contaminated: counts[i]!, training_data: train.map((a) => a.stage) }));
}

/** Runs every task and writes the Report. */
export async function runEvaluation(ctx: StageContext, out: OutputSink, model: EvalModel, runners: Readonly<Record<string, TaskRunner>>): Promise<Report> {
  const tasks = ctx.params["tasks"] as Record<string, unknown>[];
  const wrapper = await promptWrapper(ctx, model);
  const batcher = new Batcher(ctx, model, Number(ctx.params["batch_size"] ?? 8));
  const judges: ModelSession[] = [];
  const outcomes: TaskOutcome[] = [];
  const names: string[] = [];
  try {
    for (const [i, task] of tasks.entries()) {
      const fn = String(task["fn"]);
      const name = typeof task["name"] === "string" ? task["name"] : fn;
      const run = runners[fn];
      if (!run) throw new Error(`no implementation of the evaluation task ${fn}`);
      outcomes.push(await run(taskEnv(ctx, i, name, task, model, wrapper, batcher, judges)));
      names.push(name);
    }
  } finally {
    for (const j of judges) await j.finish();
  }
  const contam = await contamination(ctx, outcomes);
  const reports: TaskReport[] = outcomes.map((o, i) => ({
    name: names[i]!,
    task: String(tasks[i]!["fn"]),
    params: shownParams(ctx, i, tasks[i]!),
    primary: o.primary,
    metrics: o.metrics,
    items: o.itemTexts.length,
    limited: o.limited,
    contamination: contam[i]!,
    ...(o.notes ? { notes: o.notes } : {}),
  }));
  const report: Report = {
    format: REPORT_FORMAT,
    model: ctx.inputs.get("model")?.stage ?? "?",
    template: wrapper.describe,
    tasks: reports,
    examples: Object.fromEntries(outcomes.map((o, i) => [names[i]!, o.examples])),
  };
  for (const t of reports) {
    ctx.count(`${t.name}: items`, t.items);
    if ("contaminated" in t.contamination) ctx.count(`${t.name}: contaminated items`, t.contamination.contaminated);
  }
  ctx.summary({ tasks: Object.fromEntries(reports.map((t) => [t.name, { [t.primary]: t.metrics[t.primary]?.value ?? null }])) });
  await out.writeValue(report);
  return report;
}

/** A model whose answers go through the request cache says how many came from it and how many were sent. */
type Counted = EvalModel & { counts?(): { readonly cached: number; readonly sent: number } };

/** The `evaluate` implementation, given how to open the model under evaluation and the tasks' implementations. */
export function evaluateImpl(openModel: (ctx: StageContext) => Promise<Counted>, runners: Readonly<Record<string, TaskRunner>>): StageImpl {
  return asyncImpl(async (ctx, out) => {
    const model = await openModel(ctx);
    try {
      await runEvaluation(ctx, out, model, runners);
    } finally {
      const c = model.counts?.();
      if (c) {
        if (c.cached > 0) ctx.count("requests: cached", c.cached);
        if (c.sent > 0) ctx.count("requests: sent", c.sent);
      }
      await model.close();
    }
  });
}
