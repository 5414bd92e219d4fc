"""Learning-rate schedules at known steps, Adafactor's update, and the data side: shifted targets, data order, the
split of a step over processes."""

import math
import os
import tempfile
import unittest

import torch

from itp_trainer.data import IGNORE, DataOrder, TokenData, split_for_rank
from itp_trainer.optim import Adafactor, lr_multiplier, warmup_steps

from . import train_support as ts


class ScheduleTest(unittest.TestCase):
    def test_values_at_known_steps(self):
        # transformers' get_*_schedule_with_warmup, 100 steps, 10 of warmup.
        total, warm = 100, warmup_steps(100, 0.1)
        self.assertEqual(warm, 10)
        self.assertEqual(warmup_steps(10, 0.03), 1)  # ceil, as transformers
        cases = {
            "linear": {0: 0.0, 5: 0.5, 10: 1.0, 55: 0.5, 99: 1 / 90, 100: 0.0},
            "cosine": {0: 0.0, 5: 0.5, 10: 1.0, 55: 0.5, 40: 0.5 * (1 + math.cos(math.pi / 3)), 100: 0.0},
            "constant": {0: 0.0, 5: 0.5, 10: 1.0, 55: 1.0, 100: 1.0},
        }
        for kind, expected in cases.items():
            for step, value in expected.items():
                with self.subTest(kind=kind, step=step):
                    self.assertAlmostEqual(lr_multiplier(kind, step, total, warm), value, places=12)
        self.assertEqual(lr_multiplier("linear", 0, 10, 0), 1.0)  # no warmup: the first step uses the peak


class AdafactorTest(unittest.TestCase):
    def test_first_step_of_a_rank_one_gradient_moves_each_weight_by_lr(self):
        # For g = a b^T the factored second moment is exact, so the first update is lr * sign(g).
        a, b = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([3.0, -1.0])
        p = torch.nn.Parameter(torch.zeros(3, 2))
        v = torch.nn.Parameter(torch.zeros(4))
        opt = Adafactor([p, v], lr=0.01)
        p.grad = torch.outer(a, b)
        v.grad = torch.tensor([2.0, -0.1, 5.0, -3.0])
        opt.step()
        torch.testing.assert_close(p.detach(), -0.01 * torch.sign(torch.outer(a, b)), rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(v.detach(), -0.01 * torch.sign(v.grad), rtol=1e-5, atol=1e-7)

    def test_minimizes_a_quadratic(self):
        torch.manual_seed(0)
        target = torch.randn(8, 4)
        p = torch.nn.Parameter(torch.zeros(8, 4))
        opt = Adafactor([p], lr=0.05)
        for _ in range(200):
            opt.zero_grad()
            ((p - target) ** 2).sum().backward()
            opt.step()
        self.assertLess(float(((p - target) ** 2).mean()), 0.01)


class DataTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="itp-data-")

    def test_targets_are_shifted_and_never_cross_a_packed_boundary(self):
        # One packed row of two examples ([5 6 7] and [8 9]) and one plain row ([10 11]); the first token masked.
        rows = [([5, 6, 7, 8, 9], [-100, 6, 7, 8, 9], [0, 1, 2, 0, 1]), ([10, 11], [10, 11], [0, 1])]
        path = ts.write_artifact(os.path.join(self.tmp, "d.safetensors"), rows)
        data = TokenData(path, "sft")
        self.assertEqual(data.targets.tolist(), [6, 7, IGNORE, 9, IGNORE, 11, IGNORE])
        mb = data.collate([0, 1])
        self.assertEqual(mb.input_ids.tolist(), [[5, 6, 7, 8, 9], [10, 11, 0, 0, 0]])
        self.assertEqual(mb.position_ids.tolist(), [[0, 1, 2, 0, 1], [0, 1, 2, 3, 4]])
        self.assertEqual(mb.targets.tolist(), [[6, 7, IGNORE, 9, IGNORE], [11, IGNORE, IGNORE, IGNORE, IGNORE]])
        self.assertEqual((mb.tokens, data.loss_tokens([0, 1])), (7, 4))

    def test_order_is_a_seeded_permutation_per_epoch(self):
        order = DataOrder(units=10, batch_size=4, epochs=2.5, seed=7)
        self.assertEqual((order.steps_per_epoch, order.total_steps), (3, 8))
        epoch0 = [u for s in range(3) for u in order.step_units(s)]
        epoch1 = [u for s in range(3, 6) for u in order.step_units(s)]
        self.assertEqual(sorted(epoch0), list(range(10)))
        self.assertEqual(sorted(epoch1), list(range(10)))
        self.assertNotEqual(epoch0, epoch1)
        self.assertEqual(len(order.step_units(2)), 2)  # the epoch's last step takes what is left
        again = DataOrder(units=10, batch_size=4, epochs=2.5, seed=7)
        self.assertEqual([again.step_units(s) for s in (5, 0)], [order.step_units(5), order.step_units(0)])
        self.assertNotEqual(DataOrder(10, 4, 1, seed=8).step_units(0), order.step_units(0))

    def test_a_step_splits_over_processes_without_loss_or_overlap(self):
        units = list(range(7))  # a short last step: some micro batches are empty
        parts = [split_for_rank(units, r, 2, 2, 2) for r in range(2)]
        self.assertTrue(all(len(p) == 2 for p in parts))
        flat = [u for p in parts for mb in p for u in mb]
        self.assertEqual(flat, units)
        self.assertEqual(parts[1][1], [6])


if __name__ == "__main__":
    unittest.main()
