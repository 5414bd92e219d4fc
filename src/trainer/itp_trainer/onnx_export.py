"""ONNX export in the layout the `onnx_model` stage runs (src/models/onnx-signature.ts):

    input   input_ids        int64    [batch, sequence]
    input   attention_mask   int64    [batch, sequence]   1 for tokens, 0 for padding
    output  logits           float32  [batch, sequence, vocab]

No key/value cache: the runner feeds the whole sequence at every step, padded on the right. Positions are
cumsum(attention_mask) - 1, as transformers derives them, so left padding works too. The graph is traced from the
model in float32 with the hand-written attention (softmax of masked scores), opset 14.
"""
import copy
import inspect
import os
from typing import Union

import torch
import torch.nn as nn

from .errors import UserError
from .model import CausalLM

OPSET = 14


class _Exported(nn.Module):
    def __init__(self, model: CausalLM):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = (torch.cumsum(attention_mask, dim=1) - 1).clamp(min=0)
        return self.model(input_ids, positions, attention_mask=attention_mask).float()


def _float_copy(model: nn.Module) -> CausalLM:
    """A float32 CPU copy with adapters merged and quantized layers dequantized (the export holds plain weights)."""
    from . import lora

    if not isinstance(model, CausalLM):
        raise UserError(f"ONNX export supports the built-in Llama family, not {type(model).__name__}",
                        "export a transformers model with optimum: optimum-cli export onnx --task text-generation")
    m = copy.deepcopy(model).to("cpu")
    lora.merge_lora(m)
    m = m.float().eval()
    m.tie_weights()
    m.use_sdpa = False
    m.gradient_checkpointing = False
    return m


def export_onnx(source: Union[str, nn.Module], out: str, cfg=None, opset: int = OPSET) -> str:
    """Writes the model (a CausalLM, or a Hugging Face directory loaded with hf_io) as ONNX to `out`: a .onnx path,
    or a directory that gets model.onnx. Returns the file's path. (ONNX files hold at most 2 GB: torch writes the
    weights of larger models to separate files beside it.)"""
    if isinstance(source, str):
        from . import hf_io

        model = hf_io.load_pretrained(source, dtype=torch.float32, device="cpu")
    else:
        model = source
    model = _float_copy(model)
    path = out if out.endswith(".onnx") else os.path.join(out, "model.onnx")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    ids = torch.tensor([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]], dtype=torch.long) % model.config.vocab_size
    mask = torch.ones_like(ids)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch", 1: "sequence"}}
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter: same graph on torch 1.13 and current releases
    tmp = f"{path}.tmp-{os.getpid()}"
    with torch.no_grad():
        torch.onnx.export(_Exported(model), (ids, mask), tmp, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes=axes, opset_version=opset, do_constant_folding=True,
                          **kwargs)
    os.replace(tmp, path)
    return path
