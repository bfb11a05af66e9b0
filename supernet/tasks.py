"""Tasks: what a task is, its head, its loss and its metrics (field-standard definitions), and delta_mtl.

A task has a *kind* that fixes its target format, head, loss and metrics:

=============== ======================================= ================================= =================
kind            target per sample                        loss (invalid pixels masked)      metrics (sense)
=============== ======================================= ================================= =================
segmentation    int64 (H, W), ``ignore_index`` = -1      cross-entropy                     miou (max), pixel_acc (max)
depth           float32 (1, H, W), 0 = invalid           L1                                abs_err (min), rel_err (min)
normal          float32 (3, H, W) unit, all-0 = invalid  1 - cosine similarity             mean/median_angle (min);
                                                                                           within_11.25/22.5/30 (max, %)
classification  int64 scalar, -1 = not this task's        cross-entropy                     accuracy (max)
=============== ======================================= ================================= =================

Definitions follow MTAN / LibMTL: mIoU is the mean over classes present in prediction or target of the
per-class IoU accumulated over the whole split; depth errors are means over all valid pixels of the split,
``rel_err = mean(|pred - gt| / gt)``; normal angles are in degrees between unit vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .senses import METRIC_SENSES  # one torch-free table, shared with analysis/

KINDS = ("segmentation", "depth", "normal", "classification")


@dataclass(frozen=True)
class TaskSpec:
    """A task of a data set: its name (the key in targets and outputs), kind and class count."""

    name: str
    kind: str
    num_classes: int = 0  # segmentation / classification
    ignore_index: int = -1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind in ("segmentation", "classification") and self.num_classes < 2:
            raise ValueError(f"task {self.name!r}: {self.kind} needs num_classes >= 2")

    @property
    def out_channels(self) -> int:
        return {"segmentation": self.num_classes, "depth": 1, "normal": 3}.get(self.kind, self.num_classes)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return {
            "segmentation": ("miou", "pixel_acc"),
            "depth": ("abs_err", "rel_err"),
            "normal": ("mean_angle", "median_angle", "within_11.25", "within_22.5", "within_30"),
            "classification": ("accuracy",),
        }[self.kind]


# ----------------------------------------------------------------------------- heads


class Head(nn.Module):
    """Task head on the aggregated read-out feature (B, C, h, w).

    Dense kinds: conv3x3-ReLU-conv1x1, bilinearly upsampled to the input resolution when the stem
    downsamples. Classification: global average pool + linear.
    """

    def __init__(self, task: TaskSpec, channels: int):
        super().__init__()
        self.kind = task.kind
        if task.kind == "classification":
            self.net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, task.out_channels))
        else:
            self.net = nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(channels, task.out_channels, 1),
            )

    def forward(self, feat: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        y = self.net(feat)
        if self.kind == "classification":
            return y  # (B, K)
        if tuple(y.shape[-2:]) != tuple(out_size):
            y = F.interpolate(y, size=out_size, mode="bilinear", align_corners=False)
        if self.kind == "normal":
            y = F.normalize(y, dim=1)
        return y  # (B, out, H, W)


# ----------------------------------------------------------------------------- losses


def valid_mask(task: TaskSpec, target: torch.Tensor) -> torch.Tensor:
    """Which targets of a batch carry ground truth (the table above): (B,) for classification, (B, H, W)
    for the dense kinds. Losses, metrics and the trivial predictors all ignore the rest."""
    if task.kind in ("segmentation", "classification"):
        return target != task.ignore_index
    if task.kind == "depth":
        return target[:, 0] > 0  # (B, H, W)
    return target.abs().sum(dim=1) > 0  # normal: (B, H, W)


def task_loss_sum(task: TaskSpec, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(sum of the per-target losses, number of valid targets) of one task on a batch.

    A valid target is a pixel with ground truth (dense kinds) or a labelled sample (classification:
    label != ignore_index). Training takes ``sum / count`` per batch; evaluation adds sums and counts
    over the whole split, so the validation loss is the exact mean over the split's valid targets,
    whatever the batch size. The sum is 0 (with grad) when nothing is valid.
    """
    pred = pred.float()
    valid = valid_mask(task, target)
    count = int(valid.sum())
    if count == 0:
        return pred.sum() * 0.0, 0
    if task.kind in ("segmentation", "classification"):
        return F.cross_entropy(pred, target, ignore_index=task.ignore_index, reduction="sum"), count
    if task.kind == "depth":
        return (pred[:, 0] - target[:, 0]).abs()[valid].sum(), count
    cos = (F.normalize(pred, dim=1) * target).sum(dim=1)  # (B, H, W)
    return (1.0 - cos[valid]).sum(), count


def task_loss(task: TaskSpec, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean loss of one task over the batch's valid targets. Zero (with grad) if none is valid."""
    total, count = task_loss_sum(task, pred, target)
    return total / max(count, 1)


def losses(
    tasks: dict[str, TaskSpec], outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """{task: mean loss over the batch's valid targets} for the tasks present in outputs."""
    return {name: task_loss(tasks[name], out, targets[name]) for name, out in outputs.items()}


def loss_sums(
    tasks: dict[str, TaskSpec], outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
) -> dict[str, tuple[torch.Tensor, int]]:
    """{task: (loss sum, valid-target count)} for the tasks present in outputs (see task_loss_sum)."""
    return {name: task_loss_sum(tasks[name], out, targets[name]) for name, out in outputs.items()}


# ----------------------------------------------------------------------------- metrics


class MetricAccumulator:
    """Accumulates one task's metrics over a whole split (not a mean of batch means)."""

    def __init__(self, task: TaskSpec):
        self.task = task
        self.conf = torch.zeros(max(task.num_classes, 1), max(task.num_classes, 1), dtype=torch.int64)
        self.abs_sum = 0.0
        self.rel_sum = 0.0
        self.count = 0
        self.correct = 0
        self.angles: list[torch.Tensor] = []

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        # reduce on the prediction's device (GPU during real runs); only small results move to the CPU
        task, pred, target = self.task, pred.detach().float(), target.detach()
        valid = valid_mask(task, target)
        if task.kind == "segmentation":
            p, t = pred.argmax(dim=1)[valid], target[valid]
            k = task.num_classes
            self.conf += torch.bincount(t * k + p, minlength=k * k).reshape(k, k).cpu()
        elif task.kind == "classification":
            p, t = pred.argmax(dim=1)[valid], target[valid]
            self.correct += int((p == t).sum())
            self.count += int(valid.sum())
        elif task.kind == "depth":
            p, t = pred[:, 0][valid], target[:, 0][valid]
            err = (p - t).abs()
            self.abs_sum += float(err.sum())
            self.rel_sum += float((err / t).sum())
            self.count += int(valid.sum())
        else:
            cos = (F.normalize(pred, dim=1) * target).sum(dim=1)[valid].clamp(-1.0, 1.0)
            self.angles.append(torch.rad2deg(torch.acos(cos)).cpu())  # kept whole: the median needs every angle

    def compute(self) -> dict[str, float]:
        kind, nan = self.task.kind, float("nan")
        if kind == "segmentation":
            conf = self.conf.double()
            tp = conf.diag()
            union = conf.sum(0) + conf.sum(1) - tp
            present = union > 0
            miou = float((tp[present] / union[present]).mean()) if bool(present.any()) else nan
            total = conf.sum()
            acc = float(tp.sum() / total) if total > 0 else nan
            return {"miou": miou, "pixel_acc": acc}
        if kind == "classification":
            return {"accuracy": self.correct / self.count if self.count else nan}
        if kind == "depth":
            n = self.count
            return {"abs_err": self.abs_sum / n if n else nan, "rel_err": self.rel_sum / n if n else nan}
        if not self.angles:
            return {m: nan for m in self.task.metric_names}
        a = torch.cat(self.angles).double()
        return {
            "mean_angle": float(a.mean()),
            "median_angle": _median(a),
            "within_11.25": float((a < 11.25).double().mean() * 100),
            "within_22.5": float((a < 22.5).double().mean() * 100),
            "within_30": float((a < 30).double().mean() * 100),
        }


def _median(a: torch.Tensor) -> float:
    """The true median of a 1-D tensor (as numpy.median: the mean of the two middle values for an even
    count; torch's ``median`` returns the lower one). kthvalue: no size limit, unlike torch.quantile."""
    n = a.numel()
    lo = a.kthvalue((n + 1) // 2).values
    hi = a.kthvalue(n // 2 + 1).values if n % 2 == 0 else lo
    return float((lo + hi) / 2)


# ----------------------------------------------------------------------------- delta_mtl


def delta_mtl(metrics: dict[str, dict[str, float]], baseline: dict[str, dict[str, float]]) -> float:
    """Multi-task gain in percent over single-task baselines (Maninis et al.; MTAN/LibMTL convention).

    ``delta_mtl = 100/T * sum_t 1/|M_t| * sum_m (-1)^{l_m} (M_{t,m} - B_{t,m}) / B_{t,m}`` with
    ``l_m = 1`` when lower is better (``METRIC_SENSES``). So it is **+x** when a lower-is-better metric
    improves (falls) by x% and a higher-is-better one rises by x%; positive = better than single-task.
    ``metrics`` and ``baseline`` map task -> {metric: value}; every task of ``metrics`` needs a baseline.
    """
    per_task = []
    for task, vals in metrics.items():
        if task not in baseline:
            raise KeyError(f"delta_mtl: no single-task baseline for task {task!r}")
        terms = []
        for name, value in vals.items():
            base = baseline[task][name]
            sign = -1.0 if METRIC_SENSES[name] == "min" else 1.0
            terms.append(sign * (value - base) / base)
        per_task.append(sum(terms) / len(terms))
    return 100.0 * sum(per_task) / len(per_task)
