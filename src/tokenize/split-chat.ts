/**
 * Splitting a long chat into blocks of whole exchanges that fit a token budget: FastChat's
 * `split_long_conversation.py` as open-instruct runs it on ShareGPT for Tulu (`scripts/split_sharegpt_conversations.py`):
 * - each message costs its tokens, counted as `tokenizer(content).input_ids` does (with BOS), plus 6 for the role
 *   markup (`messageOverhead`);
 * - a trailing user message without an answer is dropped;
 * - exchanges (user + assistant) are taken greedily in order; one that would overflow the current block starts the
 *   next;
 * - an exchange over the budget on its own is dropped (open-instruct's fix of FastChat, which kept it as a block of
 *   its own; `longExchanges: "keep"` does that);
 * - chats whose turns do not alternate user/assistant from a user turn are dropped (`filter_invalid_roles`).
 * Two deliberate differences: the FastChat loop loses the last exchange when it is the one that starts a new block
 * (its `elif` only emits the final block when no split happened there); here it is kept. And a leading system
 * message, which ShareGPT data does not have, is repeated at the head of every block and counted in each budget.
 * Block ids follow FastChat: `{id}_{k}`, k the index among the non-system messages of the block's first message.
 */
export interface SplitMessage {
  readonly role: string;
  readonly content: string;
}

export interface SplitOptions {
  readonly maxTokens: number;
  readonly messageOverhead: number;
  readonly longExchanges: "drop" | "keep";
}

export interface ChatBlock {
  /** Index of the block's first message among the chat's non-system messages. */
  readonly start: number;
  readonly messages: SplitMessage[];
}

export type SplitResult =
  | { readonly blocks: ChatBlock[]; readonly dropped: SplitMessage[][] }
  | { readonly problem: string };

export function splitChat(messages: readonly SplitMessage[], count: (text: string) => number, opts: SplitOptions): SplitResult {
  const system = messages[0]?.role === "system" ? messages[0] : undefined;
  const turns = system ? messages.slice(1) : messages.slice();
  for (let i = 0; i < turns.length; i++) {
    const want = i % 2 === 0 ? "user" : "assistant";
    if (turns[i]!.role !== want) return { problem: "roles do not alternate user/assistant" };
  }
  const pairs = Math.floor(turns.length / 2);
  if (pairs === 0) return { problem: "no complete exchange" };
  const cost = (m: SplitMessage) => count(m.content) + opts.messageOverhead;
  const head = system ? [system] : [];
  const headCost = system ? cost(system) : 0;
  const blocks: ChatBlock[] = [];
  const dropped: SplitMessage[][] = [];
  let cur: SplitMessage[] = [];
  let curStart = 0;
  let curCost = headCost;
  const flush = () => {
    if (cur.length > 0) blocks.push({ start: curStart, messages: [...head, ...cur] });
    cur = [];
    curCost = headCost;
  };
  for (let p = 0; p < pairs; p++) {
    const exchange = [turns[2 * p]!, turns[2 * p + 1]!];
    const c = cost(exchange[0]!) + cost(exchange[1]!);
    if (headCost + c > opts.maxTokens) {
      flush();
      if (opts.longExchanges === "keep") blocks.push({ start: 2 * p, messages: [...head, ...exchange] });
      else dropped.push(exchange);
      continue;
    }
    if (curCost + c > opts.maxTokens) flush();
    if (cur.length === 0) curStart = 2 * p;
    cur.push(...exchange);
    curCost += c;
  }
  flush();
  return { blocks, dropped };
}
