"""ArchSpec: the searched architecture as frozen, JSON-serialisable data (DARTS' genotype, per task).

Hidden nodes are numbered ``1..N``. For each task the spec lists the kept edges ``(i, j)`` (i < j), the
nodes fed by the read-in layer (from the stem output ``x0``) and the nodes feeding the task's read-out.
The compact network is built from this alone; it is the only link between supernet and compact net.

A spec may also carry, per kept edge and read-in, the gate value the supernet computed with, and per kept
read-out the supernet's read-out weight ``g(Gamma_j) / sum_k g(Gamma_k)`` over all N nodes
(``reduction.fold_gates``, ours): then the compact net computes exactly what the gated supernet computes
minus the pruned paths (the kept read-outs keep the weights they had; they are not renormalised). Without
them every kept edge and read-in has gate 1 and the read-out is the mean of the kept read-outs (the plain
0/1 architecture).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable


def edge_list(n_nodes: int, flow_width: int) -> list[tuple[int, int]]:
    """All edges allowed by flow restriction: i -> j iff 1 <= j - i <= M. Count N*M - M(M+1)/2 (M < N)."""
    return [(i, j) for j in range(1, n_nodes + 1) for i in range(max(1, j - flow_width), j)]


@dataclass(frozen=True)
class TaskArch:
    edges: tuple[tuple[int, int], ...]
    read_in: tuple[int, ...]
    read_out: tuple[int, ...]
    # the gate each kept edge / read-in carries and the weight of each kept read-out, aligned with the
    # tuples above; () = every gate is 1 and the read-out is the mean of the kept read-outs
    edge_gates: tuple[float, ...] = ()
    read_in_gates: tuple[float, ...] = ()
    read_out_gates: tuple[float, ...] = ()

    @property
    def nodes(self) -> tuple[int, ...]:
        """Hidden nodes this task computes (sorted)."""
        ns = set(self.read_in) | set(self.read_out) | {n for e in self.edges for n in e}
        return tuple(sorted(ns))

    @property
    def has_gates(self) -> bool:
        return bool(self.edge_gates or self.read_in_gates or self.read_out_gates)

    def edge_gate(self, edge: tuple[int, int]) -> float:
        return self.edge_gates[self.edges.index(edge)] if self.edge_gates else 1.0

    def read_in_gate(self, j: int) -> float:
        """The gate of the kept read-in at node j."""
        return self.read_in_gates[self.read_in.index(j)] if self.read_in_gates else 1.0

    def read_out_gate(self, j: int) -> float:
        """The weight of the kept read-out at node j in the task's read-out sum."""
        return self.read_out_gates[self.read_out.index(j)] if self.read_out_gates else 1.0 / len(self.read_out)

    def _check_gates(self, task: str) -> None:
        for name, items in (("edge", self.edges), ("read_in", self.read_in), ("read_out", self.read_out)):
            gates = getattr(self, f"{name}_gates")
            if gates and (len(gates) != len(items) or not all(math.isfinite(v) and v >= 0 for v in gates)):
                raise ValueError(f"ArchSpec task {task!r}: {name}_gates must be one finite value >= 0 per kept {name}")


@dataclass(frozen=True)
class ArchSpec:
    n_nodes: int
    flow_width: int
    tasks: tuple[tuple[str, TaskArch], ...]  # ordered (task name, its architecture)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t for t, _ in self.tasks)

    def __getitem__(self, task: str) -> TaskArch:
        for t, a in self.tasks:
            if t == task:
                return a
        raise KeyError(f"task {task!r} is not in this ArchSpec (tasks: {list(self.task_names)})")

    def union_edges(self) -> tuple[tuple[int, int], ...]:
        return tuple(sorted({e for _, a in self.tasks for e in a.edges}))

    def union_read_in(self) -> tuple[int, ...]:
        return tuple(sorted({j for _, a in self.tasks for j in a.read_in}))

    def validate(self) -> None:
        """Every task is a valid input-to-output DAG: allowed edges, no dangling node, >= 1 read-in/out."""
        allowed = set(edge_list(self.n_nodes, self.flow_width))
        for task, a in self.tasks:
            bad = [e for e in a.edges if tuple(e) not in allowed]
            if bad:
                raise ValueError(f"ArchSpec task {task!r}: edges {bad} violate 1 <= j-i <= {self.flow_width}")
            if not a.read_in or not a.read_out:
                raise ValueError(f"ArchSpec task {task!r}: needs at least one read-in and one read-out node")
            fwd = reachable(a.read_in, a.edges, forward=True)
            bwd = reachable(a.read_out, a.edges, forward=False)
            dangling = [n for n in a.nodes if n not in fwd or n not in bwd]
            if dangling:
                raise ValueError(f"ArchSpec task {task!r}: nodes {dangling} are not on an input-to-output path")
            a._check_gates(task)

    # ---------------------------------------------------------------- (de)serialisation

    def to_dict(self) -> dict:
        def task(a: TaskArch) -> dict:
            d = {"edges": [list(e) for e in a.edges], "read_in": list(a.read_in), "read_out": list(a.read_out)}
            if a.has_gates:  # parallel lists: the gate of each kept element
                d["gates"] = {
                    "edges": [a.edge_gate(e) for e in a.edges],
                    "read_in": [a.read_in_gate(j) for j in a.read_in],
                    "read_out": [a.read_out_gate(j) for j in a.read_out],
                }
            return d

        return {"n_nodes": self.n_nodes, "flow_width": self.flow_width, "tasks": {t: task(a) for t, a in self.tasks}}

    @classmethod
    def from_dict(cls, d: dict) -> "ArchSpec":
        def task(name: str, a: dict) -> TaskArch:
            g = a.get("gates") or {}
            for kind in ("edges", "read_in", "read_out"):
                if g.get(kind) is not None and len(g[kind]) != len(a[kind]):
                    raise ValueError(
                        f"arch spec, task {name!r}: {len(a[kind])} {kind} but {len(g[kind])} gates.{kind};"
                        " the spec is corrupt (every kept element has one gate)"
                    )
            edges = [((int(i), int(j)), v) for (i, j), v in zip(a["edges"], g.get("edges") or [1.0] * len(a["edges"]))]
            read_in = [(int(j), v) for j, v in zip(a["read_in"], g.get("read_in") or [1.0] * len(a["read_in"]))]
            read_out = [(int(j), v) for j, v in zip(a["read_out"], g.get("read_out") or [1.0] * len(a["read_out"]))]
            edges, read_in, read_out = sorted(edges), sorted(read_in), sorted(read_out)
            gated = bool(g)
            return TaskArch(
                edges=tuple(e for e, _ in edges),
                read_in=tuple(j for j, _ in read_in),
                read_out=tuple(j for j, _ in read_out),
                edge_gates=tuple(float(v) for _, v in edges) if gated else (),
                read_in_gates=tuple(float(v) for _, v in read_in) if gated else (),
                read_out_gates=tuple(float(v) for _, v in read_out) if gated else (),
            )

        return cls(int(d["n_nodes"]), int(d["flow_width"]), tuple((t, task(t, a)) for t, a in d["tasks"].items()))

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def from_json(cls, path: str | Path) -> "ArchSpec":
        return cls.from_dict(json.loads(Path(path).read_text()))

    # ---------------------------------------------------------------- fixed architectures (baselines)

    @classmethod
    def chain(cls, n_nodes: int, flow_width: int, tasks: Iterable[str]) -> "ArchSpec":
        """Every task on the same plain chain 1 -> 2 -> ... -> N (hard sharing; single task if one task)."""
        arch = TaskArch(tuple((j, j + 1) for j in range(1, n_nodes)), (1,), (n_nodes,))
        return cls(n_nodes, flow_width, tuple((t, arch) for t in tasks))

    @classmethod
    def full(cls, n_nodes: int, flow_width: int, tasks: Iterable[str]) -> "ArchSpec":
        """Every edge, read-in and read-out kept for every task (the unreduced supernet)."""
        nodes = tuple(range(1, n_nodes + 1))
        arch = TaskArch(tuple(edge_list(n_nodes, flow_width)), nodes, nodes)
        return cls(n_nodes, flow_width, tuple((t, arch) for t in tasks))


def reachable(start: Iterable[int], edges: Iterable[tuple[int, int]], forward: bool) -> set[int]:
    """The nodes reachable from ``start`` along ``edges`` (``forward``), or that reach it (not ``forward``),
    ``start`` included.

    Every edge goes from a lower to a higher node (``i < j``, as in every (N, M) space), so one pass over the
    edges in topological order suffices: sorted by target when walking forward (all edges into ``i`` come
    before any edge out of it), by source, descending, when walking back.
    """
    seen = set(start)
    for i, j in sorted(edges, key=lambda e: e[1] if forward else -e[0]):
        a, b = (i, j) if forward else (j, i)
        if a in seen:
            seen.add(b)
    return seen
