"""Shared by the trainer tests: a tiny random Llama directory, token artifacts written with our safetensors writer,
and ways to run the trainer (in this process for speed, as a subprocess where a test kills it or reads exit codes)."""

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from typing import Dict, List, Optional, Tuple

import torch

torch.set_num_threads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(HERE)  # src/trainer
PYTHON = os.environ.get("ITP_PYTHON") or sys.executable

TINY = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64, "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
    "bos_token_id": 1, "eos_token_id": 2,
}


def make_base(directory: str, **changes) -> str:
    """A config-only model directory: the trainer initializes it at random from the run's seed."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(dict(TINY, **changes), f)
    return directory


def progression(g: torch.Generator, length: int, vocab: int = 64) -> List[int]:
    """A learnable sequence: BOS, then an arithmetic progression modulo the vocabulary (start and stride random)."""
    start = int(torch.randint(3, vocab, (1,), generator=g))
    stride = int(torch.randint(1, 4, (1,), generator=g))
    return [1] + [3 + (start + i * stride) % (vocab - 3) for i in range(length - 1)]


def write_artifact(path: str, rows: List[Tuple[List[int], List[int], List[int]]], kind: str = "sft", packing: bool = False) -> str:
    """rows: (input_ids, labels, position_ids) each; written in the contract's layout (README.md)."""
    from itp_trainer.hf_io import write_safetensors

    ids = [t for r in rows for t in r[0]]
    labels = [t for r in rows for t in r[1]]
    pos = [t for r in rows for t in r[2]]
    offsets = [0]
    for r in rows:
        offsets.append(offsets[-1] + len(r[0]))
    write_safetensors(path, {
        "input_ids": torch.tensor(ids, dtype=torch.int32), "labels": torch.tensor(labels, dtype=torch.int32),
        "position_ids": torch.tensor(pos, dtype=torch.int32), "row_offsets": torch.tensor(offsets, dtype=torch.int64),
    }, {"kind": kind, "max_length": str(max(len(r[0]) for r in rows)), "packing": "true" if packing else "false",
        "examples": str(len(rows) if kind == "sft" else len(rows) // 2)})
    return path


def sft_rows(n: int, seed: int = 0, min_len: int = 10, max_len: int = 24, prompt: int = 3):
    """n examples of varied length; the first `prompt` tokens are masked (a prompt, as loss_on = assistant does)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(min_len, max_len + 1, (1,), generator=g))
        ids = progression(g, length)
        labels = [-100] * prompt + ids[prompt:]
        rows.append((ids, labels, list(range(length))))
    return rows


def packed_rows(n: int, seed: int = 0, per_row: int = 3):
    """Rows of several examples each, position ids restarting at each example."""
    singles = sft_rows(n * per_row, seed)
    rows = []
    for i in range(n):
        part = singles[i * per_row:(i + 1) * per_row]
        rows.append(tuple([t for r in part for t in r[k]] for k in range(3)))
    return rows


def preference_rows(n: int, seed: int = 0, prompt: int = 4, answer: int = 8):
    """Pairs: chosen continues the prompt's progression, rejected is random tokens; prompts are masked."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        seq = progression(g, prompt + answer)
        bad = seq[:prompt] + [int(t) for t in torch.randint(3, 64, (answer,), generator=g)]
        for ids in (seq, bad):
            rows.append((ids, [-100] * prompt + ids[prompt:], list(range(len(ids)))))
    return rows


def config(tmp: str, method: str = "sft", **over) -> Dict:
    cfg = {
        "method": method, "base": os.path.join(tmp, "base"), "data": os.path.join(tmp, "data.safetensors"),
        "output_dir": os.path.join(tmp, "out"), "checkpoint_dir": None, "epochs": 1, "lr": 1e-2, "batch_size": 4,
        "micro_batch_size": 2, "warmup_ratio": 0.0, "schedule": "constant", "precision": "fp32",
        "gradient_checkpointing": False, "seed": 3, "device": "cpu",
    }
    cfg.update(over)
    return cfg


def write_config(tmp: str, cfg: Dict, name: str = "config.json") -> str:
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def events(text: str) -> List[Dict]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def train_in_process(tmp: str, cfg: Dict) -> Tuple[int, List[Dict], str]:
    """Runs `train --config` in this process (no interpreter start-up): exit code, JSON events, stderr text."""
    from itp_trainer.cli import main

    path = write_config(tmp, cfg)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["train", "--config", path])
    return rc, events(out.getvalue()), err.getvalue()


def trainer_command(config_path: str) -> List[str]:
    return [PYTHON, "-m", "itp_trainer", "train", "--config", config_path]


def trainer_env(**extra) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def train_subprocess(tmp: str, cfg: Dict, name: str = "config.json") -> Tuple[int, List[Dict], str]:
    path = write_config(tmp, cfg, name)
    p = subprocess.run(trainer_command(path), env=trainer_env(), capture_output=True, text=True, timeout=300)
    return p.returncode, events(p.stdout), p.stderr


def steps(evs: List[Dict]) -> List[Dict]:
    return [e for e in evs if e["event"] == "step"]


def weight_digests(directory: str) -> Dict[str, str]:
    """sha256 of each safetensors file: equal digests, equal bytes."""
    import hashlib

    out = {}
    for name in sorted(os.listdir(directory)):
        p = os.path.join(directory, name)
        if os.path.isfile(p) and name.endswith(".safetensors"):
            with open(p, "rb") as f:
                out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_ranks(tmp: str, cfg: Dict, processes: int, name: str = "config.json") -> List[Tuple[int, List[Dict], str]]:
    """Starts `processes` trainer processes with the environment torchrun gives its workers (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Debian 12's torchrun (torch 1.13 on Python 3.11) fails before starting
    any worker, so the test plays its part; what runs is the same program."""
    path = write_config(tmp, cfg, name)
    port = str(free_port())
    procs = []
    for rank in range(processes):
        env = trainer_env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(processes), LOCAL_WORLD_SIZE=str(processes),
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        procs.append(subprocess.Popen(trainer_command(path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append((p.returncode, events(stdout), stderr))
    return out
