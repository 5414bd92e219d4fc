"""`python -m itp_trainer.torchrun ARGS...`: PyTorch's own launcher (torchrun, torch.distributed.run) with the same
arguments, as a Slurm job starts it, after a fix for PyTorch < 2 on Python 3.11: its `Std.from_str` iterates an
IntFlag, which no longer yields 0, so every torchrun failed before starting a worker. (The local executor applies
the same fix in its bootstrap.)"""
import re
import runpy
import sys

from torch.distributed.elastic.multiprocessing.api import Std

if Std.from_str("0") is None:
    def _from_str(cls, vm):
        if re.fullmatch(r"[0-3]", vm):
            return cls(int(vm))
        return {int(i): cls(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
    Std.from_str = classmethod(_from_str)

sys.argv = ["torchrun"] + sys.argv[1:]
runpy.run_module("torch.distributed.run", run_name="__main__", alter_sys=True)
