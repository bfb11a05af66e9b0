"""The compact multi-task network, built from an ArchSpec alone (ours).

It holds only the kept ops (pruned edges cost no parameters and no FLOPs). One forward serves all
tasks: a hidden state that several tasks compute identically (same kept read-in, same kept in-edges
from identical sources) is one *instance*, computed once per batch; an edge op applied to the same
source instance is applied once. This is the paper's "single network that serves as multiple
task-adaptive sub-networks". With discrete gates the supernet's node rule becomes
``h_j = relu(r_j(x0) [if read-in kept] + sum_{kept i->j} o_ij(h_i))`` and the read-out a plain mean of
the kept read-out nodes, so outputs equal the supernet's with the same 0/1 gates.

Module names match the supernet's (``stem``, ``edges['i_j']``, ``read_in['j']``, ``heads[task]``), so
kept weights transfer with ``load_from(supernet)``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dag import edge_key, edge_op, read_in_op
from .spec import ArchSpec
from .stem import build_stem
from .tasks import Head, TaskSpec

# An instance: (node j, read-in kept, ((source node, source instance id), ...)).
Instance = tuple[int, bool, tuple[tuple[int, int], ...]]


def plan_instances(spec: ArchSpec) -> tuple[list[Instance], dict[str, dict[int, int]]]:
    """Distinct hidden-state computations over all tasks, in topological order, and per task the
    instance id of each of its nodes."""
    instances: list[Instance] = []
    ids: dict[Instance, int] = {}
    per_task: dict[str, dict[int, int]] = {}
    for task, arch in spec.tasks:
        mine: dict[int, int] = {}
        for j in arch.nodes:  # sorted ascending = topological
            srcs = tuple(sorted((i, mine[i]) for i, jj in arch.edges if jj == j))
            inst: Instance = (j, j in arch.read_in, srcs)
            if inst not in ids:
                ids[inst] = len(instances)
                instances.append(inst)
            mine[j] = ids[inst]
        per_task[task] = mine
    order = sorted(range(len(instances)), key=lambda k: (instances[k][0], k))  # by node: topological
    remap = {old: new for new, old in enumerate(order)}
    instances = [
        (j, r, tuple((i, remap[s]) for i, s in srcs)) for j, r, srcs in (instances[k] for k in order)
    ]
    per_task = {t: {j: remap[k] for j, k in m.items()} for t, m in per_task.items()}
    return instances, per_task


class CompactNet(nn.Module):
    """``model(x, tasks=None) -> {task: output}``; computes only what the requested tasks need."""

    def __init__(
        self,
        spec: ArchSpec,
        tasks: dict[str, TaskSpec],
        channels: int,
        stem: str = "conv",
        stem_weights: str | None = None,
        stem_layers: int = 2,
        norm: str = "bn",
    ):
        super().__init__()
        self.spec = spec
        self.task_names = spec.task_names
        self.stem = build_stem(stem, channels, stem_layers, stem_weights, norm)
        self.edges = nn.ModuleDict({edge_key(i, j): edge_op(channels, norm) for i, j in spec.union_edges()})
        self.read_in = nn.ModuleDict({str(j): read_in_op(channels, norm) for j in spec.union_read_in()})
        self.heads = nn.ModuleDict({t: Head(tasks[t], channels) for t in spec.task_names})
        self.instances, self.task_instances = plan_instances(spec)

    def arch_parameters(self) -> list[nn.Parameter]:
        return []

    def weight_parameters(self) -> list[nn.Parameter]:
        return [*self.stem.parameters(), *self.edges.parameters(), *self.read_in.parameters()]

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    def load_from(self, supernet: nn.Module) -> None:
        """Copy the kept weights (and norm statistics) from a supernet with the same module names."""
        own = self.state_dict()
        src = {k: v for k, v in supernet.state_dict().items() if k in own}
        missing = [k for k in own if k not in src]
        if missing:
            raise ValueError(f"supernet lacks compact-net weights {missing[:5]}: was it built with the same config?")
        self.load_state_dict(src)

    def needed_instances(self, tasks: Sequence[str]) -> set[int]:
        need: set[int] = set()
        stack = [k for t in tasks for j, k in self.task_instances[t].items() if j in self.spec[t].read_out]
        while stack:
            k = stack.pop()
            if k not in need:
                need.add(k)
                stack.extend(s for _, s in self.instances[k][2])
        return need

    def forward(self, x: torch.Tensor, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        tasks = tuple(tasks) if tasks is not None else self.task_names
        need = self.needed_instances(tasks)
        x0 = self.stem(x)  # (B, C, h, w)
        read_in_cache: dict[int, torch.Tensor] = {}
        op_cache: dict[tuple[int, int, int], torch.Tensor] = {}  # (i, j, source instance) -> o_ij(h)
        h: dict[int, torch.Tensor] = {}
        for k, (j, has_read_in, srcs) in enumerate(self.instances):
            if k not in need:
                continue
            terms = []
            if has_read_in:
                if j not in read_in_cache:
                    read_in_cache[j] = self.read_in[str(j)](x0)
                terms.append(read_in_cache[j])
            for i, s in srcs:
                if (i, j, s) not in op_cache:
                    op_cache[(i, j, s)] = self.edges[edge_key(i, j)](h[s])
                terms.append(op_cache[(i, j, s)])
            if len(terms) == 1:
                h[k] = F.relu(terms[0])  # not in place: terms[0] may be cached and shared
            else:
                acc = terms[0] + terms[1]
                for term in terms[2:]:
                    acc = acc + term
                h[k] = F.relu(acc, inplace=True)  # acc is fresh: safe to overwrite
        size = tuple(x.shape[-2:])
        out = {}
        for t in tasks:
            outs = [h[self.task_instances[t][j]] for j in self.spec[t].read_out]
            feat = outs[0] if len(outs) == 1 else sum(outs[1:], outs[0]) / len(outs)
            out[t] = self.heads[t](feat, size)
        return out


def build_compact(spec: ArchSpec, model_cfg, tasks: dict[str, TaskSpec]) -> CompactNet:
    m = model_cfg
    return CompactNet(spec, tasks, m.channels, m.stem, m.stem_weights, m.stem_layers, m.norm)
