"""The built-in model against transformers' own classes, where transformers is importable (fp32, max abs diff < 1e-4):
random Llama (grouped-query attention, llama3 RoPE scaling), Mistral (sliding window) and Qwen2 (qkv bias, tied
embeddings) configs; checkpoints written by either side load in the other; other architectures run through
transformers behind the same forward."""
import os
import shutil
import tempfile
import unittest

import torch

from itp_trainer import hf_io
from itp_trainer.model import ModelConfig, build

from .tiny import LLAMA, LLAMA3, MISTRAL, QWEN2, config, ids

try:
    import transformers
except ImportError:  # Debian has no package for it; the GPU machine has it
    transformers = None

SKIP = "transformers is not importable here: the parity tests run where it is (the GPU machine)"
TOL = 1e-4


def hf_model(d, seed=0):
    """transformers' model of a config dict, eager attention, with seeded random weights (biases and norms too)."""
    cls = getattr(transformers, d["architectures"][0])
    cfg_cls = cls.config_class
    hf_cfg = cfg_cls(**{k: v for k, v in d.items() if k != "architectures"})
    hf_cfg.architectures = d["architectures"]
    hf_cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = cls(hf_cfg)
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 1)
        for name, p in model.named_parameters():
            if name.endswith(".bias") or name.endswith("norm.weight"):
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


def ours_from(hf):
    cfg = ModelConfig.from_hf(hf.config.to_dict())
    model = build(cfg, dtype=torch.float32)
    model.load_state_dict({k: v for k, v in hf.state_dict().items() if "rotary_emb" not in k}, strict=not cfg.tie_word_embeddings)
    return model.eval()


@unittest.skipIf(transformers is None, SKIP)
class ParityTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="itp-parity-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def check(self, d, seq=24):
        hf = hf_model(d)
        ours = ours_from(hf)
        x = ids(2, seq, vocab=d["vocab_size"])
        pos = torch.arange(seq).expand(2, seq)
        with torch.no_grad():
            want = hf(input_ids=x, position_ids=pos, use_cache=False).logits
            got = ours(x, pos)
        diff = (got - want).abs().max().item()
        self.assertLess(diff, TOL, f"{d['architectures'][0]}: max abs diff {diff:.2e}")
        return hf, ours

    def test_llama_gqa(self):
        self.check(LLAMA)

    def test_llama3_rope_scaling(self):
        self.check(LLAMA3, seq=40)

    def test_llama_linear_rope_and_biases(self):
        self.check(config(LLAMA, rope_scaling={"type": "linear", "factor": 2.0}, attention_bias=True, mlp_bias=True))

    def test_llama_dynamic_rope_beyond_the_context(self):
        self.check(config(LLAMA, max_position_embeddings=16, rope_scaling={"type": "dynamic", "factor": 2.0}), seq=30)

    def test_mistral_sliding_window(self):
        self.check(MISTRAL, seq=20)  # window 5: most keys are outside it

    def test_qwen2_bias_and_tied(self):
        hf, ours = self.check(QWEN2)
        self.assertIs(ours.lm_head.weight, ours.model.embed_tokens.weight)

    def test_checkpoints_load_both_ways(self):
        for d in (LLAMA3, QWEN2, MISTRAL):
            hf = hf_model(d)
            theirs = os.path.join(self.dir, "theirs")
            hf.save_pretrained(theirs, safe_serialization=True)
            ours = hf_io.load_pretrained(theirs, dtype=torch.float32).eval()
            x = ids(1, 12, vocab=d["vocab_size"])
            with torch.no_grad():
                want = hf(input_ids=x, use_cache=False).logits
                self.assertLess((ours(x) - want).abs().max().item(), TOL)
            mine = os.path.join(self.dir, "mine")
            hf_io.save_pretrained(ours, ours.config, mine, dtype=torch.float32, max_shard_bytes=30_000)
            back = transformers.AutoModelForCausalLM.from_pretrained(mine, torch_dtype=torch.float32, attn_implementation="eager").eval()
            with torch.no_grad():
                self.assertLess((back(input_ids=x, use_cache=False).logits - want).abs().max().item(), TOL)
            shutil.rmtree(theirs)
            shutil.rmtree(mine)

    def test_other_architecture_through_transformers(self):
        d = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 61, "n_embd": 32, "n_layer": 2,
             "n_head": 4, "n_positions": 64}
        torch.manual_seed(0)
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**d)).eval()
        path = os.path.join(self.dir, "gpt2")
        hf.save_pretrained(path, safe_serialization=True)
        model = hf_io.load_pretrained(path, dtype=torch.float32).eval()
        self.assertIsInstance(model, hf_io.HFCausalLM)
        self.assertEqual(set(model.state_dict()), set(hf.state_dict()))  # transformers' names, lm_head.weight included
        x = ids(2, 10)
        with torch.no_grad():
            self.assertLess((model(x) - hf(input_ids=x).logits).abs().max().item(), TOL)
        # Written back by hf_io (the tied lm_head once), it loads in transformers as the same model.
        again = os.path.join(self.dir, "gpt2-again")
        hf_io.save_pretrained(model, model.config, again, dtype=torch.float32)
        back = transformers.AutoModelForCausalLM.from_pretrained(again).eval()
        with torch.no_grad():
            self.assertLess((back(input_ids=x).logits - hf(input_ids=x).logits).abs().max().item(), TOL)
            # Packed rows stay apart through the 4D mask.
            packed = model(x[:1], torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3, 4, 5]]))
            alone = model(x[:1, 4:])
            self.assertLess((packed[0, 4:] - alone[0]).abs().max().item(), TOL)


@unittest.skipIf(transformers is None or not torch.cuda.is_available(), "needs transformers and a CUDA device")
class CudaTest(unittest.TestCase):
    """The GPU path: bf16 with scaled_dot_product_attention against transformers' sdpa, and packing on CUDA."""

    def test_bf16_against_transformers(self):
        d = config(LLAMA3, hidden_size=256, intermediate_size=512, num_attention_heads=8, num_key_value_heads=2, vocab_size=1000)
        hf = hf_model(d)
        ours = ours_from(hf)
        hf = hf.to("cuda", torch.bfloat16)
        hf.config._attn_implementation = "sdpa"
        ours = ours.to("cuda", torch.bfloat16)
        x = ids(2, 256, vocab=1000).cuda()
        with torch.no_grad():
            want = hf(input_ids=x, use_cache=False).logits.float()
            got = ours(x).float()
        # bf16 rounds to 3 significant digits; the logits are of order 1.
        self.assertLess((got - want).abs().max().item(), 0.1)
        self.assertLess((got - want).abs().mean().item(), 0.01)

    def test_packing_on_cuda(self):
        d = config(LLAMA, hidden_size=128, intermediate_size=256, num_attention_heads=4, num_key_value_heads=2)
        ours = ours_from(hf_model(d)).cuda()
        a, b = ids(1, 50, seed=1).cuda(), ids(1, 70, seed=2).cuda()
        pos = torch.cat([torch.arange(50), torch.arange(70)])[None].cuda()
        with torch.no_grad():
            got = ours(torch.cat([a, b], 1), pos)
            want = torch.cat([ours(a), ours(b)], 1)
        self.assertLess((got - want).abs().max().item(), 1e-4)

    def test_compiled_layers(self):
        if not hasattr(torch.nn.Module, "compile"):
            self.skipTest("this PyTorch has no nn.Module.compile")
        d = config(LLAMA, hidden_size=128, intermediate_size=256, num_attention_heads=4, num_key_value_heads=2)
        eager = ours_from(hf_model(d)).cuda().to(torch.bfloat16)
        compiled = ours_from(hf_model(d)).cuda().to(torch.bfloat16)
        self.assertTrue(compiled.compile_layers())
        compiled.gradient_checkpointing = True
        compiled.train()
        x = ids(2, 64).cuda()
        packed = torch.cat([torch.arange(20), torch.arange(44)])[None].expand(2, 64).cuda()
        for pos in (None, packed):
            want = eager(x, pos)
            got = compiled(x, pos)
            self.assertLess((got.float() - want.float()).abs().max().item(), 0.1)
            got.float().logsumexp(-1).sum().backward()
        self.assertIsNotNone(compiled.model.layers[0].mlp.up_proj.weight.grad)


if __name__ == "__main__":
    unittest.main()
