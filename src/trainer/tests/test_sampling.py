import unittest

import torch

from itp_trainer.evaluate import nucleus


class NucleusTest(unittest.TestCase):
    def test_keeps_the_smallest_set_reaching_top_p(self):
        p = torch.tensor([0.1, 0.5, 0.3, 0.1])
        # 0.5 alone is below 0.7; with 0.3 the mass reaches 0.8: those two stay, renormalized.
        out = nucleus(p, 0.7)
        self.assertTrue(torch.allclose(out, torch.tensor([0.0, 0.625, 0.375, 0.0])))

    def test_the_top_token_always_stays(self):
        p = torch.tensor([0.2, 0.6, 0.2])
        self.assertTrue(torch.equal(nucleus(p, 0.01), torch.tensor([0.0, 1.0, 0.0])))

    def test_top_p_one_keeps_everything(self):
        p = torch.softmax(torch.randn(50, generator=torch.Generator().manual_seed(0)), dim=-1)
        self.assertTrue(torch.allclose(nucleus(p, 1.0), p))


if __name__ == "__main__":
    unittest.main()
