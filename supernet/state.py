"""What a trial checkpoint holds: ``TrialState``, typed, with the hash of the config it belongs to.

A checkpoint (``checkpoint.pt`` of ``run.py --trial``, ``state.pt`` of a Tune checkpoint) is
``TrialState.to_dict()``: tensors and plain data only, so it loads with ``torch.load(weights_only=True)``
and cannot run code. ``TrialState.resume(cfg, saved)`` rebuilds it and refuses a config other than the
one the checkpoint was written with, naming the keys that differ (``RESUME_MAY_CHANGE`` excepted).
Also here: the atomic file writes every driver uses.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import Config, ConfigError, flatten, to_dict

# 2: ConvNorm ops (conv/norm module names), per-task batch statistics; 3: gate temperature buffer; 4: per-task
# running statistics of the ops' norms
CHECKPOINT_VERSION = 4
RESUME_MAY_CHANGE = ("data.num_workers", "data.pin_memory", "trial.progress")  # how it runs, not what it computes


def config_identity(cfg: Config) -> dict[str, Any]:
    """What a checkpoint keeps of its config: the flat config and its hash (``RESUME_MAY_CHANGE`` left out)."""
    flat = {k: v for k, v in flatten(to_dict(cfg)).items() if k not in RESUME_MAY_CHANGE}
    return {"config": flat, "config_hash": hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:24]}


def check_resume_config(cfg: Config, saved: dict[str, Any]) -> None:
    """Resuming with another config than the checkpoint's would mix two configs in one trial: an error naming the keys.

    ``saved``: a checkpoint's dict (or ``config_identity`` of its config). Checkpoints written before the
    hash was stored carry none and are not checked.
    """
    if not saved.get("config_hash"):
        return
    now = config_identity(cfg)
    if now["config_hash"] == saved["config_hash"]:
        return
    old = saved.get("config") or {}
    keys = sorted(k for k in set(old) | set(now["config"]) if old.get(k) != now["config"].get(k))
    diff = ", ".join(f"{k}: {old.get(k)!r} in the checkpoint, {now['config'].get(k)!r} now" for k in keys)
    raise ConfigError(
        f"resume: the config differs from the checkpoint's ({diff}); resume with the checkpoint's "
        "config, or start the trial afresh in another folder"
    )


@dataclass
class TrialState:
    """Where a trial is and what it has computed; a checkpoint is ``to_dict()`` of it."""

    config: dict[str, Any]  # the flat config (RESUME_MAY_CHANGE left out): config_identity
    config_hash: str | None  # None: a checkpoint written before the hash existed (not checked)
    version: int = CHECKPOINT_VERSION
    done: list[str] = field(default_factory=list)  # stages finished, in order
    stage: str | None = None  # the stage the last epoch (or the last boundary) belongs to
    epoch: int = 0  # epochs of ``stage`` done; 0 at a stage boundary
    step: int = 0  # epochs done over every stage: metrics.jsonl's ``step``
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per stage
    reused: dict[str, bool] = field(default_factory=dict)  # stage -> loaded from the stage store
    stage_quality: dict[str, dict[str, float]] = field(
        default_factory=dict
    )  # stage -> metric/ and val_loss/ at its end
    spec: dict[str, Any] | None = None  # ArchSpec.to_dict() of the compact net, baseline chain or full supernet
    model_kind: str | None = None  # supernet | compact: which network ``model`` holds
    model: dict[str, torch.Tensor] | None = None  # state_dict of the network
    optim: list[dict[str, Any]] | None = None  # mid-stage only: optimiser states
    sched: list[dict[str, Any]] | None = None  # mid-stage only: LR scheduler states

    @classmethod
    def new(cls, cfg: Config) -> "TrialState":
        return cls(**config_identity(cfg))

    @classmethod
    def resume(cls, cfg: Config, saved: dict[str, Any]) -> "TrialState":
        """The state of a checkpoint, after checking that it was written by this version and ``cfg``."""
        if saved.get("version") != CHECKPOINT_VERSION:
            raise ConfigError(
                f"checkpoint: written by an incompatible version of this tool (format {saved.get('version')!r}, this "
                f"one reads {CHECKPOINT_VERSION}); delete the checkpoint to start the trial afresh"
            )
        check_resume_config(cfg, saved)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(saved) - names)
        if unknown:
            raise ConfigError(
                f"checkpoint: unknown field(s) {unknown}, not written by this version of this tool; delete the "
                "checkpoint to start the trial afresh"
            )
        state = cls(**{"config": {}, "config_hash": None, **copy.deepcopy(saved)})
        if not state.config_hash:  # an old checkpoint: from now on it carries the identity of its config
            ident = config_identity(cfg)
            state.config, state.config_hash = ident["config"], ident["config_hash"]
        return state

    def to_dict(
        self, model: torch.nn.Module | None = None, optim: list | None = None, sched: list | None = None
    ) -> dict[str, Any]:
        """A snapshot: the state as plain data, with ``model``'s weights (CPU copies) and, mid-stage, the
        optimiser and scheduler states. Later changes to the trial never reach a snapshot."""
        d = {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in ("model", "optim", "sched")
        }
        if model is not None:
            d["model"] = cpu_weights(model)
        if optim is not None:  # optimiser states alias live tensors
            d["optim"], d["sched"] = copy.deepcopy(optim), copy.deepcopy(sched)
        return d

    def end_stage(self, stage: str, seconds: float) -> None:
        """Bookkeeping of a finished stage: done, timing, and back at a boundary (no mid-stage state)."""
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds
        self.done.append(stage)
        self.stage, self.epoch, self.optim, self.sched = stage, 0, None, None


def cpu_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s state_dict on the CPU, detached from later training."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- files


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
    os.close(fd)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A trial checkpoint: tensors and plain data only (``weights_only=True``: cannot run code)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def jsonable(x: Any) -> Any:
    """NaN and inf become null (JSON has neither)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    return x


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(jsonable(obj), indent=1))
    os.replace(tmp, path)
