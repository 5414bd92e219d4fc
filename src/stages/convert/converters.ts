import type { OutputSink, StageContext, StageImpl } from "../../core/stage.js";
import { UserError } from "../../core/errors.js";
import type { RecordValue } from "../../core/records.js";
import { asTemplate, FormatError, instructionMessages, isChatTemplate, renderInstruction, renderPromptTemplate, type Message, type Template } from "../support/chat-formats.js";
import { asyncImpl, checkAbort, dataInput, mapRecords } from "../support/records.js";
import { pyStrip } from "../support/text.js";

/**
 * Converters: native record shapes onto the built-in types. A record without a required field is an error naming
 * the stage and the record (1-based, in the input's order); records a converter is documented to drop are counted.
 */

export function where(ctx: StageContext, i: number): string {
  return `${ctx.stage.id}: record ${i + 1}`;
}

/** A required string field. */
export function str(ctx: StageContext, r: RecordValue, field: string, i: number): string {
  const v = r[field];
  if (typeof v !== "string") throw new UserError(`${where(ctx, i)}: ${v === undefined ? `has no field \`${field}\`` : `field \`${field}\` is not a string`}`, `expected a ${ctx.stage.kind.split("_to_")[0]} record`);
  return v;
}

/** An optional string field (missing or null is undefined). */
export function optStr(ctx: StageContext, r: RecordValue, field: string, i: number): string | undefined {
  const v = r[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new UserError(`${where(ctx, i)}: field \`${field}\` is not a string`);
  return v;
}

/** A chat record: messages, then the id and source when there are. */
export function chatRecord(messages: Message[], id: unknown, source: string | undefined): RecordValue {
  const out: RecordValue = { messages };
  if (typeof id === "string" || typeof id === "number") out["id"] = String(id);
  if (source !== undefined) out["source"] = source;
  return out;
}

function instruction(instruction: string, input: string | undefined, output: string): RecordValue {
  return input !== undefined && input !== "" ? { instruction, input, output } : { instruction, output };
}

const param = <T>(ctx: StageContext, name: string, dflt: T): T => (ctx.params[name] === undefined ? dflt : (ctx.params[name] as T));

/** Count each reason once per stage (names stable for `itp show`). */
function counter(ctx: StageContext) {
  const counts = new Map<string, number>();
  return {
    add: (name: string) => counts.set(name, (counts.get(name) ?? 0) + 1),
    flush: () => {
      for (const [k, n] of [...counts].sort(([a], [b]) => (a < b ? -1 : 1))) ctx.count(k, n);
    },
  };
}

/** The template of a stage's `template` parameter, or undefined when it has none. */
export async function templateParam(ctx: StageContext): Promise<Template | undefined> {
  const a = ctx.inputs.get("param:template");
  if (!a) return undefined;
  try {
    return asTemplate(await a.json());
  } catch (e) {
    if (e instanceof FormatError) throw new UserError(`${ctx.stage.id}: ${e.message}`);
    throw e;
  }
}

/** open-instruct's senders: human/user and gpt/chatgpt; a system or bing turn drops the whole conversation. */
export const OPEN_INSTRUCT_ROLES: Readonly<Record<string, string>> = { human: "user", user: "user", gpt: "assistant", chatgpt: "assistant", system: "drop", bing: "drop" };

const sharegpt = asyncImpl(async (ctx, out) => {
  const roles = param<Record<string, string>>(ctx, "roles", OPEN_INSTRUCT_ROLES);
  const strict = param<string>(ctx, "rules", "open_instruct") === "strict";
  const dropInvalid = param(ctx, "drop_invalid", false);
  const source = ctx.params["source"] as string | undefined;
  const c = counter(ctx);
  let kept = 0;
  await mapRecords(ctx, out, (r, i) => {
    const res = strict ? sharegptMessages(r["conversations"], roles) : openInstructMessages(r["conversations"], roles);
    if ("problem" in res) {
      if ("dropped" in res) {
        ctx.drop(r, res.reason, res.problem);
        return undefined;
      }
      if (!dropInvalid) throw new UserError(`${where(ctx, i)}: ${res.problem}`, "set drop_invalid = true to drop such conversations (they are kept with the dropped records), or map the speaker in `roles`");
      ctx.drop(r, res.reason, res.problem);
      return undefined;
    }
    if (res.leadingAssistant > 0) c.add("turns dropped: leading assistant turn");
    kept++;
    return chatRecord(res.messages, r["id"], source);
  });
  c.flush();
  ctx.count("kept", kept);
});

type ShareGptResult = { messages: Message[]; leadingAssistant: number } | { problem: string; reason: string; dropped?: true };

/** A turn's sender and text, or what is wrong with it. */
function turnOf(turn: unknown, t: number): { from: string; value: string } | { problem: string; reason: string } {
  const x = turn as { from?: unknown; value?: unknown } | null;
  if (x === null || typeof x !== "object" || typeof x.from !== "string" || typeof x.value !== "string") return { problem: `turn ${t + 1} is not a {from, value} pair of strings`, reason: "malformed turn" };
  return { from: x.from, value: x.value };
}

/**
 * ShareGPT turns to messages as open-instruct's convert_sharegpt_data does: each turn's sender mapped by `roles`; a
 * sender mapped to "drop" (system, bing) drops the whole conversation; turns need not alternate; a conversation
 * with no turn is dropped. An unmapped sender is invalid (open-instruct stops with an error).
 */
export function openInstructMessages(conv: unknown, roles: Readonly<Record<string, string>>): ShareGptResult {
  if (!Array.isArray(conv)) return { problem: "field `conversations` is not a list", reason: "no conversation" };
  const messages: Message[] = [];
  for (let t = 0; t < conv.length; t++) {
    const turn = turnOf(conv[t], t);
    if ("problem" in turn) return turn;
    const role = Object.prototype.hasOwnProperty.call(roles, turn.from) ? roles[turn.from] : undefined;
    if (role === undefined) return { problem: `turn ${t + 1} is from "${turn.from}", which the roles mapping does not name`, reason: "unknown role" };
    if (role === "drop") return { problem: `turn ${t + 1} is from "${turn.from}"`, reason: `speaker ${turn.from}`, dropped: true };
    messages.push({ role, content: turn.value });
  }
  if (messages.length === 0) return { problem: "the conversation has no turn", reason: "empty conversation", dropped: true };
  return { messages, leadingAssistant: 0 };
}

/**
 * ShareGPT turns to messages by the strict rules (`rules = "strict"`). Leading assistant turns (a conversation that starts with the model's greeting) are
 * dropped; an unknown `from`, a malformed or empty turn, a system turn after the first, two turns of one side in a
 * row, or no user turn at all make the conversation invalid.
 */
export function sharegptMessages(conv: unknown, roles: Readonly<Record<string, string>>): ShareGptResult {
  if (!Array.isArray(conv)) return { problem: "field `conversations` is not a list", reason: "no conversation" };
  const messages: Message[] = [];
  let leadingAssistant = 0;
  for (let t = 0; t < conv.length; t++) {
    const turn = turnOf(conv[t], t);
    if ("problem" in turn) return turn;
    const role = Object.prototype.hasOwnProperty.call(roles, turn.from) ? roles[turn.from] : undefined;
    if (role === undefined) return { problem: `turn ${t + 1} is from "${turn.from}", which the roles mapping does not name`, reason: "unknown role" };
    if (role === "drop") return { problem: `turn ${t + 1} is from "${turn.from}"`, reason: `speaker ${turn.from}`, dropped: true };
    if (pyStrip(turn.value) === "") return { problem: `turn ${t + 1} is empty`, reason: "empty turn", dropped: true };
    if (role === "system") {
      if (messages.length > 0 || leadingAssistant > 0) return { problem: `turn ${t + 1} is a system turn after the first`, reason: "non-alternating turns", dropped: true };
    } else if (role === "assistant" && messages.every((m) => m.role === "system")) {
      leadingAssistant++;
      continue;
    } else {
      const last = messages[messages.length - 1];
      if (last && last.role === role) return { problem: `turns ${t} and ${t + 1} are both ${role} turns`, reason: "non-alternating turns", dropped: true };
    }
    messages.push({ role, content: turn.value });
  }
  if (!messages.some((m) => m.role === "user")) return { problem: "no user turn", reason: "no user turn", dropped: true };
  return { messages, leadingAssistant };
}

interface OasstNode {
  readonly id: string;
  readonly parent: string | undefined;
  readonly role: "user" | "assistant";
  readonly text: string;
  readonly rank: number | null;
  readonly lang: string | undefined;
  readonly order: number;
}

/**
 * OASST message trees to threads. From each root prompt, the `topK` best-ranked replies of every message are
 * followed (lowest rank first; unranked replies after ranked ones, in input order; null: all); every path ends at
 * the deepest assistant reply it reaches (a trailing prompt with no followed reply is left off), one thread per
 * such end. Deleted messages (`deleted: true`) and their subtrees are skipped.
 */
export function oasstThreads(nodes: readonly OasstNode[], topK: number | null, lang?: string): { threads: { id: string; messages: Message[] }[]; noReply: number } {
  const children = new Map<string, OasstNode[]>();
  const roots: OasstNode[] = [];
  for (const n of nodes) {
    if (n.parent === undefined) roots.push(n);
    else {
      let l = children.get(n.parent);
      if (!l) children.set(n.parent, (l = []));
      l.push(n);
    }
  }
  const threads: { id: string; messages: Message[] }[] = [];
  let noReply = 0;
  const path: OasstNode[] = [];
  const walk = (n: OasstNode): boolean => {
    path.push(n);
    let kids = (children.get(n.id) ?? []).slice().sort((a, b) => {
      const ra = a.rank ?? Number.POSITIVE_INFINITY;
      const rb = b.rank ?? Number.POSITIVE_INFINITY;
      return ra !== rb ? ra - rb : a.order - b.order;
    });
    if (topK !== null) kids = kids.slice(0, topK);
    let emitted = false;
    for (const k of kids) if (walk(k)) emitted = true;
    if (!emitted && n.role === "assistant") {
      threads.push({ id: n.id, messages: path.map((p) => ({ role: p.role, content: p.text })) });
      emitted = true;
    }
    path.pop();
    return emitted;
  };
  for (const r of roots) {
    if (r.role !== "user") continue;
    if (lang !== undefined && r.lang !== lang) continue;
    if (!walk(r)) noReply++;
  }
  return { threads, noReply };
}

const oasst = asyncImpl(async (ctx, out) => {
  const topK = ctx.params["top_k_reply"] === undefined ? 1 : (ctx.params["top_k_reply"] as number | null);
  const lang = ctx.params["lang"] as string | undefined;
  const source = ctx.params["source"] as string | undefined;
  const input = dataInput(ctx);
  const nodes: OasstNode[] = [];
  let i = 0;
  let deleted = 0;
  let nonRootOrphans = 0;
  for await (const r of input.read()) {
    if (r["deleted"] === true) {
      deleted++;
      i++;
      continue;
    }
    const role = str(ctx, r, "role", i);
    if (role !== "prompter" && role !== "assistant" && role !== "user") throw new UserError(`${where(ctx, i)}: role "${role}" is neither prompter nor assistant`);
    const parent = optStr(ctx, r, "parent_id", i);
    const rank = r["rank"];
    nodes.push({
      id: str(ctx, r, "message_id", i),
      parent,
      role: role === "assistant" ? "assistant" : "user",
      text: str(ctx, r, "text", i),
      rank: typeof rank === "number" ? rank : null,
      lang: optStr(ctx, r, "lang", i),
      order: i,
    });
    if (++i % 4096 === 0) {
      checkAbort(ctx);
      ctx.progress(i, input.records ?? undefined);
    }
  }
  const ids = new Set(nodes.map((n) => n.id));
  for (const n of nodes) if (n.parent !== undefined && !ids.has(n.parent)) nonRootOrphans++;
  const { threads, noReply } = oasstThreads(nodes, topK, lang);
  for (const t of threads) await out.write(chatRecord(t.messages, t.id, source));
  ctx.progress(i, i);
  ctx.count("kept", threads.length);
  if (deleted) ctx.count("skipped: deleted message", deleted);
  if (noReply) ctx.count("dropped: prompt with no reply", noReply);
  if (nonRootOrphans) ctx.count("skipped: message whose parent is missing", nonRootOrphans);
});

const simple = (f: (ctx: StageContext, r: RecordValue, i: number) => RecordValue | undefined): StageImpl =>
  asyncImpl(async (ctx: StageContext, out: OutputSink) => {
    let kept = 0;
    await mapRecords(ctx, out, (r, i) => {
      const v = f(ctx, r, i);
      if (v) kept++;
      return v;
    });
    ctx.count("kept", kept);
  });

export const converterImpls: Record<string, StageImpl> = {
  dolly_to_instruction: simple((ctx, r, i) => instruction(str(ctx, r, "instruction", i), optStr(ctx, r, "context", i), str(ctx, r, "response", i))),

  seed_task_to_instruction: simple((ctx, r, i) => {
    const first = Array.isArray(r["instances"]) ? (r["instances"][0] as RecordValue | undefined) : undefined;
    if (!first || typeof first !== "object") throw new UserError(`${where(ctx, i)}: the task has no instance`, "a seed task needs at least one instance (input, output)");
    return instruction(str(ctx, r, "instruction", i), optStr(ctx, first, "input", i), str(ctx, first, "output", i));
  }),

  flan_to_instruction: simple((ctx, r, i) => instruction(str(ctx, r, "inputs", i), undefined, str(ctx, r, "targets", i))),

  prompt_completion_to_instruction: simple((ctx, r, i) => {
    const strip = param(ctx, "strip", true);
    const p = str(ctx, r, "prompt", i);
    const c = str(ctx, r, "completion", i);
    return instruction(strip ? pyStrip(p) : p, undefined, strip ? pyStrip(c) : c);
  }),

  instruction_to_prompt_completion: asyncImpl(async (ctx, out) => {
    const t: Template = (await templateParam(ctx)) ?? { format: "alpaca" };
    let n = 0;
    await mapRecords(ctx, out, (r, i) => {
      const ex = { instruction: str(ctx, r, "instruction", i), input: optStr(ctx, r, "input", i), output: str(ctx, r, "output", i) };
      n++;
      try {
        if (isChatTemplate(t)) return { prompt: renderInstruction(t.format, ex, { system: t.system, generationPrompt: true }), completion: ex.output };
        return { prompt: renderPromptTemplate(t, r, true), completion: renderPromptTemplate({ text: t.response, response: "", eos: false }, r, false) };
      } catch (e) {
        if (e instanceof FormatError) throw new UserError(`${where(ctx, i)}: ${e.message}`);
        throw e;
      }
    });
    ctx.count("kept", n);
  }),

  instruction_to_chat: simple((ctx, r, i) => {
    const system = ctx.params["system"] as string | undefined;
    const msgs = instructionMessages({ instruction: str(ctx, r, "instruction", i), input: optStr(ctx, r, "input", i), output: str(ctx, r, "output", i) }, system);
    return chatRecord(msgs, r["id"], (ctx.params["source"] as string | undefined) ?? optStr(ctx, r, "source", i));
  }),

  chat_to_instruction: asyncImpl(async (ctx, out) => {
    const turn = param<string>(ctx, "turn", "first");
    const singleOnly = param(ctx, "single_turn_only", false);
    let kept = 0;
    let none = 0;
    let multi = 0;
    await mapRecords(ctx, out, (r, i) => {
      const msgs = r["messages"];
      if (!Array.isArray(msgs)) throw new UserError(`${where(ctx, i)}: field \`messages\` is not a list`);
      const ex = exchanges(msgs as Message[]);
      if (ex.length === 0) return (none++, undefined);
      if (singleOnly && ex.length > 1) return (multi++, undefined);
      const [u, a] = turn === "last" ? ex[ex.length - 1]! : ex[0]!;
      kept++;
      return { instruction: u, output: a };
    });
    ctx.count("kept", kept);
    if (none) ctx.count("dropped: no user/assistant exchange", none);
    if (multi) ctx.count("dropped: more than one exchange", multi);
  }),

  preference_to_pairs: simple((ctx, r, i) => {
    const system = ctx.params["system"] as string | undefined;
    const prompt = str(ctx, r, "prompt", i);
    const pair = (answer: string): Message[] => [...(system !== undefined ? [{ role: "system", content: system }] : []), { role: "user", content: prompt }, { role: "assistant", content: answer }];
    return { prompt, chosen: pair(str(ctx, r, "chosen", i)), rejected: pair(str(ctx, r, "rejected", i)) };
  }),

  sharegpt_to_chat: sharegpt,

  oasst_to_chat: oasst,

  lima_to_chat: asyncImpl(async (ctx, out) => {
    const source = ctx.params["source"] as string | undefined;
    const c = counter(ctx);
    let kept = 0;
    await mapRecords(ctx, out, (r, i) => {
      const conv = r["conversations"];
      if (!Array.isArray(conv) || conv.some((t) => typeof t !== "string")) {
        throw new UserError(`${where(ctx, i)}: ${conv === undefined ? "has no field `conversations`" : "field `conversations` is not a list of strings"}`, "expected a Lima record: {conversations: [question, answer, ...]}");
      }
      // open-instruct cuts a trailing turn that has no answer.
      const turns = conv.length % 2 === 0 ? (conv as string[]) : (conv as string[]).slice(0, -1);
      if (turns.length === 0) {
        ctx.drop(r, "no answer", "the conversation has no answered turn");
        return undefined;
      }
      if (turns.length < conv.length) c.add("turns dropped: trailing turn with no answer");
      kept++;
      const messages: Message[] = turns.map((content, k) => ({ role: k % 2 === 0 ? "user" : "assistant", content }));
      return chatRecord(messages, r["id"], source ?? optStr(ctx, r, "source", i));
    });
    c.flush();
    ctx.count("kept", kept);
  }),

  orca_to_chat: simple((ctx, r, i) => {
    const keep = param(ctx, "keep_system", true);
    const sys = optStr(ctx, r, "system_prompt", i) ?? "";
    const msgs: Message[] = [];
    if (keep && pyStrip(sys) !== "") msgs.push({ role: "system", content: sys });
    msgs.push({ role: "user", content: str(ctx, r, "question", i) }, { role: "assistant", content: str(ctx, r, "response", i) });
    return chatRecord(msgs, r["id"], ctx.params["source"] as string | undefined);
  }),
};

/** User/assistant exchanges of a chat: each user message immediately followed by an assistant message. */
export function exchanges(messages: readonly Message[]): [string, string][] {
  const out: [string, string][] = [];
  const turns = messages.filter((m) => m && m.role !== "system");
  for (let k = 0; k + 1 < turns.length; k++) {
    if (turns[k]!.role === "user" && turns[k + 1]!.role === "assistant") {
      out.push([String(turns[k]!.content), String(turns[k + 1]!.content)]);
      k++;
    }
  }
  return out;
}
