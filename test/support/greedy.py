"""Greedy continuation of a trained model by the plainest route: the whole sequence through the model at every step
(no key/value cache, no batching), with the trainer's own model code. What the generation tests compare with.

    greedy.py TRAINER_DIR MODEL_DIR IDS_JSON N EOS_ID

Prints {"tokens": [...]}: at most N tokens, ending at the first EOS (included).
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402

from itp_trainer import hf_io  # noqa: E402

torch.set_num_threads(1)
model = hf_io.load_pretrained(sys.argv[2], dtype=torch.float32)
model.eval()
ids = json.loads(sys.argv[3])
n, eos = int(sys.argv[4]), int(sys.argv[5])
out = []
with torch.no_grad():
    for _ in range(n):
        res = model(torch.tensor([ids + out], dtype=torch.long))
        logits = res if isinstance(res, torch.Tensor) else res[0]
        tok = int(logits[0, -1].argmax())
        out.append(tok)
        if tok == eos:
            break
print(json.dumps({"tokens": out}))
