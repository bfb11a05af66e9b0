"""Flow-based reduction: soft gates -> a discrete per-task ArchSpec (paper: exists; algorithm ours).

Per task the gates are capacities on a DAG from a source S (the read-in, x0) through hidden nodes 1..N
to a sink K (the task's read-out). Two rules for how much of the task's output flows through an element
(``reduction.flow``):

- ``path_product`` (default): capacities multiply along paths, as if gates scaled the signal end to
  end: ``Pin(S) = 1``, ``Pin(j) = c(S->j) + sum_i Pin(i) c(i->j)``, ``Pout(K) = 1``,
  ``Pout(i) = c(i->K) + sum_j c(i->j) Pout(j)``, ``F(e) = Pin(u) c(e) Pout(v)`` over the total
  ``F = Pin(K)``.
- ``node_share``: every edge op and read-in op ends in a normalisation (BN/GN), which rescales whatever
  reaches it to unit scale, so what an edge contributes to its target node is its gate relative to the
  node's other inputs, whatever the gates upstream (path_product undervalues an edge whose upstream
  gates are small: a node fed by gates of 0.05 still delivers unit-scale features to the next op).
  Capacities are normalised per node, ``c^(e) = c(e) / (b_j + sum_{e' -> j} c(e'))`` (read-ins
  likewise), read-out weights are ``w_j = g_j / sum_k g_k`` (as in the supernet's read-out), and the
  backward mass ``Pout(i) = w_i + sum_j c^(i->j) Pout(j)`` is the share of the task's read-out that
  depends on node i. An edge's flow is ``c^(e) Pout(v)``, a read-in's ``b^_j Pout(j)``, a read-out's
  ``w_j`` (total 1).

- ``own_gate``: every element's own gate probability, ``F(e) = c(e)``, with nothing multiplied along
  paths, so a deep path is not scored below a shallow one because it has more gates. Meant for gates that
  converge to 0 or 1 (``model.gate: hard_concrete``, whose probability is P(gate > 0)), where a gate's own
  value says whether its op is used. It connects what it keeps as node_share does.

An element whose eval-mode gate is exactly 0 (hard_concrete below P(gate > 0) = 1/2, straight-through below
probability 1/2) enters with capacity 0 (``Supernet.reduction_probs``): it computes nothing at eval, so no tau
keeps it.

Then:

- keep e iff ``F(e)/F >= tau``, plus the maximum-product S->K path of the rule's capacities (every task
  keeps a valid path);
- node_share and own_gate connect what they keep: every kept edge, read-in and read-out also keeps the best
  (maximum-product) path from a read-in to it and from it to a read-out, so an element that carries a
  large share is not lost because its upstream split into several small shares (path_product instead
  drops it in the next step);
- then drop every kept edge and node not on some kept S->K path (no dangling compute).

Larger tau keeps a subset of the edges of a smaller tau (every step is monotone: the paths added for an
element do not depend on tau, and the best paths of the maximum-product path's nodes are its own prefixes
and suffixes, so a tau that keeps only that path keeps nothing more).

``fold_gates`` (ours, ``reduction.fold_gates``) then writes into the spec the gate each kept edge and
read-in had in the supernet (its eval-mode gate) and each kept read-out's weight in the supernet's
read-out, ``g(Gamma_j) / sum_k g(Gamma_k)`` over all N nodes, so the compact net computes the gated
supernet minus the pruned paths instead of a 0/1 network whose node sums and read-outs are scaled
differently. (The kept read-outs are not renormalised to sum to 1: that would rescale the features a
head reads whenever a read-out is pruned. After a reduction-aware search the gates given are the masked ones,
so the sum is over the kept read-outs, as the masked supernet computes it.) An element kept although its gate
is 0 (the valid path every task keeps, where the search closed all of a task's read-ins, say) is folded
open: gate 1, and read-out weights 1/k over the k kept read-outs when all of them are 0. A kept path at
gate 0 would leave the task a network that computes a constant and that fine-tune cannot revive.
"""

from __future__ import annotations

import numpy as np

from .config import FLOW_RULES
from .spec import ArchSpec, TaskArch, edge_list, reachable


def normalised_capacities(
    a: np.ndarray, b: np.ndarray, g: np.ndarray, edges: list[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """node_share's capacities: each node's input gates (read-in and in-edges) divided by their sum, and
    the read-out gates divided by theirs (a node or read-out with all gates 0 keeps 0)."""
    into = np.array(b, dtype=float)
    for e, (_, j) in enumerate(edges):
        into[j - 1] += a[e]
    safe = np.where(into > 0, into, 1.0)
    a_hat = np.array([a[e] / safe[j - 1] for e, (_, j) in enumerate(edges)], dtype=float).reshape(len(edges))
    g_sum = float(np.sum(g))
    return a_hat, np.asarray(b, dtype=float) / safe, np.asarray(g, dtype=float) / (g_sum if g_sum > 0 else 1.0)


def edge_flows(
    a: np.ndarray, b: np.ndarray, g: np.ndarray, edges: list[tuple[int, int]], rule: str = "path_product"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Flow share of every edge (E,), read-in (N,) and read-out (N,) of one task, and the total flow.

    a: edge capacities (E,), b: read-in capacities (N,), g: read-out capacities (N,), all in [0, 1].
    ``rule``: ``path_product`` or ``node_share`` (module docstring); node_share is path_product on the
    normalised capacities, where every node's forward mass is 1.
    """
    if rule not in FLOW_RULES:
        raise ValueError(f"unknown flow rule {rule!r}; rules are {FLOW_RULES}")
    if rule == "node_share":
        a, b, g = normalised_capacities(a, b, g, edges)
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


class _BestPaths:
    """Max-product sub-paths of one task's capacities: for every node j the best S->j path (``prev``) and
    the best j->K path (``next``), by dynamic programming over the DAG in log space."""

    def __init__(self, a: np.ndarray, b: np.ndarray, g: np.ndarray, edges: list[tuple[int, int]]):
        n, self.edges = len(b), edges
        with np.errstate(divide="ignore"):
            la, lb, lg = np.log(a), np.log(b), np.log(g)
        self.lg = lg
        self.into = np.full(n + 1, -np.inf)  # log of the best S->j product
        self.prev: dict[int, int | None] = {}  # the best path's last edge into j (None: j's read-in)
        for j in range(1, n + 1):
            self.into[j], self.prev[j] = lb[j - 1], None
            for e, (i, jj) in enumerate(edges):
                if jj == j and self.into[i] + la[e] > self.into[j]:
                    self.into[j], self.prev[j] = self.into[i] + la[e], e
        self.out = np.full(n + 2, -np.inf)  # log of the best j->K product
        self.next: dict[int, int | None] = {}  # the best path's first edge out of j (None: j's read-out)
        for i in range(n, 0, -1):
            self.out[i], self.next[i] = lg[i - 1], None
            for e, (ii, j) in enumerate(edges):
                if ii == i and la[e] + self.out[j] > self.out[i]:
                    self.out[i], self.next[i] = la[e] + self.out[j], e

    def best_path_into(self, j: int) -> tuple[list[int], int] | None:
        """Edges of the best S->j path (from its read-in to j) and its read-in node; None when no S->j path
        has capacity > 0."""
        if not np.isfinite(self.into[j]):
            return None
        path, start = self._follow(j, self.prev, 0)
        return path[::-1], start

    def best_path_out_of(self, i: int) -> tuple[list[int], int] | None:
        """Edges of the best i->K path (from i to its read-out) and its read-out node; None when no i->K path
        has capacity > 0."""
        if not np.isfinite(self.out[i]):
            return None
        return self._follow(i, self.next, 1)

    def _follow(self, node: int, links: dict[int, int | None], end: int) -> tuple[list[int], int]:
        """Walk ``links`` (each node's best edge) from ``node`` until it ends; ``end`` picks the edge's far node
        (0: its source, walking back; 1: its target, walking on). Returns the edges in walk order and the last node."""
        path = []
        while links[node] is not None:
            path.append(links[node])
            node = self.edges[links[node]][end]
        return path, node

    def best_path(self) -> tuple[list[int], int, int]:
        """The S->K path with the largest product: (edge indices, read-in node, read-out node)."""
        end = int(np.argmax([self.into[j] + self.lg[j - 1] for j in range(1, len(self.lg) + 1)])) + 1
        path, start = self.best_path_into(end) or ([], end)
        return path, start, end


def max_product_path(
    a: np.ndarray, b: np.ndarray, g: np.ndarray, edges: list[tuple[int, int]]
) -> tuple[list[int], int, int]:
    """The S->K path with the largest product of capacities: (edge indices, read-in node, read-out node)."""
    return _BestPaths(a, b, g, edges).best_path()


CONNECTING_RULES = ("node_share", "own_gate")  # rules whose kept elements keep their best paths (module doc)


def _scores(
    a: np.ndarray, b: np.ndarray, g: np.ndarray, edges: list[tuple[int, int]], rule: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What tau is compared with, per edge (E,), read-in (N,) and read-out (N,): the flow shares of
    ``edge_flows``, or for own_gate each element's own probability. ``a, b, g``: the capacities the rule
    computes on (node_share's already normalised)."""
    if rule == "own_gate":
        return np.asarray(a, dtype=float), np.asarray(b, dtype=float), np.asarray(g, dtype=float)
    fe, fin, fout, _ = edge_flows(a, b, g, edges)
    return fe, fin, fout


def _connect(
    best: _BestPaths, edges: list[tuple[int, int]], keep_e: set[int], keep_in: set[int], keep_out: set[int]
) -> None:
    """Add to the kept sets, in place, the best path from a read-in to every kept edge's source and from its
    target to a read-out; then the best path on from every kept read-in (those just added included) to a
    read-out, and back from every kept read-out to a read-in."""

    def add_in(j: int) -> None:
        if (p := best.best_path_into(j)) is not None:
            keep_e.update(p[0])
            keep_in.add(p[1])

    def add_out(i: int) -> None:
        if (p := best.best_path_out_of(i)) is not None:
            keep_e.update(p[0])
            keep_out.add(p[1])

    for e in list(keep_e):
        add_in(edges[e][0])
        add_out(edges[e][1])
    for j in list(keep_in):
        add_out(j)
    for j in list(keep_out):
        add_in(j)


def keep_on_paths(edges: list[tuple[int, int]], keep_e: set[int], keep_in: set[int], keep_out: set[int]) -> TaskArch:
    """The kept elements on some kept read-in -> read-out path: an edge survives iff its source is reachable
    from a kept read-in and its target reaches a kept read-out over the kept edges."""
    kept = [edges[e] for e in sorted(keep_e)]
    fwd = reachable(keep_in, kept, forward=True)
    bwd = reachable(keep_out, kept, forward=False)
    final = tuple((i, j) for i, j in kept if i in fwd and j in bwd)
    return TaskArch(
        edges=tuple(sorted(final)),
        read_in=tuple(sorted(j for j in keep_in if j in bwd)),
        read_out=tuple(sorted(j for j in keep_out if j in fwd)),
    )


def reduce_task(
    a: np.ndarray, b: np.ndarray, g: np.ndarray, n_nodes: int, flow_width: int, tau: float, rule: str = "path_product"
) -> TaskArch:
    """Discrete architecture of one task from its gate probabilities (see module docstring)."""
    if rule not in FLOW_RULES:
        raise ValueError(f"unknown flow rule {rule!r}; rules are {FLOW_RULES}")
    edges = edge_list(n_nodes, flow_width)
    if rule == "node_share":  # node_share is path_product on the normalised capacities
        a, b, g = normalised_capacities(a, b, g, edges)
    fe, fin, fout = _scores(a, b, g, edges, rule)  # own_gate: the best paths below still use the raw capacities
    keep_e = {e for e in range(len(edges)) if fe[e] >= tau}
    keep_in = {j for j in range(1, n_nodes + 1) if fin[j - 1] >= tau}
    keep_out = {j for j in range(1, n_nodes + 1) if fout[j - 1] >= tau}
    best = _BestPaths(a, b, g, edges)
    if rule in CONNECTING_RULES:
        _connect(best, edges, keep_e, keep_in, keep_out)
    path, start, end = best.best_path()  # every task keeps a valid path
    keep_e |= set(path)
    keep_in.add(start)
    keep_out.add(end)
    return keep_on_paths(edges, keep_e, keep_in, keep_out)


def reduce(
    probs, task_names: tuple[str, ...], n_nodes: int, flow_width: int, tau: float, rule: str = "path_product"
) -> ArchSpec:
    """ArchSpec from a supernet's gate probabilities (``Supernet.reduction_probs()``: ``gate_probs`` with 0
    where the eval gate is exactly 0)."""
    a = probs.alpha.detach().double().cpu().numpy()
    b = probs.beta.detach().double().cpu().numpy()
    g = probs.gamma.detach().double().cpu().numpy()
    tasks = tuple((t, reduce_task(a[k], b[k], g[k], n_nodes, flow_width, tau, rule)) for k, t in enumerate(task_names))
    return ArchSpec(n_nodes, flow_width, tasks)


def fold_gates(spec: ArchSpec, gates, task_names: tuple[str, ...]) -> ArchSpec:
    """The same architecture, each kept edge and read-in carrying its gate value from ``gates`` and each
    kept read-out its read-out weight ``gamma_j / sum_k gamma_k`` (``gates``: a supernet's ``Gates`` in
    its task and edge order; use the eval-mode gates, what the supernet computes with). A kept edge or
    read-in at gate 0 carries 1, kept read-outs whose weights are all 0 carry 1/k each (module doc)."""
    edges = edge_list(spec.n_nodes, spec.flow_width)
    index = {e: k for k, e in enumerate(edges)}
    a = gates.alpha.detach().double().cpu().numpy()
    b = gates.beta.detach().double().cpu().numpy()
    g = gates.gamma.detach().double().cpu().numpy()
    g = g / np.maximum(g.sum(axis=1, keepdims=True), 1e-12)  # read-out weights, as the supernet's forward
    row = {t: k for k, t in enumerate(task_names)}
    opened = lambda vs: tuple(v if v > 0 else 1.0 for v in map(float, vs))  # noqa: E731 - a kept gate of 0: open
    tasks = []
    for t, arch in spec.tasks:
        k = row[t]
        out = tuple(float(g[k, j - 1]) for j in arch.read_out)
        if out and sum(out) == 0:  # every kept read-out at 0: the head would read zeros
            out = (1.0 / len(out),) * len(out)
        tasks.append(
            (
                t,
                TaskArch(
                    arch.edges,
                    arch.read_in,
                    arch.read_out,
                    edge_gates=opened(a[k, index[e]] for e in arch.edges),
                    read_in_gates=opened(b[k, j - 1] for j in arch.read_in),
                    read_out_gates=out,
                ),
            )
        )
    return ArchSpec(spec.n_nodes, spec.flow_width, tuple(tasks))
