"""Hugging Face directories: safetensors by hand, save -> load round trips, shards, random init from a config."""
import json
import os
import shutil
import struct
import tempfile
import unittest

import torch

from itp_trainer import hf_io
from itp_trainer.errors import UserError
from itp_trainer.model import CausalLM

from .tiny import LLAMA, QWEN2, ids, random_model


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class TempDir(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="itp-hf-io-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)


class SafetensorsTest(TempDir):
    def test_reads_the_format_as_specified(self):
        """A file assembled here byte by byte from the format's description."""
        data = struct.pack("<3f", 1.5, -2.0, 0.25) + struct.pack("<2q", -7, 2**40) + bytes([0x80, 0x3F])  # bf16 1.0
        header = {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                  "b": {"dtype": "I64", "shape": [1, 2], "data_offsets": [12, 28]},
                  "c": {"dtype": "BF16", "shape": [], "data_offsets": [28, 30]},
                  "__metadata__": {"kind": "sft"}}
        blob = json.dumps(header).encode()
        with open(self.path("x.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(blob)) + blob + data)
        tensors, meta = hf_io.read_safetensors(self.path("x.safetensors"))
        self.assertEqual(meta, {"kind": "sft"})
        self.assertEqual(tensors["a"].tolist(), [1.5, -2.0, 0.25])
        self.assertEqual(tensors["b"].tolist(), [[-7, 2**40]])
        self.assertEqual(tensors["c"].dtype, torch.bfloat16)
        self.assertEqual(tensors["c"].item(), 1.0)

    def test_write_then_read_every_dtype(self):
        tensors = {
            "f32": torch.randn(3, 4), "f16": torch.randn(5).half(), "bf16": torch.randn(2, 3).bfloat16(),
            "f64": torch.randn(2).double(), "i32": torch.tensor([1, -2, 3], dtype=torch.int32),
            "i64": torch.tensor([[2**40]]), "i8": torch.tensor([-1, 5], dtype=torch.int8),
            "u8": torch.tensor([255, 0], dtype=torch.uint8), "bool": torch.tensor([True, False]),
            "i16": torch.tensor([-300], dtype=torch.int16), "empty": torch.zeros(0, 3), "scalar": torch.tensor(2.5),
            "strided": torch.arange(12.0).view(3, 4).t(),
        }
        path = self.path("y.safetensors")
        hf_io.write_safetensors(path, tensors, {"k": "v"})
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        self.assertEqual(n % 8, 0, "the header is padded to 8 bytes")
        self.assertEqual(header["__metadata__"], {"k": "v"})
        self.assertEqual(header["bf16"]["dtype"], "BF16")
        self.assertEqual(os.path.getsize(path), 8 + n + max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"))
        back, meta = hf_io.read_safetensors(path)
        self.assertEqual(meta, {"k": "v"})
        for k, t in tensors.items():
            self.assertEqual(back[k].dtype, t.dtype, k)
            self.assertEqual(back[k].shape, t.shape, k)
            self.assertTrue(torch.equal(back[k], t), k)

    def test_not_a_safetensors_file(self):
        with open(self.path("z.safetensors"), "wb") as f:
            f.write(b"\xff" * 20)
        with self.assertRaises(ValueError):
            hf_io.read_safetensors(self.path("z.safetensors"))


class SaveLoadTest(TempDir):
    def check_round_trip(self, d, shard_bytes=None):
        model = random_model(d)
        out = self.path("m")
        kwargs = {"max_shard_bytes": shard_bytes} if shard_bytes else {}
        hf_io.save_pretrained(model, model.config, out, dtype=torch.float32, **kwargs)
        loaded = hf_io.load_pretrained(out, dtype=torch.float32)
        self.assertIsInstance(loaded, CausalLM)
        x = ids(2, 9)
        with torch.no_grad():
            self.assertTrue(torch.equal(model(x), loaded.eval()(x)))
        return out

    def test_round_trip_gives_identical_logits(self):
        out = self.check_round_trip(LLAMA)
        self.assertEqual(sorted(os.listdir(out)), ["config.json", "generation_config.json", "model.safetensors"])
        config = read_json(os.path.join(out, "config.json"))
        self.assertEqual(config["architectures"], ["LlamaForCausalLM"])
        self.assertEqual(config["torch_dtype"], "float32")
        self.assertEqual(read_json(os.path.join(out, "generation_config.json"))["eos_token_id"], 2)

    def test_tied_embeddings_saved_once(self):
        out = self.check_round_trip(QWEN2)
        names = hf_io.read_safetensors(os.path.join(out, "model.safetensors"))[0]
        self.assertNotIn("lm_head.weight", names)
        self.assertIn("model.embed_tokens.weight", names)

    def test_sharded(self):
        out = self.check_round_trip(LLAMA, shard_bytes=20_000)
        shards = sorted(n for n in os.listdir(out) if n.endswith(".safetensors"))
        self.assertGreater(len(shards), 2)
        self.assertEqual(shards[0], f"model-00001-of-{len(shards):05d}.safetensors")
        index = read_json(os.path.join(out, "model.safetensors.index.json"))
        model = random_model(LLAMA)
        self.assertEqual(set(index["weight_map"]), set(model.state_dict()))
        self.assertEqual(index["metadata"]["total_size"], sum(p.numel() * 4 for p in model.parameters()))
        # Saving again unsharded leaves no stale shard behind.
        hf_io.save_pretrained(model, model.config, out, dtype=torch.float32)
        self.assertEqual(sorted(os.listdir(out)), ["config.json", "generation_config.json", "model.safetensors"])

    def test_bf16_save(self):
        model = random_model(LLAMA)
        out = self.path("bf16")
        hf_io.save_pretrained(model, model.config, out, dtype=torch.bfloat16)
        self.assertEqual(read_json(os.path.join(out, "config.json"))["torch_dtype"], "bfloat16")
        loaded = hf_io.load_pretrained(out, dtype=torch.bfloat16)
        w = loaded.model.layers[0].mlp.up_proj.weight
        self.assertEqual(w.dtype, torch.bfloat16)
        self.assertTrue(torch.equal(w, model.model.layers[0].mlp.up_proj.weight.bfloat16()))

    def test_config_without_weights_initializes_from_the_seed(self):
        os.makedirs(self.path("cfg"))
        with open(self.path("cfg", "config.json"), "w") as f:
            json.dump(LLAMA, f)
        a = hf_io.load_pretrained(self.path("cfg"), seed=5)
        b = hf_io.load_pretrained(self.path("cfg"), seed=5)
        c = hf_io.load_pretrained(self.path("cfg"), seed=6)
        x = ids(1, 5)
        with torch.no_grad():
            self.assertTrue(torch.equal(a(x), b(x)))
            self.assertFalse(torch.equal(a(x), c(x)))

    def test_errors(self):
        with self.assertRaises(UserError) as e:
            hf_io.load_pretrained(self.path("nowhere"))
        self.assertIn("config.json", e.exception.message)
        # Weights of another shape than the config.
        model = random_model(LLAMA)
        hf_io.save_pretrained(model, model.config, self.path("m"), dtype=torch.float32)
        with open(self.path("m", "config.json"), "w") as f:
            json.dump(dict(LLAMA, intermediate_size=40), f)
        with self.assertRaises(UserError) as e:
            hf_io.load_pretrained(self.path("m"))
        self.assertIn("mlp", e.exception.message)
        # A missing tensor.
        tensors, _ = hf_io.read_safetensors(self.path("m", "model.safetensors"))
        del tensors["model.norm.weight"]
        hf_io.write_safetensors(self.path("m", "model.safetensors"), tensors)
        with open(self.path("m", "config.json"), "w") as f:
            json.dump(LLAMA, f)
        with self.assertRaises(UserError) as e:
            hf_io.load_pretrained(self.path("m"))
        self.assertIn("model.norm.weight", e.exception.message)
        # Pickle weights only.
        os.makedirs(self.path("bin"))
        with open(self.path("bin", "config.json"), "w") as f:
            json.dump(LLAMA, f)
        open(self.path("bin", "pytorch_model.bin"), "wb").close()
        with self.assertRaises(UserError) as e:
            hf_io.load_pretrained(self.path("bin"))
        self.assertIn("safe_serialization", e.exception.hint)

    def test_other_architecture_without_transformers(self):
        try:
            import transformers  # noqa: F401
            self.skipTest("transformers is installed: the GPT-2 path is tested in test_parity")
        except ImportError:
            pass
        os.makedirs(self.path("gpt2"))
        with open(self.path("gpt2", "config.json"), "w") as f:
            json.dump({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 50}, f)
        with self.assertRaises(UserError) as e:
            hf_io.load_pretrained(self.path("gpt2"))
        self.assertIn("transformers", e.exception.message)


if __name__ == "__main__":
    unittest.main()
