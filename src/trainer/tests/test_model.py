"""The built-in Llama family: packing, grouped-query attention, tied embeddings, biases, RoPE scaling, checkpointing."""
import dataclasses
import math
import unittest

import torch

from itp_trainer.errors import UserError
from itp_trainer.model import ModelConfig, count_matmul_params, flops_per_token, inv_frequencies

from .tiny import LLAMA, LLAMA3, MISTRAL, QWEN2, config, ids, random_model


class PackingTest(unittest.TestCase):
    def check_packed_equals_separate(self, d):
        model = random_model(d)
        a, b = ids(1, 5, seed=1), ids(1, 7, seed=2)
        packed = torch.cat([a, b], dim=1)
        pos = torch.tensor([list(range(5)) + list(range(7))])
        with torch.no_grad():
            got = model(packed, pos)
            want = torch.cat([model(a), model(b)], dim=1)
        self.assertLess((got - want).abs().max().item(), 1e-5)
        # Without the restart the second example would see the first: the logits must differ.
        with torch.no_grad():
            unpacked = model(packed, torch.arange(12)[None])
        self.assertGreater((unpacked[:, 5:] - want[:, 5:]).abs().max().item(), 1e-3)

    def test_llama(self):
        self.check_packed_equals_separate(LLAMA)

    def test_mistral_sliding_window(self):
        self.check_packed_equals_separate(MISTRAL)

    def test_qwen2(self):
        self.check_packed_equals_separate(QWEN2)

    def test_rows_of_a_batch_do_not_mix(self):
        model = random_model(LLAMA)
        x = ids(3, 9, seed=3)
        with torch.no_grad():
            batch = model(x, torch.arange(9).expand(3, 9))
            rows = torch.cat([model(x[i:i + 1]) for i in range(3)])
            self.assertLess((batch - rows).abs().max().item(), 1e-5)
            # A packed batch: row 0 holds two examples, row 1 one.
            pos = torch.tensor([[0, 1, 2, 0, 1, 2, 3, 4, 5], list(range(9))])
            out = model(x[:2], pos)
            self.assertLess((out[0, 3:] - model(x[0:1, 3:])[0]).abs().max().item(), 1e-5)
            self.assertLess((out[1] - model(x[1:2])[0]).abs().max().item(), 1e-5)


class SlidingWindowTest(unittest.TestCase):
    def test_window_limits_what_a_query_sees(self):
        model = random_model(MISTRAL)  # window 5: position 9 sees 5..9
        x = ids(1, 10, seed=4)
        y = x.clone()
        y[0, 3] = (y[0, 3] + 1) % 61  # outside position 9's window, inside position 7's
        with torch.no_grad():
            a, b = model(x), model(y)
        # Layer 2 widens the reach to 2 * (window - 1) = 8 tokens back, so position 9 still sees position 3 through
        # position 7; with one layer it could not.
        one = random_model(config(MISTRAL, num_hidden_layers=1))
        with torch.no_grad():
            a1, b1 = one(x), one(y)
        self.assertEqual((a1[0, 8:] - b1[0, 8:]).abs().max().item(), 0.0)
        self.assertGreater((a1[0, 7] - b1[0, 7]).abs().max().item(), 1e-4)
        self.assertGreater((a[0, 9] - b[0, 9]).abs().max().item(), 1e-6)


class GroupedQueryTest(unittest.TestCase):
    def test_gqa_equals_mha_with_repeated_key_value_heads(self):
        """Query head h uses key/value head h // (heads / kv_heads), as transformers' repeat_kv."""
        gqa = random_model(LLAMA)  # 4 query heads, 2 key/value heads, head_dim 8
        mha = random_model(config(LLAMA, num_key_value_heads=4))
        sd = gqa.state_dict()
        for k in list(sd):
            if k.endswith("k_proj.weight") or k.endswith("v_proj.weight"):
                w = sd[k].view(2, 8, 32)
                sd[k] = w.repeat_interleave(2, dim=0).reshape(32, 32)
        mha.load_state_dict(sd)
        x = ids(2, 11, seed=5)
        with torch.no_grad():
            self.assertLess((gqa(x) - mha(x)).abs().max().item(), 1e-5)


class ParametersTest(unittest.TestCase):
    def test_hugging_face_names(self):
        names = set(dict(random_model(LLAMA).named_parameters()))
        for n in ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight",
                  "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight", "model.norm.weight",
                  "lm_head.weight"):
            self.assertIn(n, names)
        self.assertNotIn("model.layers.0.self_attn.q_proj.bias", names)

    def test_qwen2_has_qkv_bias_only(self):
        model = random_model(QWEN2)
        names = set(dict(model.named_parameters()))
        for p in ("q_proj", "k_proj", "v_proj"):
            self.assertIn(f"model.layers.0.self_attn.{p}.bias", names)
        self.assertNotIn("model.layers.0.self_attn.o_proj.bias", names)
        x = ids(1, 6)
        with torch.no_grad():
            before = model(x)
            model.model.layers[0].self_attn.v_proj.bias.add_(1.0)
            self.assertGreater((model(x) - before).abs().max().item(), 1e-4)

    def test_llama_attention_bias_covers_o_proj(self):
        names = set(dict(random_model(config(LLAMA, attention_bias=True)).named_parameters()))
        self.assertIn("model.layers.0.self_attn.o_proj.bias", names)

    def test_tied_embeddings_share_one_matrix(self):
        model = random_model(QWEN2)
        self.assertIs(model.lm_head.weight, model.model.embed_tokens.weight)
        untied = random_model(LLAMA)
        self.assertIsNot(untied.lm_head.weight, untied.model.embed_tokens.weight)

    def test_init_is_deterministic_in_the_seed(self):
        a, b, c = random_model(LLAMA, seed=3), random_model(LLAMA, seed=3), random_model(LLAMA, seed=4)
        for (n, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters()):
            self.assertTrue(torch.equal(p, q), n)
        w = a.model.layers[0].mlp.up_proj.weight
        self.assertFalse(torch.equal(w, c.model.layers[0].mlp.up_proj.weight))
        self.assertAlmostEqual(w.std().item(), 0.02, delta=0.004)


class RopeTest(unittest.TestCase):
    def test_default_frequencies(self):
        cfg = ModelConfig.from_hf(LLAMA)
        want = torch.tensor([1.0 / 10000 ** (2 * i / 8) for i in range(4)])
        self.assertTrue(torch.allclose(inv_frequencies(cfg), want))

    def test_linear_scaling_divides_positions(self):
        lin = random_model(config(LLAMA, rope_scaling={"type": "linear", "factor": 2.0}))
        plain = random_model(LLAMA)
        cos_l, sin_l = lin._rope(torch.tensor([[0, 2, 4, 6]]), torch.float32)
        cos_p, sin_p = plain._rope(torch.tensor([[0, 1, 2, 3]]), torch.float32)
        self.assertTrue(torch.allclose(cos_l, cos_p, atol=1e-6) and torch.allclose(sin_l, sin_p, atol=1e-6))

    def test_llama3_scaling(self):
        cfg = ModelConfig.from_hf(LLAMA3)
        base = 1.0 / (10000.0 ** (torch.arange(0, 8, 2).float() / 8))
        got = inv_frequencies(cfg)
        wavelen = 2 * math.pi / base
        for i in range(4):
            if wavelen[i] < 128 / 4.0:  # high frequencies: kept
                self.assertAlmostEqual(got[i].item(), base[i].item(), places=7)
            elif wavelen[i] > 128 / 1.0:  # low frequencies: divided by the factor
                self.assertAlmostEqual(got[i].item(), base[i].item() / 8.0, places=9)
            else:  # in between: interpolated
                smooth = (128 / wavelen[i] - 1.0) / (4.0 - 1.0)
                self.assertAlmostEqual(got[i].item(), ((1 - smooth) * base[i] / 8 + smooth * base[i]).item(), places=7)
        kinds = [("high" if w < 32 else "low" if w > 128 else "mid") for w in wavelen.tolist()]
        self.assertEqual(kinds, ["high", "mid", "low", "low"], "the fixture should cover every case")
        with torch.no_grad():
            self.assertTrue(torch.isfinite(random_model(LLAMA3)(ids(1, 20))).all())

    def test_dynamic_scaling_only_beyond_the_context(self):
        d = config(LLAMA, max_position_embeddings=8, rope_scaling={"type": "dynamic", "factor": 2.0})
        cfg = ModelConfig.from_hf(d)
        plain = inv_frequencies(cfg, 8)
        self.assertTrue(torch.equal(plain, inv_frequencies(ModelConfig.from_hf(config(LLAMA, max_position_embeddings=8)))))
        base = 10000.0 * ((2.0 * 16 / 8) - 1) ** (8 / 6)
        want = 1.0 / (base ** (torch.arange(0, 8, 2).float() / 8))
        self.assertTrue(torch.allclose(inv_frequencies(cfg, 16), want))
        model = random_model(d)
        x = ids(1, 16)
        with torch.no_grad():
            out = model(x)
            short = model(x[:, :8])
        # As transformers: a sequence past the context scales every position's frequencies, its first 8 included.
        self.assertGreater((out[:, :8] - short).abs().max().item(), 1e-5)

    def test_transformers_5_rope_parameters(self):
        d = {k: v for k, v in LLAMA3.items() if k not in ("rope_theta", "rope_scaling")}
        d["rope_parameters"] = dict(LLAMA3["rope_scaling"], rope_theta=10000.0)
        cfg = ModelConfig.from_hf(d)
        self.assertEqual(cfg.rope_theta, 10000.0)
        self.assertTrue(torch.equal(inv_frequencies(cfg), inv_frequencies(ModelConfig.from_hf(LLAMA3))))
        self.assertNotIn("rope_parameters", cfg.to_hf())

    def test_unsupported_scaling_is_a_user_error(self):
        with self.assertRaises(UserError) as e:
            ModelConfig.from_hf(config(LLAMA, rope_scaling={"type": "yarn", "factor": 4.0}))
        self.assertIn("yarn", e.exception.message)


class ConfigTest(unittest.TestCase):
    def test_round_trip_keeps_unknown_keys(self):
        d = config(MISTRAL, some_future_key=[1, 2])
        out = ModelConfig.from_hf(d).to_hf()
        self.assertEqual(out["some_future_key"], [1, 2])
        self.assertEqual(out["sliding_window"], 5)
        strip = lambda c: dataclasses.replace(c, raw={})
        self.assertEqual(strip(ModelConfig.from_hf(out)), strip(ModelConfig.from_hf(d)))

    def test_bad_configs(self):
        for d, needle in [
            (config(LLAMA, num_key_value_heads=3), "num_key_value_heads"),
            (config(LLAMA, hidden_size=0), "hidden_size"),
            (config(LLAMA, hidden_act="gelu"), "hidden_act"),
            ({"model_type": "unknown"}, "architecture"),
        ]:
            with self.assertRaises(UserError) as e:
                ModelConfig.from_hf(d)
            self.assertIn(needle, e.exception.message)

    def test_qwen2_sliding_layers(self):
        cfg = ModelConfig.from_hf(config(QWEN2, use_sliding_window=True, sliding_window=4, max_window_layers=1))
        self.assertEqual(cfg.sliding_windows, [None, 4])


class CheckpointingTest(unittest.TestCase):
    def test_same_gradients(self):
        grads = []
        for ckpt in (False, True):
            model = random_model(LLAMA).train()
            model.gradient_checkpointing = ckpt
            model(ids(2, 8), torch.tensor([[0, 1, 2, 0, 1, 2, 3, 4]] * 2)).float().logsumexp(-1).sum().backward()
            grads.append([p.grad.clone() for p in model.parameters()])
        for a, b in zip(*grads):
            self.assertTrue(torch.allclose(a, b, atol=1e-6))


class FlopsTest(unittest.TestCase):
    def test_llama2_7b(self):
        cfg = ModelConfig.from_hf({"architectures": ["LlamaForCausalLM"], "vocab_size": 32000, "hidden_size": 4096,
                                   "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32})
        n = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 4096 * 32000
        self.assertEqual(count_matmul_params(cfg), n)
        self.assertAlmostEqual(n / 1e9, 6.607, places=3)  # 6.74B parameters less the 0.13B input embedding
        self.assertEqual(flops_per_token(cfg, 2048), 6 * n + 12 * 32 * 32 * 128 * 2048)
        # Counted against an actual model: every linear weight, lm_head included.
        model = random_model(QWEN2)
        linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
        self.assertEqual(count_matmul_params(model.config), linear)


if __name__ == "__main__":
    unittest.main()
