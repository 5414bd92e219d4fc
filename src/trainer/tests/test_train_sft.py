"""SFT end to end on a tiny random Llama: the loss goes down, the saved model reloads with identical logits, gradient
accumulation changes nothing but float rounding, packed rows train, bad configs are clear errors."""

import json
import os
import subprocess
import tempfile
import unittest

import torch

from . import train_support as ts
from itp_trainer import distributed, hf_io
from itp_trainer.config import parse_config
from itp_trainer.errors import UserError
from itp_trainer.loop import Trainer
from itp_trainer.metrics import Emitter
from itp_trainer.output import write_model


def first_last(evs, n=3):
    losses = [e["loss"] for e in ts.steps(evs)]
    return sum(losses[:n]) / n, sum(losses[-n:]) / n


class SftTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="itp-sft-")
        ts.make_base(os.path.join(self.tmp, "base"))

    def test_loss_goes_down_and_output_is_a_hf_directory(self):
        ts.write_artifact(os.path.join(self.tmp, "data.safetensors"), ts.sft_rows(32))
        tok = os.path.join(self.tmp, "tokenizer.json")
        with open(tok, "w") as f:
            f.write('{"model": {}}')
        rc, evs, err = ts.train_in_process(self.tmp, ts.config(
            self.tmp, epochs=3, tokenizer_files={"tokenizer.json": tok}, chat_template="{{ messages }}", export_onnx=True))
        self.assertEqual(rc, 0, err)
        first, last = first_last(evs)
        self.assertLess(last, first * 0.7, f"loss {first:.3f} -> {last:.3f}")
        start = evs[0]
        self.assertEqual((start["event"], start["steps"], start["examples"]), ("start", 24, 32))
        self.assertEqual(evs[-1]["event"], "done")
        out = os.path.join(self.tmp, "out")
        names = set(os.listdir(out))
        self.assertTrue({"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                         "generation_config.json", "model.onnx", "itp_trainer.json"} <= names, names)
        with open(os.path.join(out, "tokenizer_config.json")) as f:
            self.assertEqual(json.load(f)["chat_template"], "{{ messages }}")
        step = ts.steps(evs)[0]
        for key in ("step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "memory_mb", "elapsed_s"):
            self.assertIn(key, step)
        self.assertIsNone(step["mfu"])  # CPU: no known peak

    def _trainer(self, **over):
        cfg = parse_config(ts.config(self.tmp, **over))
        t = Trainer(cfg, distributed.Dist(), Emitter(False))
        t.setup()
        t.train()
        return cfg, t

    def test_saved_model_reloads_with_identical_logits(self):
        ts.write_artifact(os.path.join(self.tmp, "data.safetensors"), ts.sft_rows(8))
        cfg, t = self._trainer(epochs=2)
        write_model(cfg, t.base_model, {}, lambda s: None)
        again = hf_io.load_pretrained(cfg.output_dir, dtype=torch.float32, seed=99).eval()
        t.base_model.eval()
        ids = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(0))
        pos = torch.arange(12).expand(2, 12)
        with torch.no_grad():
            self.assertTrue(torch.equal(t.base_model(ids, pos), again(ids, pos)))

    def test_gradient_accumulation_matches_one_big_micro_batch(self):
        # Rows of different lengths and loss-token counts: a per-micro-batch mean would weigh them differently.
        ts.write_artifact(os.path.join(self.tmp, "data.safetensors"), ts.sft_rows(24, min_len=5, max_len=30))
        weights = []
        for micro in (8, 2):
            cfg, t = self._trainer(batch_size=8, micro_batch_size=micro, max_steps=3, lr=1e-2, optimizer="adamw")
            self.assertEqual(t.grad_accum, 8 // micro)
            weights.append({n: p.detach().clone() for n, p in t.base_model.named_parameters()})
        for n in weights[0]:
            torch.testing.assert_close(weights[0][n], weights[1][n], rtol=1e-4, atol=1e-5, msg=n)

    def test_packed_rows_train_with_bf16_autocast_and_checkpointing(self):
        ts.write_artifact(os.path.join(self.tmp, "data.safetensors"), ts.packed_rows(12), packing=True)
        rc, evs, err = ts.train_in_process(self.tmp, ts.config(
            self.tmp, epochs=6, precision="bf16", gradient_checkpointing=True, optimizer="adafactor", lr=3e-2,
            schedule="cosine", warmup_ratio=0.1))
        self.assertEqual(rc, 0, err)
        first, last = first_last(evs)
        self.assertLess(last, first * 0.8, f"loss {first:.3f} -> {last:.3f}")

    def test_config_errors_name_the_key(self):
        cases = [
            ({"method": "ppo"}, "config key `method` is \"ppo\""),
            ({"lr": "high"}, "config key `lr` must be a number"),
            ({"precision": "fp16"}, "precision fp16 is not supported on CPU"),
            ({"lora": {"r": 4}}, "config key `lora` is set but method is sft"),
            ({"batch_sise": 4}, "unknown config key `batch_sise`"),
        ]
        for change, message in cases:
            with self.subTest(change=change):
                with self.assertRaises(UserError) as cm:
                    parse_config(ts.config(self.tmp, **change))
                self.assertIn(message, cm.exception.message)

    def test_cli_reports_a_user_error_as_one_json_line_and_exit_1(self):
        ts.write_artifact(os.path.join(self.tmp, "data.safetensors"), ts.sft_rows(4))
        rc, evs, err = ts.train_subprocess(self.tmp, ts.config(self.tmp, batch_size=3, micro_batch_size=2))
        self.assertEqual(rc, 1, err)
        self.assertEqual(evs[-1]["event"], "error")
        self.assertIn("batch_size 3 is not a multiple of micro_batch_size 2", evs[-1]["message"])
        self.assertNotIn("Traceback", err)

    def test_data_of_the_wrong_kind_is_a_user_error(self):
        ts.write_artifact(os.path.join(self.tmp, "data.safetensors"), ts.preference_rows(4), kind="preference")
        rc, evs, err = ts.train_in_process(self.tmp, ts.config(self.tmp))
        self.assertEqual(rc, 1)
        self.assertIn("holds preference data, the method needs sft data", evs[-1]["message"])


if __name__ == "__main__":
    unittest.main()
