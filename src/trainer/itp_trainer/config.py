"""The trainer's JSON config: read, checked key by key, defaults filled (README.md lists every key)."""

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .errors import UserError

METHODS = ("sft", "lora", "qlora", "dpo")


@dataclass
class LoraSettings:
    r: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: List[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    merge: bool = True


@dataclass
class DpoSettings:
    beta: float = 0.1
    loss: str = "sigmoid"
    reference: Optional[str] = None
    reference_logps: Optional[str] = None


@dataclass
class TrainConfig:
    method: str
    base: str
    data: str
    output_dir: str
    checkpoint_dir: Optional[str] = None
    checkpoint_every: Optional[int] = None
    epochs: float = 3.0
    lr: float = 2e-5
    batch_size: int = 128
    micro_batch_size: int = 1
    grad_accum: Optional[int] = None
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    schedule: str = "linear"
    optimizer: str = "adamw"
    adam_betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    max_grad_norm: float = 1.0
    precision: str = "bf16"
    gradient_checkpointing: bool = True
    seed: int = 0
    lora: Optional[LoraSettings] = None
    quant_bits: Optional[int] = None
    dpo: Optional[DpoSettings] = None
    tokenizer_files: Dict[str, str] = field(default_factory=dict)
    chat_template: Optional[str] = None
    # The template of another kind (a built-in chat format or a prompt template) the data was rendered with.
    template: Optional[Dict[str, Any]] = None
    export_onnx: bool = False
    device: str = "cpu"
    parallel: str = "auto"
    compile: bool = False
    max_steps: Optional[int] = None
    max_seconds: Optional[float] = None
    keep_checkpoints: int = 2

    def fingerprint(self) -> Dict[str, Any]:
        """What a checkpoint must agree on to be resumed: everything that shapes the weights of a step."""
        keys = ("method", "base", "data", "epochs", "lr", "batch_size", "micro_batch_size", "warmup_ratio", "weight_decay",
                "schedule", "optimizer", "adam_betas", "max_grad_norm", "precision", "seed", "quant_bits", "max_steps")
        out = {k: getattr(self, k) for k in keys}
        out["lora"] = None if self.lora is None else vars(self.lora)
        out["dpo"] = None if self.dpo is None else {k: v for k, v in vars(self.dpo).items() if k != "reference_logps"}
        return out


def _where(key: str) -> str:
    return f"config key `{key}`"


class _Reader:
    """Takes keys out of a JSON object with type checks, so every error names its key."""

    def __init__(self, obj: Dict[str, Any], prefix: str = ""):
        self.obj = obj
        self.prefix = prefix
        self.used = set()

    def _get(self, key: str, required: bool):
        self.used.add(key)
        if key not in self.obj or self.obj[key] is None:
            if required:
                raise UserError(f"{_where(self.prefix + key)} is missing", "see src/trainer/README.md for the config keys")
            return None
        return self.obj[key]

    def string(self, key: str, default=None, required=False, choices=None) -> Optional[str]:
        v = self._get(key, required)
        if v is None:
            return default
        if not isinstance(v, str) or not v:
            raise UserError(f"{_where(self.prefix + key)} must be a non-empty string, got {json.dumps(v)}")
        if choices and v not in choices:
            raise UserError(f"{_where(self.prefix + key)} is {json.dumps(v)}", f"use one of {', '.join(choices)}")
        return v

    def number(self, key: str, default=None, required=False, integer=False, minimum=None, maximum=None,
               exclusive_min=False) -> Any:
        v = self._get(key, required)
        if v is None:
            return default
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok:
            kind = "an integer" if integer else "a number"
            raise UserError(f"{_where(self.prefix + key)} must be {kind}, got {json.dumps(v)}")
        if minimum is not None and (v <= minimum if exclusive_min else v < minimum):
            raise UserError(f"{_where(self.prefix + key)} is {v}, it must be {'>' if exclusive_min else '>='} {minimum}")
        if maximum is not None and v > maximum:
            raise UserError(f"{_where(self.prefix + key)} is {v}, it must be <= {maximum}")
        return v

    def boolean(self, key: str, default: bool) -> bool:
        v = self._get(key, False)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise UserError(f"{_where(self.prefix + key)} must be true or false, got {json.dumps(v)}")
        return v

    def obj_or_none(self, key: str) -> Optional[Dict[str, Any]]:
        v = self._get(key, False)
        if v is None:
            return None
        if not isinstance(v, dict):
            raise UserError(f"{_where(self.prefix + key)} must be an object, got {json.dumps(v)}")
        return v

    def raw(self, key: str):
        return self._get(key, False)

    def unknown(self) -> List[str]:
        return sorted(k for k in self.obj if k not in self.used)


def parse_config(obj: Any) -> TrainConfig:
    if not isinstance(obj, dict):
        raise UserError("the config must be a JSON object")
    r = _Reader(obj)
    method = r.string("method", required=True, choices=METHODS)
    cfg = TrainConfig(
        method=method,
        base=r.string("base", required=True),
        data=r.string("data", required=True),
        output_dir=r.string("output_dir", required=True),
        checkpoint_dir=r.string("checkpoint_dir"),
        checkpoint_every=r.number("checkpoint_every", integer=True, minimum=1),
        epochs=r.number("epochs", 3.0, minimum=0, exclusive_min=True, maximum=1000),
        lr=r.number("lr", 2e-5, minimum=0, exclusive_min=True, maximum=1),
        batch_size=r.number("batch_size", 128, integer=True, minimum=1),
        micro_batch_size=r.number("micro_batch_size", 1, integer=True, minimum=1),
        grad_accum=r.number("grad_accum", integer=True, minimum=1),
        warmup_ratio=r.number("warmup_ratio", 0.03, minimum=0, maximum=0.999999),
        weight_decay=r.number("weight_decay", 0.0, minimum=0),
        schedule=r.string("schedule", "linear", choices=("linear", "cosine", "constant")),
        optimizer=r.string("optimizer", "adamw", choices=("adamw", "adafactor")),
        max_grad_norm=r.number("max_grad_norm", 1.0, minimum=0, exclusive_min=True),
        precision=r.string("precision", "bf16", choices=("bf16", "fp16", "fp32")),
        gradient_checkpointing=r.boolean("gradient_checkpointing", True),
        seed=r.number("seed", 0, integer=True, minimum=0),
        chat_template=None,
        export_onnx=r.boolean("export_onnx", False),
        device=r.string("device", "cpu", choices=("cpu", "cuda")),
        parallel=r.string("parallel", "auto", choices=("auto", "ddp", "fsdp")),
        compile=r.boolean("compile", False),
        max_steps=r.number("max_steps", integer=True, minimum=1),
        max_seconds=r.number("max_seconds", minimum=0, exclusive_min=True),
        keep_checkpoints=r.number("keep_checkpoints", 2, integer=True, minimum=1),
    )
    betas = r.raw("adam_betas")
    if betas is not None:
        if not (isinstance(betas, list) and len(betas) == 2 and all(isinstance(b, (int, float)) and 0 < b < 1 for b in betas)):
            raise UserError(f"{_where('adam_betas')} must be two numbers in (0, 1), got {json.dumps(betas)}")
        cfg.adam_betas = [float(b) for b in betas]
    tmpl = r.raw("chat_template")
    if tmpl is not None and not isinstance(tmpl, str):
        raise UserError(f"{_where('chat_template')} must be a string or null")
    cfg.chat_template = tmpl
    other = r.raw("template")
    if other is not None and not isinstance(other, dict):
        raise UserError(f"{_where('template')} must be an object or null")
    if other is not None and tmpl is not None:
        raise UserError(f"{_where('template')} and chat_template are both set", "a model is trained with one template")
    cfg.template = other
    files = r.raw("tokenizer_files")
    if files is not None:
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            raise UserError(f"{_where('tokenizer_files')} must map file names to paths")
        for name in files:
            if "/" in name or "\\" in name or name in ("", ".", ".."):
                raise UserError(f"{_where('tokenizer_files')}: {json.dumps(name)} is not a plain file name")
        cfg.tokenizer_files = dict(files)

    lora = r.obj_or_none("lora")
    if method in ("lora", "qlora"):
        lr_ = _Reader(lora or {}, "lora.")
        cfg.lora = LoraSettings(
            r=lr_.number("r", 16, integer=True, minimum=1),
            alpha=float(lr_.number("alpha", 32.0, minimum=0, exclusive_min=True)),
            dropout=float(lr_.number("dropout", 0.05, minimum=0, maximum=0.999)),
            merge=lr_.boolean("merge", True),
        )
        mods = lr_.raw("target_modules")
        if mods is not None:
            if not (isinstance(mods, list) and mods and all(isinstance(m, str) and m for m in mods)):
                raise UserError(f"{_where('lora.target_modules')} must be a non-empty list of module names")
            cfg.lora.target_modules = list(mods)
        _no_unknown(lr_)
    elif lora is not None:
        raise UserError(f"{_where('lora')} is set but method is {method}", "lora settings apply to lora and qlora only")

    quant = r.obj_or_none("quant")
    if method == "qlora":
        q = _Reader(quant or {}, "quant.")
        bits = q.number("bits", 4, integer=True)
        if bits not in (4, 8):
            raise UserError(f"{_where('quant.bits')} is {bits}", "use 4 (NF4) or 8")
        cfg.quant_bits = bits
        _no_unknown(q)
    elif quant is not None:
        raise UserError(f"{_where('quant')} is set but method is {method}", "quantization applies to qlora only")

    dpo = r.obj_or_none("dpo")
    if method == "dpo":
        d = _Reader(dpo or {}, "dpo.")
        cfg.dpo = DpoSettings(
            beta=float(d.number("beta", 0.1, minimum=0, exclusive_min=True)),
            loss=d.string("loss", "sigmoid", choices=("sigmoid", "ipo")),
            reference=d.string("reference"),
            reference_logps=d.string("reference_logps"),
        )
        _no_unknown(d)
    elif dpo is not None:
        raise UserError(f"{_where('dpo')} is set but method is {method}")

    _no_unknown(r)
    if cfg.precision == "fp16" and cfg.device == "cpu":
        raise UserError("precision fp16 is not supported on CPU", "use bf16 or fp32 on CPU, or device cuda")
    if cfg.parallel == "fsdp" and cfg.method != "sft":
        raise UserError(f"parallel fsdp is for full fine-tuning (sft), not {cfg.method}", "use parallel ddp or auto")
    return cfg


def _no_unknown(r: _Reader) -> None:
    extra = r.unknown()
    if extra:
        raise UserError(f"unknown config key `{r.prefix}{extra[0]}`", "see src/trainer/README.md for the config keys")


def load_config(path: str) -> TrainConfig:
    if not os.path.isfile(path):
        raise UserError(f"config file {path} does not exist")
    try:
        with open(path, "r", encoding="utf-8") as f:
            obj = json.load(f)
    except json.JSONDecodeError as e:
        raise UserError(f"config file {path} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
    cfg = parse_config(obj)
    for key in ("base", "data"):
        p = getattr(cfg, key)
        if not os.path.exists(p):
            raise UserError(f"{_where(key)}: {p} does not exist")
    if not os.path.isfile(os.path.join(cfg.base, "config.json")):
        raise UserError(f"{_where('base')}: {cfg.base} has no config.json", "base must be a Hugging Face model directory")
    for name, p in cfg.tokenizer_files.items():
        if not os.path.isfile(p):
            raise UserError(f"{_where('tokenizer_files')}: {name} -> {p} does not exist")
    if cfg.dpo and cfg.dpo.reference and not os.path.isfile(os.path.join(cfg.dpo.reference, "config.json")):
        raise UserError(f"{_where('dpo.reference')}: {cfg.dpo.reference} has no config.json")
    return cfg
