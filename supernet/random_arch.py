"""The random-architecture control (ours): does the search beat architectures of the same size drawn at
random from the same space?

Rule (``trial.mode: random_arch``): the trial runs the method's own warm-up and search (shared with the
method's trials through stage reuse), reduces with the same tau, and then replaces each task's searched
architecture by one drawn **uniformly at random among the valid architectures of the same (N, M) space
with exactly as many kept edges, read-ins and read-outs** as the searched one. So every draw has the
per-task size (parameters, op count) of what the method keeps at the same (seed, lambda_sq, tau); only
the topology is random. It then fine-tunes with the method's budget, from the same weights.

Gates (ours): with ``reduction.fold_gates`` the method's compact net carries its supernet gates, so a draw
carries the **same values**: each task's kept edge gates, read-in gates and read-out weights are dealt in a
random order onto the drawn edges, read-ins and read-outs. The draw then has the method's gate statistics
exactly and read-out weights with the same sum, and differs from the method in the topology alone. Without
folded gates both arms are plain 0/1 networks.

Uniform draws: each of edges, read-ins and read-outs is a uniform subset of its size; draws with a node
off every read-in-to-read-out path are rejected (``ArchSpec.validate``) and drawn again.
"""

from __future__ import annotations

import numpy as np

from .spec import ArchSpec, TaskArch, edge_list

MAX_DRAWS = 100_000


def random_task_arch(
    n_nodes: int, flow_width: int, n_edges: int, n_read_in: int, n_read_out: int, rng: np.random.Generator
) -> TaskArch:
    """A uniformly drawn valid architecture with exactly these counts."""
    edges = edge_list(n_nodes, flow_width)
    if not (0 <= n_edges <= len(edges) and 1 <= n_read_in <= n_nodes and 1 <= n_read_out <= n_nodes):
        raise ValueError(
            f"no architecture of N={n_nodes}, M={flow_width} has {n_edges} edges, "
            f"{n_read_in} read-ins and {n_read_out} read-outs"
        )
    for _ in range(MAX_DRAWS):
        arch = TaskArch(
            edges=tuple(sorted(edges[k] for k in rng.choice(len(edges), n_edges, replace=False))),
            read_in=tuple(sorted(int(j) for j in rng.choice(np.arange(1, n_nodes + 1), n_read_in, replace=False))),
            read_out=tuple(sorted(int(j) for j in rng.choice(np.arange(1, n_nodes + 1), n_read_out, replace=False))),
        )
        try:
            ArchSpec(n_nodes, flow_width, (("t", arch),))  # validates: every node on a read-in -> read-out path
        except ValueError:
            continue
        return arch
    raise RuntimeError(
        f"found no valid architecture with {n_edges} edges, {n_read_in} read-ins and {n_read_out} read-outs "
        f"in {MAX_DRAWS} uniform draws (N={n_nodes}, M={flow_width}); such sizes are too rare to draw uniformly"
    )


def random_like(spec: ArchSpec, seed: int, draw: int) -> ArchSpec:
    """Per task, a random valid architecture of the searched one's size, carrying the searched one's gate values
    (when it has any) in a random order; seeded by (seed, draw)."""
    rng = np.random.default_rng([seed, draw])
    tasks = []
    for t, a in spec.tasks:
        r = random_task_arch(spec.n_nodes, spec.flow_width, len(a.edges), len(a.read_in), len(a.read_out), rng)
        if a.has_gates:
            deal = lambda values: tuple(float(v) for v in rng.permutation(np.asarray(values, dtype=float)))  # noqa: E731
            r = TaskArch(
                r.edges,
                r.read_in,
                r.read_out,
                edge_gates=deal([a.edge_gate(e) for e in a.edges]),
                read_in_gates=deal([a.read_in_gate(j) for j in a.read_in]),
                read_out_gates=deal([a.read_out_gate(j) for j in a.read_out]),
            )
        tasks.append((t, r))
    return ArchSpec(spec.n_nodes, spec.flow_width, tuple(tasks))
