"""Log-likelihoods of token ids under a model folder, computed by the trainer's own model code one sequence at a
time (float64 log-softmax of the whole sequence's logits, no batching, no padding, no cache): the independent side of
the evaluation tests that score through the evaluation worker.

    loglik_ids.py TRAINER_DIR MODEL_DIR REQUESTS_JSON

REQUESTS_JSON holds [[ids, context_length], ...]; prints {"logprobs": [...]}, per request the summed log-probability
of ids[context_length:] given what precedes each token.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402

from itp_trainer import hf_io  # noqa: E402

torch.set_num_threads(1)
model = hf_io.load_pretrained(sys.argv[2], dtype=torch.float32).eval()
with open(sys.argv[3]) as f:
    requests = json.load(f)
out = []
with torch.no_grad():
    for ids, ctx in requests:
        res = model(torch.tensor([ids], dtype=torch.long))
        logits = res if isinstance(res, torch.Tensor) else res[0]
        logp = logits[0].double().log_softmax(-1)
        out.append(sum(float(logp[j - 1, ids[j]]) for j in range(ctx, len(ids))))
print(json.dumps({"logprobs": out}))
