"""LoRA: low-rank adapters on a model's linear layers, saved and loaded in PEFT's format.

A targeted linear layer W becomes LoraLinear: y = W x + (alpha / r) * B A dropout(x), with W frozen, A [r, in]
drawn as PEFT draws it (kaiming-uniform with a = sqrt(5), i.e. uniform(-1/sqrt(in), 1/sqrt(in))) and B [out, r]
zero, so training starts from the base model exactly. Module names follow PEFT (`q_proj.base_layer`,
`q_proj.lora_A`, `q_proj.lora_B`); PEFT's files (peft/utils/save_and_load.py, get_peft_model_state_dict) name the
adapter weights `base_model.model.<module>.lora_A.weight`, without the adapter name, in adapter_model.safetensors,
next to adapter_config.json (LoraConfig's fields, peft_type "LORA").
"""
import json
import math
import os
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn

from . import hf_io
from .errors import UserError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PREFIX = "base_model.model."


class LoraLinear(nn.Module):
    def __init__(self, base: nn.Module, r: int, alpha: float, dropout: float = 0.0, use_rslora: bool = False):
        super().__init__()
        self.base_layer = base
        self.in_features, self.out_features = base.in_features, base.out_features
        self.r, self.alpha = r, alpha
        self.scaling = alpha / math.sqrt(r) if use_rslora else alpha / r
        weight = base.weight
        # Adapters live on the base's device; a quantized base stores packed bytes, so they take float32 there.
        dtype = weight.dtype if weight.is_floating_point() else torch.float32
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lora_A = nn.Linear(self.in_features, r, bias=False, device=weight.device, dtype=dtype)
        self.lora_B = nn.Linear(r, self.out_features, bias=False, device=weight.device, dtype=dtype)
        for p in self.base_layer.parameters():
            p.requires_grad_(False)

    @property
    def weight(self):
        return self.base_layer.weight

    @property
    def bias(self):
        return getattr(self.base_layer, "bias", None)

    @torch.no_grad()
    def reset_lora(self, generator: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        a = torch.rand(self.lora_A.weight.shape, generator=generator, dtype=torch.float32) * (2 * bound) - bound
        self.lora_A.weight.copy_(a)
        self.lora_B.weight.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base_layer(x)
        a = self.lora_A.weight
        h = self.lora_dropout(x)
        if not torch.is_autocast_enabled() and h.dtype != a.dtype:
            h = h.to(a.dtype)
        return y + (self.lora_B(self.lora_A(h)) * self.scaling).to(y.dtype)

    def delta_weight(self) -> torch.Tensor:
        """scaling * B A, in float32: what merging adds to the base weight."""
        return (self.lora_B.weight.float() @ self.lora_A.weight.float()) * self.scaling

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}"


def _matches(name: str, targets: List[str]) -> bool:
    """PEFT's rule for a list of names: the module's name is a target or ends with "." + a target."""
    return any(name == t or name.endswith("." + t) for t in targets)


def _is_linear(m: nn.Module) -> bool:
    return isinstance(m, nn.Linear) or (hasattr(m, "in_features") and hasattr(m, "out_features") and hasattr(m, "weight")
                                        and not isinstance(m, LoraLinear))


def apply_lora(model: nn.Module, r: int, alpha: float, dropout: float = 0.0, target_modules: Optional[List[str]] = None,
               seed: int = 0, use_rslora: bool = False) -> List[str]:
    """Wraps every linear layer named by target_modules (default q, k, v, o projections) in a LoraLinear; freezes
    every other parameter. A is drawn from a CPU generator seeded with `seed`, so the adapters' start is the same on
    any device. Returns the wrapped modules' names."""
    targets = list(target_modules or ["q_proj", "k_proj", "v_proj", "o_proj"])
    if r <= 0:
        raise UserError(f"lora r must be positive, got {r}")
    names = [n for n, m in model.named_modules() if n and _is_linear(m) and _matches(n, targets)]
    if not names:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if n and _is_linear(m)})
        raise UserError(f"lora target_modules {targets} match no linear layer of the model",
                        f"the model's linear layers are named {', '.join(linear)}")
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        wrapped = LoraLinear(getattr(parent, child), r, alpha, dropout, use_rslora)
        wrapped.reset_lora(gen)
        wrapped.train(model.training)  # dropout follows the model's mode, as a module built with it would
        setattr(parent, child, wrapped)
    model.lora_settings = {"r": r, "alpha": alpha, "dropout": dropout, "target_modules": targets, "use_rslora": use_rslora}
    return names


def lora_modules(model: nn.Module) -> Dict[str, LoraLinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoraLinear)}


def adapter_state(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The adapter weights under PEFT's names."""
    out = {}
    for name, m in lora_modules(model).items():
        out[f"{PREFIX}{name}.lora_A.weight"] = m.lora_A.weight
        out[f"{PREFIX}{name}.lora_B.weight"] = m.lora_B.weight
    return out


def save_adapter(model: nn.Module, directory: str, base_model: str = "", r: Optional[int] = None, alpha: Optional[float] = None,
                 dropout: Optional[float] = None, target_modules: Optional[List[str]] = None,
                 dtype: Optional[torch.dtype] = None) -> None:
    """Writes adapter_config.json and adapter_model.safetensors as PEFT's save_pretrained does."""
    modules = lora_modules(model)
    if not modules:
        raise UserError("the model has no LoRA adapters to save")
    settings = dict(getattr(model, "lora_settings", {}))
    first = next(iter(modules.values()))
    r = r if r is not None else first.r
    alpha = alpha if alpha is not None else first.alpha
    dropout = dropout if dropout is not None else settings.get("dropout", 0.0)
    targets = list(target_modules or settings.get("target_modules") or sorted({n.rsplit(".", 1)[-1] for n in modules}))
    os.makedirs(directory, exist_ok=True)
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "revision": None,
        "inference_mode": True,
        "r": r,
        "lora_alpha": alpha,
        "lora_dropout": dropout,
        "target_modules": targets,
        "bias": "none",
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "init_lora_weights": True,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
        "use_rslora": bool(settings.get("use_rslora", False)),
        "use_dora": False,
    }
    tensors = {k: (v.detach().to(dtype) if dtype is not None else v.detach()) for k, v in adapter_state(model).items()}
    hf_io.write_safetensors(os.path.join(directory, ADAPTER_WEIGHTS), tensors, {"format": "pt"})
    hf_io.write_json(os.path.join(directory, ADAPTER_CONFIG), config)


def read_adapter_config(directory: str) -> Dict[str, Any]:
    path = os.path.join(directory, ADAPTER_CONFIG)
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        raise UserError(f"{directory} has no {ADAPTER_CONFIG}", "a PEFT LoRA adapter is adapter_config.json + adapter_model.safetensors")
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not JSON: {e}")
    if config.get("peft_type") != "LORA":
        raise UserError(f"{path}: peft_type is {config.get('peft_type')!r}, only LORA adapters load here")
    for key in ("rank_pattern", "alpha_pattern"):
        if config.get(key):
            raise UserError(f"{path}: {key} is set (per-module ranks), which this trainer does not support")
    if config.get("use_dora"):
        raise UserError(f"{path}: a DoRA adapter (use_dora) is not supported")
    if config.get("fan_in_fan_out"):
        raise UserError(f"{path}: fan_in_fan_out adapters (GPT-2's Conv1D) are not supported")
    targets = config.get("target_modules")
    if isinstance(targets, str):
        raise UserError(f"{path}: target_modules is the pattern {targets!r}; only a list of module names is supported")
    return config


@torch.no_grad()
def load_adapter(model: nn.Module, directory: str) -> List[str]:
    """Wraps the layers adapter_config.json targets and loads adapter_model.safetensors into them."""
    config = read_adapter_config(directory)
    if not lora_modules(model):
        apply_lora(model, r=int(config["r"]), alpha=float(config["lora_alpha"]), dropout=float(config.get("lora_dropout") or 0.0),
                   target_modules=list(config["target_modules"]), use_rslora=bool(config.get("use_rslora")))
    modules = lora_modules(model)
    path = os.path.join(directory, ADAPTER_WEIGHTS)
    if not os.path.isfile(path):
        raise UserError(f"{directory} has no {ADAPTER_WEIGHTS}")
    wanted = {}
    for name, m in modules.items():
        wanted[f"{PREFIX}{name}.lora_A.weight"] = m.lora_A.weight
        wanted[f"{PREFIX}{name}.lora_B.weight"] = m.lora_B.weight
    seen = set()
    for key, t in hf_io.iter_safetensors(path):
        key = key.replace(".lora_A.default.weight", ".lora_A.weight").replace(".lora_B.default.weight", ".lora_B.weight")
        p = wanted.get(key)
        if p is None:
            raise UserError(f"{path}: {key} matches no LoRA module of the model", "was the adapter trained on another architecture?")
        if tuple(p.shape) != tuple(t.shape):
            raise UserError(f"{path}: {key} has shape {list(t.shape)}, the model's adapter {list(p.shape)}",
                            "r or the base model differ from the adapter's")
        p.copy_(t)
        seen.add(key)
    missing = sorted(set(wanted) - seen)
    if missing:
        raise UserError(f"{path} lacks {len(missing)} adapter weights ({', '.join(missing[:2])}, ...)")
    return list(modules)


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Folds every adapter into its layer: W + (alpha / r) B A, computed in float32 and stored in the base's compute
    dtype. The LoraLinear modules become plain nn.Linear again, in place, and so do the quantized layers of a QLoRA
    base (dequantized): the result has the base model's parameter names. Returns the model."""
    for name, m in list(lora_modules(model).items()):
        base = m.base_layer
        if hasattr(base, "dequantize"):
            w = base.dequantize().float()
            dtype = base.compute_dtype
        else:
            w = base.weight.float()
            dtype = base.weight.dtype
        merged = nn.Linear(m.in_features, m.out_features, bias=base.bias is not None, device=w.device, dtype=dtype)
        merged.weight.copy_(w + m.delta_weight().to(w.device))
        if base.bias is not None:
            merged.bias.copy_(base.bias)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, merged)
    from .quant import dequantize_model

    dequantize_model(model)
    if hasattr(model, "lora_settings"):
        del model.lora_settings
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    return model
