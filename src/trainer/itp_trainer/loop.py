"""The training loop for sft, lora, qlora and dpo: one readable class, setup -> train -> write the model.

Precision: fp32 trains fp32 weights. bf16/fp16 keep the trainable weights in fp32 (the optimizer's master copy)
and run the forward and backward under autocast; the frozen base of lora/qlora is stored in the low precision.
fp16 adds loss scaling and exists on CUDA only.
"""

import contextlib
import os
import signal
import time
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from . import distributed as distmod
from . import hf_io
from .config import TrainConfig
from .data import IGNORE, DataOrder, MicroBatch, TokenData, split_for_rank
from .errors import UserError
from .model import flops_per_token
from .metrics import Emitter, memory_mb, peak_flops
from .optim import Schedule, build_optimizer, warmup_steps


class Stop(Exception):
    """A signal asked the run to stop; its checkpoint is written. Exit code 128 + signal, as a shell reports it."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


def seed_everything(seed: int) -> None:
    import random
    random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    def __init__(self, cfg: TrainConfig, d: distmod.Dist, emit: Emitter):
        self.cfg, self.d, self.emit = cfg, d, emit
        self.device = d.device
        self.stop_signal: Optional[int] = None

    # ---------------------------------------------------------------- setup
    def setup(self) -> None:
        cfg, d = self.cfg, self.d
        if cfg.precision == "fp16" and self.device.type != "cuda":
            raise UserError("precision fp16 is not supported on CPU", "use bf16 or fp32 on CPU")
        if cfg.precision == "bf16" and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError("this GPU does not support bf16", "use precision fp16 or fp32")
        seed_everything(cfg.seed)
        self.data = TokenData(cfg.data, "preference" if cfg.method == "dpo" else "sft")
        per_step = cfg.micro_batch_size * d.world
        if cfg.grad_accum is not None:
            if cfg.grad_accum * per_step != cfg.batch_size:
                raise UserError(f"batch_size {cfg.batch_size} is not micro_batch_size {cfg.micro_batch_size} x grad_accum "
                                f"{cfg.grad_accum} x {d.world} processes", "leave grad_accum out to derive it")
            self.grad_accum = cfg.grad_accum
        else:
            if cfg.batch_size % per_step:
                raise UserError(f"batch_size {cfg.batch_size} is not a multiple of micro_batch_size {cfg.micro_batch_size} x "
                                f"{d.world} processes", f"use a batch_size that {per_step} divides")
            self.grad_accum = cfg.batch_size // per_step
        self.order = DataOrder(self.data.units, cfg.batch_size, cfg.epochs, cfg.seed, cfg.max_steps)
        self.total_steps = self.order.total_steps

        low = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[cfg.precision]
        self.autocast_dtype = None if cfg.precision == "fp32" else low
        frozen_base = cfg.method in ("lora", "qlora")
        # Frozen weights need no fp32 master copy: keep them in the training precision (CPU autocast runs bf16 too).
        load_dtype = low if frozen_base else torch.float32
        self.model = self._load_model(cfg.base, load_dtype)
        base_model = self.model
        if cfg.method == "qlora":
            from . import quant
            quant.quantize_model(base_model, bits=cfg.quant_bits, compute_dtype=low)
        if frozen_base:
            from . import lora
            for p in base_model.parameters():
                p.requires_grad_(False)
            lora.apply_lora(base_model, r=cfg.lora.r, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout,
                            target_modules=cfg.lora.target_modules, seed=cfg.seed)
            for n, p in base_model.named_parameters():
                if p.requires_grad and p.dtype != torch.float32:
                    p.data = p.data.float()
        base_model.gradient_checkpointing = bool(cfg.gradient_checkpointing)
        self.trainable = [(n, p) for n, p in base_model.named_parameters() if p.requires_grad]
        if not self.trainable:
            raise UserError("no trainable parameters", "check lora.target_modules against the model's module names")

        self.reference_logps = None
        if cfg.method == "dpo":
            from . import dpo
            self.reference_logps = dpo.reference_logps(self, cfg)

        n_params = sum(p.numel() for p in base_model.parameters())
        full_bytes = 16 * n_params
        self.strategy = distmod.choose_strategy(d, cfg.parallel, cfg.method, full_bytes)
        from .model import DecoderLayer
        if cfg.compile:
            self._compile(base_model)
        self.wrapped = distmod.wrap(base_model, d, self.strategy, DecoderLayer, self.autocast_dtype == torch.bfloat16)
        self.model = self.wrapped
        self.optimizer = build_optimizer(cfg.optimizer, [(n, p) for n, p in self.wrapped.named_parameters() if p.requires_grad],
                                         cfg.lr, cfg.weight_decay, cfg.adam_betas, self.device.type)
        self.schedule = Schedule(self.optimizer, cfg.schedule, cfg.lr, self.total_steps,
                                 warmup_steps(self.total_steps, cfg.warmup_ratio))
        self.scaler = torch.cuda.amp.GradScaler() if cfg.precision == "fp16" else None
        self.base_model = base_model
        self.params = n_params
        self.trainable_params = sum(p.numel() for _, p in self.trainable)
        mcfg = getattr(base_model, "config", None)
        self.flops_per_token = flops_per_token(mcfg, self.data.max_row) if hasattr(mcfg, "head_dim") and mcfg.head_dim else None
        self.peak = peak_flops(self.device)
        self.step = 0
        self.resumed_from = None
        if cfg.checkpoint_dir:
            self._resume()

    def _compile(self, model: torch.nn.Module) -> None:
        """torch.compile each decoder layer in place (the model's compile_layers: seconds to compile instead of a
        minute for the whole model, parameter names unchanged)."""
        if not (hasattr(model, "compile_layers") and model.compile_layers()):
            self.emit.log("compile: this PyTorch or model cannot compile layers in place; running eagerly")

    def _load_model(self, directory: str, dtype: torch.dtype) -> torch.nn.Module:
        try:
            model = hf_io.load_pretrained(directory, dtype=dtype, device=self.device, seed=self.cfg.seed)
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"cannot load the model in {directory}: {e}",
                            "base must be a Hugging Face directory of a Llama-family model (config.json, safetensors)")
        return model[0] if isinstance(model, tuple) else model

    # ---------------------------------------------------------------- checkpoints
    def _trainable_state(self) -> Dict[str, torch.Tensor]:
        if self.strategy == "fsdp":
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict
            msd, osd = get_state_dict(self.wrapped, self.optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
            return {"model": msd, "optimizer": osd}
        return {"model": {n: p.detach().to("cpu", copy=True) for n, p in self.trainable},
                "optimizer": self.optimizer.state_dict()}

    def _save_checkpoint(self) -> None:
        cfg, d = self.cfg, self.d
        tmp = ckpt.begin(cfg.checkpoint_dir, self.step) if d.main else os.path.join(cfg.checkpoint_dir, f".tmp-step-{self.step:08d}")
        d.barrier()
        if not d.main:
            ckpt.write_rank_rng(tmp, d.rank)
        state = self._trainable_state()
        d.barrier()
        if d.main:
            state.update(step=self.step, schedule_step=self.step, data={"seed": cfg.seed, "step": self.step,
                         "epoch": self.step // self.order.steps_per_epoch,
                         "index_in_epoch": self.step % self.order.steps_per_epoch},
                         rng=ckpt.rng_state(), fingerprint=cfg.fingerprint(), world=d.world,
                         scaler=self.scaler.state_dict() if self.scaler else None)
            path = ckpt.commit(cfg.checkpoint_dir, tmp, self.step, state, cfg.keep_checkpoints)
            self.emit("checkpoint", step=self.step, path=path)
        d.barrier()

    def _resume(self) -> None:
        cfg, d = self.cfg, self.d
        if d.main:
            ckpt.clean_temporaries(cfg.checkpoint_dir, cfg.keep_checkpoints)
        d.barrier()
        found = ckpt.load_latest(cfg.checkpoint_dir, cfg.fingerprint(), self.emit.log)
        if found is None:
            return
        path, state = found
        if self.strategy == "fsdp":
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict
            set_state_dict(self.wrapped, self.optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"],
                           options=StateDictOptions(full_state_dict=True))
        else:
            params = dict(self.trainable)
            missing = set(params) - set(state["model"])
            if missing:
                raise UserError(f"checkpoint {path} lacks weights {sorted(missing)[:3]}", "delete the checkpoint_dir to start over")
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(state["model"][n])
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        rng = ckpt.rank_rng(path, d.rank) if not d.main else state["rng"]
        if rng is not None and state.get("world") == d.world:
            ckpt.set_rng_state(rng)
        self.resumed_from = self.step

    # ---------------------------------------------------------------- one step
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def forward_logits(self, model, mb: MicroBatch) -> torch.Tensor:
        ids = mb.input_ids.to(self.device, non_blocking=True)
        pos = mb.position_ids.to(self.device, non_blocking=True)
        with self._autocast():
            return model(ids, pos)

    def sft_loss_sum(self, model, mb: MicroBatch) -> torch.Tensor:
        logits = self.forward_logits(model, mb)
        tgt = mb.targets.to(self.device, non_blocking=True)
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), tgt.view(-1), ignore_index=IGNORE, reduction="sum")

    def _sync_context(self, last: bool):
        if not last and self.strategy in ("ddp", "fsdp"):
            return self.wrapped.no_sync()
        return contextlib.nullcontext()

    def train_step(self) -> Dict[str, float]:
        cfg, d = self.cfg, self.d
        units = self.order.step_units(self.step)
        micro = split_for_rank(units, d.rank, d.world, self.grad_accum, cfg.micro_batch_size)
        # The loss of an optimizer step is the sum over its loss tokens divided by the number of loss tokens of the
        # whole step (all micro batches, all processes), as open-instruct does: every token weighs the same however the
        # batch is split, so 1 x 8 and 4 x 2 give the same update. DDP averages gradients over processes, hence x world.
        if cfg.method == "dpo":
            denom = float(len(units))
        else:
            denom = float(max(1, self.data.loss_tokens(units)))
        scale = d.world / denom
        self.schedule.apply(self.step)
        self.model.train()
        loss_total = torch.zeros((), dtype=torch.float64, device=self.device)
        extra: Dict[str, torch.Tensor] = {}
        pad = 8 if self.device.type == "cuda" else 1
        for i, mu in enumerate(micro):
            mb = self.data.collate(mu, pad)
            with self._sync_context(i == len(micro) - 1):
                if cfg.method == "dpo":
                    from . import dpo
                    loss_sum, stats = dpo.loss_sum(self, self.model, mb, mu)
                    for k, v in stats.items():
                        extra[k] = extra.get(k, 0) + v
                else:
                    loss_sum = self.sft_loss_sum(self.model, mb)
                loss = loss_sum * scale
                if self.scaler:
                    self.scaler.scale(loss).backward()
                else:
                    loss.backward()
            loss_total += loss_sum.detach().double()
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        params = [p for _, p in self.trainable]
        if self.strategy == "fsdp":
            grad_norm = self.wrapped.clip_grad_norm_(cfg.max_grad_norm)
        else:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        lr = self.schedule.lr_at(self.step)
        self.step += 1
        keys = sorted(extra)
        sums = d.sum([float(loss_total)] + [float(extra[k]) for k in keys])
        out = {"loss": sums[0] / denom, "lr": lr, "grad_norm": float(grad_norm), "tokens": self.data.tokens(units)}
        if cfg.method == "dpo":
            out["dpo"] = {k: v / len(units) for k, v in zip(keys, sums[1:])}
        return out

    def full_weights(self):
        """A context in which base_model holds the whole trained weights on rank 0 (FSDP gathers its shards)."""
        if self.strategy == "fsdp":
            from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
            return FSDP.summon_full_params(self.wrapped, writeback=False, rank0_only=True, offload_to_cpu=True)
        return contextlib.nullcontext()

    # ---------------------------------------------------------------- the run
    def _on_signal(self, signum, frame) -> None:
        self.stop_signal = signum

    def train(self) -> Dict[str, float]:
        cfg, d = self.cfg, self.d
        self.emit("start", steps=self.total_steps, examples=self.data.units, tokens=int(self.data.input_ids.numel()),
                  resumed_from=self.resumed_from, params=self.params, trainable_params=self.trainable_params,
                  processes=d.world, grad_accum=self.grad_accum, strategy=self.strategy)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._loop()
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _loop(self) -> Dict[str, float]:
        cfg, d = self.cfg, self.d
        start = time.time()
        last_loss = None
        while self.step < self.total_steps:
            t0 = time.time()
            out = self.train_step()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            dt = max(time.time() - t0, 1e-9)
            last_loss = out["loss"]
            tps = out["tokens"] / dt
            mfu = None
            if self.peak and self.flops_per_token:
                mfu = round(self.flops_per_token * tps / (self.peak * d.world), 4)
            elapsed = time.time() - start
            self.emit("step", step=self.step, epoch=round(self.order.epoch_of(self.step), 4), loss=round(last_loss, 6),
                      lr=out["lr"], grad_norm=round(out["grad_norm"], 6), tokens_per_s=round(tps, 1), mfu=mfu,
                      memory_mb=memory_mb(self.device), elapsed_s=round(elapsed, 3))
            if "dpo" in out:
                self.emit("dpo", step=self.step, **{k: round(v, 6) for k, v in out["dpo"].items()})
            done = self.step >= self.total_steps
            timed_out = cfg.max_seconds is not None and elapsed >= cfg.max_seconds
            stop = self.stop_signal is not None
            if d.world > 1:
                timed_out, stop = d.any(timed_out), d.any(stop)
            due = cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0
            epoch_end = cfg.checkpoint_every is None and self.step % self.order.steps_per_epoch == 0
            if cfg.checkpoint_dir and not done and not timed_out and (due or epoch_end or stop):
                self._save_checkpoint()
            if stop:
                raise Stop(self.stop_signal or signal.SIGTERM)
            if timed_out:
                break
        return {"loss": last_loss, "seconds": time.time() - start}
