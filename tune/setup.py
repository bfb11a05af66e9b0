"""What every trial of a sweep shares, sent once through ``tune.with_parameters``.

Its own module, free of torch and the supernet, so that a trainable that never builds a network (the
floor of ``bench/sweep.py``) starts its Tune actors without importing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import RowContext


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a sweep shares (sent once through ``tune.with_parameters``)."""

    preset: str | None
    base: dict[str, Any]
    stage_cache: str | None  # root of the content-addressed stage store; None = no reuse
    exp_dir: str | None = None  # local/NFS experiment folder: trial files go straight to <exp_dir>/trial_<id>
    # None: report every epoch with every key (a scheduler decides on them; URI storage builds its tables
    # from them). Otherwise only the epochs that carry a checkpoint and the end, with these keys alone: each
    # report is a round trip to the driver, and Tune keeps statistics of every key of every trial there
    report_keys: tuple[str, ...] | None = None
    # local/NFS storage with results tables: the trial writes its own row and epoch fragments before its
    # final report (the driver then only checks they are there: tune/results.py)
    rows: RowContext | None = None


# what a lean report carries besides the sweep's objectives: the progress table's and the trial's whereabouts
LEAN_KEYS = (
    "stage",
    "epoch",
    "step",
    "score",
    "params_union",
    "flops_multitask",
    "trial_finished",
    "node",
    "hostname",
    "resumed_from_step",
)
# what the one report of a trial that ended without figures (diverged, config error) adds: tune/trainable.py
ENDED_KEYS = ("trial_status", "error")
