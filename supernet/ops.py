"""The parametric operations that the supernet and the compact net share: edge ops, read-in ops and
their normalisation. Both networks build their ops here, so kept weights transfer by module name and
neither network imports the other (they meet only through the ArchSpec).

Normalisation (ours, ``model.norm``; the paper does not say):

- ``bn`` (default): BatchNorm with **per-application batch statistics**. The supernet runs an edge op
  once on the task-stacked batch ``(T*B, C, H, W)`` but normalises each task's ``(B, C, H, W)`` slice
  with that slice's own mean and variance; the compact net normalises each distinct input of an op
  with its own statistics. So, in train mode as in eval mode, a task's output never depends on another
  task's data path or gates, and the compact net computes what the supernet computes with the same
  0/1 gates.
  Running statistics follow one rule in both networks: once per forward in train mode, each op's
  running mean/variance move by ``momentum`` towards the **gate-weighted mean of the per-task batch
  statistics** (weights: each task's gate on that op, detached; variance unbiased, as ``nn.BatchNorm2d``
  keeps it). With 0/1 gates that is the mean over the tasks that keep the op; the compact net weights
  each distinct input by the number of tasks that feed it, which is the same number. An op that no task
  uses (all weights 0) keeps its running statistics.
- ``gn``: GroupNorm, batch-independent (no running statistics): the same guarantees with nothing to
  keep in step.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def edge_key(i: int, j: int) -> str:
    return f"{i}_{j}"


class GroupedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode batch statistics are per group of the batch.

    ``forward(x, groups=G, weights=w)`` takes ``x`` of shape ``(B*G, C, H, W)`` ordered batch-major (row
    ``b*G + g`` is sample b of group g), normalises each group's ``(B, C, H, W)`` with its own statistics
    and updates the running statistics once with the ``w``-weighted mean of the groups' statistics (``w``
    of shape (G,), default equal weights; all-zero weights: no update). With ``groups=1`` it is exactly
    ``nn.BatchNorm2d``. Eval mode uses the running statistics, as always.

    Batch-major order makes the grouped case a free view: ``(B, G*C, H, W)`` has one channel per
    (group, channel), so torch's fused batch norm computes every group's statistics in one kernel.
    """

    def forward(self, x: torch.Tensor, groups: int = 1, weights: torch.Tensor | None = None) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        unused = weights is not None and float(weights.detach().sum()) <= 0.0
        if groups == 1 and not unused:
            return super().forward(x)
        C = x.shape[1]
        xg = x.view(x.shape[0] // groups, groups * C, *x.shape[2:])  # (B, G*C, H, W): a view, no copy
        out, mean, invstd = torch.native_batch_norm(
            xg, self.weight.repeat(groups), self.bias.repeat(groups), None, None, True, 0.0, self.eps
        )
        if not unused:  # an op that no task uses in this step learns nothing from it
            n = xg.numel() // xg.shape[1]  # values per (group, channel)
            var = invstd.pow(-2) - self.eps  # biased batch variance
            self._update_running(mean.view(groups, C), var.view(groups, C) * (n / max(n - 1, 1)), weights)
        return out.view_as(x)

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, weights: torch.Tensor | None) -> None:
        """Move the running statistics towards the weighted mean of per-group (mean, unbiased var)."""
        G = mean.shape[0]
        w = torch.full((G,), 1.0 / G, device=mean.device) if weights is None else weights.detach().float().reshape(-1)
        w = (w / w.sum()).view(-1, 1)  # (G, 1)
        self.num_batches_tracked.add_(1)
        # as nn.BatchNorm2d: momentum None = cumulative average over the updates so far
        m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1 - m).add_((w * mean).sum(0), alpha=m)
        self.running_var.mul_(1 - m).add_((w * var).sum(0), alpha=m)


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``bn``: GroupedBatchNorm2d (plain BatchNorm2d on one group). ``gn``: GroupNorm with <= 8 groups
    that divide ``channels``."""
    if kind == "bn":
        return GroupedBatchNorm2d(channels)
    if kind == "gn":
        groups = max(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"model.norm: unknown normalisation {kind!r}; use bn or gn")


class ConvNorm(nn.Module):
    """conv(k x k, no bias) - norm. ``forward(x, groups, weights)``: see GroupedBatchNorm2d; a
    batch-independent norm ignores both."""

    def __init__(self, channels: int, kernel: int, norm: str):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False)
        self.norm = norm_layer(norm, channels)

    def forward(self, x: torch.Tensor, groups: int = 1, weights: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x)
        if isinstance(self.norm, GroupedBatchNorm2d):
            return self.norm(y, groups, weights)
        return self.norm(y)


def edge_op(channels: int, norm: str) -> ConvNorm:
    """o_ij: conv3x3 - norm (the node applies the ReLU after summing its inputs)."""
    return ConvNorm(channels, 3, norm)


def read_in_op(channels: int, norm: str) -> ConvNorm:
    """r_j: conv1x1 - norm, from the stem output to hidden state j."""
    return ConvNorm(channels, 1, norm)
