"""Kill and resume: a run SIGKILLed at ten random moments (between steps and while checkpoints are being written),
rerun each time until it finishes, ends with the same bytes of weights as a run never interrupted; a torn or damaged
checkpoint is never used."""

import json
import os
import random
import signal
import subprocess
import tempfile
import time
import unittest

from itp_trainer import checkpoint as ckpt
from itp_trainer.errors import UserError

from . import train_support as ts

KILLS = 10
STEPS = 24


class KillResumeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="itp-resume-")
        ts.make_base(os.path.join(self.tmp, "base"))
        ts.write_artifact(os.path.join(self.tmp, "data.safetensors"), ts.sft_rows(24, min_len=6, max_len=20))

    def run_config(self, name, method="sft", **over):
        base = dict(epochs=STEPS / 6, batch_size=4, micro_batch_size=2, checkpoint_every=2, lr=5e-3, schedule="linear",
                    warmup_ratio=0.1, optimizer="adamw", weight_decay=0.01)
        base.update(over)
        return ts.config(self.tmp, method, output_dir=os.path.join(self.tmp, f"out-{name}"),
                         checkpoint_dir=os.path.join(self.tmp, f"ck-{name}"), **base)

    def run_until_step(self, config_path, kill_step, delay):
        """Forks a trainer process (torch already imported: no interpreter start-up per kill point) and SIGKILLs it
        `delay` seconds after it reports step `kill_step`. Returns the exit status and the steps it reported."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the trainer's CLI with stdout into the pipe
            os.close(r)
            os.dup2(w, 1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            rc = 70
            try:
                import sys
                sys.stdout = os.fdopen(1, "w", buffering=1)
                sys.stderr = os.fdopen(2, "w")
                from itp_trainer.cli import main
                rc = main(["train", "--config", config_path])
            finally:
                os._exit(rc)
        os.close(w)
        seen = []
        with os.fdopen(r) as out:
            for line in out:
                if not line.startswith("{"):
                    continue
                ev = json.loads(line)
                if ev["event"] == "step":
                    seen.append(ev["step"])
                    if ev["step"] >= kill_step:
                        time.sleep(delay)
                        os.kill(pid, signal.SIGKILL)
                        break
        _, status = os.waitpid(pid, 0)
        return (-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)), seen

    def test_ten_kills_give_bit_identical_weights(self):
        self.check_kills(KILLS, {}, ["model.safetensors"])

    def test_lora_with_dropout_resumes_its_random_state(self):
        # Dropout draws from torch's generator at every step: a resume that did not restore it would diverge.
        self.check_kills(4, {"method": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.2, "merge": True}, "seed": 5},
                         ["adapter_model.safetensors", "model.safetensors"])

    def check_kills(self, n_kills, over, files):
        rc, evs, err = ts.train_subprocess(self.tmp, self.run_config("straight", **over), "straight.json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(ts.steps(evs)), STEPS)
        path = ts.write_config(self.tmp, self.run_config("killed", **over), "killed.json")
        rnd = random.Random(11 + n_kills)
        kill_steps = sorted(rnd.sample(range(1, STEPS), n_kills))
        kills = 0
        for k in kill_steps:
            # Delays up to a few milliseconds land inside the next step or inside a checkpoint's write.
            rc, seen = self.run_until_step(path, k, rnd.choice([0.0, 0.001, 0.003, 0.01, 0.03]))
            if rc == -signal.SIGKILL:
                kills += 1
        self.assertGreaterEqual(kills, n_kills)
        p = subprocess.run(ts.trainer_command(path), env=ts.trainer_env(), capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        evs = ts.events(p.stdout)
        self.assertIsNotNone(evs[0]["resumed_from"])
        straight = ts.weight_digests(os.path.join(self.tmp, "out-straight"))
        resumed = ts.weight_digests(os.path.join(self.tmp, "out-killed"))
        self.assertEqual(list(straight), files)
        self.assertEqual(straight, resumed)  # the same bytes
        # Only complete checkpoints remain, at most keep_checkpoints of them.
        names = os.listdir(os.path.join(self.tmp, "ck-killed"))
        self.assertTrue(all(n.startswith("step-") for n in names), names)
        self.assertLessEqual(len(names), 2)


class CheckpointFilesTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="itp-ckpt-")
        self.fp = {"lr": 1.0}

    def write(self, step, fp=None):
        tmp = ckpt.begin(self.root, step)
        return ckpt.commit(self.root, tmp, step, {"step": step, "fingerprint": fp or self.fp}, keep=5)

    def test_a_torn_write_and_a_damaged_file_are_skipped(self):
        self.write(2)
        self.write(4)
        # A write killed before its rename: a temporary folder that never becomes a checkpoint.
        torn = ckpt.begin(self.root, 6)
        with open(os.path.join(torn, ckpt.STATE), "wb") as f:
            f.write(b"half")
        # A checkpoint whose file was damaged after the rename (a disk that lied): the older one is used.
        with open(os.path.join(self.root, "step-00000004", ckpt.STATE), "r+b") as f:
            f.truncate(10)
        logs = []
        path, state = ckpt.load_latest(self.root, self.fp, logs.append)
        self.assertEqual(state["step"], 2)
        self.assertTrue(path.endswith("step-00000002"))
        self.assertIn("cannot be read", logs[0])
        ckpt.clean_temporaries(self.root, 2)
        self.assertFalse(os.path.exists(torn))
        # A kill between a commit's rename and its pruning leaves one checkpoint too many: the next start drops it.
        self.write(6, self.fp)
        ckpt.clean_temporaries(self.root, 2)
        self.assertEqual([s for s, _ in ckpt.list_checkpoints(self.root)], [6, 4])

    def test_checkpoints_of_another_config_are_refused(self):
        self.write(2, {"lr": 2.0})
        with self.assertRaises(UserError) as cm:
            ckpt.load_latest(self.root, self.fp, print)
        self.assertIn("differs in lr", cm.exception.message)

    def test_only_the_newest_are_kept(self):
        for s in (1, 2, 3):
            tmp = ckpt.begin(self.root, s)
            ckpt.commit(self.root, tmp, s, {"step": s, "fingerprint": self.fp}, keep=2)
        self.assertEqual([s for s, _ in ckpt.list_checkpoints(self.root)], [3, 2])


if __name__ == "__main__":
    unittest.main()
