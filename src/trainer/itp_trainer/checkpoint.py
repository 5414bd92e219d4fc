"""Checkpoints: written atomically into `checkpoint_dir`, the newest complete one resumed.

A checkpoint is a folder `step-00000010/` holding `state.pt` (trainable weights, optimizer, schedule step, data
position, RNG states of python, torch and CUDA, the config fingerprint) and `rng-rank{r}.pt` for the other ranks.
It is written under a temporary name, every file and the folder fsynced, then renamed: a reader sees either a
whole checkpoint or none. A folder that fails to load (a disk that lied about fsync) is skipped for an older one.
"""

import json
import os
import random
import re
import shutil
from typing import Any, Dict, List, Optional, Tuple

import torch

from .errors import UserError

NAME = re.compile(r"^step-(\d{8})$")
STATE = "state.pt"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save(obj: Any, path: str) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def rng_state() -> Dict[str, Any]:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(root: str) -> List[Tuple[int, str]]:
    """Complete checkpoints, newest first (temporary folders of a torn write don't match the name)."""
    if not root or not os.path.isdir(root):
        return []
    found = []
    for name in os.listdir(root):
        m = NAME.match(name)
        if m and os.path.isfile(os.path.join(root, name, STATE)):
            found.append((int(m.group(1)), os.path.join(root, name)))
    return sorted(found, reverse=True)


def begin(root: str, step: int) -> str:
    """Rank 0: a fresh temporary folder for the checkpoint of `step` (other ranks add their files, then `commit`)."""
    os.makedirs(root, exist_ok=True)
    tmp = os.path.join(root, f".tmp-step-{step:08d}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    return tmp


def write_rank_rng(tmp: str, rank: int) -> None:
    _save(rng_state(), os.path.join(tmp, f"rng-rank{rank}.pt"))


def commit(root: str, tmp: str, step: int, state: Dict[str, Any], keep: int) -> str:
    """Rank 0: writes state.pt, fsyncs, renames the folder into place, drops checkpoints beyond the newest `keep`."""
    _save(state, os.path.join(tmp, STATE))
    _fsync_dir(tmp)
    final = os.path.join(root, f"step-{step:08d}")
    if os.path.exists(final):  # the same step written by an earlier attempt: replace it whole
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    for _, old in list_checkpoints(root)[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def clean_temporaries(root: str, keep: int) -> None:
    """Remove what a killed run left behind (rank 0, before training): temporary folders, and checkpoints beyond the
    newest `keep` (a kill between a commit's rename and its pruning leaves one more)."""
    if root and os.path.isdir(root):
        for name in os.listdir(root):
            if name.startswith(".tmp-step-"):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        for _, old in list_checkpoints(root)[keep:]:
            shutil.rmtree(old, ignore_errors=True)


def load_latest(root: str, fingerprint: Dict[str, Any], log) -> Optional[Tuple[str, Dict[str, Any]]]:
    """The newest checkpoint that loads, or None. A checkpoint of another config is a user error: resuming it
    would silently train something else."""
    for step, path in list_checkpoints(root):
        try:
            state = torch.load(os.path.join(path, STATE), map_location="cpu")
        except Exception as e:  # a damaged file: fall back to an older checkpoint
            log(f"checkpoint {path} cannot be read ({e}); trying an older one")
            continue
        if state.get("fingerprint") != fingerprint:
            theirs = state.get("fingerprint") or {}
            diff = sorted(k for k in set(theirs) | set(fingerprint) if theirs.get(k) != fingerprint.get(k))
            raise UserError(f"checkpoint_dir {root} holds checkpoints of another training config (differs in {', '.join(diff)})",
                            "give this run its own checkpoint_dir, or delete the old checkpoints")
        return path, state
    return None


def rank_rng(path: str, rank: int) -> Optional[Dict[str, Any]]:
    f = os.path.join(path, f"rng-rank{rank}.pt")
    return torch.load(f, map_location="cpu") if os.path.isfile(f) else None


