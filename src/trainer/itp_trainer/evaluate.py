"""The evaluation worker: `python -m itp_trainer evaluate --model DIR --token-env NAME`.

A long-lived process that answers an `evaluate` stage's requests for a model folder (README.md, "The evaluation
worker"): log-likelihoods of continuations, and generation with a key/value cache. It speaks JSON lines over one TCP
connection rather than stdin/stdout, because the process executors (local, Slurm) give a job no stdin and send its
output to a log file: the worker binds a port, says where in its output (`{"event": "listening", "host", "port"}`),
and serves the first client that sends the job's token. Token ids cross the boundary, not text: the TypeScript side
tokenizes with the folder's tokenizer.json (Debian's Python has no `tokenizers`), so both sides see the same ids.

Requests (one JSON object per line, answered in order):
  {"id", "op": "loglik", "items": [[context_ids, continuation_ids], ...]}
      -> {"id", "results": [[logprob, greedy], ...]}
  {"id", "op": "generate", "items": [{"ids", "max_tokens", "temperature", "top_p", "seed", "eos": [...]}, ...]}
      -> {"id", "step": [[item, token], ...]} after each decoding step, then {"id", "results": [{"tokens", "finish"}]}
  {"id", "op": "stop", "items": [item, ...]}  (while a generate of that id runs: the client saw a stop sequence)
  {"op": "exit"}
Errors: {"id", "error": message, "hint": ...}; the connection stays usable.
"""
import json
import math
import os
import queue
import socket
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .errors import UserError
from .metrics import Emitter


def nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus sampling's distribution: the smallest set of most likely tokens whose mass reaches top_p (the token
    that crosses it included, as transformers' TopPLogitsWarper keeps it), renormalized."""
    sorted_p, order = torch.sort(probs, descending=True)
    before = torch.cumsum(sorted_p, dim=-1) - sorted_p
    sorted_p = torch.where(before < top_p, sorted_p, torch.zeros_like(sorted_p))
    out = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return out / out.sum()


class Worker:
    def __init__(self, model: torch.nn.Module, device: torch.device, batch_tokens: int, gen_batch: int):
        self.model = model
        self.device = device
        self.batch_tokens = batch_tokens
        self.gen_batch = gen_batch
        # The built-in Llama family gets the cached path; another architecture (through transformers) runs whole
        # sequences at every step, which is exact but slower.
        self.builtin = hasattr(model, "model") and hasattr(model.model, "layers") and hasattr(model, "_rope")
        if not self.builtin:
            self.gen_batch = 1  # no attention mask on that path: sequences are decoded one at a time, unpadded

    # ---- the model, with an optional key/value cache ------------------------------------------------------------

    # Queries per block of the attention: a block sees the keys up to its last query only (causal), so about half
    # of the score matrix is never computed, and a block's scores stay small enough for the CPU's caches.
    QUERY_BLOCK = 128

    def hidden(self, ids: torch.Tensor, positions: torch.Tensor, keys: torch.Tensor,
               cache: Optional[List[Tuple[torch.Tensor, torch.Tensor]]],
               select: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        """Final hidden states [B, S, H] of `ids` [B, S] at `positions` [B, S]. `keys` [B, T] marks the real tokens of
        everything the queries may see (the cache's tokens, then these). `cache` holds each layer's keys and values
        so far and is extended in place; queries see keys at or before their own index, in their window.
        With `select` (rows, cols), only those positions' states are returned, [N, H]: the last layer computes its
        queries, attention and MLP there alone (every layer's keys and values are still computed for all)."""
        m = self.model
        x = m.model.embed_tokens(ids)
        cos, sin = m._rope(positions, x.dtype)
        b, s = ids.shape
        t = keys.shape[1]
        qi = torch.arange(t - s, t, device=ids.device)
        ki = torch.arange(t, device=ids.device)
        causal = ki[None, :] <= qi[:, None]  # [S, T]
        allowed_base = causal[None] & keys[:, None, :]
        # A padding query sees itself at least (no fully masked row, no NaN); what it computes is never read.
        allowed_base = allowed_base | (ki[None, :] == qi[:, None])[None]
        masks: Dict[Optional[int], torch.Tensor] = {}  # per window: the positions a query may not see
        last = len(m.model.layers) - 1
        for li, layer in enumerate(m.model.layers):
            attn = layer.self_attn
            window = attn.window
            if window not in masks:
                a = allowed_base
                if window is not None:
                    # Index distance equals position distance between real tokens (padding is on the left only).
                    a = a & ((qi[:, None] - ki[None, :]) < window)[None]
                masks[window] = ~a[:, None]  # [B, 1, S, T]
            masked = masks[window]
            h = layer.input_layernorm(x)
            k = attn.k_proj(h).view(b, s, attn.kv_heads, attn.head_dim).transpose(1, 2)
            v = attn.v_proj(h).view(b, s, attn.kv_heads, attn.head_dim).transpose(1, 2)
            k = k * cos + _rotate_half(k) * sin
            if cache is not None:
                if li < len(cache):
                    pk, pv = cache[li]
                    k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
                    cache[li] = (k, v)
                else:
                    cache.append((k, v))
            rep = attn.heads // attn.kv_heads
            kk = _repeat_kv(k, rep) if rep > 1 else k
            vv = _repeat_kv(v, rep) if rep > 1 else v
            scale = 1.0 / math.sqrt(attn.head_dim)
            if li == last and select is not None:
                rows, cols = select
                n = rows.shape[0]
                xs = x[rows, cols]  # [N, H]
                q = attn.q_proj(h[rows, cols]).view(n, attn.heads, 1, attn.head_dim)
                c, sn = cos[rows, :, cols][:, :, None], sin[rows, :, cols][:, :, None]  # [N, 1, 1, D]
                q = (q * c + _rotate_half(q) * sn) * scale
                scores = torch.matmul(q, kk[rows].transpose(2, 3))  # [N, heads, 1, T]
                scores.masked_fill_(masked[rows, :, cols][:, :, None], torch.finfo(scores.dtype).min)
                probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
                out = torch.matmul(probs, vv[rows]).reshape(n, attn.heads * attn.head_dim)
                xs = xs + attn.o_proj(out)
                xs = xs + layer.mlp(layer.post_attention_layernorm(xs))
                return m.model.norm(xs)
            q = attn.q_proj(h).view(b, s, attn.heads, attn.head_dim).transpose(1, 2)
            q = (q * cos + _rotate_half(q) * sin) * scale
            out = q.new_empty(b, attn.heads, s, attn.head_dim)
            for q0 in range(0, s, self.QUERY_BLOCK):
                q1 = min(s, q0 + self.QUERY_BLOCK)
                end = t - s + q1  # the block's last query sees no key after its own index
                scores = torch.matmul(q[:, :, q0:q1], kk[:, :, :end].transpose(2, 3))
                scores.masked_fill_(masked[:, :, q0:q1, :end], torch.finfo(scores.dtype).min)
                probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
                out[:, :, q0:q1] = torch.matmul(probs, vv[:, :, :end])
            out = out.transpose(1, 2).reshape(b, s, attn.heads * attn.head_dim)
            x = x + attn.o_proj(out)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        if select is not None:  # a model without layers
            x = x[select[0], select[1]]
        return m.model.norm(x)

    def logits_at(self, ids: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Float32 logits [N, V] at (rows[i], cols[i]) of right-padded `ids`: the LM head only where it is read."""
        if not self.builtin:
            return self.model(ids)[rows, cols].float()
        b, s = ids.shape
        positions = torch.arange(s, device=ids.device).expand(b, s)
        # Right padding: a real token never sees the pads after it, so they need no mask.
        h = self.hidden(ids, positions, torch.ones_like(ids, dtype=torch.bool), None, (rows, cols))
        return self.model.lm_head(h).float()

    # ---- log-likelihoods ----------------------------------------------------------------------------------------

    @torch.no_grad()
    def loglik(self, items: List[List[List[int]]]) -> List[List[Any]]:
        """[logprob, greedy] per (context, continuation). Requests whose model input is the same (MMLU's four answer
        letters after one prompt: context + continuation minus its last token) share one row of a batch."""
        rows: Dict[Tuple[int, ...], int] = {}
        inputs: List[Tuple[int, ...]] = []
        where = []
        for ctx, cont in items:
            if not ctx or not cont:
                raise UserError("a log-likelihood request needs a context token and a continuation token")
            full = ctx + cont
            key = tuple(full[:-1])
            r = rows.get(key)
            if r is None:
                r = rows[key] = len(inputs)
                inputs.append(key)
            where.append((r, len(ctx), cont))
        by_row: Dict[int, List[int]] = {}
        for i, (r, _, _) in enumerate(where):
            by_row.setdefault(r, []).append(i)
        results: List[Optional[List[Any]]] = [None] * len(items)
        order = sorted(range(len(inputs)), key=lambda r: -len(inputs[r]))
        start = 0
        while start < len(order):
            width = len(inputs[order[start]])
            n = max(1, min(len(order) - start, self.batch_tokens // max(1, width)))
            batch = order[start:start + n]
            start += n
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            for b, r in enumerate(batch):
                ids[b, :len(inputs[r])] = torch.tensor(inputs[r], dtype=torch.long)
            # The positions read: for each request, those predicting its continuation tokens.
            sel_rows, sel_cols, sel_tokens, owners = [], [], [], []
            for b, r in enumerate(batch):
                for i in by_row[r]:
                    _, c, cont = where[i]
                    for j, tok in enumerate(cont):
                        sel_rows.append(b)
                        sel_cols.append(c + j - 1)
                        sel_tokens.append(tok)
                        owners.append(i)
            ids = ids.to(self.device)
            logits = self.logits_at(ids, torch.tensor(sel_rows, device=self.device), torch.tensor(sel_cols, device=self.device))
            logp = torch.log_softmax(logits, dim=-1)
            toks = torch.tensor(sel_tokens, device=self.device)
            if int(toks.max()) >= logp.shape[1]:
                raise UserError(f"token id {int(toks.max())} is outside the model's vocabulary ({logp.shape[1]})",
                                "the tokenizer does not belong to this model")
            picked = logp.gather(1, toks[:, None])[:, 0].double().cpu().tolist()
            greedy = (logits.argmax(dim=-1) == toks).cpu().tolist()
            acc: Dict[int, List[Any]] = {}
            for k, i in enumerate(owners):
                a = acc.setdefault(i, [0.0, True])
                a[0] += picked[k]
                a[1] = a[1] and bool(greedy[k])
            for i, a in acc.items():
                results[i] = a
        return results  # type: ignore[return-value]

    # ---- generation ---------------------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, rid: Any, items: List[Dict[str, Any]], send, stops: "queue.Queue") -> List[Dict[str, Any]]:
        results: List[Optional[Dict[str, Any]]] = [None] * len(items)
        order = sorted(range(len(items)), key=lambda i: len(items[i]["ids"]))
        stopped: set = set()
        for start in range(0, len(order), self.gen_batch):
            group = order[start:start + self.gen_batch]
            for i, out in self._generate_group(rid, items, group, send, stops, stopped).items():
                results[i] = out
        return results  # type: ignore[return-value]

    def _generate_group(self, rid, items, group, send, stops, stopped) -> Dict[int, Dict[str, Any]]:
        dev = self.device
        lens = [len(items[i]["ids"]) for i in group]
        width = max(lens)
        b = len(group)
        # Left padding: every sequence's next token is at the last column.
        ids = torch.zeros((b, width), dtype=torch.long)
        keys = torch.zeros((b, width), dtype=torch.bool)
        for r, i in enumerate(group):
            p = items[i]["ids"]
            ids[r, width - len(p):] = torch.tensor(p, dtype=torch.long)
            keys[r, width - len(p):] = True
        positions = (torch.cumsum(keys.long(), dim=1) - 1).clamp(min=0)
        ids, keys, positions = ids.to(dev), keys.to(dev), positions.to(dev)
        gens = []
        for i in group:
            g = torch.Generator()
            g.manual_seed(int(items[i].get("seed") or 0))
            gens.append(g)
        live = list(range(b))  # rows of the current batch -> index into group
        out_tokens: Dict[int, List[int]] = {i: [] for i in group}
        finish: Dict[int, str] = {}
        cache: Optional[List[Tuple[torch.Tensor, torch.Tensor]]] = [] if self.builtin else None
        full = ids  # the whole sequences, for a model without the cached path
        if self.builtin:
            # Left padding: every row's next token is predicted at the last column.
            last_col = (torch.arange(b, device=dev), torch.full((b,), width - 1, dtype=torch.long, device=dev))
            h = self.hidden(ids, positions, keys, cache, last_col)
            logits = self.model.lm_head(h).float()
        else:
            logits = self._full_logits(full, keys)
        while True:
            step = []
            next_tokens = []
            for r, gi in enumerate(live):
                i = group[gi]
                it = items[i]
                row = logits[r]
                temp = float(it.get("temperature") or 0)
                if temp > 0:
                    probs = torch.softmax(row / temp, dim=-1).cpu()
                    top_p = float(it.get("top_p") or 1.0)
                    if top_p < 1.0:
                        probs = nucleus(probs, top_p)
                    tok = int(torch.multinomial(probs, 1, generator=gens[gi])[0])
                else:
                    tok = int(row.argmax())
                out_tokens[i].append(tok)
                next_tokens.append(tok)
                step.append([i, tok])
            send({"id": rid, "step": step})
            # Stop sequences the client has seen so far (it decodes the tokens as they come).
            while True:
                try:
                    msg = stops.get_nowait()
                except queue.Empty:
                    break
                stopped.update(msg)
            keep = []
            for r, gi in enumerate(live):
                i = group[gi]
                it = items[i]
                tok = out_tokens[i][-1]
                if tok in (it.get("eos") or []):
                    finish[i] = "eos"
                elif i in stopped:
                    finish[i] = "stopped"
                elif len(out_tokens[i]) >= int(it["max_tokens"]):
                    finish[i] = "length"
                else:
                    keep.append(r)
            if not keep:
                break
            sel = torch.tensor(keep, device=dev)
            live = [live[r] for r in keep]
            new = torch.tensor([next_tokens[r] for r in keep], dtype=torch.long, device=dev)[:, None]
            keys = torch.cat([keys.index_select(0, sel), torch.ones((len(keep), 1), dtype=torch.bool, device=dev)], dim=1)
            positions = positions.index_select(0, sel)[:, -1:] + 1
            if self.builtin:
                cache = [(k.index_select(0, sel), v.index_select(0, sel)) for k, v in cache]
                h = self.hidden(new, positions, keys, cache)[:, -1]
                logits = self.model.lm_head(h).float()
            else:
                full = torch.cat([full.index_select(0, sel), new], dim=1)
                logits = self._full_logits(full, keys)
        return {i: {"tokens": out_tokens[i], "finish": finish[i]} for i in group}

    def _full_logits(self, full: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        positions = (torch.cumsum(keys.long(), dim=1) - 1).clamp(min=0)
        return self.model(full, positions)[:, -1].float()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _repeat_kv(x: torch.Tensor, rep: int) -> torch.Tensor:
    b, kv, s, d = x.shape
    return x[:, :, None].expand(b, kv, rep, s, d).reshape(b, kv * rep, s, d)


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def serve(model_dir: str, device: str, dtype: str, host: str, token: str, batch_tokens: int, gen_batch: int,
          emit: Emitter) -> int:
    from . import hf_io

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device cuda was asked for, but this PyTorch sees no GPU", "evaluate on CPU (gpus = 0)")
    if dtype == "auto":
        dtype = "bfloat16" if dev.type == "cuda" else "float32"
    model = hf_io.load_pretrained(model_dir, dtype=_DTYPES[dtype], device=dev).eval()
    if hasattr(model, "use_sdpa"):
        model.use_sdpa = False
    worker = Worker(model, dev, batch_tokens, gen_batch)
    listener = socket.create_server((host, 0))
    port = listener.getsockname()[1]
    shown = socket.gethostname() if host in ("", "0.0.0.0") else host
    emit("listening", host=shown, port=port, vocab=model.config.vocab_size,
         max_length=model.config.max_position_embeddings, dtype=dtype, device=str(dev))
    while True:
        conn, _ = listener.accept()
        reader = conn.makefile("rb")
        hello = reader.readline()
        try:
            ok = json.loads(hello).get("token") == token
        except (ValueError, AttributeError):
            ok = False
        if ok:
            break
        conn.close()  # not our client
    listener.close()
    lock = threading.Lock()

    def send(obj: Dict[str, Any]) -> None:
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode("utf-8")
        with lock:
            conn.sendall(data)

    requests: "queue.Queue" = queue.Queue()
    stops: Dict[Any, "queue.Queue"] = {}

    def read() -> None:
        for line in reader:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("op") == "stop":
                stops.setdefault(msg.get("id"), queue.Queue()).put(msg.get("items") or [])
            else:
                requests.put(msg)
        requests.put({"op": "exit"})

    threading.Thread(target=read, daemon=True).start()
    send({"ready": True})
    while True:
        msg = requests.get()
        op, rid = msg.get("op"), msg.get("id")
        if op == "exit":
            return 0
        try:
            if op == "loglik":
                send({"id": rid, "results": worker.loglik(msg["items"])})
            elif op == "generate":
                q = stops.setdefault(rid, queue.Queue())
                send({"id": rid, "results": worker.generate(rid, msg["items"], send, q)})
                stops.pop(rid, None)
            else:
                send({"id": rid, "error": f"unknown op {op!r}"})
        except UserError as e:
            send({"id": rid, "error": e.message, "hint": e.hint})
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
            # Out of memory and the like: reported to the stage, whose message carries it.
            send({"id": rid, "error": f"{type(e).__name__}: {e}"})


def main(args) -> int:
    emit = Emitter(True)
    try:
        token = os.environ.get(args.token_env, "")
        if not token:
            raise UserError(f"no token in ${args.token_env}", "the worker is started by itp, which sets it")
        if args.threads:
            torch.set_num_threads(args.threads)
        return serve(args.model, args.device, args.dtype, args.host, token, args.batch_tokens, args.gen_batch, emit)
    except UserError as e:
        emit("error", message=e.message, hint=e.hint or None)
        return 1
    except (BrokenPipeError, ConnectionResetError):
        return 0


def add_parser(sub) -> None:
    e = sub.add_parser("evaluate", help="serve log-likelihoods and generations of a model folder (the evaluation worker)")
    e.add_argument("--model", required=True, help="Hugging Face model directory")
    e.add_argument("--device", default="cpu")
    e.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    e.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for a cluster job)")
    e.add_argument("--token-env", default="ITP_WORKER_TOKEN", help="environment variable holding the client's token")
    e.add_argument("--batch-tokens", type=int, default=8192, help="most tokens in one log-likelihood batch")
    e.add_argument("--gen-batch", type=int, default=16, help="most sequences decoded together")
    e.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
