"""The Llama family (Llama 2/3, Mistral, Qwen2) in plain PyTorch, with Hugging Face's parameter names.

Parameter names equal transformers' (`model.layers.0.self_attn.q_proj.weight`, `lm_head.weight`), so a checkpoint
maps 1:1 in both directions. The arithmetic follows transformers' modeling_llama / modeling_mistral / modeling_qwen2
(RMSNorm in float32, RoPE with rotate_half, cos/sin from float32 positions), so logits agree to float rounding.

Packing: an example starts wherever position_ids is 0, and attention is causal within an example only. A batch
whose rows each hold one example takes scaled_dot_product_attention's is_causal path (flash attention on a GPU);
packed rows get a block-diagonal boolean mask. Torch 1.13 (no scaled_dot_product_attention) runs the same
arithmetic by hand.
"""
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

from .errors import UserError

# Architectures this file implements; anything else loads through transformers (hf_io.load_pretrained).
FAMILY = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "Qwen2ForCausalLM": "qwen2",
}
ROPE_TYPES = ("default", "linear", "dynamic", "llama3")
_SDPA = hasattr(F, "scaled_dot_product_attention")
try:  # enable_gqa arrived in torch 2.5: grouped-query attention without repeating k and v.
    import inspect

    _SDPA_GQA = _SDPA and "enable_gqa" in inspect.signature(F.scaled_dot_product_attention).parameters
except (TypeError, ValueError):
    _SDPA_GQA = False


@dataclass
class ModelConfig:
    architecture: str
    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    max_position_embeddings: int = 4096
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: Optional[Dict[str, Any]] = None
    attention_bias: bool = False  # Llama: bias on q, k, v and o
    qkv_bias: bool = False  # Qwen2: bias on q, k and v only
    mlp_bias: bool = False
    tie_word_embeddings: bool = False
    # Per layer: the attention window in tokens (a query sees keys less than this far back), or None.
    sliding_windows: List[Optional[int]] = field(default_factory=list)
    initializer_range: float = 0.02
    hidden_act: str = "silu"
    bos_token_id: Any = None
    eos_token_id: Any = None
    pad_token_id: Any = None
    # The config.json it came from: keys this class does not model are written back unchanged.
    raw: Dict[str, Any] = field(default_factory=dict)

    @property
    def builtin(self) -> bool:
        return self.architecture in FAMILY

    @classmethod
    def from_hf(cls, d: Dict[str, Any], where: str = "config.json") -> "ModelConfig":
        """Reads a Hugging Face config.json (as a dict). Architectures outside the family keep only `raw`."""
        archs = d.get("architectures") or []
        arch = archs[0] if archs else {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"}.get(
            d.get("model_type", ""), "")
        if not arch:
            raise UserError(f"{where} names no architecture (no `architectures`, model_type {d.get('model_type')!r})",
                            "a Hugging Face causal LM config has \"architectures\": [\"LlamaForCausalLM\"] or similar")
        if arch not in FAMILY:
            return cls(architecture=arch, model_type=str(d.get("model_type", "")), vocab_size=int(d.get("vocab_size", 0)),
                       hidden_size=int(d.get("hidden_size", 0)), intermediate_size=int(d.get("intermediate_size", 0)),
                       num_hidden_layers=int(d.get("num_hidden_layers", 0)), num_attention_heads=int(d.get("num_attention_heads", 0) or 0),
                       num_key_value_heads=int(d.get("num_key_value_heads", d.get("num_attention_heads", 0)) or 0), head_dim=0,
                       tie_word_embeddings=bool(d.get("tie_word_embeddings", False)), raw=dict(d))

        def need(key: str) -> int:
            v = d.get(key)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise UserError(f"{where}: `{key}` must be a positive integer, got {v!r}", f"{arch} configs set {key}")
            return v

        hidden, heads, layers = need("hidden_size"), need("num_attention_heads"), need("num_hidden_layers")
        kv = d.get("num_key_value_heads") or heads
        if not isinstance(kv, int) or kv <= 0 or heads % kv:
            raise UserError(f"{where}: num_key_value_heads ({kv!r}) must divide num_attention_heads ({heads})")
        head_dim = d.get("head_dim") or hidden // heads
        if not d.get("head_dim") and hidden % heads:
            raise UserError(f"{where}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}", "set head_dim")
        if head_dim % 2:
            raise UserError(f"{where}: head_dim {head_dim} must be even for rotary embeddings")
        act = d.get("hidden_act", "silu")
        if act not in ("silu", "swish"):
            raise UserError(f"{where}: hidden_act {act!r} is not supported by the built-in {arch}", "the Llama family uses silu (SwiGLU)")

        # transformers 5 moved rope_theta and rope_scaling into rope_parameters; both spellings are read.
        rope_params = d.get("rope_parameters") if isinstance(d.get("rope_parameters"), dict) else None
        theta = float((rope_params or {}).get("rope_theta", d.get("rope_theta", 10000.0)))
        scaling = d.get("rope_scaling")
        if rope_params and not scaling:
            scaling = {k: v for k, v in rope_params.items() if k != "rope_theta"}
        scaling = _check_rope_scaling(scaling, where)

        model_type = d.get("model_type", FAMILY[arch])
        windows: List[Optional[int]] = [None] * layers
        sw = d.get("sliding_window")
        if model_type == "mistral" and sw:
            windows = [int(sw)] * layers
        elif model_type == "qwen2" and d.get("use_sliding_window") and sw:
            # Qwen2: layers from max_window_layers on use the window (transformers' layer_types says the same).
            types = d.get("layer_types")
            first = d.get("max_window_layers", layers)
            windows = [int(sw) if (types[i] == "sliding_attention" if types else i >= first) else None for i in range(layers)]
        return cls(
            architecture=arch, model_type=model_type, vocab_size=need("vocab_size"), hidden_size=hidden,
            intermediate_size=need("intermediate_size"), num_hidden_layers=layers, num_attention_heads=heads,
            num_key_value_heads=kv, head_dim=int(head_dim), max_position_embeddings=int(d.get("max_position_embeddings", 4096)),
            rms_norm_eps=float(d.get("rms_norm_eps", 1e-6)), rope_theta=theta, rope_scaling=scaling,
            attention_bias=bool(d.get("attention_bias", False)) if model_type != "qwen2" else False,
            qkv_bias=model_type == "qwen2", mlp_bias=bool(d.get("mlp_bias", False)),
            tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
            sliding_windows=windows, initializer_range=float(d.get("initializer_range", 0.02)), hidden_act=act,
            bos_token_id=d.get("bos_token_id"), eos_token_id=d.get("eos_token_id"), pad_token_id=d.get("pad_token_id"),
            raw=dict(d),
        )

    def to_hf(self) -> Dict[str, Any]:
        """The config.json to write: the original keys, with the modelled ones as they are now."""
        d = dict(self.raw)
        d["architectures"] = [self.architecture]
        if not self.builtin:
            return d
        d.update({
            "model_type": self.model_type, "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size, "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads, "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim, "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps, "rope_theta": self.rope_theta, "rope_scaling": self.rope_scaling,
            "tie_word_embeddings": self.tie_word_embeddings, "hidden_act": self.hidden_act,
            "initializer_range": self.initializer_range,
        })
        d.pop("rope_parameters", None)  # written in the older spelling, which transformers 4 and 5 both read
        if self.model_type == "llama":
            d["attention_bias"] = self.attention_bias
            d["mlp_bias"] = self.mlp_bias
        for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d


def _check_rope_scaling(s: Any, where: str) -> Optional[Dict[str, Any]]:
    if not s:
        return None
    if not isinstance(s, dict):
        raise UserError(f"{where}: rope_scaling must be an object, got {s!r}")
    kind = s.get("rope_type", s.get("type", "default"))
    if kind not in ROPE_TYPES:
        raise UserError(f"{where}: rope_scaling type {kind!r} is not supported by the built-in model",
                        f"supported: {', '.join(ROPE_TYPES)}; other kinds load through transformers if the architecture is not Llama-family")
    if kind == "default":
        return None
    if not isinstance(s.get("factor"), (int, float)) or s["factor"] <= 0:
        raise UserError(f"{where}: rope_scaling of type {kind} needs a positive factor, got {s.get('factor')!r}")
    if kind == "llama3":
        for k in ("low_freq_factor", "high_freq_factor", "original_max_position_embeddings"):
            if not isinstance(s.get(k), (int, float)):
                raise UserError(f"{where}: rope_scaling of type llama3 needs {k}")
    out = dict(s)
    out["rope_type"] = kind
    return out


def inv_frequencies(cfg: ModelConfig, seq_len: int = 0, device=None) -> torch.Tensor:
    """RoPE's inverse frequencies (float32), scaled as config.rope_scaling says (transformers' rope_init functions)."""
    dim = cfg.head_dim
    base = cfg.rope_theta
    s = cfg.rope_scaling or {}
    kind = s.get("rope_type")
    if kind == "dynamic" and seq_len > cfg.max_position_embeddings:
        # Dynamic NTK: a larger base once a sequence is longer than the trained context.
        f = float(s["factor"])
        base = base * ((f * seq_len / cfg.max_position_embeddings) - (f - 1)) ** (dim / (dim - 2))
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64, device=device).float() / dim))
    if kind == "linear":
        inv = inv / float(s["factor"])
    elif kind == "llama3":
        factor, low, high = float(s["factor"]), float(s["low_freq_factor"]), float(s["high_freq_factor"])
        old = float(s["original_max_position_embeddings"])
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    return inv


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, device=None, dtype=None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # As transformers: normalize in float32, round to the input dtype, then scale.
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, window: Optional[int], device=None, dtype=None):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.window = window
        qkv_bias = cfg.attention_bias or cfg.qkv_bias
        kw = dict(device=device, dtype=dtype)
        self.q_proj = nn.Linear(cfg.hidden_size, self.heads * self.head_dim, bias=qkv_bias, **kw)
        self.k_proj = nn.Linear(cfg.hidden_size, self.kv_heads * self.head_dim, bias=qkv_bias, **kw)
        self.v_proj = nn.Linear(cfg.hidden_size, self.kv_heads * self.head_dim, bias=qkv_bias, **kw)
        self.o_proj = nn.Linear(self.heads * self.head_dim, cfg.hidden_size, bias=cfg.attention_bias, **kw)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: "AttentionMask") -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        allowed = mask.for_window(self.window)
        rep = self.heads // self.kv_heads
        if mask.sdpa:
            if rep > 1 and not (_SDPA_GQA and allowed is None):
                k, v = _repeat_kv(k, rep), _repeat_kv(v, rep)
            extra = {"enable_gqa": True} if rep > 1 and _SDPA_GQA and allowed is None else {}
            if allowed is None:
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True, **extra)
            else:
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        else:
            if rep > 1:
                k, v = _repeat_kv(k, rep), _repeat_kv(v, rep)
            if allowed is None:
                allowed = mask.causal(s, x.device)
            scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
            scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            out = torch.matmul(probs, v)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, self.heads * self.head_dim))


def _repeat_kv(x: torch.Tensor, rep: int) -> torch.Tensor:
    """[B, KV, S, D] -> [B, KV*rep, S, D]; query head h uses key/value head h // rep (transformers' repeat_kv)."""
    b, kv, s, d = x.shape
    return x[:, :, None].expand(b, kv, rep, s, d).reshape(b, kv * rep, s, d)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig, device=None, dtype=None):
        super().__init__()
        kw = dict(bias=cfg.mlp_bias, device=device, dtype=dtype)
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, **kw)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, **kw)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig, window: Optional[int], device=None, dtype=None):
        super().__init__()
        self.self_attn = Attention(cfg, window, device, dtype)
        self.mlp = MLP(cfg, device, dtype)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, device, dtype)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, device, dtype)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class AttentionMask:
    """Which keys each query sees: causal, within its example (segments start where position_ids is 0), and within
    a layer's sliding window. None from for_window means "plain causal", the fast path."""

    def __init__(self, position_ids: torch.Tensor, seq_len: int, packed: bool, keys: Optional[torch.Tensor] = None,
                 sdpa: bool = _SDPA):
        self.position_ids = position_ids
        self.seq_len = seq_len
        self.packed = packed
        self.keys = keys  # [B, S] bool: real tokens (an attention_mask), or None when every token is real
        self.sdpa = sdpa
        self._cache: Dict[Optional[int], Optional[torch.Tensor]] = {}

    def causal(self, s: int, device) -> torch.Tensor:
        i = torch.arange(s, device=device)
        return (i[None, :] <= i[:, None])[None, None]

    def for_window(self, window: Optional[int]) -> Optional[torch.Tensor]:
        if window is not None and window >= self.seq_len and not torch.jit.is_tracing():
            window = None  # no query is that far from its first key (an ONNX trace keeps it for longer inputs)
        if not self.packed and window is None and self.keys is None:
            return None
        if window not in self._cache:
            pos = self.position_ids
            s = self.seq_len
            i = torch.arange(s, device=pos.device)
            allowed = (i[None, :] <= i[:, None])[None]  # [1, S, S]
            if self.packed:
                seg = torch.cumsum((pos == 0).to(torch.int32), dim=1)  # [B, S]
                allowed = allowed & (seg[:, :, None] == seg[:, None, :])
            if window is not None:
                allowed = allowed & ((i[:, None] - i[None, :]) < window)[None]
            if self.keys is not None:
                # A padding query still sees itself: no row is fully masked (NaN in some attention kernels).
                allowed = allowed & (self.keys[:, None, :] | (i[:, None] == i[None, :])[None])
            self._cache[window] = allowed[:, None]  # [B or 1, 1, S, S]
        return self._cache[window]


class Backbone(nn.Module):
    """transformers' `model` submodule (LlamaModel): embeddings, layers, final norm."""

    def __init__(self, cfg: ModelConfig, device=None, dtype=None):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size, device=device, dtype=dtype)
        windows = cfg.sliding_windows or [None] * cfg.num_hidden_layers
        self.layers = nn.ModuleList(DecoderLayer(cfg, windows[i], device, dtype) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, device, dtype)


class CausalLM(nn.Module):
    """forward(input_ids [B,S] long, position_ids [B,S] long | None) -> logits [B,S,V] in the weights' dtype.

    attention_mask [B,S] (1 for tokens, 0 for padding), for inference and the ONNX export, hides padding keys;
    rows then hold one example each. use_sdpa False takes the hand-written attention (what ONNX export traces)."""

    def __init__(self, cfg: ModelConfig, device=None, dtype=None):
        super().__init__()
        if not cfg.builtin:
            raise UserError(f"architecture {cfg.architecture} is not built in", f"built in: {', '.join(FAMILY)}")
        self.config = cfg
        self.model = Backbone(cfg, device, dtype)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False, device=device, dtype=dtype)
        self.tie_weights()
        self.gradient_checkpointing = False
        self.use_sdpa = _SDPA
        self._inv_freq: Dict[Tuple[Any, int], torch.Tensor] = {}

    # The block FSDP wraps one by one.
    layer_class = DecoderLayer

    def flops_per_token(self, seq_len: int) -> float:
        return flops_per_token(self.config, seq_len)

    def compile_layers(self) -> bool:
        """torch.compile each decoder layer, fusing RMSNorm, RoPE and SwiGLU's elementwise work between the matmuls.
        Measured on an H200 (torch 2.11), 1B Llama, seq 2048, micro batch 4, fused AdamW, tokens/s (MFU):
          bf16 weights:                 eager 49.8k (0.41), compile_layers 62.3k (0.52); transformers eager 50.2k (0.42)
          fp32 weights + bf16 autocast: eager 44.3k (0.37), compile_layers 57.3k (0.48), torch.compile(model) 57.3k
                                        (0.48) after 70 s instead of 2 s; transformers eager 44.7k, compiled 51.5k (0.43)
        False where this PyTorch cannot (no nn.Module.compile: torch < 2.2)."""
        if not hasattr(nn.Module, "compile"):
            return False
        for layer in self.model.layers:
            layer.compile()
        return True

    def tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def _rope(self, position_ids: torch.Tensor, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
        seq_len = 0
        if (self.config.rope_scaling or {}).get("rope_type") == "dynamic":
            seq_len = int(position_ids.max()) + 1
        key = (position_ids.device, seq_len if seq_len > self.config.max_position_embeddings else 0)
        inv = self._inv_freq.get(key)
        if inv is None:
            inv = self._inv_freq[key] = inv_frequencies(self.config, seq_len, position_ids.device)
        freqs = position_ids[:, :, None].float() * inv  # [B, S, D/2], float32 as transformers
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]  # [B, 1, S, D]
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def forward(self, input_ids: torch.Tensor, position_ids: Optional[torch.Tensor] = None,
                attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, s = input_ids.shape
        if position_ids is None:
            position_ids = torch.arange(s, device=input_ids.device).expand(b, s)
            packed = False
        elif attention_mask is not None:
            packed = False
        else:
            # One host sync per forward: rows with a single example take the is_causal (flash) path.
            packed = s > 1 and bool((position_ids[:, 1:] == 0).any())
        x = self.model.embed_tokens(input_ids)
        cos, sin = self._rope(position_ids, x.dtype)
        keys = None if attention_mask is None else attention_mask > 0
        mask = AttentionMask(position_ids, s, packed, keys, self.use_sdpa and _SDPA)
        checkpoint = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for layer in self.model.layers:
            if checkpoint:
                x = torch.utils.checkpoint.checkpoint(layer, x, cos, sin, mask, use_reentrant=False)
            else:
                x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


def build(cfg: ModelConfig, device=None, dtype=None) -> CausalLM:
    """The model with uninitialized weights (allocated, not computed): load or init_weights fills them."""
    meta = CausalLM(cfg, device="meta", dtype=dtype)
    model = meta.to_empty(device=device or "cpu")
    model.tie_weights()
    return model


@torch.no_grad()
def init_weights(model: nn.Module, seed: int) -> None:
    """transformers' initialization (normal(0, initializer_range) for linear and embedding weights, zero biases, ones
    for norms), drawn in parameter order from a generator seeded with `seed` on the model's device: the same seed
    gives the same weights on the same kind of device."""
    std = model.config.initializer_range
    seen = set()
    gen = None
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        if gen is None or gen.device != p.device:
            gen = torch.Generator(device=p.device)
            gen.manual_seed(seed)
        if name.endswith("norm.weight"):
            p.fill_(1.0)
        elif name.endswith(".bias"):
            p.zero_()
        else:
            # Drawn in float32 and rounded, so bf16 weights are the rounding of the float32 ones.
            p.copy_(torch.empty(p.shape, dtype=torch.float32, device=p.device).normal_(0.0, std, generator=gen))


def count_matmul_params(cfg: ModelConfig) -> int:
    """Weights used in matrix multiplies per token: every linear layer, lm_head included (the input embedding is a
    lookup; with tied embeddings the shared matrix counts once, as lm_head)."""
    h, d, kv = cfg.hidden_size, cfg.head_dim, cfg.num_key_value_heads
    attn = h * cfg.num_attention_heads * d * 2 + h * kv * d * 2
    mlp = 3 * h * cfg.intermediate_size
    return cfg.num_hidden_layers * (attn + mlp) + h * cfg.vocab_size


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token for MFU, as PaLM (appendix B) and torchtitan count them:

        6 * N + 12 * L * H * Dh * S

    N: count_matmul_params (forward 2N, backward 4N); the second term is attention's two score/value matmuls
    (QK^T and PV, 2 * 2 * S * H * Dh forward, times 3 for backward) over the full S x S matrix, as the convention
    has it, although a causal kernel does about half. Recomputation under gradient checkpointing is not counted."""
    return 6.0 * count_matmul_params(cfg) + 12.0 * cfg.num_hidden_layers * cfg.num_attention_heads * cfg.head_dim * seq_len
