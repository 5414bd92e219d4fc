import { UserError } from "../core/errors.js";
import type { LmTokenizer } from "./onnx-tokenizer.js";

/**
 * The token ids a local model scores for a log-likelihood request, as lm-evaluation-harness builds them: whitespace
 * at the end of the context moves to the start of the continuation, the continuation's tokens are those of context +
 * continuation after the context's own tokens, the tokenizer's prefix (BOS) starts the sequence, and a context too
 * long for `maxLength` loses its start. Shared by the ONNX runner and the evaluation worker's client, so both score
 * the same ids.
 */
export interface LoglikTokens {
  /** The whole sequence: context, then continuation. */
  readonly ids: readonly number[];
  /** Tokens of the context in `ids` (the first continuation token is at this index). */
  readonly context: number;
  readonly continuation: readonly number[];
  /** Whether the start of the context was cut to fit maxLength. */
  readonly truncated: boolean;
}

/** A prompt as a model sees it: the tokenizer's prefix (BOS), then the text; never empty (EOS stands in). */
export function promptIds(tok: LmTokenizer, text: string): number[] {
  const ids = [...tok.prefix, ...tok.encode(text)];
  return ids.length > 0 ? ids : [tok.eos[0]!];
}

/** The ids of one request; `label` names it in errors (`score pair 3`), `where` names the model. */
export function loglikTokens(tok: LmTokenizer, context: string, continuation: string, maxLength: number, label: string, where: string): LoglikTokens {
  let prompt = context;
  let cont = continuation;
  const spaces = prompt.length - prompt.trimEnd().length;
  if (spaces > 0) {
    cont = prompt.slice(-spaces) + cont;
    prompt = prompt.slice(0, -spaces);
  }
  const own = tok.encode(prompt);
  const contIds = tok.encode(prompt + cont).slice(own.length);
  if (contIds.length === 0) throw new UserError(`${label}: the continuation ${JSON.stringify(continuation)} has no tokens`);
  if (contIds.length >= maxLength) throw new UserError(`${label}: the continuation has ${contIds.length} tokens; max_length ${maxLength} leaves no room for the prompt (${where})`);
  let ctx = promptIds(tok, prompt);
  const truncated = ctx.length + contIds.length > maxLength;
  if (truncated) ctx = ctx.slice(ctx.length + contIds.length - maxLength);
  return { ids: [...ctx, ...contIds], context: ctx.length, continuation: contIds, truncated };
}
