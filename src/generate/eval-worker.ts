import { connect, type Socket } from "node:net";
import { UserError } from "../core/errors.js";
import { loglikTokens, promptIds } from "../models/loglik-tokens.js";
import type { LmTokenizer } from "../models/onnx-tokenizer.js";
import { completionPrompt } from "./backend.js";
import { cutAtStop } from "./eval-endpoint.js";
import type { EvalModel, GenResult, LoglikResult } from "./eval-model.js";

/**
 * The client of the evaluation worker (`python -m itp_trainer evaluate`, src/trainer/itp_trainer/evaluate.py): JSON
 * lines over one TCP connection. Text is tokenized here with the model folder's tokenizer (the worker's Python may
 * lack `tokenizers`), with lm-evaluation-harness's rules (models/loglik-tokens.ts); the worker gets token ids.
 * Generation runs in the worker with a key/value cache; it reports each step's tokens, and this side decodes them
 * and tells it which sequences reached a stop sequence (the worker keeps going until it hears, and the text is cut
 * here at the first stop, so what a request gets does not depend on that delay).
 */

/** Where a started worker listens, and its process. */
export interface WorkerLink {
  readonly host: string;
  readonly port: number;
  /** The secret the worker expects first (it serves no other client). */
  readonly token: string;
  /** Settles when the worker's process ends: with its failure, or undefined after a clean exit. */
  readonly ended: Promise<Error | undefined>;
  /** Stop the process (after asking the worker to exit). */
  stop(): Promise<void>;
}

export interface WorkerModelOptions {
  readonly tokenizer: LmTokenizer;
  /** Context length (config.json's max_position_embeddings). */
  readonly maxLength: number;
  readonly identity: string;
  readonly describe: string;
  /** Log-likelihood requests per message (the worker batches within one by its token budget). */
  readonly chunk?: number;
}

interface Pending {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly onStep?: (step: readonly [number, number][]) => void;
}

/** Connects to a started worker. */
export async function workerEvalModel(link: WorkerLink, o: WorkerModelOptions): Promise<EvalModel> {
  const conn = await Connection.open(link, o.describe);
  const tok = o.tokenizer;
  const chunk = o.chunk ?? 256;
  return {
    describe: o.describe,
    identity: o.identity,
    chat: false,
    loglik: true,
    async loglikelihood(reqs, opts) {
      const items = reqs.map((r, i) => {
        const t = loglikTokens(tok, r.context, r.continuation, o.maxLength, `log-likelihood request ${i}`, o.describe);
        return [t.ids.slice(0, t.context), t.continuation] as const;
      });
      const out: LoglikResult[] = new Array(reqs.length);
      const calls: Promise<void>[] = [];
      // Sent at once in chunks: the worker answers in order, and each chunk's answers are delivered as they come.
      for (let start = 0; start < items.length; start += chunk) {
        const part = items.slice(start, start + chunk);
        calls.push(
          conn.call<[number, boolean][]>({ op: "loglik", items: part }, opts.signal).then((res) => {
            res.forEach(([logprob, greedy], j) => {
              const r = { logprob, greedy, tokens: part[j]![1].length };
              out[start + j] = r;
              opts.onResult?.(start + j, r);
            });
          }),
        );
      }
      await Promise.all(calls);
      return out;
    },
    async generate(reqs, opts) {
      const seqs = reqs.map((r, i) => {
        if (r.max_tokens >= o.maxLength) throw new UserError(`generation request ${i}: max_tokens ${r.max_tokens} leaves no room for the prompt in the context of ${o.maxLength} tokens (${o.describe})`, "lower max_tokens");
        let ids = promptIds(tok, r.prompt ?? completionPrompt(r.messages ?? []));
        // As lm-evaluation-harness: the prompt loses its start so that the answer fits in the context.
        if (ids.length + r.max_tokens > o.maxLength) ids = ids.slice(ids.length + r.max_tokens - o.maxLength);
        return { ids, stops: r.stop.filter((s) => s !== ""), tokens: [] as number[], stopAt: undefined as { n: number; text: string } | undefined };
      });
      const onStep = (step: readonly [number, number][]) => {
        const stopped: number[] = [];
        for (const [i, t] of step) {
          const s = seqs[i];
          if (!s || s.stopAt) continue;
          s.tokens.push(t);
          if (s.stops.length === 0 || tok.eos.includes(t)) continue;
          const cut = cutAtStop(tok.decode(s.tokens), s.stops);
          if (cut !== undefined) {
            s.stopAt = { n: s.tokens.length, text: cut };
            stopped.push(i);
          }
        }
        if (stopped.length > 0) conn.notify({ op: "stop", id: conn.current, items: stopped });
      };
      const items = reqs.map((r, i) => ({ ids: seqs[i]!.ids, max_tokens: r.max_tokens, temperature: r.temperature, ...(r.top_p !== undefined && r.top_p < 1 ? { top_p: r.top_p } : {}), seed: r.seed ?? 0, eos: tok.eos }));
      const res = await conn.call<{ tokens: number[]; finish: string }[]>({ op: "generate", items }, opts.signal, onStep);
      return res.map((g, i) => {
        const s = seqs[i]!;
        let out: GenResult;
        if (s.stopAt) out = { text: s.stopAt.text, finish_reason: "stop", completion_tokens: s.stopAt.n };
        else if (g.finish === "eos") out = { text: tok.decode(g.tokens.slice(0, -1)), finish_reason: "stop", completion_tokens: g.tokens.length };
        else {
          const text = tok.decode(g.tokens);
          const cut = cutAtStop(text, s.stops);
          out = { text: cut ?? text, finish_reason: cut === undefined ? "length" : "stop", completion_tokens: g.tokens.length };
        }
        opts.onResult?.(i, out);
        return out;
      });
    },
    async close() {
      conn.close();
      await link.stop();
    },
  };
}

/** The JSON-lines conversation: requests answered in order, by id. */
class Connection {
  private next = 1;
  private readonly pending = new Map<number, Pending>();
  private buffer = "";
  private failure: Error | undefined;
  /** The id of the request the worker is answering now (the oldest pending): stop messages name it. */
  get current(): number {
    return this.pending.keys().next().value ?? 0;
  }

  private constructor(
    private readonly socket: Socket,
    private readonly describe: string,
  ) {
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => this.data(d));
    socket.on("error", (e) => this.fail(new Error(`${describe}: the evaluation worker's connection failed: ${e.message}`)));
    socket.on("close", () => this.fail(new Error(`${describe}: the evaluation worker closed its connection`)));
  }

  static open(link: WorkerLink, describe: string): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: link.host, port: link.port });
      socket.setNoDelay(true);
      const c = new Connection(socket, describe);
      // The process's own failure (with its log's tail) says more than a closed connection.
      void link.ended.then((e) => c.fail(e ?? new Error(`${describe}: the evaluation worker exited`)));
      socket.once("connect", () => {
        socket.write(JSON.stringify({ token: link.token }) + "\n");
        c.pending.set(0, { resolve: () => resolve(c), reject });
      });
      socket.once("error", reject);
    });
  }

  call<T>(msg: Record<string, unknown>, signal: AbortSignal, onStep?: Pending["onStep"]): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    signal.throwIfAborted();
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        // The worker cannot be interrupted mid-batch: the connection (and with it the worker) goes.
        this.fail(signal.reason instanceof Error ? signal.reason : new Error("interrupted"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, {
        resolve: (v) => (signal.removeEventListener("abort", onAbort), resolve(v as T)),
        reject: (e) => (signal.removeEventListener("abort", onAbort), reject(e)),
        ...(onStep ? { onStep } : {}),
      });
      this.socket.write(JSON.stringify({ id, ...msg }) + "\n");
    });
  }

  notify(msg: Record<string, unknown>): void {
    if (!this.failure) this.socket.write(JSON.stringify(msg) + "\n");
  }

  /** Ask the worker to exit (the line is flushed before the socket closes). */
  close(): void {
    if (this.failure) return;
    this.failure = new Error(`${this.describe}: closed`);
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    this.socket.end(JSON.stringify({ op: "exit" }) + "\n");
  }

  private data(d: string): void {
    this.buffer += d;
    let nl: number;
    while ((nl = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.trim() === "") continue;
      let msg: { id?: number; ready?: boolean; results?: unknown; step?: [number, number][]; error?: string; hint?: string };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        this.fail(new Error(`${this.describe}: the evaluation worker sent a line that is not JSON: ${line.slice(0, 200)}`));
        return;
      }
      const id = msg.ready ? 0 : (msg.id ?? -1);
      const p = this.pending.get(id);
      if (!p) continue;
      if (msg.step) {
        p.onStep?.(msg.step);
        continue;
      }
      this.pending.delete(id);
      if (msg.error !== undefined) p.reject(new UserError(`${this.describe}: ${msg.error}`, msg.hint ?? undefined));
      else p.resolve(msg.results);
    }
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    if (!this.socket.destroyed) this.socket.destroy();
  }
}
