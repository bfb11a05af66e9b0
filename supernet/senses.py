"""Sense of every metric name: "max" = higher is better, "min" = lower is better.

Torch-free on purpose: the analysis package (numpy/pandas only) reads the same table as the trainer.
"""

from __future__ import annotations

METRIC_SENSES: dict[str, str] = {
    "miou": "max",
    "pixel_acc": "max",
    "abs_err": "min",
    "rel_err": "min",
    "mean_angle": "min",
    "median_angle": "min",
    "within_11.25": "max",
    "within_22.5": "max",
    "within_30": "max",
    "accuracy": "max",
}
