"""Hugging Face model directories: safetensors files, config.json, sharded checkpoints.

safetensors is 8 bytes of header length (little-endian u64), a JSON header {name: {dtype, shape, data_offsets},
"__metadata__": {str: str}} padded with spaces to 8 bytes, then the tensors' little-endian bytes. The `safetensors`
package is used when it is importable; this file reads and writes the format itself otherwise (Debian has no
package for it).
"""
import json
import math
import os
import struct
import sys
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn

from .errors import UserError
from .model import ModelConfig, build, init_weights

# safetensors dtype names; the unsigned 16/32/64-bit and float8 types exist only in newer torch.
_DTYPES: Dict[str, torch.dtype] = {
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16, "I32": torch.int32, "I64": torch.int64,
    "F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
}
for _name, _attr in (("U16", "uint16"), ("U32", "uint32"), ("U64", "uint64"), ("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")):
    if hasattr(torch, _attr):
        _DTYPES[_name] = getattr(torch, _attr)
_NAMES = {v: k for k, v in _DTYPES.items()}

WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"

try:  # the package, where installed: memory-mapped reads
    from safetensors import safe_open as _safe_open
    from safetensors.torch import save_file as _save_file
except ImportError:
    _safe_open = None
    _save_file = None


def _check_endianness() -> None:
    if sys.byteorder != "little":
        raise UserError("this trainer reads and writes safetensors on little-endian machines only")


def _read_header(f, path: str) -> Tuple[Dict[str, Any], int]:
    raw = f.read(8)
    if len(raw) != 8:
        raise ValueError(f"{path} is not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", raw)
    size = os.fstat(f.fileno()).st_size
    if n > size - 8 or n > 100_000_000:
        raise ValueError(f"{path} is not a safetensors file (header length {n} exceeds the file)")
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a safetensors file (header is not JSON: {e})")
    if not isinstance(header, dict):
        raise ValueError(f"{path}: safetensors header is not an object")
    return header, 8 + n


def read_metadata(path: str) -> Dict[str, str]:
    with open(path, "rb") as f:
        header, _ = _read_header(f, path)
    return dict(header.get("__metadata__") or {})


def iter_safetensors(path: str) -> Iterator[Tuple[str, torch.Tensor]]:
    """Yields (name, tensor) one at a time, in file order, so a large file never sits in memory twice."""
    _check_endianness()
    if _safe_open is not None:
        with open(path, "rb") as f:
            _read_header(f, path)  # the same errors with or without the package
        with _safe_open(path, framework="pt") as f:
            for name in f.keys():
                yield name, f.get_tensor(name)
        return
    with open(path, "rb") as f:
        header, start = _read_header(f, path)
        size = os.fstat(f.fileno()).st_size
        entries = sorted(((k, v) for k, v in header.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"][0])
        for name, info in entries:
            dtype = _DTYPES.get(info.get("dtype"))
            if dtype is None:
                raise ValueError(f"{path}: tensor {name} has dtype {info.get('dtype')!r}, which this PyTorch cannot hold")
            shape = [int(s) for s in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
            numel = math.prod(shape)
            itemsize = torch.empty((), dtype=dtype).element_size()
            if end - begin != numel * itemsize or start + end > size:
                raise ValueError(f"{path}: tensor {name} has {end - begin} bytes for shape {shape} of {info['dtype']}")
            if numel == 0:
                yield name, torch.empty(shape, dtype=dtype)
                continue
            f.seek(start + begin)
            buf = bytearray(end - begin)
            if f.readinto(buf) != len(buf):
                raise ValueError(f"{path}: truncated in tensor {name}")
            yield name, torch.frombuffer(buf, dtype=dtype).reshape(shape)


def read_safetensors(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """All tensors of a file and its metadata."""
    return dict(iter_safetensors(path)), read_metadata(path)


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    t = t.detach().to("cpu").contiguous()
    if t.numel() == 0:
        return memoryview(b"")
    # Viewed as bytes: numpy has no bfloat16, and this is the tensor's own little-endian layout.
    return memoryview(t.reshape(-1).view(torch.uint8).numpy())


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes the file under a temporary name and renames it, so a crash never leaves half a file at `path`."""
    _check_endianness()
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    tmp = f"{path}.tmp-{os.getpid()}"
    if _save_file is not None:
        _save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, tmp, metadata=meta or None)
        os.replace(tmp, path)
        return
    header: Dict[str, Any] = {}
    if meta:
        header["__metadata__"] = meta
    offset = 0
    for name, t in tensors.items():
        if t.dtype not in _NAMES:
            raise ValueError(f"tensor {name} has dtype {t.dtype}, which safetensors cannot store")
        n = t.numel() * t.element_size()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for t in tensors.values():
            f.write(_tensor_bytes(t))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_config(directory: str) -> ModelConfig:
    path = os.path.join(directory, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except FileNotFoundError:
        raise UserError(f"{directory} has no config.json", "a model directory holds config.json and safetensors weights")
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not JSON: {e}")
    if not isinstance(d, dict):
        raise UserError(f"{path} is not a JSON object")
    return ModelConfig.from_hf(d, where=path)


def weight_files(directory: str) -> List[str]:
    """The safetensors files of a model directory, [] when it has none."""
    index = os.path.join(directory, INDEX)
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f).get("weight_map") or {}
        files = sorted(set(weight_map.values()))
        missing = [n for n in files if not os.path.isfile(os.path.join(directory, n))]
        if missing:
            raise UserError(f"{index} names shards that are missing: {', '.join(missing)}", "copy the whole model directory")
        return [os.path.join(directory, n) for n in files]
    single = os.path.join(directory, WEIGHTS)
    if os.path.isfile(single):
        return [single]
    if any(n.endswith(".bin") or n.endswith(".pt") for n in os.listdir(directory)):
        raise UserError(f"{directory} holds PyTorch pickle weights (.bin), not safetensors",
                        "convert them: transformers' model.save_pretrained(dir, safe_serialization=True)")
    return []


_TORCH_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def load_pretrained(directory: str, dtype: torch.dtype = torch.float32, device: Any = "cpu", seed: int = 0) -> nn.Module:
    """The model of a Hugging Face directory, its weights in `dtype` on `device`.

    Llama-family architectures build the built-in CausalLM; a directory with config.json and no weights gets
    transformers' initialization drawn from `seed`. Other architectures load through transformers'
    AutoModelForCausalLM when it is importable (HFCausalLM: same forward, same parameter names)."""
    cfg = read_config(directory)
    files = weight_files(directory)
    if not cfg.builtin:
        return _load_with_transformers(directory, cfg, files, dtype, device, seed)
    model = build(cfg, device=device, dtype=dtype)
    if not files:
        init_weights(model, seed)
        return model
    load_weights(model, files, directory)
    return model


@torch.no_grad()
def load_weights(model: nn.Module, files: List[str], where: str) -> None:
    """Copies each tensor of the files into the parameter of the same name (converting dtype and device); every
    parameter must be found once, except lm_head.weight of a model with tied embeddings."""
    params = dict(model.named_parameters())
    params.update(dict(model.named_buffers()))
    tied = getattr(getattr(model, "config", None), "tie_word_embeddings", False)
    seen = set()
    unexpected = []
    for path in files:
        for name, t in iter_safetensors(path):
            p = params.get(name)
            if p is None:
                # transformers' rotary buffers in old checkpoints carry no weights.
                if not name.endswith("rotary_emb.inv_freq"):
                    unexpected.append(name)
                continue
            if tuple(p.shape) != tuple(t.shape):
                raise UserError(f"{where}: {name} has shape {list(t.shape)} in {os.path.basename(path)}, the config gives {list(p.shape)}",
                                "config.json and the weights come from different models")
            p.copy_(t)
            seen.add(name)
    missing = [n for n in params if n not in seen and not (tied and n == "lm_head.weight")]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} ({', '.join(unexpected[:3])}{', ...' if len(unexpected) > 3 else ''})")
        raise UserError(f"{where}: the weights do not match the config: {'; '.join(parts)}",
                        "config.json and the weights come from different models")


def _state_for_save(model: nn.Module, dtype: Optional[torch.dtype]) -> Dict[str, torch.Tensor]:
    """Parameters under their Hugging Face names. A tensor that is another one's storage (lm_head.weight tied to
    the input embedding) is written once, under its first name, as transformers does."""
    out: Dict[str, torch.Tensor] = {}
    seen = set()
    for name, t in model.state_dict(keep_vars=False).items():
        key = (t.device, t.data_ptr(), t.dtype, tuple(t.shape), tuple(t.stride())) if t.numel() else None
        if key is not None and key in seen:
            continue
        seen.add(key)
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        out[name] = t
    return out


def save_pretrained(model: nn.Module, cfg: ModelConfig, directory: str, dtype: Optional[torch.dtype] = torch.bfloat16,
                    max_shard_bytes: int = 5 * 2**30) -> None:
    """Writes config.json, model.safetensors (or model-0000k-of-0000n.safetensors + model.safetensors.index.json when
    larger than max_shard_bytes) and generation_config.json, as transformers' save_pretrained does."""
    os.makedirs(directory, exist_ok=True)
    state = _state_for_save(model, dtype)
    shards: List[Dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in state.items():
        n = t.numel() * t.element_size()
        if shards[-1] and size + n > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += n
    meta = {"format": "pt"}
    for old in os.listdir(directory):  # a previous save's shards would be read as part of this one
        if old == WEIGHTS or old == INDEX or (old.startswith("model-") and old.endswith(".safetensors")):
            os.remove(os.path.join(directory, old))
    if len(shards) == 1:
        write_safetensors(os.path.join(directory, WEIGHTS), shards[0], meta)
    else:
        weight_map = {}
        for i, shard in enumerate(shards):
            fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            write_safetensors(os.path.join(directory, fname), shard, meta)
            weight_map.update({k: fname for k in shard})
        total = sum(t.numel() * t.element_size() for t in state.values())
        write_json(os.path.join(directory, INDEX), {"metadata": {"total_size": total}, "weight_map": weight_map})
    config = cfg.to_hf()
    if dtype is not None:
        config["torch_dtype"] = {v: k for k, v in _TORCH_DTYPES.items()}.get(dtype, config.get("torch_dtype"))
    write_json(os.path.join(directory, "config.json"), config)
    gen = {"_from_model_config": True}
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if config.get(k) is not None:
            gen[k] = config[k]
    write_json(os.path.join(directory, "generation_config.json"), gen)


def write_json(path: str, obj: Any) -> None:
    """Indented JSON, written under a temporary name and renamed."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


class HFCausalLM(nn.Module):
    """A transformers model behind CausalLM's forward. Its submodules are registered here directly, so parameter
    names are transformers' own (`model.layers.0...`, `lm_head.weight`)."""

    def __init__(self, hf_model: nn.Module, cfg: ModelConfig):
        super().__init__()
        object.__setattr__(self, "hf", hf_model)  # not a submodule: its children are ours
        for name, child in hf_model.named_children():
            self.add_module(name, child)
        self.config = cfg
        self._checkpointing = False

    @property
    def gradient_checkpointing(self) -> bool:
        return self._checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, on: bool) -> None:
        self._checkpointing = bool(on)
        if on:
            self.hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        elif getattr(self.hf, "is_gradient_checkpointing", False):
            self.hf.gradient_checkpointing_disable()

    def train(self, mode: bool = True):
        super().train(mode)
        self.hf.train(mode)
        return self

    def forward(self, input_ids: torch.Tensor, position_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        kwargs: Dict[str, Any] = {"use_cache": False}
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
            s = input_ids.shape[1]
            if s > 1 and bool((position_ids[:, 1:] == 0).any()):
                # Packed rows: transformers takes a 4D additive mask (0 where allowed) for the examples' blocks.
                seg = torch.cumsum((position_ids == 0).to(torch.int32), dim=1)
                i = torch.arange(s, device=input_ids.device)
                allowed = (i[None, :] <= i[:, None])[None] & (seg[:, :, None] == seg[:, None, :])
                dtype = next(self.hf.parameters()).dtype
                kwargs["attention_mask"] = torch.zeros(allowed.shape, dtype=dtype, device=input_ids.device).masked_fill(
                    ~allowed, torch.finfo(dtype).min)[:, None]
        return self.hf(input_ids=input_ids, **kwargs).logits


def _load_with_transformers(directory: str, cfg: ModelConfig, files: List[str], dtype, device, seed) -> nn.Module:
    try:
        import transformers
    except ImportError:
        raise UserError(f"{directory}: architecture {cfg.architecture} is not built in and transformers is not installed",
                        "built in: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM; install transformers for others")
    try:
        if files:
            hf = transformers.AutoModelForCausalLM.from_pretrained(directory, torch_dtype=dtype)
        else:
            torch.manual_seed(seed)
            hf_cfg = transformers.AutoConfig.from_pretrained(directory)
            hf = transformers.AutoModelForCausalLM.from_config(hf_cfg).to(dtype)
    except (ValueError, KeyError, OSError) as e:
        raise UserError(f"{directory}: transformers cannot load {cfg.architecture}: {e}")
    return HFCausalLM(hf.to(device), cfg)
