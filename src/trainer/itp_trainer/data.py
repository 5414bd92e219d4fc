"""The token artifact (README.md) as micro batches: which examples each optimizer step takes, padded on the right.

The data order is a pure function of (seed, epoch, step): a permutation of the units per epoch, drawn from a generator
seeded with `seed` and the epoch. A checkpoint therefore saves only the step it reached; resuming recomputes the same
order, whatever the number of processes.
"""

import math
from dataclasses import dataclass
from typing import List, Optional

import torch

from . import hf_io
from .errors import UserError

IGNORE = -100


@dataclass
class MicroBatch:
    input_ids: torch.Tensor  # int64 [B, L]
    position_ids: torch.Tensor  # int64 [B, L]
    targets: torch.Tensor  # int64 [B, L]: the token to predict at each position, IGNORE where none
    tokens: int  # real (unpadded) tokens
    rows: int  # real rows (padding rows of an empty slot excluded)


class TokenData:
    """The artifact's flat tensors. A unit is what a batch counts: a row (sft) or a chosen/rejected pair (dpo)."""

    def __init__(self, path: str, expect: str):
        try:
            tensors, meta = hf_io.read_safetensors(path)
        except (OSError, ValueError) as e:
            raise UserError(f"config key `data`: cannot read the token artifact {path}: {e}",
                            "the data must be a safetensors token artifact (src/trainer/README.md)")
        for name in ("input_ids", "labels", "position_ids", "row_offsets"):
            if name not in tensors:
                raise UserError(f"token artifact {path} has no tensor `{name}`", "see src/trainer/README.md, the token artifact")
        self.meta = meta or {}
        kind = self.meta.get("kind", "sft")
        if kind != expect:
            raise UserError(f"token artifact {path} holds {kind} data, the method needs {expect} data",
                            "dpo trains on preference pairs; sft, lora and qlora on sft rows")
        ids, labels, pos = tensors["input_ids"], tensors["labels"], tensors["position_ids"]
        offsets = tensors["row_offsets"].to(torch.int64)
        t = ids.numel()
        if not (labels.numel() == t and pos.numel() == t):
            raise UserError(f"token artifact {path}: input_ids, labels and position_ids differ in length")
        if offsets.numel() < 2 or int(offsets[0]) != 0 or int(offsets[-1]) != t or bool((offsets[1:] < offsets[:-1]).any()):
            raise UserError(f"token artifact {path}: row_offsets must rise from 0 to the number of tokens ({t})")
        self.input_ids = ids.to(torch.int32).reshape(-1)
        self.position_ids = pos.to(torch.int32).reshape(-1)
        self.offsets = offsets
        self.targets = _shift_targets(labels.to(torch.int64).reshape(-1), self.position_ids, offsets).to(torch.int32)
        self.rows = offsets.numel() - 1
        self.pairs = expect == "preference"
        if self.pairs and self.rows % 2:
            raise UserError(f"token artifact {path}: preference data needs an even number of rows (chosen, rejected), got {self.rows}")
        self.units = self.rows // 2 if self.pairs else self.rows
        if self.units == 0:
            raise UserError(f"token artifact {path} holds no examples")
        self.loss_per_row = torch.zeros(self.rows, dtype=torch.int64)
        row_of = torch.repeat_interleave(torch.arange(self.rows), offsets[1:] - offsets[:-1])
        self.loss_per_row.index_add_(0, row_of, (self.targets != IGNORE).to(torch.int64))
        self.tokens_per_row = offsets[1:] - offsets[:-1]
        self.max_row = int(self.tokens_per_row.max())

    def unit_rows(self, unit: int) -> List[int]:
        return [2 * unit, 2 * unit + 1] if self.pairs else [unit]

    def loss_tokens(self, units: List[int]) -> int:
        return sum(int(self.loss_per_row[r]) for u in units for r in self.unit_rows(u))

    def tokens(self, units: List[int]) -> int:
        return sum(int(self.tokens_per_row[r]) for u in units for r in self.unit_rows(u))

    def collate(self, units: List[int], pad_multiple: int = 1) -> MicroBatch:
        """Rows padded on the right; an empty slot list gives one masked one-token row (a rank with nothing to do
        still takes part in the collective calls of its step)."""
        rows = [r for u in units for r in self.unit_rows(u)]
        if not rows:
            z = torch.zeros(1, 1, dtype=torch.int64)
            return MicroBatch(z, z.clone(), torch.full((1, 1), IGNORE, dtype=torch.int64), 0, 0)
        lengths = [int(self.tokens_per_row[r]) for r in rows]
        width = max(lengths)
        width = -(-width // pad_multiple) * pad_multiple
        ids = torch.zeros(len(rows), width, dtype=torch.int64)
        tgt = torch.full((len(rows), width), IGNORE, dtype=torch.int64)
        # Padding continues the last example's positions: causal attention keeps it out of the real tokens' view.
        pos = torch.arange(width, dtype=torch.int64).repeat(len(rows), 1)
        for i, (r, n) in enumerate(zip(rows, lengths)):
            a = int(self.offsets[r])
            ids[i, :n] = self.input_ids[a:a + n]
            tgt[i, :n] = self.targets[a:a + n]
            p = self.position_ids[a:a + n].to(torch.int64)
            pos[i, :n] = p
            if n < width:
                pos[i, n:] = torch.arange(1, width - n + 1) + p[-1]
        return MicroBatch(ids, pos, tgt, sum(lengths), len(rows))


def _shift_targets(labels: torch.Tensor, pos: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """targets[i] = labels[i+1]: none at a row's last token, nor where the next token starts another packed example."""
    t = labels.numel()
    targets = torch.full_like(labels, IGNORE)
    if t > 1:
        targets[:-1] = labels[1:]
        targets[:-1][pos[1:] == 0] = IGNORE
    ends = offsets[1:] - 1
    targets[ends[ends >= 0]] = IGNORE
    return targets


class DataOrder:
    """Units of each optimizer step: `batch_size` units per step (the last step of an epoch may have fewer), epochs may
    be fractional (the run stops after ceil(epochs x steps per epoch) steps)."""

    def __init__(self, units: int, batch_size: int, epochs: float, seed: int, max_steps: Optional[int] = None):
        self.units = units
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_epoch = math.ceil(units / batch_size)
        total = max(1, math.ceil(epochs * self.steps_per_epoch - 1e-9))
        self.total_steps = min(total, max_steps) if max_steps else total
        self._perm_epoch = -1
        self._perm = None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            g = torch.Generator()
            g.manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.units, generator=g)
            self._perm_epoch = epoch
        return self._perm

    def epoch_of(self, step: int) -> float:
        """Epochs completed after `step` steps (for the metrics line)."""
        return step / self.steps_per_epoch

    def step_units(self, step: int) -> List[int]:
        """Units of optimizer step `step` (0-based)."""
        epoch, i = divmod(step, self.steps_per_epoch)
        perm = self._permutation(epoch)
        return perm[i * self.batch_size:(i + 1) * self.batch_size].tolist()


def split_for_rank(units: List[int], rank: int, world: int, grad_accum: int, micro: int) -> List[List[int]]:
    """This rank's `grad_accum` micro batches of the step's units: rank r takes the r-th contiguous share of the
    global batch, so the global batch is the same whatever the number of processes. Every rank gets exactly
    `grad_accum` lists (some empty at the end of an epoch)."""
    share = grad_accum * micro
    mine = units[rank * share:(rank + 1) * share]
    return [mine[i * micro:(i + 1) * micro] for i in range(grad_accum)]
