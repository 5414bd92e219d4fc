"""Metrics as JSON lines on stdout (the contract in README.md): one object per line, flushed at once."""

import json
import math
import resource
import sys
from typing import Optional

import torch

# Dense bf16 tensor-core peaks (no sparsity), by the name CUDA reports.
PEAK_BF16 = (("H200", 989e12), ("H100", 989e12), ("GH200", 989e12), ("A100", 312e12), ("A800", 312e12),
             ("H800", 989e12), ("L40S", 362e12), ("A10G", 70e12), ("RTX 4090", 165e12))


def _clean(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


class Emitter:
    def __init__(self, enabled: bool, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stdout

    def __call__(self, event: str, **fields) -> None:
        if not self.enabled:
            return
        line = json.dumps({"event": event, **{k: _clean(v) for k, v in fields.items()}})
        self.stream.write(line + "\n")
        self.stream.flush()

    def log(self, text: str) -> None:
        """Free text (not a JSON line): stderr, so stdout stays metrics."""
        if self.enabled:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()


def peak_flops(device: torch.device) -> Optional[float]:
    """The GPU's peak bf16 FLOP/s when known; None on CPU or an unknown GPU (MFU is then null)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAK_BF16:
        if key in name:
            return peak
    return None


def memory_mb(device: torch.device) -> float:
    """Peak memory of this process: allocated CUDA memory on a GPU, resident set size on CPU."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
