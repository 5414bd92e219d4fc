"""QLoRA's quantized base: NF4 code values, round-trip error bounds, double quantization, 8-bit, QuantLinear."""
import unittest

import torch
import torch.nn as nn
import torch.nn.functional as F

from itp_trainer import quant
from itp_trainer.errors import UserError

from .tiny import LLAMA, ids, random_model


def normal(rows, cols, std=0.02, seed=0):
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) * std


class Nf4CodeTest(unittest.TestCase):
    def test_the_papers_sixteen_values(self):
        code = quant.NF4_CODE
        self.assertEqual(code.numel(), 16)
        self.assertEqual(code[0].item(), -1.0)
        self.assertEqual(code[7].item(), 0.0)
        self.assertEqual(code[15].item(), 1.0)
        self.assertTrue(bool((code[1:] > code[:-1]).all()))
        # The table is what the construction from N(0, 1) quantiles gives.
        self.assertLess((quant.nf4_from_quantiles() - code).abs().max().item(), 1e-6)

    def test_dynamic_map(self):
        m = quant.dynamic_map()
        self.assertEqual(m.numel(), 256)
        self.assertEqual(len(set(m.tolist())), 256)
        self.assertEqual(m.max().item(), 1.0)
        self.assertIn(0.0, m.tolist())
        self.assertAlmostEqual(m.min().item(), -0.9929688, places=6)  # -(midpoint of the last two of 65 points in [0.1, 1])
        self.assertAlmostEqual(sorted(abs(v) for v in m.tolist() if v)[0], 0.55e-6, places=12)  # 10^-6 * 0.55


class Nf4RoundTripTest(unittest.TestCase):
    def test_error_on_normal_weights(self):
        w = normal(256, 512)
        q = quant.quantize_nf4(w)
        back = quant.dequantize_nf4(q)
        err = (back - w).view(-1, quant.BLOCK)
        absmax = w.view(-1, quant.BLOCK).abs().amax(1)
        # Hard bound: half the widest gap between neighbouring codes times the block's scale, plus how far double
        # quantization moved the scale (a code is at most 1 in size).
        half_gap = ((quant.NF4_CODE[1:] - quant.NF4_CODE[:-1]).max() / 2).item()
        moved = (quant.nf4_absmax(q) - absmax).abs()
        self.assertTrue(bool((err.abs().amax(1) <= half_gap * absmax + moved + 1e-9).all()))
        # Expected size: for Gaussian blocks of 64, NF4's error is about 10% of the weights' RMS (a uniform
        # 16-level grid over [-absmax, absmax] gives about 12%).
        rel = (err.pow(2).mean().sqrt() / w.pow(2).mean().sqrt()).item()
        self.assertLess(rel, 0.11)
        self.assertGreater(rel, 0.05)
        uniform = torch.linspace(-1, 1, 16)
        blocks = w.view(-1, quant.BLOCK)
        u = uniform[quant._nearest(blocks / absmax[:, None], uniform)] * absmax[:, None]
        self.assertLess(rel, ((u - blocks).pow(2).mean().sqrt() / w.pow(2).mean().sqrt()).item())

    def test_exact_values_survive(self):
        absmax = 0.5
        w = (quant.NF4_CODE * absmax).repeat(256).view(64, 64)  # every block holds the 16 codes
        back = quant.dequantize_nf4(quant.quantize_nf4(w, double_quant=False))
        self.assertTrue(torch.allclose(back, w, atol=1e-7))

    def test_sizes_not_multiple_of_the_block(self):
        w = normal(7, 13)
        back = quant.dequantize_nf4(quant.quantize_nf4(w))
        self.assertEqual(back.shape, w.shape)
        self.assertLess((back - w).abs().max().item(), 0.2 * w.abs().max().item())

    def test_packing_two_codes_per_byte(self):
        w = torch.zeros(1, 64)
        w[0, 0], w[0, 1] = -1.0, 1.0  # codes 0 and 15
        q = quant.quantize_nf4(w, double_quant=False)
        self.assertEqual(q["packed"].dtype, torch.uint8)
        self.assertEqual(q["packed"].numel(), 32)
        self.assertEqual(q["packed"][0].item(), 0x0F)  # first value in the high nibble
        self.assertEqual(q["packed"][1].item(), 0x77)  # two zeros: code 7


class DoubleQuantTest(unittest.TestCase):
    def test_constants(self):
        w = normal(512, 512, seed=1)  # 4096 blocks of 64 -> 16 blocks of 256 scales
        q = quant.quantize_nf4(w)
        self.assertEqual(q["absmax_codes"].dtype, torch.uint8)
        self.assertEqual(q["absmax_codes"].numel(), 4096)
        self.assertEqual(q["absmax_scale"].numel(), 16)
        self.assertEqual(q["absmax_scale"].dtype, torch.float32)
        absmax = w.view(-1, 64).abs().amax(1)
        self.assertAlmostEqual(q["absmax_offset"].item(), absmax.mean().item(), places=7)
        got = quant.nf4_absmax(q)
        # Each scale is within half a step of the dynamic map (at most (1 - 0.99297) / 2 of the block's range near 1)
        # of its true value.
        dmap = quant.dynamic_map()
        step = (dmap[1:] - dmap[:-1]).max().item()
        c_scale = q["absmax_scale"].repeat_interleave(256)
        self.assertTrue(bool(((got - absmax).abs() <= step / 2 * c_scale + 1e-9).all()))
        self.assertLess(((got - absmax).abs() / absmax).max().item(), 0.01)

    def test_bits_per_weight(self):
        layer = quant.QuantLinear(nn.Linear(1024, 256, bias=False), bits=4, compute_dtype=torch.float32)
        # 4 + 8/64 + 32/(64*256) bits, and one float32 offset.
        self.assertAlmostEqual(quant.quantized_bits_per_weight(layer), 4 + 8 / 64 + 32 / (64 * 256) + 32 / (1024 * 256), places=9)
        plain = quant.QuantLinear(nn.Linear(1024, 256, bias=False), bits=4, compute_dtype=torch.float32, double_quant=False)
        self.assertAlmostEqual(quant.quantized_bits_per_weight(plain), 4.5, places=9)


class Int8Test(unittest.TestCase):
    def test_round_trip(self):
        w = normal(64, 96)
        q = quant.quantize_int8(w)
        back = quant.dequantize_int8(q)
        self.assertEqual(q["int8"].dtype, torch.int8)
        self.assertTrue(bool(((back - w).abs() <= q["row_scale"][:, None] / 2 + 1e-9).all()))
        self.assertEqual(back.abs().amax(1).sub(w.abs().amax(1)).abs().max().item() < 1e-7, True)


class QuantLinearTest(unittest.TestCase):
    def test_forward_and_backward(self):
        for bits in (4, 8):
            lin = nn.Linear(128, 64)
            with torch.no_grad():
                lin.weight.copy_(normal(64, 128, seed=bits))
            q = quant.QuantLinear(lin, bits, compute_dtype=torch.float32)
            w = q.dequantize()
            x = torch.randn(3, 5, 128, requires_grad=True)
            y = q(x)
            self.assertTrue(torch.allclose(y, F.linear(x, w, lin.bias), atol=1e-6))
            y.sum().backward()
            self.assertTrue(torch.allclose(x.grad, torch.ones(3, 5, 64) @ w, atol=1e-5))
            self.assertEqual([p for p in q.parameters() if p.requires_grad], [])

    def test_bf16_compute(self):
        q = quant.QuantLinear(nn.Linear(64, 32), 4, compute_dtype=torch.bfloat16)
        y = q(torch.randn(2, 64))
        self.assertEqual(y.dtype, torch.bfloat16)

    def test_quantize_model(self):
        model = random_model(LLAMA)
        x = ids(2, 8)
        with torch.no_grad():
            before = model(x)
        names = quant.quantize_model(model, bits=4, compute_dtype=torch.float32)
        self.assertEqual(len(names), 2 * 7)
        self.assertIsInstance(model.lm_head, nn.Linear)
        self.assertIsInstance(model.model.layers[0].self_attn.q_proj, quant.QuantLinear)
        with torch.no_grad():
            after = model(x)
        # Quantized, not broken: close to the original logits.
        self.assertLess((after - before).abs().max().item(), 0.2 * before.abs().max().item())
        self.assertGreater((after - before).abs().max().item(), 0)
        with self.assertRaises(UserError):
            quant.quantize_model(model, bits=3)


if __name__ == "__main__":
    unittest.main()
