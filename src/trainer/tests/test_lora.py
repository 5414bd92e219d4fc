"""LoRA: adapters start at the base model, train, save in PEFT's format, load back, merge; on a quantized base too."""
import json
import os
import shutil
import tempfile
import unittest

import torch
import torch.nn as nn

from itp_trainer import hf_io, lora, quant
from itp_trainer.errors import UserError

from .tiny import LLAMA, QWEN2, ids, random_model

TARGETS = ["q_proj", "v_proj", "down_proj"]


def train_a_little(model, steps=5, seed=0):
    """A few AdamW steps on next-token loss over random tokens: enough to move the adapters off zero."""
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x = ids(2, 12, seed=seed)
    for _ in range(steps):
        logits = model(x)
        loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


class LoraTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="itp-lora-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_starts_at_the_base_and_trains_only_adapters(self):
        model = random_model(LLAMA)
        x = ids(2, 9)
        with torch.no_grad():
            before = model(x)
        names = lora.apply_lora(model, r=4, alpha=8, dropout=0.0, target_modules=TARGETS)
        self.assertEqual(len(names), 2 * 3)
        with torch.no_grad():
            self.assertTrue(torch.equal(model(x), before))
        trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
        self.assertEqual(len(trainable), 12)
        self.assertTrue(all(".lora_A." in n or ".lora_B." in n for n in trainable))
        self.assertIn("model.layers.0.self_attn.q_proj.base_layer.weight", dict(model.named_parameters()))
        a = model.model.layers[0].self_attn.q_proj.lora_A.weight
        self.assertEqual(tuple(a.shape), (4, 32))
        self.assertLessEqual(a.abs().max().item(), 1 / 32 ** 0.5)  # kaiming-uniform(a=sqrt(5)) as PEFT
        base_before = model.model.layers[0].self_attn.q_proj.base_layer.weight.clone()
        train_a_little(model)
        self.assertTrue(torch.equal(model.model.layers[0].self_attn.q_proj.base_layer.weight, base_before))
        self.assertGreater(model.model.layers[0].self_attn.q_proj.lora_B.weight.abs().max().item(), 0)

    def test_peft_format(self):
        model = random_model(LLAMA)
        lora.apply_lora(model, r=4, alpha=8, dropout=0.05, target_modules=TARGETS)
        train_a_little(model)
        lora.save_adapter(model, self.dir, base_model="some/base", r=4, alpha=8, dropout=0.05, target_modules=TARGETS)
        self.assertEqual(sorted(os.listdir(self.dir)), ["adapter_config.json", "adapter_model.safetensors"])
        with open(os.path.join(self.dir, "adapter_config.json")) as f:
            config = json.load(f)
        for k, v in {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "some/base", "r": 4,
                     "lora_alpha": 8, "lora_dropout": 0.05, "target_modules": TARGETS, "bias": "none"}.items():
            self.assertEqual(config[k], v, k)
        tensors, meta = hf_io.read_safetensors(os.path.join(self.dir, "adapter_model.safetensors"))
        self.assertEqual(meta, {"format": "pt"})
        self.assertEqual(len(tensors), 12)
        a = tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
        b = tensors["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"]
        self.assertEqual(tuple(a.shape), (4, 32))
        self.assertEqual(tuple(b.shape), (32, 4))

    def check_load_and_merge(self, d, quantize_bits=None):
        base_dir = os.path.join(self.dir, "base")
        base = random_model(d)
        hf_io.save_pretrained(base, base.config, base_dir, dtype=torch.float32)
        trained = hf_io.load_pretrained(base_dir)
        if quantize_bits:
            quant.quantize_model(trained, quantize_bits, compute_dtype=torch.float32)
        lora.apply_lora(trained, r=4, alpha=16, dropout=0.1, target_modules=TARGETS)
        train_a_little(trained)
        adapter_dir = os.path.join(self.dir, "adapter")
        lora.save_adapter(trained, adapter_dir, base_model=base_dir)
        x = ids(2, 10, seed=7)
        with torch.no_grad():
            want = trained(x)
        # The adapter loads back onto the base (quantized the same way) and gives the trained logits.
        fresh = hf_io.load_pretrained(base_dir).eval()
        if quantize_bits:
            quant.quantize_model(fresh, quantize_bits, compute_dtype=torch.float32)
        lora.load_adapter(fresh, adapter_dir)
        with torch.no_grad():
            self.assertTrue(torch.equal(fresh(x), want))
            # The adapter changed the model.
            self.assertGreater((want - base.eval()(x)).abs().max().item(), 1e-3)
        # Merged weights give the same logits, as plain linear layers, and survive save and load.
        merged = lora.merge_lora(fresh)
        self.assertFalse(lora.lora_modules(merged))
        self.assertIsInstance(merged.model.layers[0].self_attn.q_proj, nn.Linear)
        self.assertEqual(set(dict(merged.named_parameters())), set(dict(base.named_parameters())))
        with torch.no_grad():
            self.assertLess((merged(x) - want).abs().max().item(), 1e-5)
        out = os.path.join(self.dir, "merged")
        hf_io.save_pretrained(merged, merged.config, out, dtype=torch.float32)
        with torch.no_grad():
            self.assertLess((hf_io.load_pretrained(out).eval()(x) - want).abs().max().item(), 1e-5)

    def test_load_and_merge(self):
        self.check_load_and_merge(LLAMA)

    def test_load_and_merge_tied(self):
        self.check_load_and_merge(QWEN2)

    def test_qlora_nf4(self):
        self.check_load_and_merge(LLAMA, quantize_bits=4)

    def test_qlora_int8(self):
        self.check_load_and_merge(LLAMA, quantize_bits=8)

    def test_gradient_checkpointing_with_frozen_base(self):
        model = random_model(LLAMA)
        quant.quantize_model(model, 4, compute_dtype=torch.float32)
        lora.apply_lora(model, r=2, alpha=4, target_modules=["q_proj"])
        model.gradient_checkpointing = True
        model.train()
        model(ids(1, 6)).sum().backward()
        self.assertGreater(model.model.layers[0].self_attn.q_proj.lora_B.weight.grad.abs().max().item(), 0)

    def test_errors(self):
        model = random_model(LLAMA)
        with self.assertRaises(UserError) as e:
            lora.apply_lora(model, r=4, alpha=8, target_modules=["query_key_value"])
        self.assertIn("q_proj", e.exception.hint)
        with self.assertRaises(UserError):
            lora.load_adapter(model, self.dir)
        with open(os.path.join(self.dir, "adapter_config.json"), "w") as f:
            json.dump({"peft_type": "PREFIX_TUNING"}, f)
        with self.assertRaises(UserError) as e:
            lora.load_adapter(model, self.dir)
        self.assertIn("PREFIX_TUNING", e.exception.message)


try:
    import peft
    import transformers
except ImportError:
    peft = None


@unittest.skipIf(peft is None, "peft and transformers are not importable here: the PEFT round trip runs where they are")
class PeftInteropTest(unittest.TestCase):
    def test_peft_loads_our_adapter_and_we_load_peft_s(self):
        tmp = tempfile.mkdtemp(prefix="itp-peft-")
        try:
            base_dir, ours_dir, theirs_dir = (os.path.join(tmp, n) for n in ("base", "ours", "theirs"))
            base = random_model(LLAMA)
            hf_io.save_pretrained(base, base.config, base_dir, dtype=torch.float32)
            model = hf_io.load_pretrained(base_dir)
            lora.apply_lora(model, r=4, alpha=8, target_modules=TARGETS)
            train_a_little(model)
            lora.save_adapter(model, ours_dir, base_model=base_dir)
            x = ids(2, 10, seed=3)
            with torch.no_grad():
                want = model(x)
            hf = transformers.AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32)
            peft_model = peft.PeftModel.from_pretrained(hf, ours_dir).eval()
            with torch.no_grad():
                self.assertLess((peft_model(input_ids=x).logits - want).abs().max().item(), 1e-4)
            # And the other way: PEFT's own save loads here.
            peft_model.save_pretrained(theirs_dir)
            fresh = hf_io.load_pretrained(base_dir).eval()
            lora.load_adapter(fresh, theirs_dir)
            with torch.no_grad():
                self.assertLess((fresh(x) - want).abs().max().item(), 1e-4)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
