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
  Running statistics are per task too: every op's norm keeps one row of running mean/variance per task
  (GroupedBatchNorm2d). In train mode a task's row moves by ``momentum`` towards the statistics of its own
  input of the op, when its gate on the op is > 0 (an op a task does not use keeps that task's row); in
  eval mode each task's input is normalised with its own row (the compact net: an input that several
  tasks share, with the mean of their rows, equal wherever they have seen the same inputs). So a task's
  eval output, like its train-mode output, reads only its own path's statistics: a single row shared by
  tasks whose inputs differ (e.g. by a read-in gate) would normalise each with a mixture of both.
- ``gn``: GroupNorm, batch-independent (no running statistics): the same guarantees with nothing to
  keep in step.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def edge_key(i: int, j: int) -> str:
    return f"{i}_{j}"


class GroupedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d with per-group batch statistics and per-row running statistics.

    ``rows`` running statistics of shape ``(rows, C)`` (a row is a task: the supernet's and the compact
    net's task order), each with its own ``num_batches_tracked``. ``forward(x, groups=G, members=m)`` takes
    ``x`` of shape ``(B*G, C, H, W)`` ordered batch-major (row ``b*G + g`` is sample b of group g) and
    ``m`` of shape ``(G, rows)``: ``m[g, r] > 0`` when group g is task r's input of this op (a row is in
    at most one group). ``members`` None: one group that every row reads (an op on an input shared by all
    tasks, e.g. a read-in on the stem output).

    - Train mode: each group is normalised with its own batch statistics, and every member row's running
      statistics move by ``momentum`` towards its group's (mean, unbiased variance); a row in no group
      keeps its statistics (an op a task does not use learns nothing of it).
    - Eval mode: each group is normalised with the mean of its member rows' running statistics; with one
      row per group (the supernet), a task's own. So a task's eval output depends on its own inputs'
      statistics only, as its train-mode output does.

    Batch-major order makes the grouped case a free view: ``(B, G*C, H, W)`` has one channel per
    (group, channel), so torch's fused batch norm computes every group's statistics in one kernel.
    """

    def __init__(self, channels: int, rows: int = 1, **kwargs):
        super().__init__(channels, **kwargs)
        self.rows = rows
        self.running_mean = torch.zeros(rows, channels)
        self.running_var = torch.ones(rows, channels)
        self.num_batches_tracked = torch.zeros(rows, dtype=torch.long)

    def _members(self, groups: int, members: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        if members is None:
            if groups != 1:
                raise ValueError("GroupedBatchNorm2d: members is required with more than one group")
            return torch.ones(1, self.rows, device=device)
        return (members.detach().to(device).float().reshape(groups, self.rows) > 0).float()

    def forward(self, x: torch.Tensor, groups: int = 1, members: torch.Tensor | None = None) -> torch.Tensor:
        m = self._members(groups, members, x.device)  # (G, rows) 0/1
        C = x.shape[1]
        xg = x.view(x.shape[0] // groups, groups * C, *x.shape[2:])  # (B, G*C, H, W): a view, no copy
        w, b = self.weight.repeat(groups), self.bias.repeat(groups)
        if not self.training:
            share = m / m.sum(1, keepdim=True).clamp_min(1.0)  # (G, rows): the mean over a group's rows
            mean, var = share @ self.running_mean, share @ self.running_var  # (G, C)
            out = torch.nn.functional.batch_norm(xg, mean.reshape(-1), var.reshape(-1), w, b, False, 0.0, self.eps)
            return out.view_as(x)
        out, mean, invstd = torch.native_batch_norm(xg, w, b, None, None, True, 0.0, self.eps)
        n = xg.numel() // xg.shape[1]  # values per (group, channel)
        var = invstd.pow(-2) - self.eps  # biased batch variance
        self._update_running(m, mean.view(groups, C), var.view(groups, C) * (n / max(n - 1, 1)))
        return out.view_as(x)

    @torch.no_grad()
    def _update_running(self, m: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> None:
        """Move each member row's running statistics towards its group's (mean, unbiased var): with
        ``k[r, g]`` = the row's step size where row r reads group g (else 0), ``running = (1 - sum_g k) *
        running + k @ stats``, one matrix product per statistic (a row reads at most one group)."""
        used = m.sum(0)  # (rows,) 1 where a row reads some group, else 0
        self.num_batches_tracked.add_(used.long())
        # as nn.BatchNorm2d: momentum None = cumulative average over the row's updates so far
        if self.momentum is None:
            step = 1.0 / self.num_batches_tracked.clamp_min(1).to(mean.dtype)
        else:
            step = torch.full_like(used, float(self.momentum))
        k = m.t() * step.view(-1, 1)  # (rows, G)
        keep = 1 - k.sum(1, keepdim=True)  # (rows, 1)
        self.running_mean.mul_(keep).add_(k @ mean)
        self.running_var.mul_(keep).add_(k @ var)


def norm_layer(kind: str, channels: int, rows: int = 1) -> nn.Module:
    """``bn``: GroupedBatchNorm2d with ``rows`` (tasks) rows of running statistics. ``gn``: GroupNorm with
    <= 8 groups that divide ``channels``."""
    if kind == "bn":
        return GroupedBatchNorm2d(channels, rows)
    if kind == "gn":
        groups = max(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"model.norm: unknown normalisation {kind!r}; use bn or gn")


class ConvNorm(nn.Module):
    """conv(k x k, no bias) - norm. ``forward(x, groups, members)``: see GroupedBatchNorm2d; a
    batch-independent norm ignores both."""

    def __init__(self, channels: int, kernel: int, norm: str, rows: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False)
        self.norm = norm_layer(norm, channels, rows)

    def forward(self, x: torch.Tensor, groups: int = 1, members: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x)
        if isinstance(self.norm, GroupedBatchNorm2d):
            return self.norm(y, groups, members)
        return self.norm(y)


def edge_op(channels: int, norm: str, rows: int = 1) -> ConvNorm:
    """o_ij: conv3x3 - norm (the node applies the ReLU after summing its inputs); ``rows``: tasks."""
    return ConvNorm(channels, 3, norm, rows)


def read_in_op(channels: int, norm: str, rows: int = 1) -> ConvNorm:
    """r_j: conv1x1 - norm, from the stem output to hidden state j; ``rows``: tasks."""
    return ConvNorm(channels, 1, norm, rows)
