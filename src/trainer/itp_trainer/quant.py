"""QLoRA's frozen base: 4-bit NormalFloat (NF4) with double quantization, or 8-bit absmax, in plain PyTorch.

NF4 (Dettmers et al. 2023, QLoRA): weights in blocks of 64, each block scaled by its absolute maximum and rounded
to the nearest of 16 values placed at quantiles of N(0, 1) (NF4_CODE; exact zero included). Double quantization
stores the per-block scales themselves in 8 bits: minus their mean, in blocks of 256, each scaled by its absolute
maximum and rounded to the nearest value of bitsandbytes' signed dynamic 8-bit map. Storage: 4 bits per weight +
8/64 for the scales + 32/(64*256) for the scales' scales = 4.127 bits.

QuantLinear keeps only the packed form; each forward dequantizes the weight in the compute dtype, and backward
dequantizes it again rather than keeping it (as bitsandbytes' 4-bit matmul), so activations are the only
per-layer memory. Where bitsandbytes is importable and the model is on CUDA, its Linear4bit (same format,
fused kernels) is used for 4 bits instead.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn

from .errors import UserError

# The 16 NF4 values as the QLoRA paper (appendix E) and bitsandbytes list them.
NF4_CODE = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
])
BLOCK = 64
DQ_BLOCK = 256


def nf4_from_quantiles(offset: float = 0.9677083) -> torch.Tensor:
    """NF4 built as the paper describes: 8 positive and 7 negative quantiles of N(0, 1) between 1 - offset and
    offset (asymmetric so that 0 is exact), plus 0, normalized to [-1, 1]."""
    ndtri = torch.special.ndtri
    pos = ndtri(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1])
    neg = -ndtri(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1])
    v = torch.cat([pos, torch.zeros(1, dtype=torch.float64), neg]).sort().values
    return (v / v.abs().max()).float()


def dynamic_map() -> torch.Tensor:
    """bitsandbytes' signed dynamic 8-bit map (create_dynamic_map(signed=True)): for exponent e = 0..6, 2^e
    fractions (midpoints of linspace(0.1, 1, 2^e + 1)) times 10^(e-6), both signs; plus 0 and 1. 256 values."""
    data = [0.0, 1.0]
    for e in range(7):
        bounds = torch.linspace(0.1, 1, 2 ** e + 1, dtype=torch.float64)
        means = ((bounds[:-1] + bounds[1:]) / 2) * 10.0 ** (e - 6)
        data += means.tolist() + (-means).tolist()
    return torch.tensor(sorted(data), dtype=torch.float32)


def _nearest(x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """Index of the nearest value of a sorted code for each element of x."""
    mid = (code[1:] + code[:-1]) / 2
    return torch.bucketize(x.contiguous(), mid.to(x.device))


def _blocks(flat: torch.Tensor, size: int) -> torch.Tensor:
    pad = -flat.numel() % size
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return flat.view(-1, size)


def quantize_nf4(w: torch.Tensor, double_quant: bool = True) -> dict:
    """The packed form of w: two 4-bit codes per byte (the first in the high nibble, as bitsandbytes), the block
    scales (double-quantized: uint8 codes, float32 scales per 256 blocks, float32 offset)."""
    blocks = _blocks(w.detach().float().reshape(-1), BLOCK)
    absmax = blocks.abs().amax(dim=1)
    scale = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    idx = _nearest(blocks / scale[:, None], NF4_CODE).to(torch.uint8).view(-1)
    q = {"packed": (idx[0::2] << 4) | idx[1::2], "shape": tuple(w.shape), "numel": w.numel()}
    if double_quant:
        offset = absmax.mean()
        c = _blocks(absmax - offset, DQ_BLOCK)
        c_max = c.abs().amax(dim=1)
        c_scale = torch.where(c_max > 0, c_max, torch.ones_like(c_max))
        q["absmax_codes"] = _nearest(c / c_scale[:, None], dynamic_map()).to(torch.uint8).view(-1)[: absmax.numel()]
        q["absmax_scale"] = c_scale
        q["absmax_offset"] = offset.reshape(1)
    else:
        q["absmax"] = absmax
    return q


def nf4_absmax(q: dict) -> torch.Tensor:
    """The block scales (float32), undoing double quantization."""
    if "absmax" in q:
        return q["absmax"]
    codes = q["absmax_codes"]
    dmap = dynamic_map().to(codes.device)
    values = _blocks(dmap[codes.long()], DQ_BLOCK) * q["absmax_scale"][:, None]
    return values.view(-1)[: codes.numel()] + q["absmax_offset"]


def dequantize_nf4(q: dict, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    packed = q["packed"]
    idx = torch.stack([packed >> 4, packed & 0x0F], dim=1).view(-1).long()
    values = NF4_CODE.to(packed.device)[idx].view(-1, BLOCK) * nf4_absmax(q)[:, None]
    return values.view(-1)[: q["numel"]].view(q["shape"]).to(dtype)


def quantize_int8(w: torch.Tensor) -> dict:
    """8 bits: each row scaled by its absolute maximum to [-127, 127] and rounded."""
    w = w.detach().float()
    scale = w.abs().amax(dim=1) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return {"int8": torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8), "row_scale": scale}


def dequantize_int8(q: dict, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return (q["int8"].float() * q["row_scale"][:, None]).to(dtype)


class _QuantMatmul(torch.autograd.Function):
    """x @ W^T with W dequantized in forward and again in backward, never saved: no gradient for W."""

    @staticmethod
    def forward(ctx, x, layer):
        ctx.layer = layer
        return x @ layer.dequantize().t()

    @staticmethod
    def backward(ctx, grad):
        w = ctx.layer.dequantize()
        return (grad.to(w.dtype) @ w), None


class QuantLinear(nn.Module):
    """A frozen linear layer stored in NF4 (bits=4) or int8 (bits=8), computing in compute_dtype."""

    def __init__(self, linear: nn.Linear, bits: int, compute_dtype: torch.dtype = torch.bfloat16, double_quant: bool = True):
        super().__init__()
        if bits not in (4, 8):
            raise UserError(f"quantization to {bits} bits is not supported", "use 4 (NF4) or 8")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.bits = bits
        self.compute_dtype = compute_dtype
        q = quantize_nf4(linear.weight, double_quant) if bits == 4 else quantize_int8(linear.weight)
        self._shape = q.pop("shape", None)
        self._numel = q.pop("numel", None)
        for name, t in q.items():
            self.register_buffer(name, t)
        bias = linear.bias
        self.bias = None if bias is None else nn.Parameter(bias.detach().to(compute_dtype), requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        """The stored codes (what holds the weight's device; LoRA reads it)."""
        return self.packed if self.bits == 4 else self.int8

    def _state(self) -> dict:
        q = {name: buf for name, buf in self.named_buffers(recurse=False)}
        if self.bits == 4:
            q.update(shape=self._shape, numel=self._numel)
        return q

    def dequantize(self) -> torch.Tensor:
        return dequantize_nf4(self._state(), self.compute_dtype) if self.bits == 4 else dequantize_int8(self._state(), self.compute_dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _QuantMatmul.apply(x.to(self.compute_dtype), self)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        kind = "nf4, double-quantized scales" if self.bits == 4 else "int8 per row"
        return f"in_features={self.in_features}, out_features={self.out_features}, {kind}, compute {self.compute_dtype}"


class BnbLinear4bit(nn.Module):
    """bitsandbytes' Linear4bit (NF4, double quantization) with dequantize() and compute_dtype like QuantLinear."""

    def __init__(self, linear: nn.Linear, compute_dtype: torch.dtype, bnb):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.compute_dtype = compute_dtype
        self.inner = bnb.nn.Linear4bit(self.in_features, self.out_features, bias=linear.bias is not None,
                                       compute_dtype=compute_dtype, compress_statistics=True, quant_type="nf4",
                                       device="cpu")
        self.inner.weight = bnb.nn.Params4bit(linear.weight.detach().to("cpu", torch.float16), requires_grad=False,
                                              compress_statistics=True, quant_type="nf4")
        if linear.bias is not None:
            self.inner.bias = nn.Parameter(linear.bias.detach().to("cpu", compute_dtype), requires_grad=False)
        self.inner.to(linear.weight.device)  # quantizes on the way to the GPU
        self._bnb = bnb

    @property
    def weight(self):
        return self.inner.weight

    @property
    def bias(self):
        return self.inner.bias

    def dequantize(self) -> torch.Tensor:
        w = self.inner.weight
        return self._bnb.functional.dequantize_4bit(w.data, w.quant_state).to(self.compute_dtype)

    def forward(self, x):
        return self.inner(x)


def _bitsandbytes():
    try:
        import bitsandbytes
        return bitsandbytes
    except Exception:  # absent, or present without a usable CUDA build
        return None


@torch.no_grad()
def quantize_model(model: nn.Module, bits: int, compute_dtype: torch.dtype = torch.bfloat16,
                   skip: Tuple[str, ...] = ("lm_head",), use_bitsandbytes: Optional[bool] = None) -> List[str]:
    """Replaces every nn.Linear (except `skip`, lm_head by default as in QLoRA) by its quantized form, in place.
    Embeddings and norms stay as they are. Returns the replaced modules' names."""
    if bits not in (4, 8):
        raise UserError(f"quant.bits is {bits}", "use 4 (NF4 with double quantization) or 8")
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] not in skip]
    bnb = _bitsandbytes() if bits == 4 and use_bitsandbytes is not False else None
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        linear = getattr(parent, child)
        if bnb is not None and linear.weight.is_cuda:
            q = BnbLinear4bit(linear, compute_dtype, bnb)
        else:
            q = QuantLinear(linear, bits, compute_dtype)
        setattr(parent, child, q)
    return names


@torch.no_grad()
def dequantize_model(model: nn.Module) -> List[str]:
    """Replaces every quantized layer by a plain nn.Linear holding its dequantized weight (compute dtype), in place:
    the form a merged QLoRA model is saved in. Returns the replaced modules' names."""
    names = [n for n, m in model.named_modules() if isinstance(m, (QuantLinear, BnbLinear4bit))]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        q = getattr(parent, child)
        w = q.dequantize()
        linear = nn.Linear(q.in_features, q.out_features, bias=q.bias is not None, device=w.device, dtype=w.dtype)
        linear.weight.copy_(w)
        if q.bias is not None:
            linear.bias.copy_(q.bias)
        linear.requires_grad_(False)
        setattr(parent, child, linear)
    return names


def quantized_bits_per_weight(layer: QuantLinear) -> float:
    """Stored bits per weight, scales included."""
    total = sum(b.numel() * b.element_size() for b in layer.buffers()) * 8
    return total / (layer.in_features * layer.out_features)
