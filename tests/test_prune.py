"""Reduction-aware search (search.prune_epochs, supernet/prune.py): the end-of-search supernet computes
what the compact net computes right after reduction, so the gap at reduction is 0."""

from __future__ import annotations

import json

import pytest
import torch

from supernet.config import ConfigError, build_config
from supernet.prune import prunes, reduction_mask
from supernet.store import DirStageStore, stage_key
from supernet.trial import TrialHooks, run_trial

SMALL = {
    "data.n_train": 32,
    "data.n_val": 16,
    "trial.progress": False,
    "trial.deterministic": True,
    "finetune.epochs": 0,
}


def tiny(**over):
    return build_config("tiny", {**SMALL, **over})


class Collect(TrialHooks):
    def __init__(self):
        self.states = []

    def save_checkpoint(self, state):
        self.states.append(state)


PLANTED_SEARCH = {  # configs/planted.yaml's search
    "model.gate": "hard_concrete",
    "reduction.flow": "own_gate",
    "reduction.tau": 0.5,
    "search.squeeze": "task_params",
    "search.squeeze_read_out": True,
    "search.loss_scale": "trivial",
}


@pytest.mark.parametrize(
    "over, prunes",
    [
        ({"reduction.tau": 0.3}, True),
        ({"reduction.tau": 0.1, "reduction.flow": "node_share", "search.temperature_end": 0.2}, True),
        ({"reduction.tau": 0.3, "search.train_weights": True, "search.epochs": 2, "search.prune_epochs": 1}, True),
        ({"model.gate": "straight_through", "model.norm": "gn", "reduction.tau": 0.3, "search.lambda_sq": 0.5}, True),
        ({"model.gate": "gumbel", "reduction.tau": 0.3, "search.squeeze": "share_params"}, True),
        # one search epoch of the tiny preset moves hard-concrete gates too little to prune: the gap is still 0
        (PLANTED_SEARCH, False),
        ({**PLANTED_SEARCH, "model.norm": "gn"}, False),
    ],
)
def test_end_of_search_quality_equals_the_compact_net_right_after_reduction(tmp_path, over, prunes):
    cfg = tiny(**{"search.prune_epochs": 1, **over})
    s = run_trial(cfg, tmp_path / "t")
    q = s["stage_quality"]
    assert set(q["search"]) == set(q["reduction"])
    for k, v in q["search"].items():  # every metric and validation loss: the gap at reduction is 0
        assert q["reduction"][k] == pytest.approx(v, rel=1e-4, abs=1e-5), k
    spec = json.loads((tmp_path / "t/arch_spec.json").read_text())
    if prunes:  # tiny: 3 edges per task
        assert sum(len(a["edges"]) for a in spec["tasks"].values()) < 3 * 3


@pytest.mark.parametrize("train", [False, True])
def test_the_supernet_forward_with_the_mask_equals_the_masked_gates_forward(train):
    from supernet.dag import build_supernet
    from supernet.data import build_data

    cfg = tiny(**{"search.prune_epochs": 1, "reduction.tau": 0.3})
    data = build_data(cfg.data)
    torch.manual_seed(0)
    net = build_supernet(cfg.model, data.tasks).train(train)  # train: BatchNorm on batch statistics
    with torch.no_grad():
        net.alpha.normal_(0, 2)
        net.beta.normal_(0, 2)
        net.gamma.normal_(0, 2)
    x = torch.stack([data.val[i][0] for i in range(4)])
    m = reduction_mask(net, cfg)
    assert 0 < float(m.alpha.sum()) < m.alpha.numel()
    g = net.eval_gates()
    ref = net(x, type(g)(g.alpha * m.alpha, g.beta * m.beta, g.gamma * m.gamma))
    net.prune_mask = m
    got = net(x)
    for t in ref:
        torch.testing.assert_close(got[t], ref[t])
    net.prune_mask = None
    assert not torch.allclose(net(x)["depth"], ref["depth"])


def test_pruning_only_in_the_last_epochs_and_the_search_key_depends_on_tau(tmp_path):
    cfg = tiny(**{"search.prune_epochs": 1, "search.epochs": 3})
    other_tau = tiny(**{"search.prune_epochs": 1, "search.epochs": 3, "reduction.tau": 0.3})
    off = tiny(**{"search.epochs": 3})
    assert prunes(cfg) and not prunes(off)
    assert not prunes(tiny(**{"search.prune_epochs": 1, "trial.mode": "full_supernet"}))
    assert stage_key(cfg, "search") != stage_key(other_tau, "search")  # never reused across tau
    assert stage_key(off, "search") == stage_key(tiny(**{"search.epochs": 3, "reduction.tau": 0.3}), "search")
    assert stage_key(cfg, "warmup") == stage_key(off, "warmup")
    # a search loaded from the stage store reduces to the same compact net, with the same quality
    store = DirStageStore(tmp_path / "store")
    a = run_trial(cfg, tmp_path / "a", store=store)
    b = run_trial(cfg, tmp_path / "b", store=store)
    assert b["reused"]["search"]
    assert b["stage_quality"]["reduction"] == pytest.approx(a["stage_quality"]["reduction"], rel=1e-6)
    with pytest.raises(ConfigError, match="search.prune_epochs"):
        tiny(**{"search.prune_epochs": -1})


def test_pruning_search_resumed_mid_stage_gives_the_same_result(tmp_path):
    cfg = tiny(**{"search.prune_epochs": 2, "search.epochs": 3, "reduction.tau": 0.3, "trial.checkpoint_every": 1})
    full = Collect()
    ref = run_trial(cfg, tmp_path / "a", full)
    # a checkpoint inside the pruning phase (after search epoch 2 of 3): the mask is not in it, and is recomputed
    mid = next(s for s in full.states if s["stage"] == "search" and s["epoch"] == 2 and "optim" in s)
    got = run_trial(cfg, tmp_path / "b", Collect(), resume=mid)
    for stage in ("search", "reduction"):
        assert got["stage_quality"][stage] == pytest.approx(ref["stage_quality"][stage], rel=1e-6)
    assert json.loads((tmp_path / "b/arch_spec.json").read_text()) == json.loads(
        (tmp_path / "a/arch_spec.json").read_text()
    )
