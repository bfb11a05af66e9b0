"""Trivial predictors: the quality a network reaches without looking at the image, and the ``learned`` flag.

For every task, a constant predictor is fitted on the TRAINING split and evaluated on the VALIDATION
split with the project's own metric code (``tasks.MetricAccumulator``), so its figures compare exactly
with a trial's:

=============== ====================================================================================
kind            trivial predictor (fitted on the un-augmented training split, invalid pixels/samples ignored)
=============== ====================================================================================
segmentation    the majority class over valid training pixels, everywhere
classification  the majority class over valid training samples (about chance on a balanced split)
depth           the median of the valid training depths (the constant that minimises the L1 loss and
                abs err on the training split; the mean minimises squared error instead)
normal          the mean valid training normal, normalised (the constant that maximises the summed
                cosine, i.e. minimises the training loss 1 - cos)
=============== ====================================================================================

A trial has *learned* a task when it beats that task's trivial reference by the margins of
``LEARNED_MARGINS``, and has learned when it has learned every task. A missing (NaN) metric
or reference is "not learned".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from .tasks import MetricAccumulator, TaskSpec, valid_mask

# (kind, metric) -> (sense, factor): "max": metric >= factor * trivial; "min": metric <= factor * trivial.
# The one table of margins; a task is learned when every rule of its kind holds.
LEARNED_MARGINS: dict[tuple[str, str], tuple[str, float]] = {
    ("segmentation", "miou"): ("max", 2.0),  # mIoU at least twice the majority-class mIoU
    ("classification", "accuracy"): ("max", 2.0),  # accuracy at least twice the majority (~chance) accuracy
    ("depth", "abs_err"): ("min", 0.75),  # abs err at least 25% below the median predictor's
    ("normal", "mean_angle"): ("min", 0.75),  # mean angle at least 25% below the mean normal's
}


def _batches(ds: Dataset, batch_size: int) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)


def unaugmented(ds: Dataset) -> Dataset:
    """The training split without ``data.augment`` (deterministic references that use no RNG)."""
    from .data.augment import Augmented

    if isinstance(ds, Subset):
        return Subset(unaugmented(ds.dataset), ds.indices)
    return ds.base if isinstance(ds, Augmented) else ds


@dataclass
class _TargetStats:
    """What the trivial predictors are fitted from, per task of its kind."""

    counts: dict[str, torch.Tensor]  # segmentation, classification: valid targets per class (int64)
    depths: dict[str, torch.Tensor]  # depth: every valid depth (float32)
    normal_sum: dict[str, torch.Tensor]  # normal: the sum of the valid normals (float64, (3,))
    normal_count: dict[str, int]  # normal: how many valid normals


@torch.no_grad()
def _target_stats(train: Dataset, tasks: dict[str, TaskSpec], batch_size: int) -> _TargetStats:
    """One pass over the un-augmented training split's targets."""
    counts = {t: torch.zeros(s.num_classes, dtype=torch.int64) for t, s in tasks.items() if s.num_classes}
    depths: dict[str, list[torch.Tensor]] = {t: [] for t, s in tasks.items() if s.kind == "depth"}
    normal_sum = {t: torch.zeros(3, dtype=torch.float64) for t, s in tasks.items() if s.kind == "normal"}
    normal_n = {t: 0 for t in normal_sum}
    for _, targets in _batches(unaugmented(train), batch_size):
        for t, spec in tasks.items():
            y = targets[t]
            valid = valid_mask(spec, y)
            if spec.kind in ("segmentation", "classification"):
                counts[t] += torch.bincount(y[valid].flatten(), minlength=spec.num_classes)
            elif spec.kind == "depth":
                depths[t].append(y[:, 0][valid].float())
            else:
                normal_sum[t] += y.permute(0, 2, 3, 1)[valid].double().sum(0)
                normal_n[t] += int(valid.sum())
    # a real data set's split fits in memory as float32 pixels
    all_depths = {t: torch.cat(d) if d else torch.zeros(0) for t, d in depths.items()}
    return _TargetStats(counts, all_depths, normal_sum, normal_n)


@torch.no_grad()
def fit_constants(train: Dataset, tasks: dict[str, TaskSpec], batch_size: int = 64) -> dict[str, torch.Tensor]:
    """{task: the constant the trivial predictor outputs}: a class index (0-d int64) for segmentation and
    classification, the median depth (0-d float), the unit mean normal (3,)."""
    st = _target_stats(train, tasks, batch_size)
    out: dict[str, torch.Tensor] = {}
    for t, spec in tasks.items():
        if spec.kind in ("segmentation", "classification"):
            out[t] = st.counts[t].argmax()  # ties: the lowest class index
        elif spec.kind == "depth":
            d = st.depths[t]
            out[t] = d.median() if d.numel() else torch.tensor(math.nan)  # the lower median (torch.median)
        else:
            out[t] = F.normalize(st.normal_sum[t], dim=0).float()
    return out


@torch.no_grad()
def trivial_losses(train: Dataset, tasks: dict[str, TaskSpec], batch_size: int = 64) -> dict[str, float]:
    """{task: the training loss (tasks.losses' definitions, mean over every valid target of the un-augmented
    training split) of the best constant predictor}: segmentation and classification, the cross-entropy of
    the class frequencies (their entropy, in nats); depth, the L1 distance to the median; normal,
    1 - cos to the mean normal, i.e. 1 - |sum of normals| / count. NaN for a task with no valid target."""
    st = _target_stats(train, tasks, batch_size)
    out: dict[str, float] = {}
    for t, spec in tasks.items():
        if spec.kind in ("segmentation", "classification"):
            n = st.counts[t].double()
            p = n[n > 0] / n.sum()
            out[t] = float(-(p * p.log()).sum()) if p.numel() else math.nan
        elif spec.kind == "depth":
            d = st.depths[t]
            out[t] = float((d - d.median()).abs().mean()) if d.numel() else math.nan
        else:
            n = st.normal_count[t]
            out[t] = 1.0 - float(st.normal_sum[t].norm()) / n if n else math.nan
    return out


def _constant_prediction(spec: TaskSpec, const: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The trivial predictor's output for a batch of targets, in the network's output format."""
    b = target.shape[0]
    if spec.kind == "classification":
        return F.one_hot(const.expand(b), spec.num_classes).float()  # (B, K) logits
    h, w = target.shape[-2:]
    if spec.kind == "segmentation":
        return F.one_hot(const.expand(b, h, w), spec.num_classes).permute(0, 3, 1, 2).float()  # (B, K, H, W)
    if spec.kind == "depth":
        return const.float().expand(b, 1, h, w)
    return const.view(1, 3, 1, 1).expand(b, 3, h, w)


@torch.no_grad()
def trivial_references(
    train: Dataset, val: Dataset, tasks: dict[str, TaskSpec], batch_size: int = 64
) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} of the trivial predictors fitted on ``train``, evaluated on ``val``."""
    consts = fit_constants(train, tasks, batch_size)
    acc = {t: MetricAccumulator(spec) for t, spec in tasks.items()}
    for _, targets in _batches(val, batch_size):
        for t, spec in tasks.items():
            acc[t].update(_constant_prediction(spec, consts[t], targets[t]), targets[t])
    return {t: a.compute() for t, a in acc.items()}


def _holds(rule: tuple[str, float], value: float, reference: float) -> bool:
    sense, factor = rule
    if not (math.isfinite(value) and math.isfinite(reference)):
        return False
    return value >= factor * reference if sense == "max" else value <= factor * reference


def learned_tasks(
    metrics: dict[str, dict[str, float]], trivial: dict[str, dict[str, float]], kinds: dict[str, str]
) -> dict[str, bool]:
    """{task: True when every margin of its kind (LEARNED_MARGINS) holds against its trivial reference}."""
    out = {}
    for t, kind in kinds.items():
        rules = [(m, r) for (k, m), r in LEARNED_MARGINS.items() if k == kind]
        out[t] = bool(rules) and all(
            _holds(r, metrics.get(t, {}).get(m, math.nan), trivial.get(t, {}).get(m, math.nan)) for m, r in rules
        )
    return out
