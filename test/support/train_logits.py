"""Logits of a trained model, computed by the trainer's own Python (itp_trainer): what the training tests compare.

    train_logits.py TRAINER_DIR model MODEL_DIR IDS_JSON
    train_logits.py TRAINER_DIR adapter BASE_DIR ADAPTER_DIR SEED IDS_JSON

Prints {"logits": [[...], ...]} (float32, one row per position).
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402

from itp_trainer import hf_io, lora  # noqa: E402

torch.set_num_threads(1)
mode = sys.argv[2]
if mode == "model":
    model = hf_io.load_pretrained(sys.argv[3], dtype=torch.float32)
    ids = json.loads(sys.argv[4])
else:
    # The base as the trainer built it (random from the seed when it has no weights), with the adapter on top.
    model = hf_io.load_pretrained(sys.argv[3], dtype=torch.float32, seed=int(sys.argv[5]))
    lora.load_adapter(model, sys.argv[4])
    ids = json.loads(sys.argv[6])
model.eval()
with torch.no_grad():
    out = model(torch.tensor([ids], dtype=torch.long))
logits = out if isinstance(out, torch.Tensor) else out[0]
print(json.dumps({"logits": logits[0].float().tolist()}))
