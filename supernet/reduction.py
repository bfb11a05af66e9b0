"""Flow-based reduction: soft gates -> a discrete per-task ArchSpec (paper: exists; algorithm ours).

Per task the gates are capacities on a DAG from a source S (the read-in, x0) through hidden nodes 1..N
to a sink K (the task's read-out):

- forward mass ``Pin(S) = 1``, ``Pin(j) = c(S->j) + sum_i Pin(i) c(i->j)``, total ``F = Pin(K)``;
- backward mass ``Pout(K) = 1``, ``Pout(i) = c(i->K) + sum_j c(i->j) Pout(j)``;
- edge flow ``F(e) = Pin(u) c(e) Pout(v)``, so ``F(e)/F`` is the share of all S->K path products
  that pass through e (in [0, 1]);
- keep e iff ``F(e)/F >= tau``, plus the maximum-product S->K path (every task keeps a valid path);
- then drop every kept edge and node not on some kept S->K path (no dangling compute).

Larger tau keeps a subset of the edges of a smaller tau (both steps are monotone).

``fold_gates`` (ours, ``reduction.fold_gates``) then writes into the spec the gate each kept element had
in the supernet (its eval-mode gate), so the compact net computes the gated supernet minus the pruned
paths instead of a 0/1 network whose node sums and read-outs are scaled differently.
"""
from __future__ import annotations

import numpy as np

from .spec import ArchSpec, TaskArch, edge_list


def edge_flows(a: np.ndarray, b: np.ndarray, g: np.ndarray, edges: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Flow share of every edge (E,), read-in (N,) and read-out (N,) of one task, and the total flow.

    a: edge capacities (E,), b: read-in capacities (N,), g: read-out capacities (N,), all in [0, 1].
    """
    n = len(b)
    pin = np.zeros(n + 1)  # index 1..N
    for j in range(1, n + 1):
        pin[j] = b[j - 1] + sum(pin[i] * a[e] for e, (i, jj) in enumerate(edges) if jj == j)
    pout = np.zeros(n + 2)
    for i in range(n, 0, -1):
        pout[i] = g[i - 1] + sum(a[e] * pout[j] for e, (ii, j) in enumerate(edges) if ii == i)
    total = float(sum(pin[j] * g[j - 1] for j in range(1, n + 1)))
    fe = np.array([pin[i] * a[e] * pout[j] for e, (i, j) in enumerate(edges)])
    fin = np.array([b[j - 1] * pout[j] for j in range(1, n + 1)])
    fout = np.array([pin[j] * g[j - 1] for j in range(1, n + 1)])
    if total <= 0.0:
        return np.zeros_like(fe), np.zeros_like(fin), np.zeros_like(fout), 0.0
    return fe / total, fin / total, fout / total, total


def max_product_path(a: np.ndarray, b: np.ndarray, g: np.ndarray, edges: list[tuple[int, int]]) -> tuple[list[int], int, int]:
    """The S->K path with the largest product of capacities: (edge indices, read-in node, read-out node)."""
    n = len(b)
    best = np.full(n + 1, -np.inf)  # log of the best S->j product
    prev: dict[int, int | None] = {}
    with np.errstate(divide="ignore"):
        la, lb, lg = np.log(a), np.log(b), np.log(g)
    for j in range(1, n + 1):
        best[j], prev[j] = lb[j - 1], None
        for e, (i, jj) in enumerate(edges):
            if jj == j and best[i] + la[e] > best[j]:
                best[j], prev[j] = best[i] + la[e], e
    end = int(np.argmax([best[j] + lg[j - 1] for j in range(1, n + 1)])) + 1
    path, j = [], end
    while prev[j] is not None:
        e = prev[j]
        path.append(e)
        j = edges[e][0]
    return path[::-1], j, end


def reduce_task(a: np.ndarray, b: np.ndarray, g: np.ndarray, n_nodes: int, flow_width: int, tau: float) -> TaskArch:
    """Discrete architecture of one task from its gate probabilities (see module docstring)."""
    edges = edge_list(n_nodes, flow_width)
    fe, fin, fout, _ = edge_flows(a, b, g, edges)
    keep_e = {e for e in range(len(edges)) if fe[e] >= tau}
    keep_in = {j for j in range(1, n_nodes + 1) if fin[j - 1] >= tau}
    keep_out = {j for j in range(1, n_nodes + 1) if fout[j - 1] >= tau}
    path, start, end = max_product_path(a, b, g, edges)
    keep_e |= set(path)
    keep_in.add(start)
    keep_out.add(end)
    # prune: an edge survives iff its source is reachable from a kept read-in and its target reaches a kept read-out
    kept = [edges[e] for e in sorted(keep_e)]
    fwd, bwd = set(keep_in), set(keep_out)
    for i, j in kept:  # edges sorted by target node: one topological pass forward
        if i in fwd:
            fwd.add(j)
    for i, j in sorted(kept, key=lambda e: -e[0]):
        if j in bwd:
            bwd.add(i)
    final = tuple((i, j) for i, j in kept if i in fwd and j in bwd)
    return TaskArch(
        edges=tuple(sorted(final)),
        read_in=tuple(sorted(j for j in keep_in if j in bwd)),
        read_out=tuple(sorted(j for j in keep_out if j in fwd)),
    )


def reduce(probs, task_names: tuple[str, ...], n_nodes: int, flow_width: int, tau: float) -> ArchSpec:
    """ArchSpec from a supernet's gate probabilities (``Supernet.gate_probs()``)."""
    a = probs.alpha.detach().double().cpu().numpy()
    b = probs.beta.detach().double().cpu().numpy()
    g = probs.gamma.detach().double().cpu().numpy()
    tasks = tuple((t, reduce_task(a[k], b[k], g[k], n_nodes, flow_width, tau)) for k, t in enumerate(task_names))
    return ArchSpec(n_nodes, flow_width, tasks)


def fold_gates(spec: ArchSpec, gates, task_names: tuple[str, ...]) -> ArchSpec:
    """The same architecture, each kept edge, read-in and read-out carrying its gate value from ``gates``
    (a supernet's ``Gates`` in its task and edge order; use the eval-mode gates, what the supernet
    computes with)."""
    edges = edge_list(spec.n_nodes, spec.flow_width)
    index = {e: k for k, e in enumerate(edges)}
    a = gates.alpha.detach().double().cpu().numpy()
    b = gates.beta.detach().double().cpu().numpy()
    g = gates.gamma.detach().double().cpu().numpy()
    row = {t: k for k, t in enumerate(task_names)}
    tasks = []
    for t, arch in spec.tasks:
        k = row[t]
        tasks.append((t, TaskArch(
            arch.edges, arch.read_in, arch.read_out,
            edge_gates=tuple(float(a[k, index[e]]) for e in arch.edges),
            read_in_gates=tuple(float(b[k, j - 1]) for j in arch.read_in),
            read_out_gates=tuple(float(g[k, j - 1]) for j in arch.read_out),
        )))
    return ArchSpec(spec.n_nodes, spec.flow_width, tuple(tasks))
