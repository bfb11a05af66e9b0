"""Costs: parameters (union and per task), FLOPs (torch.utils.flop_counter) and latency."""

from __future__ import annotations

import time

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from .compact import CompactNet
from .ops import edge_key


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def task_params(net: CompactNet, task: str) -> int:
    """Parameters one task's sub-network uses: stem + its kept edges and read-ins + its head."""
    arch = net.spec[task]
    return (
        n_params(net.stem)
        + sum(n_params(net.edges[edge_key(i, j)]) for i, j in arch.edges)
        + sum(n_params(net.read_in[str(j)]) for j in arch.read_in)
        + n_params(net.heads[task])
    )


@torch.no_grad()
def count_flops(model: nn.Module, x: torch.Tensor, **kwargs) -> int:
    """FLOPs of one forward ``model(x, **kwargs)`` counted by torch's FlopCounterMode."""
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(x, **kwargs)
    model.train(was_training)
    return int(counter.get_total_flops())


@torch.no_grad()
def latency_ms(model: nn.Module, x: torch.Tensor, repeats: int = 10) -> float:
    """Median wall time of one forward pass, in milliseconds (after one warm-up pass)."""
    was_training = model.training
    model.eval()
    model(x)
    times = []
    for _ in range(repeats):
        if x.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000.0)
    model.train(was_training)
    return float(sorted(times)[len(times) // 2])


def cost_summary(model: nn.Module, image_shape: tuple[int, ...], device: torch.device, repeats: int) -> dict:
    """Params (union, per task), FLOPs (one multi-task forward; per task: that task's own forward) for one
    image, latency. Per-task FLOPs count the shared stem (and shared ops) once per task, so they add up
    to more than the multi-task forward."""
    x = torch.zeros(1, *image_shape, device=device)
    out: dict = {"params": {"union": n_params(model), "per_task": {}}, "flops": {"per_task": {}}}
    out["flops"]["multitask"] = count_flops(model, x)
    for t in model.task_names:
        # FLOPs of the task's own path: a forward that computes only that task (shared stem and read-ins included)
        out["flops"]["per_task"][t] = count_flops(model, x, tasks=[t])
        if isinstance(model, CompactNet):
            out["params"]["per_task"][t] = task_params(model, t)
        else:  # a supernet serves every task with every op
            out["params"]["per_task"][t] = sum(p.numel() for p in model.weight_parameters()) + n_params(model.heads[t])
    out["latency_ms"] = latency_ms(model, x, repeats)
    return out
