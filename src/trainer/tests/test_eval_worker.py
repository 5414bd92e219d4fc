"""The evaluation worker's own attention (blocks of queries over the keys up to each block's end; the last layer
only at the positions read) against the model's forward, on Llama (GQA) and Mistral (a sliding window) configs:
log-likelihoods of right-padded rows of several lengths, and greedy generation from left-padded prompts."""
import unittest

import torch

from itp_trainer.evaluate import Worker
from tests.tiny import LLAMA, MISTRAL, config, random_model


def reference_loglik(model, ctx, cont):
    with torch.no_grad():
        logp = model(torch.tensor([ctx + cont]))[0].double().log_softmax(-1)
    return sum(float(logp[len(ctx) + j - 1, t]) for j, t in enumerate(cont))


class WorkerAttentionTest(unittest.TestCase):
    def check(self, base):
        model = random_model(config(base, max_position_embeddings=128))
        g = torch.Generator().manual_seed(3)
        items = []
        for n in (3, 17, 40, 41, 90):
            ctx = torch.randint(3, 61, (n,), generator=g).tolist()
            items.append([ctx, [5]])
            items.append([ctx, [7, 9, 11]])
        for block in (4, 16, 128):
            w = Worker(model, torch.device("cpu"), batch_tokens=200, gen_batch=4)
            w.QUERY_BLOCK = block
            got = w.loglik(items)
            for (ctx, cont), (lp, _) in zip(items, got):
                self.assertAlmostEqual(lp, reference_loglik(model, ctx, cont), delta=1e-4, msg=f"block {block}, {len(ctx)} tokens")

    def test_llama_loglik(self):
        self.check(LLAMA)

    def test_sliding_window_loglik(self):
        self.check(MISTRAL)

    def test_prefill_of_left_padded_prompts_gives_each_prompts_next_token(self):
        for base in (LLAMA, MISTRAL):
            model = random_model(config(base, max_position_embeddings=128))
            w = Worker(model, torch.device("cpu"), batch_tokens=200, gen_batch=4)
            w.QUERY_BLOCK = 8
            prompts = [[4, 5, 6], list(range(3, 40)), list(range(10, 30))]
            b, width = len(prompts), max(len(p) for p in prompts)
            ids = torch.zeros((b, width), dtype=torch.long)
            keys = torch.zeros((b, width), dtype=torch.bool)
            for r, p in enumerate(prompts):
                ids[r, width - len(p):] = torch.tensor(p)
                keys[r, width - len(p):] = True
            positions = (torch.cumsum(keys.long(), dim=1) - 1).clamp(min=0)
            with torch.no_grad():
                h = w.hidden(ids, positions, keys, [], (torch.arange(b), torch.full((b,), width - 1)))
                logits = model.lm_head(h)
                for r, p in enumerate(prompts):
                    want = model(torch.tensor([p]))[0, -1]
                    self.assertLess(float((logits[r] - want).abs().max()), 1e-4, f"{base['model_type']} prompt {r}")


if __name__ == "__main__":
    unittest.main()
