"""Stage reuse (DESIGN section 7): content-addressed stage checkpoints shared between trials.

A trial asks the store for a stage's result under ``supernet.trial.stage_key`` (the config fields the
stage depends on) before computing it, and offers what it computed. ``DirStageStore`` keeps them in a
local or NFS folder; a result is the same with or without reuse (tests/test_trial.py).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import torch


class StageStore(Protocol):
    def get(self, stage: str, key: str) -> dict[str, Any] | None: ...

    def put(self, stage: str, key: str, state: dict[str, Any]) -> bool: ...


class DirStageStore:
    """Content-addressed stage checkpoints in a (local or NFS) folder: ``root/<stage>/<key>.pt``.

    Writes are atomic (temp file + hard link): two trials racing for one key cannot corrupt it, and the
    first writer wins. Readers see either nothing or a complete file.
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
            return torch.load(p, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - an unreadable entry is recomputed, never trusted
            return None

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
