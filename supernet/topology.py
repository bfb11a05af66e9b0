"""What a searched architecture kept, as numbers: per task its kept edges, its longest path and the ops it
shares with each other task, and the null distribution of the longest path (ours).

The longest path of a task is the largest number of edges on a path from one of its read-in nodes to one
of its read-out nodes (0: the task reads features straight from a read-in, through no edge op). What a
path of k edges sees grows with k (each edge op is a conv3x3), so it is the topology measure that a task
needing context can be checked with.

The null distribution answers "how often would a uniformly random valid architecture of the same size
have a path this long?": over every valid architecture of the (N, M) space with exactly the task's numbers
of kept edges, read-ins and read-outs (``supernet/random_arch.py`` draws from the same set), the
probability of each longest-path length, by exact enumeration (``MAX_ENUMERATED`` architectures at most;
beyond that a Monte Carlo estimate of ``MC_DRAWS`` uniform draws, flagged ``exact: false``; empty ``probs``
when the size is too rare to draw uniformly).
"""

from __future__ import annotations

import functools
import itertools
from math import comb

import numpy as np

from .random_arch import random_task_arch
from .spec import ArchSpec, TaskArch, edge_list, reachable

MAX_ENUMERATED = 300_000  # candidate (edges, read-ins, read-outs) triples enumerated exactly
MC_DRAWS = 20_000


def longest_path(arch: TaskArch) -> int:
    """Edges on the longest read-in -> read-out path of a valid task architecture."""
    return _longest(set(arch.read_in), set(arch.read_out), arch.edges)


def _longest(read_in: set[int], read_out: set[int], edges) -> int:
    dist: dict[int, int] = {j: 0 for j in read_in}
    for i, j in sorted(edges, key=lambda e: e[1]):  # sorted by target: a topological pass
        if i in dist:
            dist[j] = max(dist.get(j, 0), dist[i] + 1)
    return max((dist[j] for j in read_out if j in dist), default=0)


def task_topology(spec: ArchSpec) -> dict[str, dict]:
    """{task: {edges, longest_path, read_in, read_out, shared: {other task: edges + read-ins kept by both}}}."""
    out = {}
    for t, a in spec.tasks:
        ops = {("e", e) for e in a.edges} | {("r", j) for j in a.read_in}
        shared = {}
        for u, b in spec.tasks:
            if u != t:
                shared[u] = len(ops & ({("e", e) for e in b.edges} | {("r", j) for j in b.read_in}))
        out[t] = {
            "edges": len(a.edges),
            "longest_path": longest_path(a),
            "read_in": len(a.read_in),
            "read_out": len(a.read_out),
            "shared": shared,
        }
    return out


def collapsed(spec: ArchSpec) -> bool:
    """Every task keeps no edge op: each is stem -> read-in -> its head, with no topology to speak of."""
    return all(not a.edges for _, a in spec.tasks)


@functools.lru_cache(maxsize=256)
def null_longest_path(n_nodes: int, flow_width: int, n_edges: int, n_read_in: int, n_read_out: int) -> dict:
    """Distribution of the longest path over the uniformly random valid architectures of this size:
    {"probs": [P(L = 0), ..., P(L = N - 1)], "exact": bool, "n_archs": valid architectures counted or drawn}."""
    edges = edge_list(n_nodes, flow_width)
    nodes = range(1, n_nodes + 1)
    counts = np.zeros(n_nodes)
    total = comb(len(edges), n_edges) * comb(n_nodes, n_read_in) * comb(n_nodes, n_read_out)
    if total <= MAX_ENUMERATED:
        valid = 0
        for es in itertools.combinations(edges, n_edges):
            ends = {n for e in es for n in e}
            for ri in itertools.combinations(nodes, n_read_in):
                fwd = reachable(ri, es, forward=True)
                for ro in itertools.combinations(nodes, n_read_out):
                    used = ends | set(ri) | set(ro)
                    if not used <= fwd or not used <= reachable(ro, es, forward=False):
                        continue
                    valid += 1
                    counts[_longest(set(ri), set(ro), es)] += 1
        if valid == 0:
            raise ValueError(
                f"no valid architecture of N={n_nodes}, M={flow_width} has {n_edges} edges, "
                f"{n_read_in} read-ins and {n_read_out} read-outs"
            )
        return {"probs": (counts / valid).tolist(), "exact": True, "n_archs": valid}
    rng = np.random.default_rng(0)
    try:
        for _ in range(MC_DRAWS):
            counts[longest_path(random_task_arch(n_nodes, flow_width, n_edges, n_read_in, n_read_out, rng))] += 1
    except RuntimeError:  # a size too rare to draw uniformly: no null distribution (the hit test says so)
        return {"probs": [], "exact": False, "n_archs": 0}
    return {"probs": (counts / MC_DRAWS).tolist(), "exact": False, "n_archs": MC_DRAWS}


def spec_null(spec: ArchSpec) -> dict[str, dict]:
    """``null_longest_path`` of every task's kept size."""
    return {
        t: null_longest_path(spec.n_nodes, spec.flow_width, len(a.edges), len(a.read_in), len(a.read_out))
        for t, a in spec.tasks
    }
