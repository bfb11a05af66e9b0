"""Topology measures on hand-made specs, and the null distribution of the longest path against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from supernet import topology
from supernet.random_arch import random_like
from supernet.spec import ArchSpec, TaskArch, edge_list
from supernet.topology import collapsed, longest_path, null_longest_path, task_topology


def _spec(**tasks: TaskArch) -> ArchSpec:
    return ArchSpec(5, 2, tuple(tasks.items()))


def test_longest_path_shared_ops_and_collapse_on_hand_made_specs():
    deep = TaskArch(((1, 2), (2, 3), (3, 5)), (1,), (5,))  # a 3-edge chain
    fork = TaskArch(((1, 2), (1, 3)), (1,), (2, 3))  # two 1-edge paths
    local = TaskArch((), (2,), (2,))  # read-in -> read-out only
    spec = _spec(deep=deep, fork=fork, local=local)
    top = task_topology(spec)
    assert [top[t]["longest_path"] for t in ("deep", "fork", "local")] == [3, 1, 0]
    assert top["deep"]["edges"] == 3 and top["fork"]["read_out"] == 2
    # shared ops: edge (1, 2) and read-in 1 between deep and fork; nothing with local (read-in 2 is its own)
    assert top["deep"]["shared"] == {"fork": 2, "local": 0} and top["fork"]["shared"]["deep"] == 2
    assert not collapsed(spec) and collapsed(_spec(a=local, b=TaskArch((), (1,), (1,))))
    # a longer path through a read-in in the middle: in at 1 and 3, the longest path starts at 1
    assert longest_path(TaskArch(((1, 3), (3, 4), (4, 5)), (1, 3), (5,))) == 3


def _brute_force(n: int, m: int) -> dict[tuple[int, int, int], np.ndarray]:
    """Every subset of edges, read-ins and read-outs; the valid ones' longest paths, by size."""
    edges, nodes = edge_list(n, m), range(1, n + 1)
    out: dict[tuple[int, int, int], np.ndarray] = {}

    def subsets(items):
        return itertools.chain.from_iterable(itertools.combinations(items, k) for k in range(len(items) + 1))

    for es in subsets(edges):
        for ri in subsets(nodes):
            for ro in subsets(nodes):
                try:
                    arch = TaskArch(tuple(es), tuple(ri), tuple(ro))
                    ArchSpec(n, m, (("t", arch),))
                except ValueError:
                    continue
                key = (len(es), len(ri), len(ro))
                out.setdefault(key, np.zeros(n))[longest_path(arch)] += 1
    return out


@pytest.mark.parametrize("n,m", [(3, 1), (4, 2), (4, 3)])
def test_null_distribution_equals_brute_force(n, m):
    for (e, ri, ro), counts in _brute_force(n, m).items():
        null = null_longest_path(n, m, e, ri, ro)
        assert null["exact"] and null["n_archs"] == counts.sum()
        np.testing.assert_allclose(null["probs"], counts / counts.sum())


def test_null_distribution_falls_back_to_monte_carlo_beyond_the_enumeration_limit(monkeypatch):
    exact = null_longest_path(5, 2, 4, 2, 2)
    null_longest_path.cache_clear()
    monkeypatch.setattr(topology, "MAX_ENUMERATED", 10)
    mc = null_longest_path(5, 2, 4, 2, 2)
    null_longest_path.cache_clear()
    assert not mc["exact"] and mc["n_archs"] == topology.MC_DRAWS
    np.testing.assert_allclose(mc["probs"], exact["probs"], atol=0.02)


def test_a_size_too_rare_to_draw_has_no_null_distribution(monkeypatch):
    from supernet import random_arch

    null_longest_path.cache_clear()
    monkeypatch.setattr(topology, "MAX_ENUMERATED", 0)
    monkeypatch.setattr(random_arch, "MAX_DRAWS", 0)  # every draw fails: the sampler gives up
    assert null_longest_path(5, 2, 4, 2, 2) == {"probs": [], "exact": False, "n_archs": 0}
    null_longest_path.cache_clear()


def test_a_size_without_valid_architectures_is_an_error():
    with pytest.raises(ValueError, match="no valid architecture"):
        null_longest_path(3, 1, 0, 1, 2)  # without edges a read-out that is not the read-in is unreachable


def test_random_draws_carry_the_searched_gate_values_in_a_random_order():
    searched = ArchSpec(
        5, 2, (("deep", TaskArch(((1, 2), (2, 3), (3, 5)), (1, 2), (3, 5), (0.9, 0.6, 0.3), (0.8, 0.1), (0.2, 0.5))),)
    )
    for draw in range(5):
        r = random_like(searched, seed=0, draw=draw)["deep"]
        s = searched["deep"]
        assert (len(r.edges), len(r.read_in), len(r.read_out)) == (3, 2, 2)
        assert sorted(r.edge_gates) == sorted(s.edge_gates) and sorted(r.read_in_gates) == sorted(s.read_in_gates)
        assert sum(r.read_out_gates) == pytest.approx(sum(s.read_out_gates))  # read-out weights sum as the method's
    plain = ArchSpec(5, 2, (("t", TaskArch(((1, 2),), (1,), (2,))),))
    assert not random_like(plain, 0, 0)["t"].has_gates  # a 0/1 searched net gives a 0/1 draw
