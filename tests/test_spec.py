"""spec.reachable: the one reachability of the package (ArchSpec.validate, the reduction's pruning and the
topology null all use it)."""

from __future__ import annotations

import numpy as np
import pytest

from supernet.spec import ArchSpec, TaskArch, edge_list, reachable


def _search(start, edges, forward: bool) -> set[int]:
    """Reachability by depth-first search over an adjacency list: the reference, valid for any edge order."""
    adj: dict[int, list[int]] = {}
    for i, j in edges:
        a, b = (i, j) if forward else (j, i)
        adj.setdefault(a, []).append(b)
    seen, stack = set(start), list(start)
    while stack:
        for m in adj.get(stack.pop(), []):
            if m not in seen:
                seen.add(m)
                stack.append(m)
    return seen


def test_reachable_by_hand():
    edges = [(1, 2), (2, 4), (3, 4), (4, 5)]
    assert reachable({1}, edges, forward=True) == {1, 2, 4, 5}
    assert reachable({3}, edges, forward=True) == {3, 4, 5}
    assert reachable({4}, edges, forward=False) == {1, 2, 3, 4}
    assert reachable({2}, edges, forward=False) == {1, 2}
    assert reachable((), edges, forward=True) == set()
    assert reachable([5], [], forward=False) == {5}


@pytest.mark.parametrize("forward", [True, False])
def test_reachable_matches_a_graph_search_in_any_edge_order(forward):
    rng = np.random.default_rng(0)
    for _ in range(300):
        n, m = int(rng.integers(2, 9)), int(rng.integers(1, 4))
        allowed = edge_list(n, m)
        edges = [allowed[k] for k in rng.permutation(len(allowed))[: int(rng.integers(0, len(allowed) + 1))]]
        start = {int(j) for j in rng.choice(np.arange(1, n + 1), int(rng.integers(1, n + 1)), replace=False)}
        assert reachable(start, edges, forward) == _search(start, edges, forward)


def test_validate_rejects_a_node_off_every_path():
    with pytest.raises(ValueError, match="not on an input-to-output path"):
        ArchSpec(4, 2, (("t", TaskArch(((1, 2), (3, 4)), (1,), (4,))),))  # 2 reaches no read-out, 3 no read-in
    ArchSpec(4, 2, (("t", TaskArch(((1, 2), (2, 4)), (1,), (4,))),))  # valid


def test_a_spec_with_fewer_gates_than_elements_is_refused_naming_the_list():
    d = ArchSpec.chain(3, 2, ["a"]).to_dict()
    d["tasks"]["a"]["gates"] = {"edges": [1.0], "read_in": [1.0], "read_out": [1.0]}  # 2 edges, 1 edge gate
    with pytest.raises(ValueError, match=r"task 'a': 2 edges but 1 gates\.edges"):
        ArchSpec.from_dict(d)
