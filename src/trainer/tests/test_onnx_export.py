"""ONNX export: the graph passes onnx's checker and has the runner's signature (input_ids, attention_mask -> float32
logits with dynamic batch and sequence); where onnxruntime is importable, it computes torch's logits. The runner
itself (onnxruntime-node) is exercised by test/trainer-onnx.test.ts."""
import os
import shutil
import tempfile
import unittest

import torch

from itp_trainer import lora
from itp_trainer.onnx_export import export_onnx

from .tiny import MISTRAL, ids, random_model

try:
    import onnx
except ImportError:
    onnx = None
try:
    import onnxruntime
except ImportError:
    onnxruntime = None


@unittest.skipIf(onnx is None, "the onnx package is not importable (Debian: python3-onnx)")
class OnnxExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="itp-onnx-")
        # Mistral's sliding window (5) and grouped-query attention, with a LoRA adapter merged on the way.
        cls.model = random_model(MISTRAL)
        lora.apply_lora(cls.model, r=2, alpha=4, target_modules=["q_proj"])
        with torch.no_grad():
            cls.model.model.layers[0].self_attn.q_proj.lora_B.weight.normal_(0, 0.1)
        cls.path = export_onnx(cls.model, cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_signature(self):
        self.assertEqual(self.path, os.path.join(self.dir, "model.onnx"))
        m = onnx.load(self.path)
        onnx.checker.check_model(m)
        inputs = {i.name: i for i in m.graph.input}
        self.assertEqual(sorted(inputs), ["attention_mask", "input_ids"])
        for name in inputs:
            t = inputs[name].type.tensor_type
            self.assertEqual(t.elem_type, onnx.TensorProto.INT64)
            self.assertEqual([d.dim_param for d in t.shape.dim], ["batch", "sequence"])
        (out,) = m.graph.output
        self.assertEqual(out.name, "logits")
        self.assertEqual(out.type.tensor_type.elem_type, onnx.TensorProto.FLOAT)
        dims = out.type.tensor_type.shape.dim
        self.assertEqual([dims[0].dim_param, dims[1].dim_param, dims[2].dim_value], ["batch", "sequence", 61])
        # The trained model is unchanged by the export (adapters merged on a copy).
        self.assertTrue(lora.lora_modules(self.model))

    @unittest.skipIf(onnxruntime is None, "onnxruntime (Python) is not importable: test/trainer-onnx.test.ts runs the export in Node")
    def test_onnxruntime_gives_torch_logits(self):
        session = onnxruntime.InferenceSession(self.path, providers=["CPUExecutionProvider"])
        x = ids(2, 12, seed=9)
        mask = torch.ones_like(x)
        mask[1, 8:] = 0  # right padding
        (logits,) = session.run(["logits"], {"input_ids": x.numpy(), "attention_mask": mask.numpy()})
        with torch.no_grad():
            want0 = self.model(x[:1])
            want1 = self.model(x[1:, :8])
        self.assertLess(abs(torch.from_numpy(logits[0]) - want0[0]).max().item(), 1e-4)
        self.assertLess(abs(torch.from_numpy(logits[1, :8]) - want1[0]).max().item(), 1e-4)


class AttentionMaskTest(unittest.TestCase):
    def test_padding_keys_are_hidden(self):
        """attention_mask (the export's input): right padding changes none of the real tokens' logits, left padding
        with positions from the mask gives the unpadded logits too."""
        model = random_model(MISTRAL)
        x = ids(1, 8, seed=4)
        pad = torch.zeros(1, 3, dtype=torch.long)
        with torch.no_grad():
            want = model(x)
            right = model(torch.cat([x, pad], 1), torch.arange(11)[None], attention_mask=torch.tensor([[1] * 8 + [0] * 3]))
            mask = torch.tensor([[0] * 3 + [1] * 8])
            pos = (mask.cumsum(1) - 1).clamp(min=0)
            left = model(torch.cat([pad, x], 1), pos, attention_mask=mask)
        self.assertLess((right[:, :8] - want).abs().max().item(), 1e-5)
        self.assertLess((left[:, 3:] - want).abs().max().item(), 1e-5)


if __name__ == "__main__":
    unittest.main()
