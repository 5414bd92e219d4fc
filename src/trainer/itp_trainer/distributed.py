"""Several processes through PyTorch's own stack: torchrun sets RANK/WORLD_SIZE/LOCAL_RANK, we join the process group
(gloo on CPU, nccl on CUDA) and wrap the model in DDP, or FSDP for full fine-tuning of a model that does not fit one
GPU. One process (no torchrun) is the same code with world size 1 and no wrapper."""

import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist

from .errors import UserError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    strategy: str = "none"  # none | ddp | fsdp

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def sum(self, values):
        """Sum of a few floats over all processes (one small all-reduce)."""
        if self.world == 1:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        return self.sum([1.0 if flag else 0.0])[0] > 0

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def init(device_kind: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_kind == "cuda":
        if not torch.cuda.is_available():
            raise UserError("device cuda was asked for but this PyTorch sees no CUDA GPU",
                            "install a CUDA build of PyTorch, check CUDA_VISIBLE_DEVICES, or train on cpu")
        if local >= torch.cuda.device_count():
            raise UserError(f"process {local} on this node has no GPU ({torch.cuda.device_count()} visible)")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=rank, world=world, local_rank=local, device=device)


def choose_strategy(d: Dist, parallel: str, method: str, full_train_bytes: int) -> str:
    """DDP unless FSDP is asked for, or `auto` and full fine-tuning would not fit one GPU (weights, gradients and
    AdamW states replicated on every GPU, with a fifth of the memory left for activations)."""
    if d.world == 1:
        return "none"
    if parallel == "fsdp":
        if d.device.type != "cuda":
            raise UserError("parallel fsdp needs CUDA GPUs", "use parallel ddp (or auto) for several CPU processes")
        return "fsdp"
    if parallel == "auto" and method == "sft" and d.device.type == "cuda":
        total = torch.cuda.get_device_properties(d.device).total_memory
        if full_train_bytes > 0.8 * total:
            return "fsdp"
    return "ddp"


def wrap(model: torch.nn.Module, d: Dist, strategy: str, layer_cls: Optional[type], mixed_bf16: bool):
    if strategy == "none":
        return model
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [d.device.index] if d.device.type == "cuda" else None
        return DDP(model, device_ids=ids)
    from functools import partial

    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import MixedPrecision, ShardingStrategy
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
    policy = partial(transformer_auto_wrap_policy, transformer_layer_cls={layer_cls}) if layer_cls else None
    mp = MixedPrecision(param_dtype=torch.bfloat16, reduce_dtype=torch.float32, buffer_dtype=torch.bfloat16) if mixed_bf16 else None
    return FSDP(model, auto_wrap_policy=policy, mixed_precision=mp, sharding_strategy=ShardingStrategy.FULL_SHARD,
                device_id=d.device, use_orig_params=True)
