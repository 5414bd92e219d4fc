"""Model-side throughput on one GPU: the built-in CausalLM against transformers' LlamaForCausalLM, same config, same
tokens, same loss (cross-entropy in float32) and optimizer (fused AdamW); a ~1B Llama (Llama 3.2 1B's shape), seq
2048, micro batch 4, no gradient checkpointing. Prints one JSON line per variant (tokens/s, MFU against 989 TFLOPS).

Usage (needs CUDA PyTorch and transformers): python3 scripts/trainer-model-gpu.py [VARIANT ...]
The numbers in CausalLM.compile_layers' docstring come from this script on an H200. The trainer's own end-to-end
benchmark is `train-gpu`."""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "trainer"))
from itp_trainer.model import ModelConfig, build, flops_per_token, init_weights  # noqa: E402

CFG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256, "hidden_size": 2048,
    "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
    "head_dim": 64, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192},
    "tie_word_embeddings": True, "bos_token_id": 128000, "eos_token_id": 128001,
}
PEAK = 989.4e12  # H100/H200 dense bf16
SEQ = int(os.environ.get("SEQ", 2048))
MB = int(os.environ.get("MB", 4))
STEPS = int(os.environ.get("STEPS", 8))


def ours(dtype):
    m = build(ModelConfig.from_hf(CFG), device="cuda", dtype=dtype)
    init_weights(m, 0)
    return m


def theirs(dtype):
    import transformers
    c = transformers.LlamaConfig(**{k: v for k, v in CFG.items() if k != "architectures"})
    c._attn_implementation = "sdpa"
    with torch.device("cuda"):
        m = transformers.LlamaForCausalLM(c).to(dtype)
    return m


def run(name, make, weights, autocast, compile_layers=False, whole=False):
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = make(weights)
    model.train()
    hf = not hasattr(model, "layer_class")
    if compile_layers:
        model.compile_layers()
    if whole:
        model = torch.compile(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randint(0, CFG["vocab_size"], (MB, SEQ), device="cuda", generator=g)
    y = torch.roll(x, -1, 1)
    pos = torch.arange(SEQ, device="cuda").expand(MB, SEQ)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=x, position_ids=pos, use_cache=False).logits if hf else model(x, pos)
            loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    t0 = time.time()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    warm = time.time() - t0
    t0 = time.time()
    for _ in range(STEPS):
        loss = step()
    torch.cuda.synchronize()
    dt = (time.time() - t0) / STEPS
    tps = MB * SEQ / dt
    mfu = tps * flops_per_token(ModelConfig.from_hf(CFG), SEQ) / PEAK
    out = {"variant": name, "weights": str(weights).replace("torch.", ""), "autocast": autocast, "step_s": round(dt, 4),
           "tokens_per_s": round(tps), "mfu": round(mfu, 4), "warmup_s": round(warm, 1), "loss": round(loss.item(), 3),
           "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1)}
    print(json.dumps(out), flush=True)
    del model, opt
    return out


if __name__ == "__main__":
    which = sys.argv[1:] or ["ours-bf16", "hf-bf16", "ours-amp", "hf-amp", "ours-bf16-compiled"]
    torch.backends.cuda.matmul.allow_tf32 = True
    variants = {
        "ours-bf16": lambda: run("ours", ours, torch.bfloat16, False),
        "hf-bf16": lambda: run("transformers", theirs, torch.bfloat16, False),
        "ours-amp": lambda: run("ours", ours, torch.float32, True),
        "hf-amp": lambda: run("transformers", theirs, torch.float32, True),
        "ours-bf16-compiled": lambda: run("ours+compile_layers", ours, torch.bfloat16, False, compile_layers=True),
        "ours-amp-compiled": lambda: run("ours+compile_layers", ours, torch.float32, True, compile_layers=True),
        "ours-amp-whole": lambda: run("ours+torch.compile(model)", ours, torch.float32, True, whole=True),
        "hf-amp-whole": lambda: run("transformers+torch.compile(model)", theirs, torch.float32, True, whole=True),
    }
    for w in which:
        try:
            variants[w]()
        except Exception as e:  # one variant failing (memory, compile) must not hide the others
            print(json.dumps({"variant": w, "error": f"{type(e).__name__}: {str(e)[:300]}"}), flush=True)
