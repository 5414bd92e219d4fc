"""Helper of test/bench/train-cpu.ts (run it through `npm run bench -- train-cpu`).

`prepare DIR`: a small Llama config (random init) and a token artifact of random tokens, written with the trainer's
own safetensors writer, plus the trainer's config.json.
`torch DIR`: the peer, a minimal plain PyTorch loop over the same artifact: the same model class (itp_trainer.model,
loaded by hf_io), the same rows in the same micro batches (rows r*micro .. of the artifact, in file order), the same
AdamW (foreach) and clipping, loss as a sum over tokens divided by the step's token count, no metrics, no checkpoints,
no data-order logic. Prints its tokens/s over the steps after WARMUP, as the trainer's figure is taken.
"""

import json
import os
import sys
import time

import torch
import torch.nn.functional as F

MODEL = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 2048, "hidden_size": 128,
    "intermediate_size": 344, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
    "bos_token_id": 1, "eos_token_id": 2,
}
SEQ, ROWS, MICRO, ACCUM, STEPS, WARMUP = 128, 64, 4, 2, 10, 2


def prepare(d: str) -> None:
    from itp_trainer.hf_io import write_safetensors

    os.makedirs(os.path.join(d, "base"), exist_ok=True)
    with open(os.path.join(d, "base", "config.json"), "w") as f:
        json.dump(MODEL, f)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, MODEL["vocab_size"], (ROWS * SEQ,), generator=g, dtype=torch.int64).to(torch.int32)
    pos = torch.arange(SEQ, dtype=torch.int32).repeat(ROWS)
    write_safetensors(os.path.join(d, "data.safetensors"), {
        "input_ids": ids, "labels": ids.clone(), "position_ids": pos,
        "row_offsets": torch.arange(0, ROWS * SEQ + 1, SEQ, dtype=torch.int64),
    }, {"kind": "sft", "max_length": str(SEQ), "packing": "false", "examples": str(ROWS)})
    cfg = {"method": "sft", "base": os.path.join(d, "base"), "data": os.path.join(d, "data.safetensors"),
           "output_dir": os.path.join(d, "out"), "epochs": 2, "lr": 1e-4, "batch_size": MICRO * ACCUM,
           "micro_batch_size": MICRO, "warmup_ratio": 0.0, "schedule": "constant", "precision": "fp32",
           "gradient_checkpointing": False, "seed": 0, "device": "cpu", "max_steps": STEPS}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)


def plain(d: str) -> None:
    from itp_trainer import hf_io

    model = hf_io.load_pretrained(os.path.join(d, "base"), dtype=torch.float32, seed=0)
    tensors, _ = hf_io.read_safetensors(os.path.join(d, "data.safetensors"))
    ids = tensors["input_ids"].to(torch.int64).view(ROWS, SEQ)
    pos = tensors["position_ids"].to(torch.int64).view(ROWS, SEQ)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    model.train()
    tokens, t_start = 0, None
    for step in range(STEPS):
        if step == WARMUP:
            t_start = time.perf_counter()
        rows = [(step * ACCUM + i) * MICRO % ROWS for i in range(ACCUM)]
        n = ACCUM * MICRO * (SEQ - 1)
        for r in rows:
            x, p = ids[r:r + MICRO], pos[r:r + MICRO]
            logits = model(x, p)
            loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="sum") / n
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= WARMUP:
            tokens += ACCUM * MICRO * SEQ
    print(json.dumps({"tokens_per_s": tokens / (time.perf_counter() - t_start)}))


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "trainer"))
    {"prepare": prepare, "torch": plain}[sys.argv[1]](sys.argv[2])
