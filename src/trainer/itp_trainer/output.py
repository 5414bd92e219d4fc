"""The trained model as a Hugging Face directory that transformers, PEFT and vLLM load as is.

Written into a temporary sibling folder and renamed into `output_dir` at the end, so the directory is either complete
or absent. `itp_trainer.json` (the run's summary) is our mark: an output_dir holding it is ours to replace on a rerun.
"""

import json
import os
import shutil
from typing import Any, Dict

import torch

from . import hf_io
from .config import TrainConfig
from .errors import UserError

MARK = "itp_trainer.json"
SHARD_BYTES = 5 * 2**30


def _save_dtype(precision: str) -> torch.dtype:
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


TEMPLATE_FILE = "itp_template.json"


def _write_json(path: str, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def _tokenizer_files(cfg: TrainConfig, out: str) -> None:
    for name, src in cfg.tokenizer_files.items():
        shutil.copyfile(src, os.path.join(out, name))
    path = os.path.join(out, "tokenizer_config.json")
    if cfg.chat_template is not None or os.path.exists(path):
        tc: Dict[str, Any] = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                tc = json.load(f)
        if cfg.chat_template is not None:
            tc["chat_template"] = cfg.chat_template
        elif cfg.template is not None:
            # The base's chat template is not what this model learned: a chat template the model was not trained
            # with would mislead whoever prompts it (vLLM, transformers, itp's own generation).
            tc.pop("chat_template", None)
        _write_json(path, tc)
    if cfg.template is not None:
        # The format it was trained with, for itp (generation and evaluation render prompts with it).
        _write_json(os.path.join(out, TEMPLATE_FILE), cfg.template)


def _generation_config(cfg: TrainConfig, out: str) -> None:
    """The base's generation config where it has one (sampling defaults the model was released with); save_pretrained
    wrote one from the token ids of config.json otherwise."""
    src = os.path.join(cfg.base, "generation_config.json")
    if os.path.isfile(src):
        shutil.copyfile(src, os.path.join(out, "generation_config.json"))


def write_model(cfg: TrainConfig, model: torch.nn.Module, summary: Dict[str, Any], log) -> str:
    """Writes the output directory from the trained (unwrapped) model; returns its path."""
    final = os.path.abspath(cfg.output_dir)
    if os.path.isdir(final) and os.listdir(final) and not os.path.isfile(os.path.join(final, MARK)):
        raise UserError(f"output_dir {final} exists and holds files this trainer did not write",
                        "give an empty or new output_dir")
    tmp = final + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    dtype = _save_dtype(cfg.precision)
    model_config = model.config
    if cfg.export_onnx:  # from the model in memory (a float32 copy, adapters merged), before anything is merged in place
        from . import onnx_export
        log("exporting ONNX")
        onnx_export.export_onnx(model, os.path.join(tmp, "model.onnx"))
    if cfg.method in ("lora", "qlora"):
        from . import lora
        lora.save_adapter(model, tmp, base_model=cfg.base, r=cfg.lora.r, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout,
                          target_modules=cfg.lora.target_modules)
        if cfg.lora.merge:
            merged = lora.merge_lora(model)
            hf_io.save_pretrained(merged, model_config, tmp, dtype=dtype, max_shard_bytes=SHARD_BYTES)
    else:
        hf_io.save_pretrained(model, model_config, tmp, dtype=dtype, max_shard_bytes=SHARD_BYTES)
    _tokenizer_files(cfg, tmp)
    _generation_config(cfg, tmp)
    _write_json(os.path.join(tmp, MARK), summary)
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.rename(tmp, final)
    return final
