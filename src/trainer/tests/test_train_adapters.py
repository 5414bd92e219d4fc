"""LoRA, QLoRA and DPO end to end on a tiny random Llama: the loss goes down, the adapter is written in PEFT's format
and loads back onto the base to give the merged model's logits, DPO's reference log-probs are cached and reused."""

import json
import os
import tempfile
import unittest

import torch

from itp_trainer import hf_io, lora

from . import train_support as ts


def losses(evs):
    return [e["loss"] for e in ts.steps(evs)]


def mean(xs):
    return sum(xs) / len(xs)


class AdapterTrainingTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="itp-adapters-")
        # A frozen random lm_head of std 0.02 caps how far adapters can move the logits of a 32-wide model; a wider
        # init gives the adapters room, as a pretrained base's head does.
        ts.make_base(os.path.join(self.tmp, "base"), initializer_range=0.2)

    def test_lora_trains_and_its_adapter_loads_back_as_the_merged_model(self):
        ts.write_artifact(os.path.join(self.tmp, "data.safetensors"), ts.sft_rows(32))
        rc, evs, err = ts.train_in_process(self.tmp, ts.config(
            self.tmp, "lora", epochs=4, lr=2e-2, lora={"r": 8, "alpha": 16, "dropout": 0.05,
                                                      "target_modules": ["q_proj", "v_proj", "gate_proj", "down_proj"]}))
        self.assertEqual(rc, 0, err)
        ls = losses(evs)
        self.assertLess(mean(ls[-3:]), mean(ls[:3]) * 0.85, ls)
        self.assertLess(evs[0]["trainable_params"], evs[0]["params"] / 2)
        out = os.path.join(self.tmp, "out")
        with open(os.path.join(out, "adapter_config.json")) as f:
            ac = json.load(f)
        self.assertEqual((ac["peft_type"], ac["r"], ac["lora_alpha"]), ("LORA", 8, 16))
        self.assertTrue(os.path.isfile(os.path.join(out, "model.safetensors")))
        # The base (same seed: the same random init) with the adapter loaded gives the merged model's logits.
        base = hf_io.load_pretrained(os.path.join(self.tmp, "base"), dtype=torch.float32, seed=3)
        lora.apply_lora(base, r=8, alpha=16, target_modules=ac["target_modules"])
        lora.load_adapter(base, out)
        merged = hf_io.load_pretrained(out, dtype=torch.float32)
        ids = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(1))
        pos = torch.arange(16).expand(2, 16)
        with torch.no_grad():
            a, b = base.eval()(ids, pos), merged.eval()(ids, pos)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)

    def test_qlora_trains_on_a_4_bit_base(self):
        ts.write_artifact(os.path.join(self.tmp, "data.safetensors"), ts.sft_rows(32))
        rc, evs, err = ts.train_in_process(self.tmp, ts.config(
            self.tmp, "qlora", epochs=4, lr=2e-2, quant={"bits": 4},
            lora={"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"],
                  "merge": False}))
        self.assertEqual(rc, 0, err)
        ls = losses(evs)
        self.assertLess(mean(ls[-3:]), mean(ls[:3]) * 0.85, ls)
        names = set(os.listdir(os.path.join(self.tmp, "out")))
        self.assertIn("adapter_model.safetensors", names)
        self.assertNotIn("model.safetensors", names)  # merge = false: the adapter only

    def test_dpo_prefers_the_chosen_answers_and_caches_reference_logps(self):
        ts.write_artifact(os.path.join(self.tmp, "data.safetensors"), ts.preference_rows(16), kind="preference")
        cache = os.path.join(self.tmp, "ref.pt")
        cfg = ts.config(self.tmp, "dpo", epochs=4, lr=5e-3, dpo={"beta": 0.1, "reference_logps": cache})
        rc, evs, err = ts.train_in_process(self.tmp, cfg)
        self.assertEqual(rc, 0, err)
        ls = losses(evs)
        self.assertAlmostEqual(ls[0], 0.6931, places=3)  # policy = reference at the first step: -log sigmoid(0)
        self.assertLess(mean(ls[-3:]), 0.6)
        dpo = [e for e in evs if e["event"] == "dpo"]
        self.assertEqual(len(dpo), len(ls))
        self.assertGreaterEqual(mean([e["reward_accuracy"] for e in dpo[-3:]]), 0.9)
        self.assertGreater(dpo[-1]["chosen_reward"], dpo[-1]["rejected_reward"])
        self.assertTrue(os.path.isfile(cache))
        # A rerun reads the cache instead of running the reference again.
        rc, evs, err = ts.train_in_process(self.tmp, dict(cfg, output_dir=os.path.join(self.tmp, "out2")))
        self.assertEqual(rc, 0, err)
        self.assertIn("reference log-probs read from", err)

    def test_ipo_loss_trains(self):
        ts.write_artifact(os.path.join(self.tmp, "data.safetensors"), ts.preference_rows(16), kind="preference")
        rc, evs, err = ts.train_in_process(self.tmp, ts.config(self.tmp, "dpo", epochs=4, lr=5e-3, dpo={"beta": 0.5, "loss": "ipo"}))
        self.assertEqual(rc, 0, err)
        ls = losses(evs)
        self.assertAlmostEqual(ls[0], 1.0, places=4)  # (0 - 1/(2 beta))^2 at the start
        self.assertLess(mean(ls[-3:]), 0.8 * ls[0])


if __name__ == "__main__":
    unittest.main()
