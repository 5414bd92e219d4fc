"""Two processes (gloo on CPU, as torchrun starts them) train the same global batch as one process: the same weights
within float tolerance; only rank 0 prints metrics and writes the model and checkpoints."""

import os
import tempfile
import unittest

import torch

from itp_trainer import hf_io

from . import train_support as ts


class TwoProcessTest(unittest.TestCase):
    def test_two_gloo_processes_match_one(self):
        tmp = tempfile.mkdtemp(prefix="itp-ddp-")
        ts.make_base(os.path.join(tmp, "base"))
        # 20 rows, batch 8: the last step of each epoch has 4 rows, so one process has empty micro batches.
        ts.write_artifact(os.path.join(tmp, "data.safetensors"), ts.sft_rows(20, min_len=5, max_len=30))
        common = dict(batch_size=8, micro_batch_size=2, epochs=2, lr=1e-2, schedule="linear", warmup_ratio=0.2)
        rc, evs, err = ts.train_in_process(tmp, ts.config(tmp, output_dir=os.path.join(tmp, "one"), **common))
        self.assertEqual(rc, 0, err)
        runs = ts.train_ranks(tmp, ts.config(tmp, output_dir=os.path.join(tmp, "two"), checkpoint_dir=os.path.join(tmp, "ck"),
                                             checkpoint_every=2, **common), 2, "two.json")
        for rc, _, err in runs:
            self.assertEqual(rc, 0, err[-3000:])
        (_, evs0, _), (_, evs1, _) = runs
        self.assertEqual(evs1, [])  # rank 1 prints no metrics
        self.assertEqual((evs0[0]["processes"], evs0[0]["grad_accum"], evs0[0]["strategy"]), (2, 2, "ddp"))
        one_steps, two_steps = ts.steps(evs), ts.steps(evs0)
        self.assertEqual(len(one_steps), len(two_steps))
        for a, b in zip(one_steps, two_steps):
            self.assertAlmostEqual(a["loss"], b["loss"], places=4)
            self.assertEqual(a["lr"], b["lr"])
        one = hf_io.load_pretrained(os.path.join(tmp, "one"), dtype=torch.float32)
        two = hf_io.load_pretrained(os.path.join(tmp, "two"), dtype=torch.float32)
        for (n, a), (_, b) in zip(one.named_parameters(), two.named_parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=n)
        self.assertTrue(os.listdir(os.path.join(tmp, "ck")))


if __name__ == "__main__":
    unittest.main()
