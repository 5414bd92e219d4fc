"""Direct preference optimization (Rafailov et al., 2023): sigmoid loss with beta, or IPO (Azar et al., 2023).

The reference model's log-probabilities do not change during training, so they are computed once, before the first
step, and cached in `dpo.reference_logps` (a retry or resume reads them instead of running the reference again).
Without `dpo.reference` the reference is the base model, which is the policy before its first step: no second model
is loaded.
"""

import os
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F

from .data import IGNORE, MicroBatch
from .errors import UserError

FORMAT = "itp-dpo-reference-logps/1"


def row_logps(logits: torch.Tensor, targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per row: the sum of log p(target) over the loss tokens, and their number."""
    tgt = targets.to(logits.device)
    nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), tgt.reshape(-1), ignore_index=IGNORE, reduction="none")
    nll = nll.view(tgt.shape)
    return -nll.sum(-1), (tgt != IGNORE).sum(-1)


def _identity(trainer) -> Dict:
    cfg = trainer.cfg
    st = os.stat(cfg.data)
    return {"format": FORMAT, "reference": os.path.abspath(cfg.dpo.reference or cfg.base), "data": os.path.abspath(cfg.data),
            "data_size": st.st_size, "pairs": trainer.data.units, "precision": cfg.precision, "seed": cfg.seed}


def reference_logps(trainer, cfg) -> torch.Tensor:
    """[pairs, 2, 2]: for each pair (chosen, rejected) the reference's (sum of log-probs, loss tokens)."""
    path = cfg.dpo.reference_logps
    ident = _identity(trainer)
    if path and os.path.isfile(path):
        try:
            cached = torch.load(path, map_location="cpu")
        except Exception:
            cached = None
        if cached is not None and cached.get("identity") == ident:
            trainer.emit.log(f"dpo: reference log-probs read from {path}")
            return cached["logps"]
        trainer.emit.log(f"dpo: {path} does not match this run's data or reference; computing again")
    model = trainer.model if not cfg.dpo.reference else trainer._load_model(cfg.dpo.reference, torch.float32)
    d = trainer.d
    n = trainer.data.units
    out = torch.zeros(n, 2, 2, dtype=torch.float64)
    was_training = model.training
    model.eval()
    step = cfg.micro_batch_size
    with torch.no_grad():
        # Ranks take turns over the pairs; one all-reduce puts the pieces together.
        for start in range(d.rank * step, n, step * d.world):
            units = list(range(start, min(n, start + step)))
            mb = trainer.data.collate(units)
            logits = trainer.forward_logits(model, mb)
            s, c = row_logps(logits, mb.targets)
            out[units, :, 0] = s.double().cpu().view(-1, 2)
            out[units, :, 1] = c.double().cpu().view(-1, 2)
    model.train(was_training)
    if model is not trainer.model:
        del model
    if d.world > 1:
        import torch.distributed as dist
        t = out.to(d.device)
        dist.all_reduce(t)
        out = t.cpu()
    empty = (out[..., 1] == 0).nonzero()
    if len(empty):
        i, which = empty[0].tolist()
        raise UserError(f"dpo: pair {i} has no loss tokens in its {'chosen' if which == 0 else 'rejected'} answer",
                        "the answer was truncated away or masked: raise max_length or check the data")
    if path and d.main:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            torch.save({"identity": ident, "logps": out}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    trainer.emit.log(f"dpo: reference log-probs of {n} pairs computed")
    return out


def pair_loss(policy: torch.Tensor, ref: torch.Tensor, beta: float, kind: str) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """policy, ref: [pairs, 2] log-probs of (chosen, rejected). Returns per-pair losses and the chosen and rejected
    rewards beta x (log pi - log ref)."""
    logits = (policy[:, 0] - policy[:, 1]) - (ref[:, 0] - ref[:, 1])
    if kind == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        losses = -F.logsigmoid(beta * logits)
    rewards = beta * (policy - ref).detach()
    return losses, rewards[:, 0], rewards[:, 1]


def loss_sum(trainer, model, mb: MicroBatch, units: List[int]):
    """Sum of the DPO losses of this micro batch's pairs, and sums of the reported statistics."""
    logits = trainer.forward_logits(model, mb)
    if not units:  # an empty slot: zero loss that still reaches every parameter (DDP needs its gradients)
        return logits.float().sum() * 0.0, {}
    s, c = row_logps(logits, mb.targets)
    policy = s.view(-1, 2)
    ref_all = trainer.reference_logps[units].to(policy.device)
    ref = ref_all[..., 0]
    kind = trainer.cfg.dpo.loss
    if kind == "ipo":  # IPO compares average log-probs per token (as TRL does)
        count = c.view(-1, 2).clamp(min=1).to(policy.dtype)
        policy = policy / count
        ref = ref / ref_all[..., 1].clamp(min=1)
    losses, chosen, rejected = pair_loss(policy, ref.to(policy.dtype), trainer.cfg.dpo.beta, kind)
    stats = {"reward_accuracy": float((chosen > rejected).float().sum()), "reward_margin": float((chosen - rejected).sum()),
             "chosen_reward": float(chosen.sum()), "rejected_reward": float(rejected.sum())}
    return losses.sum(), stats
