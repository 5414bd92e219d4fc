"""Small random Llama-family configs shared by the model-side tests (inline dicts, as config.json holds them)."""
import copy

import torch

torch.set_num_threads(1)

LLAMA = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 61, "hidden_size": 32,
    "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
    "bos_token_id": 1, "eos_token_id": 2,
}
# head_dim 8: wavelengths 6.3, 63, 628, 6283 tokens; with an original context of 128 the first is kept, the second
# interpolated, the last two divided by the factor.
LLAMA3 = dict(LLAMA, rope_scaling={
    "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 128})
MISTRAL = dict(LLAMA, architectures=["MistralForCausalLM"], model_type="mistral", sliding_window=5, head_dim=8)
QWEN2 = dict(LLAMA, architectures=["Qwen2ForCausalLM"], model_type="qwen2", tie_word_embeddings=True,
             num_key_value_heads=1, rope_theta=1000000.0)


def config(base, **changes):
    d = copy.deepcopy(base)
    d.update(changes)
    return d


def random_model(d, seed=0, dtype=torch.float32):
    """A model from a config dict with seeded weights; biases get random values too, so they matter."""
    from itp_trainer.model import ModelConfig, build, init_weights

    model = build(ModelConfig.from_hf(d), dtype=dtype)
    init_weights(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias") or name.endswith("norm.weight"):
                p.add_(torch.randn(p.shape, generator=g).to(p.dtype) * 0.1)
    return model.eval()


def ids(batch, seq, vocab=61, seed=0):
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(seed))
