"""ASHA for the method's trials only: baselines always run to the end.

ASHA compares trials on one scalar (``score``, the mean validation loss). A single-task baseline's score
is one task's loss, a hard-sharing baseline's is a different network's: comparing them with the method's
trials would stop baselines for reasons that say nothing about them, and an early-stopped baseline is
no reference for ``delta_mtl`` (analysis refuses it). So ``MethodASHA`` lets every trial whose
``trial.mode`` is not one of ``METHOD_MODES`` continue, keeps it out of ASHA's rungs, and hands every
other trial to Ray's ``AsyncHyperBandScheduler`` unchanged.
"""
from __future__ import annotations

from typing import Any

from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

# the trials ASHA may stop: the method, and full_supernet (the method's warm-up and search without the
# reduction: its score is the same mean multi-task loss of the same network). single_task and hard_sharing
# trials run to the end.
METHOD_MODES = ("supernet", "full_supernet")


def trial_mode(config: dict[str, Any], default: str) -> str:
    """The ``trial.mode`` of a Tune trial config ``{"overrides": {dotted key: value}}``."""
    return (config.get("overrides") or {}).get("trial.mode", default)


class MethodASHA(AsyncHyperBandScheduler):
    """``AsyncHyperBandScheduler`` that never stops, nor ranks, a baseline trial.

    ``default_mode`` is the sweep's shared ``trial.mode`` (a trial's overrides may not name it).
    """

    def __init__(self, *args: Any, default_mode: str = "supernet", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._default_mode = default_mode
        self._baselines: set[str] = set()

    def is_baseline(self, trial) -> bool:
        return trial_mode(trial.config, self._default_mode) not in METHOD_MODES

    def on_trial_add(self, tune_controller, trial) -> None:
        if self.is_baseline(trial):
            self._baselines.add(trial.trial_id)
            return
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if trial.trial_id in self._baselines:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        if trial.trial_id in self._baselines:
            self._baselines.discard(trial.trial_id)
            return
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        if trial.trial_id in self._baselines:
            self._baselines.discard(trial.trial_id)
            return
        super().on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return super().debug_string() + f"\n(baselines never stopped: {len(self._baselines)} running)"
