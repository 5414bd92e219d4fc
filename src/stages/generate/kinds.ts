import { z } from "zod";
import { field, ref } from "../schema.js";
import { dataInput, doc, posInt, promptText, regexSource, sampling, seed, SELF_INSTRUCT_STOP, unit, lazyEntries } from "../common.js";
import type { StageKind } from "../registry.js";

/**
 * Generation with LLMs: data made or rewritten by a model (`model = teacher`, a stage whose output is Model). Every
 * request is cached as it completes, so an interrupted stage resumes by sending only the missing requests.
 *
 * Prompt texts: the methods' own prompts are long prose of other projects and are not shipped; each stage has a
 * prompt of this project's own, and a `prompt` parameter to supply another (a string with {field} placeholders).
 */
const model = (d = "The model that generates.") => doc(ref("Model"), d);
const prompt = (d: string) => promptText().optional().describe(d);

const EVOL_OPERATIONS = ["add_constraints", "deepen", "concretize", "increase_reasoning", "complicate_input", "breadth"] as const;

export function generateStages(): StageKind[] {
  return lazyEntries<StageKind>([
    {
      name: "generate",
      category: "generate",
      doc: "Generic generation: for each input record (or, with no input, until target records exist) the prompt is filled from the record's fields, sent n times, and each answer parsed into records: text (the whole answer into output_field), numbered_list (one record per item), json (an object, or an array of objects, merged into the record), regex (one record per match; named groups become fields).",
      inputs: [{ name: "data", type: "Dataset<T>", doc: "Records that fill the prompt's placeholders.", optional: true }],
      output: "Dataset<Json>",
      params: () => z
        .object({
          model: model(),
          prompt: promptText().describe("Prompt with {field} placeholders naming fields of the input records."),
          system: z.string().optional().describe("System message; default none."),
          parser: z.enum(["text", "numbered_list", "json", "regex"]).default("text").describe("How an answer becomes records."),
          pattern: regexSource().optional().describe("Regular expression with named groups; required by parser regex."),
          output_field: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default("output").describe("Field that receives the answer (parsers text and numbered_list)."),
          n: posInt().default(1).describe("Completions requested per prompt."),
          target: posInt().optional().describe("Stop once this many records are produced; required when there is no input."),
          ...sampling({ temperature: 0.7, top_p: 1.0, max_tokens: 1024 }, "our choice"),
          seed: seed(),
        })
        .refine((p) => p.parser !== "regex" || p.pattern !== undefined, { message: "parser regex needs a pattern", path: ["pattern"] }),
      version: "1",
    },
    {
      name: "self_instruct",
      category: "generate",
      doc: "Self-Instruct bootstrapping (Wang et al.): each prompt shows human_per_prompt seed instructions and machine_per_prompt generated ones, shuffled, and asks for more; new instructions pass the Self-Instruct filters (length 4-150 words, blocklist, no \"Write a program\", no punctuation or non-ASCII start, ROUGE-L F1 <= rouge_max against the pool) and join the pool; then instances are generated, output-first for classification tasks (found by a few-shot probe at temperature 0) and input-first for the others, and cleaned (input == output, empty output, input or output ending with \":\", conflicting outputs, duplicates; at most max_instances_per_task).",
      inputs: [dataInput("Dataset<Instruction>", "Seed tasks (Self-Instruct: 175).", "seeds")],
      output: "Dataset<Instruction>",
      params: () => z.object({
        model: model(),
        target: posInt().default(52_000).describe("Instructions to generate (default 52,000: Self-Instruct)."),
        human_per_prompt: posInt().default(6).describe("Seed instructions per prompt (default 6: Self-Instruct)."),
        machine_per_prompt: z.number().int().min(0).default(2).describe("Generated instructions per prompt (default 2: Self-Instruct)."),
        ...sampling(
          { temperature: 0.7, top_p: 0.5, max_tokens: 1024, presence_penalty: 2, stop: [...SELF_INSTRUCT_STOP] },
          "Self-Instruct",
        ),
        rouge_max: unit().default(0.7).describe("Highest ROUGE-L F1 of a new instruction against the pool (default 0.7: Self-Instruct)."),
        max_instances_per_task: posInt().default(5).describe("Most instances kept per task (default 5: Self-Instruct)."),
        classify: z.boolean().default(true).describe("Probe whether each task is classification and generate its instances output-first."),
        prompt: prompt("Instruction-generation prompt; default this project's own. Placeholder {examples} receives the numbered example instructions."),
        seed: seed(),
      }),
      version: "1",
    },
    {
      name: "generate_alpaca",
      category: "generate",
      doc: "Stanford Alpaca's generation: each call shows seeds_per_prompt seed tasks and asks for per_call new instructions with their input and output; kept instructions pass the Self-Instruct filters with Alpaca's larger blocklist and ROUGE-L F1 <= rouge_max; one instance per instruction.",
      inputs: [dataInput("Dataset<Instruction>", "Seed tasks (Alpaca: Self-Instruct's 175).", "seeds")],
      output: "Dataset<Instruction>",
      params: () => z.object({
        model: model(),
        target: posInt().default(52_000).describe("Instructions to generate (default 52,000: Alpaca)."),
        per_call: posInt().default(20).describe("Instructions asked for per call (default 20: Alpaca)."),
        seeds_per_prompt: posInt().default(3).describe("Seed examples shown per prompt (default 3: Alpaca)."),
        ...sampling({ temperature: 1.0, top_p: 1.0, max_tokens: 3072 }, "Alpaca"),
        rouge_max: unit().default(0.7).describe("Highest ROUGE-L F1 of a new instruction against the pool (default 0.7: Alpaca)."),
        prompt: prompt("Generation prompt; default this project's own. Placeholders: {examples} (the seed tasks, numbered) and {count} (per_call)."),
        seed: seed(),
      }),
      version: "1",
    },
    {
      name: "evol_instruct",
      category: "generate",
      doc: "Evol-Instruct (WizardLM): for `rounds` rounds each instruction is rewritten by a randomly chosen operation (in depth: add constraints, deepen, concretize, increase reasoning steps, complicate input, each adding at most max_added_words words; in breadth: a new, rarer prompt of the same domain), answered, and failed evolutions eliminated (no information gain as judged by the model; a \"sorry\" answer under 80 words; an answer of only punctuation and stop words; an instruction copying \"given prompt\"/\"rewritten prompt\"); failed instructions go back to the pool. The output holds every successful evolution of every round.",
      inputs: [dataInput("Dataset<Instruction>", "Instructions to evolve (WizardLM: Alpaca's 52K).")],
      output: "Dataset<Instruction>",
      params: () => z.object({
        model: model(),
        rounds: posInt().max(16).default(4).describe("Evolution rounds (default 4: WizardLM)."),
        operations: z.array(z.enum(EVOL_OPERATIONS)).min(1).default([...EVOL_OPERATIONS]).describe("Operations drawn from, uniformly."),
        max_added_words: posInt().default(20).describe("Words an in-depth rewrite may add (WizardLM: 10 to 20)."),
        answer: z.boolean().default(true).describe("Generate a response for every evolved instruction (needed for elimination rules 2 and 3)."),
        eliminate: z.boolean().default(true).describe("Apply the elimination rules."),
        judge: ref("Model").optional().describe("Model that judges information gain; default the generating model."),
        ...sampling({ temperature: 0.7, top_p: 1.0, max_tokens: 2048 }, "our choice"),
        prompts: z.string().min(1).optional().describe("Path of a JSON file of operation prompts ({operation: text}); default this project's own."),
        seed: seed(),
      }),
      version: "1",
    },
    {
      name: "distill",
      category: "generate",
      doc: "Answers each instruction with a teacher model: the output is replaced by the teacher's response (the user turn is the instruction, followed by a blank line and the input when present).",
      inputs: [dataInput("Dataset<Instruction>", "Instructions to answer.")],
      output: "Dataset<Instruction>",
      params: () => z.object({
        model: model("The teacher model."),
        system: z.string().optional().describe("System message; default none."),
        ...sampling({ temperature: 0.7, top_p: 1.0, max_tokens: 2048 }, "our choice"),
        seed: seed(),
      }),
      version: "1",
    },
    {
      name: "spin_pairs",
      category: "generate",
      doc: "SPIN's self-play data (Chen et al., \"Self-Play Fine-Tuning Converts Weak Language Models to Strong Language Models\"): the model answers each SFT instruction, and the record becomes a preference whose chosen answer is the SFT output and whose rejected answer is the model's own; train it with `dpo` (SPIN's logistic loss is DPO's sigmoid loss, beta = lambda) with the answering model as base and reference. An empty answer, or one equal to the SFT output (no signal), is dropped and counted.",
      inputs: [dataInput("Dataset<Instruction>", "SFT instructions with their reference outputs.")],
      output: "Dataset<Preference>",
      params: () => z.object({
        model: model("The model of the previous iteration, which answers."),
        system: z.string().optional().describe("System message; default none."),
        ...sampling({ temperature: 0, top_p: 1.0, max_tokens: 256 }, "greedy, as SPIN's generation"),
        seed: seed(),
      }),
      version: "1",
    },
    {
      name: "self_chat",
      category: "generate",
      doc: "Multi-turn conversations by self-chat: starting from each instruction as the first user turn, the model answers and a user simulator (user_model) asks the follow-up, for `turns` exchanges.",
      inputs: [dataInput("Dataset<Instruction>", "Seed instructions (topics or first questions).")],
      output: "Dataset<Chat>",
      params: () => z.object({
        model: model("The assistant model."),
        user_model: ref("Model").optional().describe("Model that plays the user; default the assistant model."),
        turns: posInt().max(32).default(3).describe("User/assistant exchanges per chat (default 3: our choice)."),
        system: z.string().optional().describe("System message of the assistant; default none."),
        user_prompt: prompt("The user simulator's prompt; default this project's own. Placeholder {transcript} receives the conversation so far; an answer of [END] ends the chat."),
        ...sampling({ temperature: 0.7, top_p: 1.0, max_tokens: 1024 }, "our choice"),
        seed: seed(),
      }),
      version: "1",
    },
    {
      name: "backtranslate",
      category: "generate",
      doc: "Instruction back-translation (Humpback, Li et al.): a backward model (response -> instruction) writes, for each unlabelled text segment, the instruction it answers; the segment becomes the output. Self-curation is a separate quality_filter stage.",
      inputs: [dataInput("Dataset<Text>", "Unlabelled text segments (web documents).")],
      output: "Dataset<Instruction>",
      params: () => z.object({
        model: model("The backward model (trained on seed (output -> instruction) pairs)."),
        prompt: prompt("Prompt for the backward model with a {text} placeholder; default this project's own."),
        ...sampling({ temperature: 0.7, top_p: 1.0, max_tokens: 256 }, "our choice"),
        seed: seed(),
      }),
      version: "1",
    },
    {
      name: "judge",
      category: "generate",
      doc: "LLM-as-judge annotation. pointwise: the model rates each record on a 1..scale rubric; the score (the last \"Score: N\" or \"[[N]]\" of the answer) is written to score_field and the judge's answer to rationale_field. pairwise: the model compares the two candidate fields of each record in both orders, to cancel position bias; the preference (1 = first, 2 = second, 1.5 = tie; a verdict that flips with the order is a tie) is written to score_field and both answers to rationale_field. A record whose verdict cannot be read is dropped and listed. With min_score, records scoring lower are dropped.",
      inputs: [dataInput("Dataset<T>", "Records to judge (instructions with outputs, or chats).")],
      output: "Dataset<T>",
      params: () => z
        .object({
          model: model("The judge model."),
          mode: z.enum(["pointwise", "pairwise"]).default("pointwise").describe("Rate each record, or compare two responses."),
          rubric: prompt("Judging prompt with {field} placeholders; default this project's own (helpfulness and correctness). Besides the record's fields it fills {request} and {response} (pairwise: {response_a}, {response_b}) from instruction/input/output, a chat's messages or the candidates, and {scale}."),
          scale: z.number().int().min(2).max(100).default(5).describe("Top of the rating scale (pointwise), e.g. 5 or 10."),
          candidates: z.array(field()).length(2).optional().describe("The two response fields compared (pairwise)."),
          score_field: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default("score").describe("Field that receives the score or preference."),
          rationale_field: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default("rationale").describe("Field that receives the judge's answer (pairwise: the two answers, candidates in order then swapped)."),
          min_score: z.number().optional().describe("Drop records scoring below this; default keep all."),
          ...sampling({ temperature: 0, top_p: 1.0, max_tokens: 512 }, "greedy judging"),
          seed: seed(),
        })
        .refine((p) => p.mode !== "pairwise" || p.candidates !== undefined, { message: "pairwise judging needs candidates", path: ["candidates"] }),
      addsFields: (p) => ({ [String(p["score_field"] ?? "score")]: "float", [String(p["rationale_field"] ?? "rationale")]: p["mode"] === "pairwise" ? "list<string>" : "string" }),
      version: "1",
    },
    {
      name: "quality_filter",
      category: "filter",
      doc: "Self-curation (Humpback): the model rates each example on a 1..scale quality scale and examples scoring below min_score are dropped.",
      inputs: [dataInput("Dataset<T>", "Examples to curate (instructions with outputs, or chats).")],
      output: "Dataset<T>",
      params: () => z
        .object({
          model: model("The rating model."),
          min_score: z.number().int().min(1).default(5).describe("Lowest score kept (default 5: Humpback keeps scores >= k, k = 5 unverified)."),
          scale: z.number().int().min(2).max(100).default(5).describe("Top of the rating scale (default 5: Humpback's 5-point scale)."),
          rubric: prompt("Rating prompt with {field} placeholders; default this project's own. Besides the record's fields it fills {request} and {response} (from instruction/input/output or a chat's messages) and {scale}."),
          ...sampling({ temperature: 0, top_p: 1.0, max_tokens: 256 }, "greedy rating"),
          seed: seed(),
        })
        .refine((p) => p.min_score <= p.scale, { message: "min_score is above the scale", path: ["min_score"] }),
      version: "1",
    },
  ]);
}
