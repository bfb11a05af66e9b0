"""The compact multi-task network, built from an ArchSpec alone (ours).

It holds only the kept ops (pruned edges cost no parameters and no FLOPs). One forward serves all
tasks: a hidden state that several tasks compute identically (same kept read-in, same kept in-edges
from identical sources) is one *instance*, computed once per batch; an edge op applied to the same
source instance is applied once. This is the paper's "single network that serves as multiple
task-adaptive sub-networks". With discrete gates the supernet's node rule becomes
``h_j = relu(r_j(x0) [if read-in kept] + sum_{kept i->j} o_ij(h_i))`` and the read-out a plain mean of
the kept read-out nodes, so outputs equal the supernet's with the same 0/1 gates.

Module names match the supernet's (``stem``, ``edges['i_j']``, ``read_in['j']``, ``heads[task]``), so
kept weights transfer with ``load_from(supernet)``; both networks build their ops in ``supernet/ops.py``
and meet only through the spec.

Norms (``supernet/ops.py``): every op keeps one row of running statistics per task, as the supernet does.
An op applied to several distinct inputs normalises each with its own batch statistics (train mode) and
moves the rows of the tasks that feed each input towards that input's statistics; in eval mode it
normalises each input with the mean of those rows. Tasks that share an instance have seen identical
inputs wherever the supernet ran them at identical gates (the search's last-step recalibration does), so
their rows are equal and the mean is each task's own: fine-tune trains the function that search
evaluated, and a task's eval output reads only its own inputs' statistics.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .ops import edge_key, edge_op, read_in_op
from .spec import ArchSpec
from .stem import build_stem
from .tasks import Head, TaskSpec


class Source(NamedTuple):
    """One in-edge of an instance: o_ij applied to instance ``instance`` (a state of node ``node`` = i)."""

    node: int
    instance: int
    gate: float  # the edge's gate: 1.0 in a plain 0/1 spec, the supernet's value in a spec with folded gates


class Instance(NamedTuple):
    """One distinct hidden-state computation of node ``node``: ``relu(read_in_gate * r_j(x0) + sum over
    sources of gate * o_ij(h_instance))``, its sources in ascending source node."""

    node: int
    read_in_gate: float | None  # None: no read-in
    sources: tuple[Source, ...]


def plan_instances(spec: ArchSpec) -> tuple[list[Instance], dict[str, dict[int, int]]]:
    """Distinct hidden-state computations over all tasks, in topological order, and per task the
    instance id of each of its nodes. Two tasks share an instance when they compute it identically: the
    same read-in gate and the same in-edges, gates included, from the same source instances."""
    instances: list[Instance] = []
    ids: dict[Instance, int] = {}
    per_task: dict[str, dict[int, int]] = {}
    for task, arch in spec.tasks:
        mine: dict[int, int] = {}
        for j in arch.nodes:  # sorted ascending = topological
            srcs = tuple(sorted(Source(i, mine[i], arch.edge_gate((i, jj))) for i, jj in arch.edges if jj == j))
            inst = Instance(j, arch.read_in_gate(j) if j in arch.read_in else None, srcs)
            if inst not in ids:
                ids[inst] = len(instances)
                instances.append(inst)
            mine[j] = ids[inst]
        per_task[task] = mine
    order = sorted(range(len(instances)), key=lambda k: (instances[k].node, k))  # by node: topological
    remap = {old: new for new, old in enumerate(order)}
    instances = [_renumbered(instances[k], remap) for k in order]
    per_task = {t: {j: remap[k] for j, k in m.items()} for t, m in per_task.items()}
    return instances, per_task


def _renumbered(inst: Instance, remap: dict[int, int]) -> Instance:
    """``inst`` with every source instance id replaced by ``remap[id]``."""
    return inst._replace(sources=tuple(src._replace(instance=remap[src.instance]) for src in inst.sources))


def _gated_sum(terms: list[torch.Tensor], gates: list[float]) -> torch.Tensor:
    """``sum_k gates[k] * terms[k]`` as a fresh tensor (a term may be shared and must stay untouched)."""
    if len(terms) == 1:
        return terms[0] * gates[0]
    first = terms[0] if gates[0] == 1.0 else terms[0] * gates[0]
    acc = torch.add(first, terms[1], alpha=gates[1])  # fresh
    for term, g in zip(terms[2:], gates[2:]):
        acc.add_(term, alpha=g)
    return acc


def _node_state(
    inst: Instance, read_in: torch.Tensor | None, op_out: dict[tuple[int, int], torch.Tensor]
) -> torch.Tensor:
    """``h`` of one instance from its node's read-in output and the op outputs keyed (source node, instance)."""
    terms = ([read_in] if inst.read_in_gate is not None else []) + [op_out[(s.node, s.instance)] for s in inst.sources]
    gates = ([inst.read_in_gate] if inst.read_in_gate is not None else []) + [s.gate for s in inst.sources]
    if len(terms) == 1 and gates[0] == 1.0:
        return F.relu(terms[0])  # not in place: terms[0] may be shared
    return F.relu(_gated_sum(terms, gates), inplace=True)  # the sum is fresh: safe to overwrite


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
        T = len(spec.task_names)  # one row of norm statistics per task, in the spec's (the supernet's) order
        self.edges = nn.ModuleDict({edge_key(i, j): edge_op(channels, norm, T) for i, j in spec.union_edges()})
        self.read_in = nn.ModuleDict({str(j): read_in_op(channels, norm, T) for j in spec.union_read_in()})
        self.heads = nn.ModuleDict({t: Head(tasks[t], channels) for t in spec.task_names})
        self.instances, self.task_instances = plan_instances(spec)
        self._by_node: dict[int, list[int]] = {}
        for k, inst in enumerate(self.instances):
            self._by_node.setdefault(inst.node, []).append(k)
        # (i, j, source instance) -> a (T,) 0/1 row: the tasks that apply o_ij to that instance, whose rows of
        # the op's norm statistics that input reads and updates (ops.py)
        self._users: dict[tuple[int, int, int], torch.Tensor] = {}
        for r, (t, arch) in enumerate(spec.tasks):
            for i, j in arch.edges:
                key = (i, j, self.task_instances[t][i])
                self._users.setdefault(key, torch.zeros(T))[r] = 1.0

    def arch_parameters(self) -> list[nn.Parameter]:
        return []

    def weight_parameters(self) -> list[nn.Parameter]:
        return [*self.stem.parameters(), *self.edges.parameters(), *self.read_in.parameters()]

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    def load_from(self, supernet: nn.Module) -> None:
        """Copy the kept weights (and norm statistics) from a supernet with the same module names and the
        same tasks in the same order (a norm's statistics have one row per task)."""
        names = tuple(getattr(supernet, "task_names", ()))
        if names != tuple(self.task_names):
            raise ValueError(f"supernet tasks {names} differ from the spec's {tuple(self.task_names)} (or their order)")
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
                stack.extend(src.instance for src in self.instances[k].sources)
        return need

    def _apply_op(self, i: int, j: int, srcs: list[int], h: dict[int, torch.Tensor]) -> list[torch.Tensor]:
        """o_ij on each source instance in ``srcs``: one call on the stacked inputs, each normalised on its own
        with the statistics of the tasks that feed it (ops.py)."""
        op = self.edges[edge_key(i, j)]
        members = torch.stack([self._users[(i, j, s)] for s in srcs])  # (k, T)
        if len(srcs) == 1:
            return [op(h[srcs[0]], 1, members)]
        stacked = torch.stack([h[s] for s in srcs], dim=1)  # (B, k, C, H, W): batch-major, as ops.py wants
        y = op(stacked.flatten(0, 1), len(srcs), members)
        return list(y.view(stacked.shape).unbind(1))

    def forward(self, x: torch.Tensor, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        tasks = tuple(tasks) if tasks is not None else self.task_names
        need = self.needed_instances(tasks)
        x0 = self.stem(x)  # (B, C, h, w)
        h: dict[int, torch.Tensor] = {}
        for j, node_instances in self._by_node.items():  # ascending node = topological
            mine = [k for k in node_instances if k in need]
            if not mine:
                continue
            insts = [self.instances[k] for k in mine]
            read_in = self.read_in[str(j)](x0) if any(inst.read_in_gate is not None for inst in insts) else None
            op_out: dict[tuple[int, int], torch.Tensor] = {}  # (i, source instance) -> o_ij(h), each once
            for i in sorted({src.node for inst in insts for src in inst.sources}):
                srcs = sorted({src.instance for inst in insts for src in inst.sources if src.node == i})
                op_out.update(zip(((i, s) for s in srcs), self._apply_op(i, j, srcs, h)))
            for k, inst in zip(mine, insts):
                h[k] = _node_state(inst, read_in, op_out)
        size = tuple(x.shape[-2:])
        out = {}
        for t in tasks:
            arch = self.spec[t]
            outs = [h[self.task_instances[t][j]] for j in arch.read_out]
            w = [arch.read_out_gate(j) for j in arch.read_out]  # folded read-out weights, or 1/k each
            feat = outs[0] if len(outs) == 1 and w[0] == 1.0 else _gated_sum(outs, w)
            out[t] = self.heads[t](feat, size)
        return out


def build_compact(spec: ArchSpec, model_cfg, tasks: dict[str, TaskSpec]) -> CompactNet:
    m = model_cfg
    return CompactNet(spec, tasks, m.channels, m.stem, m.stem_weights, m.stem_layers, m.norm)
