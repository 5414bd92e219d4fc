"""The evaluation tests' model and their independent reference (test/eval-models.test.ts).

  /usr/bin/python3 src/trainer/tests/eval_fixture.py build OUT_DIR
      A tiny random Llama as a Hugging Face folder (config.json, model.safetensors, byte_tokenizer.json: ids 0-255
      are bytes, 256 BOS, 257 EOS) plus its ONNX export (model.onnx), written under a temporary name and renamed.
  /usr/bin/python3 src/trainer/tests/eval_fixture.py reference MODEL_DIR REQUESTS.json
      Prints what torch computes for {"loglik": [[context, continuation], ...], "generate": [[prompt, max_tokens],
      ...]}: per pair the summed log-probability (float64 log-softmax of the whole sequence's logits, one sequence at
      a time, no batching, no cache) and whether every continuation token is the argmax; per prompt the greedy
      tokens (the whole sequence run again at every step).
"""
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from itp_trainer import hf_io  # noqa: E402
from itp_trainer.model import ModelConfig, build as build_model, init_weights  # noqa: E402

BOS, EOS, VOCAB = 256, 257, 258
CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB, "hidden_size": 48,
    "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "bos_token_id": BOS,
    "eos_token_id": EOS, "initializer_range": 0.3,
}


def encode(text):
    return list(text.encode("utf-8"))


def build(out):
    from itp_trainer.onnx_export import export_onnx

    torch.manual_seed(0)
    torch.set_num_threads(1)
    tmp = f"{out}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model = build_model(ModelConfig.from_hf(CONFIG), dtype=torch.float32).eval()
    init_weights(model, seed=7)
    hf_io.save_pretrained(model, model.config, tmp, dtype=torch.float32)
    with open(os.path.join(tmp, "byte_tokenizer.json"), "w") as f:
        json.dump({"type": "bytes", "bos_token_id": BOS, "eos_token_id": EOS, "vocab_size": VOCAB}, f)
    export_onnx(tmp, os.path.join(tmp, "model.onnx"))
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)


@torch.no_grad()
def reference(model_dir, requests_file):
    torch.set_num_threads(1)
    model = hf_io.load_pretrained(model_dir, dtype=torch.float32).eval()
    with open(requests_file) as f:
        req = json.load(f)
    loglik = []
    for context, continuation in req.get("loglik", []):
        # lm-evaluation-harness: whitespace ending the context moves to the continuation.
        n = len(context) - len(context.rstrip())
        if n:
            context, continuation = context[:-n], context[-n:] + continuation
        ctx, cont = [BOS] + encode(context), encode(continuation)
        logits = model(torch.tensor([ctx + cont]))[0].double()
        logp = logits.log_softmax(-1)
        total, greedy = 0.0, True
        for j, t in enumerate(cont):
            row = len(ctx) + j - 1
            total += float(logp[row, t])
            greedy = greedy and int(logits[row].argmax()) == t
        loglik.append({"logprob": total, "greedy": greedy, "tokens": len(cont)})
    generate = []
    for prompt, max_tokens in req.get("generate", []):
        ids, out = [BOS] + encode(prompt), []
        while len(out) < max_tokens:
            t = int(model(torch.tensor([ids]))[0, -1].argmax())
            out.append(t)
            ids.append(t)
            if t == EOS:
                break
        generate.append(out)
    json.dump({"loglik": loglik, "generate": generate}, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2])
    else:
        reference(sys.argv[2], sys.argv[3])
