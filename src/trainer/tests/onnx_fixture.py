"""A tiny random Llama written as a Hugging Face directory and exported with onnx_export, for test/trainer-onnx.test.ts.

Usage: /usr/bin/python3 src/trainer/tests/onnx_fixture.py OUT_DIR

Writes OUT_DIR/model (config.json, model.safetensors, model.onnx, byte_tokenizer.json: ids 0-255 are bytes, 256
BOS, 257 EOS) and OUT_DIR/reference.json: what the torch model computes with the same weights (greedy
continuations without a cache, per-token log-probabilities of continuations).
"""
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from itp_trainer import hf_io  # noqa: E402
from itp_trainer.model import ModelConfig, build, init_weights  # noqa: E402
from itp_trainer.onnx_export import export_onnx  # noqa: E402

BOS, EOS, VOCAB = 256, 257, 258
CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB, "hidden_size": 64,
    "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "bos_token_id": BOS, "eos_token_id": EOS,
    # Larger weights than transformers' 0.02, so the logits are far apart and greedy decoding has no near ties.
    "initializer_range": 0.3,
}
PROMPTS = ["", "the cat", "hello, world", "é"]
PAIRS = [("the cat", " sat"), ("hello", " world"), ("", "abc"), ("x ", "y")]


def encode(text):
    return list(text.encode("utf-8"))


@torch.no_grad()
def greedy(model, prompt, max_new):
    ids, out, margin = [BOS] + encode(prompt), [], float("inf")
    while len(out) < max_new:
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
    # The runner moves whitespace ending the prompt to the continuation (lm-eval-harness).
    n = len(prompt) - len(prompt.rstrip())
    p, c = (prompt[:-n], prompt[-n:] + continuation) if n else (prompt, continuation)
    ctx, cont = [BOS] + encode(p), encode(c)
    logp = model(torch.tensor([ctx + cont]))[0].double().log_softmax(-1)
    per = [float(logp[len(ctx) + j - 1, t]) for j, t in enumerate(cont)]
    return {"prompt": prompt, "continuation": continuation, "ids": cont, "tokens": per, "logprob": sum(per)}


def main():
    out = sys.argv[1]
    tmp = f"{out}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build(ModelConfig.from_hf(CONFIG), dtype=torch.float32).eval()
    # The first seed whose greedy decodings have no near tie (which float rounding in onnxruntime could flip).
    for seed in range(1, 100):
        init_weights(model, seed=seed)
        refs = []
        for p in PROMPTS:
            ids, margin = greedy(model, p, 12)
            refs.append({"prompt": p, "max_new_tokens": 12, "ids": ids, "min_margin": margin})
        if min(r["min_margin"] for r in refs) > 1e-2:
            break
    else:
        sys.exit("onnx_fixture.py: every seed gives a near tie in greedy decoding")
    d = os.path.join(tmp, "model")
    hf_io.save_pretrained(model, model.config, d, dtype=torch.float32)
    export_onnx(d, os.path.join(d, "model.onnx"))
    with open(os.path.join(d, "byte_tokenizer.json"), "w") as f:
        json.dump({"type": "bytes", "bos_token_id": BOS, "eos_token_id": EOS, "vocab_size": VOCAB}, f)
    ref = {"greedy": refs, "scores": [score(model, p, c) for p, c in PAIRS], "torch": torch.__version__}
    with open(os.path.join(tmp, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1, ensure_ascii=False)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)


if __name__ == "__main__":
    main()
