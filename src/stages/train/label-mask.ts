import type { SpannedText } from "./render-spans.js";
import type { TrainTokenizer } from "./train-tokenizer.js";

/**
 * Tokens of an example and which of them carry the loss. The text is tokenized once; each span boundary is placed
 * by tokenizing the text before it, as open-instruct does: when those tokens are the first tokens of the whole text,
 * the boundary falls between two tokens, exactly. When they are not, one token of the whole text holds characters
 * of both sides; it carries the loss (it holds answer text). The tokenizer's BOS goes first unless the text begins
 * with it; it never carries loss (nothing predicts the first token).
 */
export interface TokenizedExample {
  readonly ids: Int32Array;
  /** 1 where the token carries loss. */
  readonly loss: Uint8Array;
}

export function tokenizeExample(tok: TrainTokenizer, ex: SpannedText): TokenizedExample {
  const body = tok.encode(ex.text);
  const pre = tok.prefix.length > 0 && !tok.prefix.every((id, i) => body[i] === id) ? tok.prefix : [];
  const ids = new Int32Array(pre.length + body.length);
  ids.set(pre, 0);
  ids.set(body, pre.length);
  const loss = new Uint8Array(ids.length);
  const boundary = (b: number, end: boolean): number => {
    if (b <= 0) return 0;
    if (b >= ex.text.length) return body.length;
    const before = tok.encode(ex.text.slice(0, b));
    let n = 0;
    while (n < before.length && n < body.length && before[n] === body[n]) n++;
    // n tokens lie wholly before b; when the text before b ends inside token n, that token straddles the boundary.
    return n === before.length || !end ? n : Math.min(n + 1, body.length);
  };
  for (const [s, e] of ex.spans) {
    const from = boundary(s, false);
    const to = boundary(e, true);
    loss.fill(1, pre.length + from, pre.length + to);
  }
  return { ids, loss };
}
