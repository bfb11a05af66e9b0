"""Stage reuse: content-addressed stage checkpoints shared between trials.

A trial asks the store for a stage's result under ``stage_key`` (the config fields the
stage depends on) before computing it, and offers what it computed. ``DirStageStore`` keeps them in a
local or NFS folder; a result is the same with or without reuse (tests/test_trial.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Protocol

import torch

from .config import Config, to_dict
from .prune import prunes
from .stages import SUPERNET_MODES
from .state import CHECKPOINT_VERSION


def stage_key(cfg: Config, stage: str) -> str:
    """Content address of a stage's result: the config fields the stage depends on.

    warm-up: data (not loader speed settings), model, warm-up settings, seed, precision;
    search: additionally the search settings (lambda_sq, squeeze kind, ...). tau only matters later.
    """
    d = to_dict(cfg)
    parts: dict[str, Any] = {
        "data": {k: v for k, v in d["data"].items() if k not in ("num_workers", "pin_memory")},
        "model": d["model"],
        "warmup": d["warmup"],
        "seed": cfg.trial.seed,
        "precision": cfg.trial.precision,
        # the stage's network: the supernet for the method and full_supernet; a baseline's own chain otherwise
        "family": "supernet" if cfg.trial.mode in SUPERNET_MODES else f"chain:{cfg.trial.mode}:{cfg.trial.single_task}",
        "v": CHECKPOINT_VERSION,
    }
    if stage == "search":
        parts["search"] = d["search"]
        if prunes(cfg):  # a reduction-aware search depends on the reduction settings too
            parts["prune_at"] = {"tau": d["reduction"]["tau"], "flow": d["reduction"]["flow"]}
    elif stage != "warmup":
        raise ValueError(f"only warmup and search are reusable, not {stage!r}")
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


class StageStore(Protocol):
    def get(self, stage: str, key: str) -> dict[str, Any] | None: ...

    def put(self, stage: str, key: str, state: dict[str, Any]) -> bool: ...


class DirStageStore:
    """Content-addressed stage checkpoints in a (local or NFS) folder: ``root/<stage>/<key>.pt``.

    Writes are atomic (temp file + hard link): two trials racing for one key cannot corrupt it, and the
    first writer wins. Readers see either nothing or a complete file. An entry that does not load anyway
    (a disk that filled up, a copy cut short) is moved out of the way by the one reader that renames it
    first, which reports it (one line on stderr, once per entry); every trial then recomputes the stage as
    if it had never been stored, and the first to finish writes the entry afresh.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}.pt"

    def get(self, stage: str, key: str) -> dict[str, Any] | None:
        p = self._path(stage, key)
        if not p.is_file():
            return None
        try:
            with open(p, "rb") as f:
                ino = os.fstat(f.fileno()).st_ino
                try:
                    return torch.load(f, map_location="cpu", weights_only=True)
                except Exception as e:  # noqa: BLE001 - an unreadable entry is recomputed, never trusted
                    err = e
        except FileNotFoundError:
            return None
        self._discard(p, ino, err)
        return None

    def _discard(self, p: Path, ino: int, err: Exception) -> None:
        """Move an unreadable entry aside (atomic: of several readers one wins and reports it) and delete it;
        ``ino``: the file that failed to load (a new entry written meanwhile is left alone)."""
        aside = p.with_name(f".corrupt-{os.getpid()}-{p.name}")
        try:
            if os.stat(p).st_ino != ino:
                return
            os.rename(p, aside)
        except FileNotFoundError:  # another reader moved it first, or a writer is about to replace it
            return
        aside.unlink(missing_ok=True)
        print(
            f"stage cache: {p} was unreadable ({type(err).__name__}); removed it, the stage is recomputed and "
            "stored again",
            file=sys.stderr,
            flush=True,
        )

    def put(self, stage: str, key: str, state: dict[str, Any]) -> bool:
        p = self._path(stage, key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-", suffix=".pt")
        os.close(fd)
        try:
            torch.save(state, tmp)
            os.link(tmp, p)  # fails if another writer got there first
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
