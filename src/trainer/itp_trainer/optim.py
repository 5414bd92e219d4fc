"""Optimizers and learning-rate schedules.

Schedules follow transformers' `get_*_schedule_with_warmup` exactly (the multiplier of optimizer step s, counted
from 0, is the one used by that step), so a recipe ported from Tulu or Alpaca gets the same learning rates.
"""

import inspect
import math
from typing import Iterable, List

import torch


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    return math.ceil(total_steps * warmup_ratio)


def lr_multiplier(kind: str, step: int, total: int, warmup: int) -> float:
    """The learning-rate multiplier for optimizer step `step` (0-based) of `total`, after `warmup` warmup steps."""
    if step < warmup:
        return step / max(1, warmup)
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if kind == "linear":
        return max(0.0, 1.0 - progress)
    if kind == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    raise ValueError(f"unknown schedule {kind}")


class Schedule:
    """Sets the optimizer's learning rate for each step; its state is the step, so a checkpoint saves one integer."""

    def __init__(self, optimizer: torch.optim.Optimizer, kind: str, peak_lr: float, total: int, warmup: int):
        self.optimizer, self.kind, self.peak, self.total, self.warmup = optimizer, kind, peak_lr, total, warmup

    def lr_at(self, step: int) -> float:
        return self.peak * lr_multiplier(self.kind, step, self.total, self.warmup)

    def apply(self, step: int) -> float:
        lr = self.lr_at(step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        return lr


class Adafactor(torch.optim.Optimizer):
    """Adafactor (Shazeer & Stern, 2018) with an external learning rate, as Flan and T5 fine-tuning use it through
    transformers (`relative_step=False, scale_parameter=False, warmup_init=False`): second moments factored into row
    and column averages for matrices, update clipped to RMS 1, no first moment unless beta1 is given."""

    def __init__(self, params: Iterable, lr: float, eps=(1e-30, 1e-3), clip_threshold=1.0, decay_rate=-0.8,
                 beta1=None, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, eps=eps, clip_threshold=clip_threshold, decay_rate=decay_rate,
                                      beta1=beta1, weight_decay=weight_decay))

    @staticmethod
    def _rms(t: torch.Tensor) -> torch.Tensor:
        return t.norm(2) / (t.numel() ** 0.5)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            eps1, _ = group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.float()
                state = self.state[p]
                factored = grad.dim() >= 2
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    if factored:
                        state["row"] = torch.zeros(grad.shape[:-1], dtype=torch.float32, device=grad.device)
                        state["col"] = torch.zeros(grad.shape[:-2] + grad.shape[-1:], dtype=torch.float32, device=grad.device)
                    else:
                        state["sq"] = torch.zeros_like(grad)
                    if group["beta1"] is not None:
                        state["avg"] = torch.zeros_like(grad)
                state["step"] += 1
                t = float(state["step"])
                beta2 = 1.0 - t ** group["decay_rate"]
                sq = grad * grad + eps1
                if factored:
                    row, col = state["row"], state["col"]
                    row.mul_(beta2).add_(sq.mean(dim=-1), alpha=1 - beta2)
                    col.mul_(beta2).add_(sq.mean(dim=-2), alpha=1 - beta2)
                    r = (row / row.mean(dim=-1, keepdim=True)).rsqrt_().unsqueeze(-1)
                    c = col.unsqueeze(-2).rsqrt()
                    update = grad * r * c
                else:
                    state["sq"].mul_(beta2).add_(sq, alpha=1 - beta2)
                    update = grad * state["sq"].rsqrt()
                update.div_((self._rms(update) / group["clip_threshold"]).clamp_(min=1.0))
                update.mul_(group["lr"])
                if group["beta1"] is not None:
                    state["avg"].mul_(group["beta1"]).add_(update, alpha=1 - group["beta1"])
                    update = state["avg"]
                pf = p.data.float() if p.dtype != torch.float32 else p.data
                if group["weight_decay"]:
                    pf.add_(pf, alpha=-group["weight_decay"] * group["lr"])
                pf.add_(-update)
                if pf is not p.data:
                    p.data.copy_(pf)
        return None


def param_groups(named: List, weight_decay: float) -> List[dict]:
    """Weight decay on matrices only (not norms or biases), as transformers' Trainer does."""
    decay = [p for n, p in named if p.dim() >= 2]
    rest = [p for n, p in named if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0})
    return groups


def build_optimizer(kind: str, named_params: List, lr: float, weight_decay: float, betas, device: str) -> torch.optim.Optimizer:
    groups = param_groups(named_params, weight_decay)
    if kind == "adafactor":
        return Adafactor(groups, lr=lr)
    # Fused AdamW (one kernel for all parameters) on CUDA where this torch has it, else foreach (multi-tensor).
    sig = inspect.signature(torch.optim.AdamW.__init__).parameters
    kwargs = {}
    if device == "cuda" and "fused" in sig and all(p.dtype in (torch.float32, torch.float16, torch.bfloat16) for _, p in named_params):
        kwargs["fused"] = True
    elif "foreach" in sig:
        kwargs["foreach"] = True
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=1e-8, **kwargs)
