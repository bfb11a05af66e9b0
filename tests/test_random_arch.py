"""The random-architecture control: valid draws of the searched per-task size, seeded, uniform, and a
random_arch trial that shares the method's warm-up and search and keeps the method's per-task cost."""

from __future__ import annotations

import json
from collections import Counter
from itertools import combinations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from supernet.config import ConfigError, build_config
from supernet.random_arch import random_like, random_task_arch
from supernet.reduction import reduce
from supernet.spec import ArchSpec, TaskArch, edge_list
from supernet.store import DirStageStore
from supernet.trial import run_trial

TASKS = ("a", "b", "c")


class _Probs:
    def __init__(self, alpha, beta, gamma):
        self.alpha, self.beta, self.gamma = alpha, beta, gamma


def _searched(n: int, m: int, seed: int, tau: float) -> ArchSpec:
    g = torch.Generator().manual_seed(seed)
    e = len(edge_list(n, m))
    probs = _Probs(*(torch.sigmoid(torch.randn(len(TASKS), k, generator=g) * 3) for k in (e, n, n)))
    return reduce(probs, TASKS, n, m, tau)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 7),
    data=st.data(),
    seed=st.integers(0, 10_000),
    draw=st.integers(0, 50),
    tau=st.sampled_from([0.0, 0.05, 0.2, 0.5]),
)
def test_random_specs_are_valid_and_keep_each_tasks_size(n, data, seed, draw, tau):
    m = data.draw(st.integers(1, n - 1))
    searched = _searched(n, m, seed, tau)
    drawn = random_like(searched, seed, draw)  # ArchSpec() validates: no dangling node, allowed edges
    for (t, a), (u, b) in zip(searched.tasks, drawn.tasks):
        assert t == u
        assert (len(b.edges), len(b.read_in), len(b.read_out)) == (len(a.edges), len(a.read_in), len(a.read_out))
    assert random_like(searched, seed, draw) == drawn  # seeded: the same draw every time


def test_draws_differ_from_each_other_and_from_the_searched_spec():
    searched = _searched(5, 2, 3, 0.05)
    assert sum(len(a.edges) for _, a in searched.tasks) >= 3  # sizes with many valid architectures
    drawn = [random_like(searched, 3, d) for d in range(20)]
    assert len(set(drawn)) >= 10  # 20 draws, not one architecture dealt again and again
    assert sum(d == searched for d in drawn) <= 2  # a draw is not the searched spec handed back


def test_draws_are_uniform_over_valid_architectures_of_that_size():
    """N=4, M=2 with 2 edges, 2 read-ins and 1 read-out: enumerate every valid architecture of that size
    and check that each comes up about equally often, and nothing else does."""
    n, m, k, r, o = 4, 2, 2, 2, 1
    nodes = range(1, n + 1)
    valid = []
    for es in combinations(edge_list(n, m), k):
        for ins in combinations(nodes, r):
            for outs in combinations(nodes, o):
                try:
                    ArchSpec(n, m, (("t", TaskArch(es, ins, outs)),))
                    valid.append((es, ins, outs))
                except ValueError:
                    pass
    assert len(valid) >= 4
    rng = np.random.default_rng(0)
    draws = 400 * len(valid)
    counts = Counter()
    for _ in range(draws):
        a = random_task_arch(n, m, k, r, o, rng)
        counts[(a.edges, a.read_in, a.read_out)] += 1
    assert set(counts) == set(valid)
    assert all(abs(c - 400) < 0.25 * 400 for c in counts.values()), counts


def test_impossible_sizes_are_an_error():
    with pytest.raises(ValueError, match="no architecture"):
        random_task_arch(3, 1, 5, 1, 1, np.random.default_rng(0))


def test_random_draw_must_be_non_negative():
    with pytest.raises(ConfigError, match="trial.random_draw"):
        build_config("tiny", {"trial.random_draw": -1})


SMALL = {
    "data.n_train": 32,
    "data.n_val": 16,
    "trial.progress": False,
    "trial.deterministic": True,
    "reduction.tau": 0.05,
}


def test_random_arch_trial_shares_the_methods_stages_and_keeps_its_per_task_cost(tmp_path):
    store = DirStageStore(tmp_path / "store")
    method = run_trial(build_config("tiny", SMALL), tmp_path / "method", store=store)
    draws = [
        run_trial(
            build_config("tiny", {**SMALL, "trial.mode": "random_arch", "trial.random_draw": k}),
            tmp_path / f"random{k}",
            store=store,
        )
        for k in (0, 1)
    ]
    searched = ArchSpec.from_json(tmp_path / "method/arch_spec.json")
    for k, summary in enumerate(draws):
        assert summary["mode"] == "random_arch"
        assert summary["reused"] == {"warmup": True, "search": True}  # the method's own warm-up and search
        spec = ArchSpec.from_json(tmp_path / f"random{k}/arch_spec.json")
        for (_, a), (_, b) in zip(searched.tasks, spec.tasks):
            assert (len(b.edges), len(b.read_in), len(b.read_out)) == (len(a.edges), len(a.read_in), len(a.read_out))
        # every edge op costs the same and so does every read-in: per-task parameters equal the method's
        assert summary["params"]["per_task"] == method["params"]["per_task"]
    saved = [json.loads((tmp_path / f"random{k}/arch_spec.json").read_text()) for k in (0, 1)]
    assert all("tasks" in s for s in saved)
