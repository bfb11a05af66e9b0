"""Greedy refinement of the reduction (ours, ``reduction.refine_tol``): backward elimination on the training loss.

Why: the flow-based reduction keeps every element whose gate the search left open, and an open gate says that
the search found closing it not worth its squeeze cost, not that the task needs it. On the planted benchmark the
deep task keeps 4-5 edges and read-outs at most nodes where one path of 3 edges suffices, and the local task
keeps an edge and 4-6 read-ins although its answer is in the pixel itself (docs/findings.md).

What: per task, from the architecture the reduction keeps, every removal of one kept element (an edge, a
read-in or a read-out, then whatever no longer lies on a read-in -> read-out path; a removal that leaves no
path is not a candidate) is scored by the task's loss on the first ``reduction.refine_samples`` training
samples, computed by the supernet with only the remaining elements open at their eval gates. Among the
removals whose loss stays within the budget, the one that saves the most parameters is taken (then the lowest
loss), and the search goes on from there until no removal stays within it. The budget gives back at most the
fraction ``refine_tol`` of what the reduced network learned over the task's trivial predictor
(``trivial.trivial_losses``): ``loss <= L0 + tol * (trivial - L0)``, with ``L0`` the reduction's loss, for
every accepted removal (the budget is cumulative, not per step). A task whose reduced network is no better
than its trivial predictor has nothing to judge removals by: it keeps what the reduction kept, unless a
removal lowers its loss.

The loss is measured with every BatchNorm on the batch's statistics (running statistics unchanged): a removal
shifts the statistics of every node after it, and stale running statistics would count that shift against
the removal, where fine-tune trains on batch statistics anyway. A task's gates and norm rows touch only its
own output (``dag.Supernet``), so the tasks are refined independently and their order does not matter.
"""

from __future__ import annotations

import copy
from typing import Iterator, Sequence

import torch
import torch.nn as nn

from .dag import Gates, Supernet
from .epoch import autocast
from .reduction import keep_on_paths
from .spec import ArchSpec, TaskArch, edge_list
from .tasks import TaskSpec, loss_sums


def removals(arch: TaskArch, edges: list[tuple[int, int]]) -> Iterator[TaskArch]:
    """Every architecture with one kept element of ``arch`` removed and what then lies on no read-in -> read-out
    path dropped (``reduction.keep_on_paths``) that still has a path; each distinct one once."""
    index = {e: k for k, e in enumerate(edges)}
    keep_e, keep_in, keep_out = {index[e] for e in arch.edges}, set(arch.read_in), set(arch.read_out)
    options = [(keep_e - {e}, keep_in, keep_out) for e in sorted(keep_e)]
    options += [(keep_e, keep_in - {j}, keep_out) for j in sorted(keep_in)]
    options += [(keep_e, keep_in, keep_out - {j}) for j in sorted(keep_out)]
    seen = set()
    for e, i, o in options:
        cand = keep_on_paths(edges, set(e), set(i), set(o))
        key = (cand.edges, cand.read_in, cand.read_out)
        if cand.read_in and key not in seen:  # a read-in survives only on a path to a read-out
            seen.add(key)
            yield cand


def with_task(spec: ArchSpec, task: str, arch: TaskArch) -> ArchSpec:
    """``spec`` with ``task``'s architecture replaced by ``arch``."""
    return ArchSpec(spec.n_nodes, spec.flow_width, tuple((t, arch if t == task else a) for t, a in spec.tasks))


class Probe:
    """One task's loss over ``batches`` of a copy of ``model`` with only a spec's elements open at the model's
    eval gates, every BatchNorm on batch statistics (the model itself is not touched)."""

    def __init__(self, model: Supernet, batches: Sequence, tasks: dict[str, TaskSpec], device, precision: str):
        self.model = copy.deepcopy(model)
        for m in self.model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.0  # train mode normalises with the batch's statistics; the running ones never move
        self.model.train()
        with torch.no_grad():
            self.gates = model.eval_gates()
        self.batches, self.tasks, self.device, self.precision = batches, tasks, device, precision
        ce, cr = model.op_costs()
        self.edge_cost = dict(zip(model.edges_ij, ce.tolist()))
        self.read_in_cost = cr.tolist()

    @torch.no_grad()
    def loss(self, spec: ArchSpec, task: str) -> float:
        """The mean loss over every valid target of ``batches`` (independent of how they are batched)."""
        mask = self.model.discrete_gates(spec)
        g = Gates(self.gates.alpha * mask.alpha, self.gates.beta * mask.beta, self.gates.gamma * mask.gamma)
        total, count = 0.0, 0
        for x, y in self.batches:
            with autocast(self.device, self.precision):
                out = self.model(x.to(self.device), g, tasks=[task])
            s, n = loss_sums(self.tasks, out, {task: y[task].to(self.device)})[task]
            total, count = total + float(s), count + n
        return total / max(count, 1)

    def params(self, arch: TaskArch) -> float:
        """The parameters of a task's kept edge and read-in ops (read-outs have none)."""
        return sum(self.edge_cost[tuple(e)] for e in arch.edges) + sum(self.read_in_cost[j - 1] for j in arch.read_in)


def refine(
    spec: ArchSpec, probe: Probe, trivial: dict[str, float], tol: float
) -> tuple[ArchSpec, dict[str, dict[str, float]]]:
    """The refined spec (module docstring) and per task its loss before and after, the budget, and how many kept
    elements it removed. ``spec``: the reduction's architecture, in the probed supernet's task order; ``trivial``:
    each task's trivial loss."""
    edges = edge_list(spec.n_nodes, spec.flow_width)
    log = {}
    for task, arch in spec.tasks:
        start = probe.loss(spec, task)
        budget, current = start + tol * max(trivial[task] - start, 0.0), start
        while True:
            scored = [(probe.loss(with_task(spec, task, c), task), c) for c in removals(spec[task], edges)]
            within = [(loss, c) for loss, c in scored if loss <= budget]
            if not within:
                break
            current, best = max(within, key=lambda s: (-probe.params(s[1]), -s[0]))
            spec = with_task(spec, task, best)
        removed = _size(arch) - _size(spec[task])
        log[task] = {"loss_before": start, "loss_after": current, "budget": budget, "removed": removed}
    return spec, log


def _size(arch: TaskArch) -> int:
    return len(arch.edges) + len(arch.read_in) + len(arch.read_out)
