"""Tune's checkpoints of a trial, kept safe to restore from.

Tune restores a restarted trial from the checkpoint its saved experiment state names. That state is a
snapshot (at most ``TUNE_GLOBAL_CHECKPOINT_S`` old when the driver dies), so it may name a checkpoint that
rotation deleted after the snapshot; Tune then fails the trial ("does not exist on storage anymore") before
the trainable runs. Two rules keep that from happening:

- nothing deletes a checkpoint while its trial runs (``CheckpointConfig(num_to_keep=None)`` in launch);
  once a trial has ended, ``keep_last_checkpoint`` removes all but its newest one (the final weights of a
  finished trial; an errored one also keeps the one Tune will restore it from);
- ``ensure_restorable``, called right before Tune restores a trial, points a trial
  whose checkpoint is gone anyway (deleted by hand, a partial copy) at the latest complete one in its
  folder, or at none (the trial starts from scratch), and says so on the driver's log and in the trial's
  ``trial.log``. A trial whose ``summary.json`` says it ended never runs again either way
  (``tune/trainable.py``).

``CheckpointCallback`` applies both in every sweep's Tuner (``tune.launch.build_tuner``).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import pyarrow.fs as pafs
from ray import tune

log = logging.getLogger(__name__)

REQUIRED = ("state.pt",)  # what every checkpoint of ``tune.trainable.send`` holds


def _exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def _complete(fs: pafs.FileSystem, path: str) -> bool:
    return all(fs.get_file_info(f"{path}/{f}").type == pafs.FileType.File for f in REQUIRED)


def checkpoint_dirs(fs: pafs.FileSystem, trial_path: str) -> list[str]:
    """The trial's ``checkpoint_<n>`` folders, oldest first."""
    if fs.get_file_info(trial_path).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(trial_path))
    dirs = [i.path for i in infos if i.type == pafs.FileType.Directory and i.base_name.startswith("checkpoint_")]
    return sorted(dirs, key=lambda p: os.path.basename(p))


def note(folder: str | None, text: str, echo: bool = True) -> None:
    """One line in the trial's ``trial.log`` (local/NFS trial folders) and, with ``echo``, on stdout."""
    if echo:
        print(text, flush=True)
    if folder and os.path.isdir(folder):
        with open(os.path.join(folder, "trial.log"), "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n")


def ensure_restorable(trial: Any, folder: str | None) -> None:
    """Before Tune restores ``trial``: if the checkpoint it would restore from is gone, use the latest complete
    one in its folder, or none (from scratch). Uses Tune's ``_CheckpointManager`` fields (Ray 2.x)."""
    result = trial.latest_checkpoint_result
    if result is None or result.checkpoint is None:
        return
    ckpt = result.checkpoint
    fs, path = ckpt.filesystem, ckpt.path
    if _exists(fs, path) and _complete(fs, path):
        return
    from ray.train._internal.session import _TrainingResult
    from ray.tune import Checkpoint

    manager = trial.run_metadata.checkpoint_manager
    known = {r.checkpoint.path: r for r in manager._checkpoint_results if r.checkpoint is not None}
    trial_path = os.path.dirname(path.rstrip("/"))
    there = [p for p in checkpoint_dirs(fs, trial_path) if _complete(fs, p)]
    if there:
        latest = there[-1]
        manager._latest_checkpoint_result = known.get(latest) or _TrainingResult(
            checkpoint=Checkpoint(latest, filesystem=fs), metrics=dict(result.metrics or {})
        )
        manager._checkpoint_results = [
            known.get(p) or manager._latest_checkpoint_result for p in there if p in known or p == latest
        ]
        what = f"continuing from {os.path.basename(latest)}, the latest checkpoint there is"
    else:
        manager._latest_checkpoint_result = None
        manager._checkpoint_results = []
        what = "no checkpoint is left: starting from scratch"
    trial._restore_checkpoint_result = None
    trial.run_metadata.invalidate_cache()
    note(folder, f"trial {trial.trial_id}: its checkpoint {os.path.basename(path)} is gone; {what}")


def keep_last_checkpoint(trial: Any, keep_named: bool = False) -> None:
    """An ended trial: delete every checkpoint in its folder but the newest (with ``keep_named``, an errored
    trial that ``--resume`` restarts, also the one Tune's state names). Tune forgets the checkpoints of a
    terminated trial, so the folder is what counts."""
    storage = getattr(trial, "storage", None)
    if storage is None:
        return
    fs, trial_path = storage.storage_filesystem, storage.trial_fs_path
    result = trial.latest_checkpoint_result
    named = result.checkpoint.path if keep_named and result is not None and result.checkpoint is not None else None
    dirs = checkpoint_dirs(fs, trial_path)
    for p in dirs[:-1]:
        if p != named:
            try:
                fs.delete_dir(p)
            except OSError as e:  # a checkpoint left behind costs disk only
                log.warning("could not delete %s (%s)", p, e)
    manager = trial.run_metadata.checkpoint_manager
    manager._checkpoint_results = [
        r
        for r in manager._checkpoint_results
        if r.checkpoint is not None and r.checkpoint.path in (named, dirs[-1] if dirs else None)
    ]
    trial.run_metadata.invalidate_cache()


class CheckpointCallback(tune.Callback):
    """``ensure_restorable`` as each trial starts (Tune restores it right after), ``keep_last_checkpoint`` as it
    ends and, at the end of the run, for every ended trial (some ended under a driver killed before it could).
    ``exp_dir``: the local/NFS experiment folder holding the trials' ``trial.log`` (None for URIs)."""

    def __init__(self, exp_dir: str | None):
        self.exp_dir = exp_dir

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        ensure_restorable(trial, os.path.join(self.exp_dir, f"trial_{trial.trial_id}") if self.exp_dir else None)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        keep_last_checkpoint(trial)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for t in trials:
            if t.status in ("ERROR", "TERMINATED"):
                keep_last_checkpoint(t, keep_named=t.status == "ERROR")
