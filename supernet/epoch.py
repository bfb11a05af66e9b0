"""One epoch of a stage: the training pass, evaluation, norm recalibration, and the loader, seed and
optimiser helpers the stage functions of ``supernet/stages.py`` build on.

Every epoch reseeds torch from (trial seed, stage, epoch), so a stage resumed at an epoch boundary or
started from a reused checkpoint computes exactly what an uninterrupted run computes.
"""

from __future__ import annotations

import hashlib
import math
import sys
from contextlib import nullcontext
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .tasks import MetricAccumulator, TaskSpec, loss_sums, losses

if TYPE_CHECKING:
    from .dag import Gates


class DivergenceError(RuntimeError):
    """A loss became NaN/inf. The trial stops; what was written so far is kept."""


def stage_seed(seed: int, stage: str, epoch: int) -> int:
    digest = hashlib.sha256(f"{seed}/{stage}/{epoch}".encode()).hexdigest()
    return int(digest[:12], 16)


def make_loader(
    ds: Dataset, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0, pin_memory: bool = False
) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=gen,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=False,
        persistent_workers=False,
    )


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _to(batch, device: torch.device):
    x, y = batch
    nb = device.type == "cuda"
    return x.to(device, non_blocking=nb), {t: v.to(device, non_blocking=nb) for t, v in y.items()}


def _progress(it, desc: str, show: bool):
    return tqdm(it, desc=desc, leave=False, disable=not (show and sys.stderr.isatty()), file=sys.stderr)


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    tasks: dict[str, TaskSpec],
    optimizers: list[torch.optim.Optimizer],
    device: torch.device,
    precision: str = "fp32",
    extra_loss: Callable[[], torch.Tensor] | None = None,
    scaler: torch.amp.GradScaler | None = None,
    where: str = "",
    progress: bool = False,
    before_step: Callable[[int], None] | None = None,
    weight_gates: Callable[[], Gates] | None = None,
    task_weights: dict[str, float] | None = None,
    lr_key: str = "warmup.lr",
) -> dict[str, float]:
    """One pass over ``loader``. Returns mean total loss and mean extra (squeeze) loss.
    ``lr_key``: the config key of the stage's learning rate, which a divergence error says to lower.
    ``before_step(b)`` runs before batch b's forward (the search's gate annealing and pruning mask).
    ``task_weights`` (search.loss_scale): each task's loss times its weight in every forward's loss; None = 1 each.

    ``weight_gates`` (search.weight_pass noise_free): each step is two. The first forward (the model's own,
    noisy gates) plus ``extra_loss`` steps ``optimizers[1:]`` (the gates) only; a second forward at
    ``weight_gates()`` (gates without gradient) steps ``optimizers[0]`` (heads, Theta) on the task losses
    alone. The returned losses are the first forward's."""
    model.train()
    total, extra_total, n = 0.0, 0.0, 0
    for b, batch in enumerate(_progress(loader, where, progress)):
        if before_step is not None:
            before_step(b)
        x, y = _to(batch, device)
        at = f"{where}, batch {b}"
        loss, extra = _pass_loss(
            model, x, y, tasks, device, precision, None, extra_loss, at, "the loss", lr_key, task_weights
        )
        _step(loss, optimizers, optimizers if weight_gates is None else optimizers[1:], scaler)
        if weight_gates is not None:  # the noise-free weight pass: heads (and Theta) at the eval gates
            what = "the weights' loss at the eval gates"
            w_loss, _ = _pass_loss(
                model, x, y, tasks, device, precision, weight_gates(), None, at, what, "search.lr", task_weights
            )
            _step(w_loss, optimizers, optimizers[:1], scaler)
        total += float(loss.detach())
        extra_total += float(extra.detach()) if extra is not None else 0.0
        n += 1
    return {"train_loss": total / max(n, 1), "squeeze": extra_total / max(n, 1) if extra_loss else math.nan}


def _pass_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: dict[str, torch.Tensor],
    tasks: dict[str, TaskSpec],
    device: torch.device,
    precision: str,
    gates: Gates | None,
    extra_loss: Callable[[], torch.Tensor] | None,
    at: str,
    what: str,
    lr_key: str,
    task_weights: dict[str, float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One forward (at ``gates``; None: the model's own) and its loss: the sum of the task losses (equal
    weights, ours; times ``task_weights`` when given) plus ``extra_loss()`` when given; returns (loss, extra).
    A non-finite loss raises ``DivergenceError`` naming ``what``, the tasks whose loss is non-finite, and
    ``lr_key`` to lower."""
    with autocast(device, precision):
        out = model(x) if gates is None else model(x, gates)
    task_losses = losses(tasks, out, y)
    if task_weights is None:
        loss = sum(task_losses.values())
    else:
        loss = sum(task_weights[t] * v for t, v in task_losses.items())
    extra = extra_loss() if extra_loss is not None else None
    if extra is not None:
        loss = loss + extra
    if not torch.isfinite(loss):
        bad = [t for t, v in task_losses.items() if not torch.isfinite(v)] or ["squeeze"]
        raise DivergenceError(
            f"{at}: {what} became {float(loss.detach())} (non-finite in {bad}). "
            f"Lower the stage's learning rate (e.g. --set {lr_key}=...) or use trial.precision=fp32."
        )
    return loss, extra


def _step(
    loss: torch.Tensor,
    optimizers: list[torch.optim.Optimizer],
    stepped: list[torch.optim.Optimizer],
    scaler: torch.amp.GradScaler | None,
) -> None:
    """Backward ``loss`` and step the ``stepped`` optimisers (every optimiser's gradients cleared first)."""
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        for opt in stepped:
            scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        for opt in stepped:
            opt.step()


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: DataLoader, tasks: dict[str, TaskSpec], device: torch.device, precision: str = "fp32"
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Metrics accumulated over the whole split, and each task's validation loss: the mean over all valid
    targets of the split (pixels with ground truth, labelled samples), independent of the batch size.
    NaN for a task with no valid target in the split."""
    model.eval()
    acc = {t: MetricAccumulator(spec) for t, spec in tasks.items()}
    loss_sum = {t: 0.0 for t in tasks}
    count = {t: 0 for t in tasks}
    for batch in loader:
        x, y = _to(batch, device)
        with autocast(device, precision):
            out = model(x)
        for t, (s, n) in loss_sums(tasks, out, y).items():
            loss_sum[t] += float(s)
            count[t] += n
        for t in tasks:
            acc[t].update(out[t], y[t])
    vloss = {t: loss_sum[t] / count[t] if count[t] else math.nan for t in tasks}
    return {t: a.compute() for t, a in acc.items()}, vloss


@torch.no_grad()
def recalibrate_norms(model: nn.Module, loader: DataLoader, device: torch.device, precision: str = "fp32") -> int:
    """Recompute every BatchNorm's running statistics over one pass of ``loader`` at the model's current
    (eval-mode) gates: statistics reset, cumulative average (momentum None), train-mode forwards without
    gradient, then the momenta restored. Returns how many norm layers were recalibrated (0: nothing to do,
    e.g. GroupNorm). Weights, gates and heads are unchanged."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    gates = model.eval_gates() if hasattr(model, "eval_gates") else None  # no Gumbel noise
    try:
        for batch in loader:
            x, _ = _to(batch, device)
            with autocast(device, precision):
                model(x) if gates is None else model(x, gates)
    finally:
        for m, mom in zip(norms, momenta):
            m.momentum = mom
        model.train(was_training)
    return len(norms)


def sgd(params: list[nn.Parameter], lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def set_trainable(model: nn.Module, weights: bool, heads: bool, arch: bool) -> None:
    """Freeze/unfreeze the three parameter groups (Theta, heads, A/B/Gamma)."""
    for p in model.weight_parameters():
        p.requires_grad_(weights)
    for p in model.head_parameters():
        p.requires_grad_(heads)
    for p in model.arch_parameters():
        p.requires_grad_(arch)
