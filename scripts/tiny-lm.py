#!/usr/bin/python3
"""A tiny byte-level causal LM, trained here and exported to ONNX, for the tests of src/models/onnx.ts.

Usage: /usr/bin/python3 scripts/tiny-lm.py OUT_DIR   (needs Debian's python3-torch and python3-onnx)

It trains a 2-layer transformer (d=64, context 64) on a fixed set of one-sentence documents ("the cat sat on the
mat.", ...) so that greedy decoding is meaningful, and writes into OUT_DIR:
  model.onnx              inputs input_ids, attention_mask; output logits      (plus byte_tokenizer.json)
  plain/model.onnx        input input_ids only                                  (plus byte_tokenizer.json)
  positions/model.onnx    inputs input_ids, attention_mask, position_ids
  hf/                     tokenizer.json + tokenizer_config.json: a byte-level BPE with no merges, giving the same ids
  bad/*.onnx              small graphs with a wrong signature, for the error messages
  reference.json          what torch computes on the same weights: greedy continuations and per-token log-probs
Everything is seeded; the output directory is written under a temporary name and renamed when complete.
"""
import json
import os
import shutil
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BOS, EOS, VOCAB, CONTEXT = 256, 257, 258, 64
# One-sentence documents with unequal weights: the first word after "the " is a real choice (sampling differs by
# seed) but never a near tie (greedy decoding is the same in torch and onnxruntime).
DOCS = [
    ("the cat sat on the mat.", 8),
    ("the dog ran to the log.", 5),
    ("the bird flew over the tree.", 3),
    ("the fox hid in the box.", 2),
    ("the café is open.", 1),
    ("count: 1 2 3 4 5 6 7 8 9", 2),
]


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, bias):
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (t.reshape(b, n, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(2, 3)) / (d // self.heads) ** 0.5 + bias
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.proj(y)
        return x + self.mlp(self.ln2(x))


class TinyLM(nn.Module):
    def __init__(self, d=64, layers=2, heads=4):
        super().__init__()
        self.tok, self.pos = nn.Embedding(VOCAB, d), nn.Embedding(CONTEXT, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, VOCAB)

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        n = input_ids.shape[1]
        steps = torch.arange(n, device=input_ids.device)
        if position_ids is None:
            position_ids = steps.unsqueeze(0)
        allowed = (steps.unsqueeze(0) <= steps.unsqueeze(1)).unsqueeze(0).unsqueeze(0)  # [1, 1, query, key]
        if attention_mask is not None:
            allowed = allowed & (attention_mask[:, None, None, :] > 0)
        # A finite large negative, not -inf: a fully masked row stays finite instead of turning into NaN.
        bias = (~allowed).float() * -1e9
        x = self.tok(input_ids) + self.pos(position_ids)
        for blk in self.blocks:
            x = blk(x, bias)
        return self.head(self.ln(x))


class WithMask(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids, attention_mask)


class WithPositions(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, position_ids):
        return self.m(input_ids, attention_mask, position_ids)


def encode(text):
    return list(text.encode("utf-8"))


def train(model, steps=150):
    """Full-batch training on the weighted documents: the loss is the exact expectation over the corpus, so the
    learned first-word distribution follows the weights without sampling noise (and each step is cheap)."""
    seqs = [[BOS] + encode(t) + [EOS] for t, _ in DOCS]
    weights = torch.tensor([w for _, w in DOCS], dtype=torch.float)
    weights = weights / weights.sum()
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), EOS, dtype=torch.long)
    targets = torch.full((len(seqs), width), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        targets[i, : len(s) - 1] = torch.tensor(s[1:])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for _ in range(steps):
        per_token = F.cross_entropy(model(ids).transpose(1, 2), targets, ignore_index=-100, reduction="none")
        loss = (per_token.sum(1) * weights).sum()  # nats per document
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss)


@torch.no_grad()
def greedy(model, prompt, max_new):
    """Greedy decoding without a cache, as the ONNX runner does; also the smallest top-1/top-2 logit gap on the way."""
    ids, out, margin = [BOS] + encode(prompt), [], float("inf")
    while len(out) < max_new and len(ids) < CONTEXT:
        row = model(torch.tensor([ids]))[0, -1]
        top = row.topk(2)
        margin = min(margin, float(top.values[0] - top.values[1]))
        t = int(top.indices[0])
        out.append(t)
        ids.append(t)
        if t == EOS:
            break
    return out, margin


@torch.no_grad()
def score(model, prompt, continuation):
    original = (prompt, continuation)
    # lm-eval-harness: whitespace ending the prompt belongs to the continuation.
    n = len(prompt) - len(prompt.rstrip())
    if n:
        prompt, continuation = prompt[:-n], prompt[-n:] + continuation
    ctx, cont = [BOS] + encode(prompt), encode(continuation)
    ids = ctx + cont
    logits = model(torch.tensor([ids]))[0].double()
    logp = logits.log_softmax(-1)
    per, greedy_ok = [], True
    for j, t in enumerate(cont):
        row = len(ctx) + j - 1
        per.append(float(logp[row, t]))
        greedy_ok = greedy_ok and int(logits[row].argmax()) == t
    return {"prompt": original[0], "continuation": original[1], "ids": cont, "tokens": per, "logprob": sum(per), "greedy": greedy_ok}


def export(module, path, names):
    dyn = {n: {0: "batch", 1: "sequence"} for n in names}
    dyn["logits"] = {0: "batch", 1: "sequence"}
    example = tuple(torch.ones(2, 5, dtype=torch.long) if n != "position_ids" else torch.arange(5).repeat(2, 1) for n in names)
    torch.onnx.export(module, example, path, input_names=list(names), output_names=["logits"], dynamic_axes=dyn, opset_version=14)


def bytes_to_unicode():
    """GPT-2's byte-to-character table (what the ByteLevel pre-tokenizer and decoder use)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def hf_tokenizer(d):
    """A byte-level BPE with no merges and the byte-level characters at ids 0-255: the same ids as the byte config."""
    os.makedirs(d)
    table = bytes_to_unicode()
    special = lambda i, s: {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(BOS, "<s>"), special(EOS, "</s>")],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [BOS], "tokens": ["<s>"]}},
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "vocab": {table[b]: b for b in range(256)}, "merges": []},
    }
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True}, f)


def bad_models(d):
    """Graphs whose signature the loader must refuse, each with one thing wrong."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    os.makedirs(d)
    table = numpy_helper.from_array(np.zeros((VOCAB, VOCAB), dtype=np.float32), "table")

    def graph(path, inputs, outputs, nodes, inits=(table,)):
        g = helper.make_graph(nodes, "bad", inputs, outputs, list(inits))
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
        onnx.checker.check_model(m)
        onnx.save(m, os.path.join(d, path))

    ids = lambda name, t=TensorProto.INT64: helper.make_tensor_value_info(name, t, ["batch", "sequence"])
    logits = lambda name="logits", shape=("batch", "sequence", VOCAB): helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))
    gather = lambda src, dst="logits": helper.make_node("Gather", ["table", src], [dst])
    # input_ids named otherwise
    graph("no-input-ids.onnx", [ids("tokens")], [logits()], [gather("tokens")])
    # a key/value cache input the runner does not feed
    past = helper.make_tensor_value_info("past_key_values.0.key", TensorProto.FLOAT, ["batch", 4, "past", 16])
    graph("kv-cache.onnx", [ids("input_ids"), past], [logits(), helper.make_tensor_value_info("present.0.key", TensorProto.FLOAT, ["batch", 4, "total", 16])],
          [gather("input_ids"), helper.make_node("Identity", ["past_key_values.0.key"], ["present.0.key"])])
    # float token ids
    graph("float-input-ids.onnx", [helper.make_tensor_value_info("input_ids", TensorProto.FLOAT, ["batch", "sequence"])], [logits()],
          [helper.make_node("Cast", ["input_ids"], ["i"], to=TensorProto.INT64), gather("i")])
    # no output named logits
    graph("no-logits.onnx", [ids("input_ids")], [logits("scores")], [gather("input_ids", "scores")])
    # logits of rank 2 (the last position only)
    graph("logits-rank2.onnx", [ids("input_ids")], [logits(shape=("batch", VOCAB))],
          [gather("input_ids", "all"), helper.make_node("ReduceMean", ["all"], ["logits"], axes=[1], keepdims=0)])
    # a vocabulary smaller than the tokenizer's (ids up to 257)
    small = numpy_helper.from_array(np.zeros((VOCAB, 100), dtype=np.float32), "table")
    graph("small-vocab.onnx", [ids("input_ids")], [logits(shape=("batch", "sequence", 100))], [gather("input_ids")], inits=(small,))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tiny-lm.py OUT_DIR")
    out = sys.argv[1]
    tmp = f"{out}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    torch.manual_seed(0)
    # One thread: the matrices are tiny and the machine is shared.
    torch.set_num_threads(1)
    t0 = time.time()
    model = TinyLM()
    loss = train(model)
    model.eval()
    t_train = time.time() - t0

    byte_config = {"type": "bytes", "bos_token_id": BOS, "eos_token_id": EOS, "vocab_size": VOCAB}
    for sub, module, names in [
        ("", WithMask(model), ("input_ids", "attention_mask")),
        ("plain", model, ("input_ids",)),
        ("positions", WithPositions(model), ("input_ids", "attention_mask", "position_ids")),
    ]:
        d = os.path.join(tmp, sub)
        os.makedirs(d, exist_ok=True)
        export(module, os.path.join(d, "model.onnx"), names)
        with open(os.path.join(d, "byte_tokenizer.json"), "w") as f:
            json.dump(byte_config, f)
    hf_tokenizer(os.path.join(tmp, "hf"))
    bad_models(os.path.join(tmp, "bad"))

    max_new = 40
    prompts = ["", "the cat", "the dog ran", "the bird", "the fox hid in", "the caf", "count: 1 2"]
    greedy_refs = []
    for p in prompts:
        ids, margin = greedy(model, p, max_new)
        # A near tie could decode differently in onnxruntime; the fixture must not depend on one.
        if margin < 1e-2:
            sys.exit(f"tiny-lm.py: greedy decoding of {p!r} has a near tie (top-2 logit gap {margin:.2e}); change the prompts or the training")
        greedy_refs.append({"prompt": p, "max_new_tokens": max_new, "ids": ids, "min_margin": margin})
    pairs = [
        ("the cat", " sat on the mat."),
        ("the cat", " ran to the log."),
        ("the dog", " ran to the log."),
        ("", "the fox hid in the box."),
        ("count: 1 2", " 3 4"),
        ("the caf", "é is open."),
        ("the cat sat on the ", "mat."),
        ("zebra", " qx!"),
    ]
    ref = {
        "bos": BOS,
        "eos": EOS,
        "vocab": VOCAB,
        "context": CONTEXT,
        "final_loss": loss,
        "train_seconds": t_train,
        "torch": torch.__version__,
        "greedy": greedy_refs,
        "scores": [score(model, p, c) for p, c in pairs],
    }
    with open(os.path.join(tmp, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1, ensure_ascii=False)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    print(f"tiny-lm.py: trained in {t_train:.1f}s (loss {loss:.3f}), total {time.time() - t0:.1f}s -> {out}")


if __name__ == "__main__":
    main()
