"""`python -m itp_trainer train --config CONFIG.json` (and `evaluate`, the evaluation worker: evaluate.py): exit 0 done, 1 user error (a JSON error line), 128+N stopped by
signal N after writing a checkpoint, anything else a crash with its traceback."""

import argparse
import os
import sys
import time
from typing import List

from .errors import UserError
from .metrics import Emitter


def _train(config_path: str) -> int:
    from . import distributed
    from .config import load_config
    from .loop import Stop, Trainer
    from .output import write_model

    emit = Emitter(True)
    d = None
    try:
        cfg = load_config(config_path)
        d = distributed.init(cfg.device)
        emit = Emitter(d.main)
        t0 = time.time()
        trainer = Trainer(cfg, d, emit)
        trainer.setup()
        result = trainer.train()
        out = None
        with trainer.full_weights():
            if d.main:
                # Only what the weights depend on: the folder is the same bytes wherever and however long it ran
                # (timing and resumption are in the log's events; the store's paths are reduced to their names).
                config = cfg.fingerprint()
                config["base"] = os.path.basename(os.path.normpath(config["base"]))
                config["data"] = os.path.basename(os.path.normpath(config["data"]))
                if config.get("dpo") and config["dpo"].get("reference"):
                    config["dpo"]["reference"] = os.path.basename(os.path.normpath(config["dpo"]["reference"]))
                summary = {"method": cfg.method, "steps": trainer.step, "loss": result["loss"], "config": config}
                out = write_model(cfg, trainer.base_model, summary, emit.log)
        d.barrier()
        emit("done", steps=trainer.step, loss=result["loss"], seconds=round(time.time() - t0, 3), output_dir=out)
        return 0
    except UserError as e:
        Emitter(d is None or d.main)("error", message=e.message, hint=e.hint or None)
        return 1
    except Stop as s:
        emit.log(f"stopped by signal {s.signum}; the next run resumes from the last checkpoint")
        return 128 + s.signum
    finally:
        if d is not None:
            d.close()


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m itp_trainer", description="itp's trainer (see src/trainer/README.md)")
    sub = parser.add_subparsers(dest="command")
    t = sub.add_parser("train", help="train as the config says")
    t.add_argument("--config", required=True, help="the JSON config")
    from . import evaluate

    evaluate.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "train":
        return _train(args.config)
    if args.command == "evaluate":
        return evaluate.main(args)
    parser.print_help(sys.stderr)
    return 2
