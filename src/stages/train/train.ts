import { Effect } from "effect";
import { existsSync } from "node:fs";
import { readFile, rmdir, writeFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import type { Json } from "../../core/ir.js";
import { processExecutor } from "../../executors/index.js";
import type { ProcessHandle } from "../../executors/process.js";
import { trainerPython } from "../../executors/python.js";
import { runProcess, type ProgramEvent } from "../../executors/run-process.js";
import type { InputArtifact, StageContext, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import { isHfChatTemplate } from "../support/hf-chat-template.js";
import { trainerRoot } from "../support/trainer-package.js";
import { prepareTokens, trainTemplate } from "./prepare-tokens.js";
import { jobRecord } from "./job-record.js";
import { LossCurve } from "./loss-curve.js";
import { executorOf, jobResources } from "./plan.js";

/**
 * The training stages (sft, lora, qlora, dpo): the data turned into a token artifact (cached on its own), a config
 * for the Python trainer (src/trainer/README.md), the job run by the stage's executor with its checkpoints in the
 * stage's work folder (so a killed or interrupted job resumes on the next run or retry), and the trained model, a
 * Hugging Face directory, published as the stage's folder artifact.
 */
type Method = "sft" | "lora" | "qlora" | "dpo";

/** The base model's folder: a local directory, an hf_model naming one, or an earlier training stage's output. */
async function baseDirOf(ctx: StageContext, value: Json | undefined, role: string, what: string): Promise<string> {
  const fromInput = ctx.inputs.get(role);
  if (fromInput) return modelFolder(ctx, fromInput, what);
  if (typeof value === "string") return localModel(ctx, value, what);
  throw new UserError(`${ctx.stage.id}: no ${what}`);
}

async function modelFolder(ctx: StageContext, a: InputArtifact, what: string): Promise<string> {
  if (a.tree) return a.path;
  const handle = (await a.json()) as { kind?: string; params?: Record<string, Json> };
  if (handle.kind === "hf_model" && typeof handle.params?.["repo"] === "string") return localModel(ctx, handle.params["repo"], what);
  throw new UserError(`${ctx.stage.id}: the ${what} \`${a.stage}\` (${handle.kind ?? "?"}) is not a model folder`, "give a local Hugging Face model directory, an hf_model naming one, or an earlier training stage");
}

function localModel(ctx: StageContext, name: string, what: string): string {
  const dir = isAbsolute(name) ? name : resolve(ctx.baseDir, name);
  if (existsSync(join(dir, "config.json"))) return dir;
  throw new UserError(
    `${ctx.stage.id}: the ${what} \`${name}\` is not a local model directory (no ${join(dir, "config.json")})`,
    "itp does not download model weights: download it first (e.g. `huggingface-cli download NAME --local-dir models/NAME`) and give that folder; paths are relative to the recipe",
  );
}

/** The tokenizer files of a model folder that go into the output as they are. */
function tokenizerFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of ["tokenizer.json", "tokenizer.model", "special_tokens_map.json", "vocab.json", "merges.txt"]) if (existsSync(join(dir, f))) out[f] = join(dir, f);
  // tokenizer_config.json is written by the trainer with the chat template used; the base's is its starting point.
  if (existsSync(join(dir, "tokenizer_config.json"))) out["tokenizer_config.json"] = join(dir, "tokenizer_config.json");
  return out;
}

const num = (v: Json | undefined, d: number) => (typeof v === "number" ? v : d);

function trainImpl(method: Method): StageImpl {
  return {
    // A job sent to a cluster takes none of this machine's GPUs.
    resources: (p) => ({ cpu: 1, gpu: executorOf(p) === "local" ? num(p["gpus"], 1) : 0 }),
    run: (ctx, out) =>
      Effect.gen(function* () {
        const p = ctx.params;
        const tryP = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (e) => (e instanceof Error ? e : new Error(String(e))) });
        const executor = processExecutor(executorOf(p));
        // A cluster's Python lives on its compute nodes: the job finds out. A local one is checked (starting it and
        // importing torch: seconds) while the data is tokenized.
        const pythonChecked = executor.python !== undefined ? Promise.resolve(executor.python) : trainerPython().then((t) => t.python);
        pythonChecked.catch(() => undefined);
        const base = yield* tryP(() => baseDirOf(ctx, p["base"], "param:base", "base model"));
        const data = ctx.inputs.get("data");
        if (!data) return yield* Effect.fail(new Error(`${ctx.stage.id}: no data input`));
        const tmplInput = ctx.inputs.get("param:template");
        const template = yield* tryP(async () => trainTemplate(tmplInput ? await tmplInput.json() : undefined, base, ctx.stage.id));
        const maxLength = num(p["max_length"], 2048);
        ctx.progress(0, undefined, undefined, "tokenizing");
        const tokens = yield* tryP(() =>
          prepareTokens({
            store: ctx.store(),
            data: { stage: data.stage, digest: data.digest, records: data.records, read: () => data.read() },
            kind: method === "dpo" ? "preference" : "sft",
            template,
            tokenizer: base,
            maxLength,
            packing: p["packing"] === true,
            lossOn: p["loss_on"] === "all" ? "all" : "assistant",
            stage: ctx.stage.id,
            signal: ctx.signal,
            progress: (d, t) => ctx.progress(d, t, undefined, "tokenizing"),
          }),
        );
        ctx.log("tokens", { key: tokens.key, digest: tokens.digest, reused: tokens.reused, ...tokens.stats });
        for (const [k, v] of Object.entries(tokens.stats)) if (typeof v === "number") ctx.count(`tokens: ${k}`, v);
        const python = yield* tryP(() => pythonChecked);
        const work = yield* tryP(() => ctx.workDir());
        const reference = method === "dpo" && ctx.inputs.has("param:reference") ? yield* tryP(() => baseDirOf(ctx, p["reference"], "param:reference", "reference model")) : null;
        // The trainer writes `<output>.partial`, then renames it: the folder is created by the rename.
        const output = yield* tryP(async () => {
          const t = await out.treeDir();
          await rmdir(t);
          return t;
        });
        const gpus = num(p["gpus"], 1);
        const config = {
          method,
          base,
          data: tokens.path,
          output_dir: output,
          checkpoint_dir: join(work, "checkpoints"),
          checkpoint_every: typeof p["checkpoint_every"] === "number" ? p["checkpoint_every"] : null,
          epochs: num(p["epochs"], 3),
          lr: num(p["lr"], 2e-5),
          batch_size: num(p["batch_size"], 128),
          micro_batch_size: num(p["micro_batch_size"], 1),
          ...(typeof p["grad_accum"] === "number" ? { grad_accum: p["grad_accum"] } : {}),
          warmup_ratio: num(p["warmup_ratio"], 0.03),
          weight_decay: num(p["weight_decay"], 0),
          schedule: p["schedule"] ?? "linear",
          optimizer: p["optimizer"] ?? "adamw",
          adam_betas: p["adam_betas"] ?? [0.9, 0.999],
          max_grad_norm: num(p["max_grad_norm"], 1),
          // bf16 on a CPU without fast bf16 kernels is slow but exact to the trainer's rules; fp16 is CUDA only.
          precision: p["precision"] ?? "bf16",
          gradient_checkpointing: p["gradient_checkpointing"] !== false,
          seed: num(p["seed"], 42),
          lora: method === "lora" || method === "qlora" ? { r: num(p["r"], 16), alpha: num(p["alpha"], 32), dropout: num(p["dropout"], 0.05), target_modules: p["target_modules"] ?? ["q_proj", "k_proj", "v_proj", "o_proj"], merge: p["merge"] !== false } : null,
          quant: method === "qlora" ? { bits: num(p["bits"], 4) } : null,
          dpo: method === "dpo" ? { beta: num(p["beta"], 0.1), loss: "sigmoid", reference, reference_logps: join(work, "reference-logps.pt") } : null,
          tokenizer_files: tokenizerFiles(base),
          chat_template: isHfChatTemplate(template) ? template.jinja : null,
          // Any other template (a built-in chat format, a prompt template) is recorded as it is, in itp_template.json.
          template: isHfChatTemplate(template) ? null : template,
          export_onnx: p["export_onnx"] === true,
          device: gpus > 0 ? "cuda" : "cpu",
          ...(typeof p["max_steps"] === "number" ? { max_steps: p["max_steps"] } : {}),
        };
        const configFile = join(work, "config.json");
        yield* tryP(() => writeFile(configFile, JSON.stringify(config, null, 1) + "\n"));
        const record = jobRecord(work);
        // A job an earlier itp left running (it was killed) must not write the same checkpoints: it is stopped first.
        yield* tryP(() => record.takeOver(executor, ctx.stage.id));
        const curve = new LossCurve();
        let job: ProcessHandle | undefined;
        let steps: number | undefined;
        const onEvent = (e: ProgramEvent) => {
          ctx.log(`train_${String(e["event"])}`, e as Record<string, unknown>);
          if (e["event"] === "start") {
            steps = typeof e["steps"] === "number" ? e["steps"] : undefined;
            curve.start(e);
            ctx.progress(typeof e["resumed_from"] === "number" ? e["resumed_from"] : 0, steps, undefined, e["resumed_from"] ? `resumed at step ${e["resumed_from"]}` : "starting");
          } else if (e["event"] === "step") {
            curve.step(e);
            ctx.progress(Number(e["step"]), steps, undefined, curve.status());
          } else if (e["event"] === "dpo") curve.dpo(e);
          else if (e["event"] === "done") curve.done(e);
        };
        yield* runProcess(
          executor,
          {
            stage: ctx.stage.id,
            python,
            module: "itp_trainer",
            args: ["train", "--config", configFile],
            pythonPath: [trainerRoot()],
            env: {},
            cwd: work,
            resources: jobResources(p),
            logFile: join(work, "train.log"),
            ...(typeof p["partition"] === "string" ? { partition: p["partition"] } : {}),
          },
          {
            onEvent,
            onSubmitted: (h: ProcessHandle) => {
              job = h;
              record.write(executor.name, h);
              ctx.log("train_submitted", { executor: executor.name, job: h.describe, log: h.logFile });
            },
          },
        ).pipe(Effect.ensuring(Effect.promise(() => record.clear())));
        if (!existsSync(join(output, "config.json"))) return yield* Effect.fail(new Error(`${ctx.stage.id}: the trainer ended without writing ${output}`));
        // The summary covers every attempt of the job (a resumed one continues an earlier one's curve).
        const log = yield* tryP(() => readFile(join(work, "train.log"), "utf8"));
        const s = LossCurve.fromLog(log).summary();
        ctx.summary({ ...s, tokens_artifact: tokens.key, method, executor: executor.name, ...(job ? { job: job.describe } : {}) });
        ctx.count("steps", Number(s["steps"] ?? 0));
      }),
  };
}

export const trainImpls: Record<string, StageImpl> = {
  sft: trainImpl("sft"),
  lora: trainImpl("lora"),
  qlora: trainImpl("qlora"),
  dpo: trainImpl("dpo"),
};
