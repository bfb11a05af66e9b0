"""Norm statistics for equivalence tests: random, a row per task, equal where a compact net shares an input."""

from __future__ import annotations

import torch
import torch.nn as nn

from supernet.compact import plan_instances
from supernet.ops import GroupedBatchNorm2d
from supernet.spec import ArchSpec


def set_running_stats(net: nn.Module, seed: int, spec: ArchSpec) -> None:
    """Random running statistics, a row per task, equal where ``spec``'s compact net feeds tasks one input:
    the rows of a read-in (every task reads the stem output) and of an op applied to a shared instance.
    That is the state training leaves (the rows of tasks with identical inputs see identical statistics)
    and the condition under which compact == supernet in eval mode (supernet/compact.py)."""
    g = torch.Generator().manual_seed(seed)
    _, task_instances = plan_instances(spec)
    with torch.no_grad():
        for name, mod in net.named_modules():
            if not isinstance(mod, nn.BatchNorm2d):
                continue
            mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=g) - 0.5)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
            if not isinstance(mod, GroupedBatchNorm2d):  # the stem's: one input, no task rows
                continue
            groups: dict[int, list[int]] = {}
            if name.startswith("read_in."):
                groups[0] = list(range(mod.rows))
            elif name.startswith("edges."):
                i, j = (int(v) for v in name.split(".")[1].split("_"))
                for r, (t, arch) in enumerate(spec.tasks):
                    if (i, j) in arch.edges:
                        groups.setdefault(task_instances[t][i], []).append(r)
            for rows in groups.values():
                mod.running_mean[rows] = mod.running_mean[rows[0]].clone()
                mod.running_var[rows] = mod.running_var[rows[0]].clone()
