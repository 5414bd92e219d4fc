"""Benchmark train-gpu: the trainer on a ~1B Llama-shaped model on one GPU, against a plain transformers loop.

Needs Python, PyTorch (CUDA) and, for the comparison, transformers; no Node. Run directly on the GPU machine:

    python3 test/bench/train-gpu.py [--seconds 120] [--no-compile] [--skip-transformers]

(or `npm run bench -- train-gpu`, which runs this file). Exits 0 with a message where no CUDA GPU exists.

Both sides train the same model from the same config.json (random init, not downloaded): hidden 2048, 16 layers,
32 heads, 8 KV heads, intermediate 8192, vocabulary 32000 (1.1B parameters), sequence 2048, micro batch 8,
2 accumulation steps (32,768 tokens per optimizer step), fp32 master weights with bf16 autocast, fused AdamW, no
gradient checkpointing, on random tokens prepared beforehand in the token artifact format (written with the
trainer's own safetensors writer).
- Ours: `python -m itp_trainer train --config ...` exactly as the executor starts it (its data order, label
  shifting, loss normalization, clipping, metrics lines, the model written at the end), with `compile: true`
  (each decoder layer compiled with torch.compile; --no-compile turns it off), for --seconds of loop time.
- Peer: a plain loop over transformers' LlamaForCausalLM (attn_implementation "sdpa", same config, same rows in
  the same micro batches, the same loss arithmetic, clipping, fused AdamW), eager, for the same time.
Each side's tokens/s is taken after its first 3 optimizer steps (compilation and allocator warm-up), from the
steps' wall time; ours runs 45 s longer when compiling, so that both measure about --seconds. MFU = FLOPs per token x tokens/s / the GPU's dense bf16 peak, FLOPs per token as the trainer
counts them (6N + 12 x layers x heads x head_dim x seq, PaLM's convention), the same for both sides.
Last line: `bench train-gpu: tokens_per_s=... mfu=... ratio_vs_transformers=... transformers_tokens_per_s=...`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINER = os.path.join(HERE, "..", "..", "src", "trainer")
sys.path.insert(0, TRAINER)

MODEL = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000, "hidden_size": 2048,
    "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
    "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.02,
}
SEQ, MICRO, ACCUM, WARMUP_STEPS = 2048, 8, 2, 3


def log(msg: str) -> None:
    print(f"[train-gpu {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def prepare(d: str, rows: int, layers: int) -> None:
    from itp_trainer.hf_io import write_safetensors

    os.makedirs(os.path.join(d, "base"), exist_ok=True)
    with open(os.path.join(d, "base", "config.json"), "w") as f:
        json.dump(dict(MODEL, num_hidden_layers=layers), f)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, MODEL["vocab_size"], (rows * SEQ,), generator=g, dtype=torch.int64).to(torch.int32)
    write_safetensors(os.path.join(d, "data.safetensors"), {
        "input_ids": ids, "labels": ids.clone(), "position_ids": torch.arange(SEQ, dtype=torch.int32).repeat(rows),
        "row_offsets": torch.arange(0, rows * SEQ + 1, SEQ, dtype=torch.int64),
    }, {"kind": "sft", "max_length": str(SEQ), "packing": "false", "examples": str(rows)})


def ours(d: str, seconds: float, compile_: bool):
    cfg = {"method": "sft", "base": os.path.join(d, "base"), "data": os.path.join(d, "data.safetensors"),
           "output_dir": os.path.join(d, "out"), "epochs": 1, "lr": 1e-4, "batch_size": MICRO * ACCUM,
           "micro_batch_size": MICRO, "warmup_ratio": 0.0, "schedule": "constant", "precision": "bf16",
           "gradient_checkpointing": False, "seed": 0, "device": "cuda", "compile": compile_,
           # Compilation happens inside the first steps: ours gets that much longer, so both measure `seconds`.
           "max_seconds": seconds + (45 if compile_ else 5)}
    path = os.path.join(d, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ, PYTHONPATH=TRAINER)
    t0 = time.time()
    p = subprocess.Popen([sys.executable, "-m", "itp_trainer", "train", "--config", path], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    steps, other = [], []
    for line in p.stdout:
        if line.startswith("{"):
            ev = json.loads(line)
            if ev["event"] == "step":
                steps.append(ev)
                if ev["step"] <= WARMUP_STEPS or ev["step"] % 10 == 0:
                    log(f"ours step {ev['step']}: loss {ev['loss']:.3f}, {ev['tokens_per_s']:.0f} tokens/s, mfu {ev['mfu']}, "
                        f"{ev['memory_mb']:.0f} MB, {ev['elapsed_s']:.0f} s")
            elif ev["event"] in ("start", "done", "error"):
                log(f"ours {line.strip()[:300]}")
        else:
            other.append(line)
    rc = p.wait()
    if rc != 0 or len(steps) <= WARMUP_STEPS + 1:
        log(f"ours failed (exit {rc}, {len(steps)} steps):\n{''.join(other[-40:])}")
        return None
    a, b = steps[WARMUP_STEPS - 1], steps[-1]
    tokens = (b["step"] - a["step"]) * MICRO * ACCUM * SEQ
    tps = tokens / (b["elapsed_s"] - a["elapsed_s"])
    log(f"ours: {len(steps)} steps in {time.time() - t0:.0f} s wall (start-up and writing the model included)")
    return {"tps": tps, "memory_mb": steps[-1]["memory_mb"]}


def transformers_loop(d: str, seconds: float, layers: int):
    try:
        import transformers
    except ImportError:
        log("transformers is not installed: no comparison")
        return None
    from itp_trainer.hf_io import read_safetensors

    dev = torch.device("cuda")
    hf_cfg = transformers.LlamaConfig(**{k: v for k, v in dict(MODEL, num_hidden_layers=layers).items() if k != "architectures"})
    hf_cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with dev:
        model = transformers.LlamaForCausalLM(hf_cfg)
    model.train()
    log(f"transformers {transformers.__version__}: LlamaForCausalLM, attention {model.config._attn_implementation}")
    tensors, _ = read_safetensors(os.path.join(d, "data.safetensors"))
    rows = tensors["row_offsets"].numel() - 1
    ids = tensors["input_ids"].to(torch.int64).view(rows, SEQ)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    n = MICRO * ACCUM * (SEQ - 1)
    start, t_warm, step, tokens = time.time(), None, 0, 0
    while time.time() - start < seconds:
        for i in range(ACCUM):
            r = ((step * ACCUM + i) * MICRO) % (rows - MICRO)
            x = ids[r:r + MICRO].to(dev, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(input_ids=x, use_cache=False).logits
            loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="sum") / n
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_value = float(loss)  # one sync per step, as the trainer's metrics line has
        step += 1
        if step == WARMUP_STEPS:
            torch.cuda.synchronize()
            t_warm = time.time()
        elif step > WARMUP_STEPS:
            tokens += MICRO * ACCUM * SEQ
        if step <= WARMUP_STEPS or step % 10 == 0:
            log(f"transformers step {step}: loss {loss_value * ACCUM:.3f}, {time.time() - start:.0f} s")
    torch.cuda.synchronize()
    if t_warm is None or tokens == 0:
        log("transformers: too few steps to measure")
        return None
    mem = torch.cuda.max_memory_allocated() / 2**20
    return {"tps": tokens / (time.time() - t_warm), "memory_mb": mem}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120, help="training time of each side (default 120)")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--no-compile", action="store_true", help="run the trainer without torch.compile")
    ap.add_argument("--skip-transformers", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench train-gpu: skipped, no CUDA GPU on this machine (torch.cuda.is_available() is false)")
        return 0
    from itp_trainer.metrics import peak_flops
    from itp_trainer.model import ModelConfig, flops_per_token

    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(dev)
    peak = peak_flops(dev)
    mcfg = ModelConfig.from_hf(dict(MODEL, num_hidden_layers=args.layers))
    fpt = flops_per_token(mcfg, SEQ)
    log(f"{name}, torch {torch.__version__}, peak bf16 {peak}, {fpt / 6 / 1e9:.2f}B matmul params, {fpt:.3g} FLOPs/token")
    with tempfile.TemporaryDirectory(prefix="itp-bench-train-gpu-") as d:
        # Enough rows that no side runs out within the time (at up to 100k tokens/s), each used once.
        rows = int(max(64, args.seconds * 100_000 / SEQ))
        prepare(d, rows, args.layers)
        log(f"prepared {rows} rows of {SEQ} tokens")
        mine = ours(d, args.seconds, not args.no_compile)
        if mine is None and not args.no_compile:
            log("retrying without compile")
            mine = ours(d, args.seconds, False)
        if mine is None:
            print("bench train-gpu: failed (see the trainer's output above)")
            return 1
        theirs = None if args.skip_transformers else transformers_loop(d, args.seconds, args.layers)
    mfu = fpt * mine["tps"] / peak if peak else float("nan")
    line = f"bench train-gpu: tokens_per_s={mine['tps']:.0f} mfu={mfu:.3f}"
    if theirs:
        line += (f" ratio_vs_transformers={mine['tps'] / theirs['tps']:.3f} transformers_tokens_per_s={theirs['tps']:.0f}"
                 f" transformers_mfu={fpt * theirs['tps'] / peak if peak else float('nan'):.3f}")
    line += f" memory_mb={mine['memory_mb']:.0f} gpu={name.replace(' ', '_')}"
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
