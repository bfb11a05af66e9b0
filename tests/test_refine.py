"""Greedy refinement of the reduction (reduction.refine_tol, supernet/refine.py): the candidate removals, the
selection rule and budget by hand, and the compact net after refinement against the masked supernet in train and
eval mode."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from supernet.config import ConfigError, apply_overrides, build_config
from supernet.dag import build_supernet
from supernet.refine import Probe, refine, removals
from supernet.spec import ArchSpec, TaskArch, edge_list
from supernet.stages import Run, Start, plan
from supernet.trivial import trivial_losses

SMALL = {"data.n_train": 32, "data.n_val": 16, "trial.progress": False, "trial.deterministic": True}


def test_removals_drop_what_lies_on_no_path_and_skip_removals_that_leave_none():
    edges = edge_list(3, 2)  # (1, 2), (1, 3), (2, 3)
    arch = TaskArch(edges=((1, 2), (2, 3)), read_in=(1,), read_out=(2, 3))
    got = [(a.edges, a.read_in, a.read_out) for a in removals(arch, edges)]
    # without (1, 2) or read-in 1 nothing reaches a read-out; without (2, 3) read-out 3 dangles, which is also
    # what removing read-out 3 leaves (once); without read-out 2 the chain to 3 stays
    assert got == [(((1, 2),), (1,), (2,)), (((1, 2), (2, 3)), (1,), (3,))]


class HandProbe:
    """A probe whose loss is 1 + the weight of every element of ``full`` that a spec lacks, and whose parameter
    count is 9 per edge and 1 per read-in: the greedy search can be followed by hand."""

    WEIGHT = {
        ("e", (1, 2)): 0.05,
        ("e", (2, 3)): 0.05,
        ("e", (1, 3)): 0.5,
        ("in", 1): 2.0,
        ("in", 2): 0.01,
        ("in", 3): 0.01,
        ("out", 1): 0.0,
        ("out", 2): 0.0,
        ("out", 3): 2.0,
    }

    def __init__(self, full: TaskArch):
        self.full, self.calls = full, 0

    def loss(self, spec: ArchSpec, task: str) -> float:
        self.calls += 1
        a = spec[task]
        gone = [("e", e) for e in self.full.edges if e not in a.edges]
        gone += [("in", j) for j in self.full.read_in if j not in a.read_in]
        gone += [("out", j) for j in self.full.read_out if j not in a.read_out]
        return 1.0 + sum(self.WEIGHT[k] for k in gone)

    def params(self, arch: TaskArch) -> float:
        return 9.0 * len(arch.edges) + len(arch.read_in)


FULL = TaskArch(edges=((1, 2), (1, 3), (2, 3)), read_in=(1, 2, 3), read_out=(1, 2, 3))


@pytest.mark.parametrize(
    "tol, edges, read_in, read_out, after",
    [
        # budget 1 + 0.2 * (2 - 1) = 1.2: the two cheap edges first (9 parameters each; (1, 2) before the tied (2, 3)),
        # then read-ins 2 (read-out 2 dangles with it) and 3, then read-out 1 (no parameters, no loss)
        (0.2, ((1, 3),), (1,), (3,), 1.12),
        # budget 1.04: no edge fits (each costs 0.05); read-ins 2 and 3, then read-outs 1 and 2
        (0.04, ((1, 2), (1, 3), (2, 3)), (1,), (3,), 1.02),
        # budget 1: only removals that cost nothing, the read-outs 1 and 2
        (0.0, ((1, 2), (1, 3), (2, 3)), (1, 2, 3), (3,), 1.0),
    ],
)
def test_refine_takes_the_largest_saving_within_a_cumulative_budget(tol, edges, read_in, read_out, after):
    spec = ArchSpec(3, 2, (("t", FULL),))
    got, log = refine(spec, HandProbe(FULL), {"t": 2.0}, tol)
    assert (got["t"].edges, got["t"].read_in, got["t"].read_out) == (edges, read_in, read_out)
    assert log["t"]["loss_before"] == 1.0 and log["t"]["loss_after"] == pytest.approx(after)
    assert log["t"]["budget"] == pytest.approx(1.0 + tol)
    assert log["t"]["removed"] == 9 - len(edges) - len(read_in) - len(read_out)


def test_a_task_no_better_than_its_trivial_predictor_keeps_what_costs_it_something():
    spec = ArchSpec(3, 2, (("t", FULL),))
    got, log = refine(spec, HandProbe(FULL), {"t": 0.5}, 1.0)  # trivial below the loss: budget = the loss itself
    assert log["t"]["budget"] == 1.0
    assert (got["t"].edges, got["t"].read_in, got["t"].read_out) == (FULL.edges, FULL.read_in, (3,))


def _searched(over: dict):
    cfg = build_config("tiny", {**SMALL, **over})
    run = Run.build(cfg)
    model = build_supernet(cfg.model, run.tasks).to(run.device)
    rows = {s.name: s for s in plan(cfg)}
    for name in ("warmup", "search"):
        list(rows[name].function(run, rows[name], model, Start()).epochs)
    return cfg, run, model, rows["reduction"]


@pytest.mark.parametrize(
    "over",
    [
        {},
        {"model.norm": "gn"},
        {"model.gate": "hard_concrete", "reduction.flow": "own_gate", "search.prune_epochs": 1},
        {"model.gate": "straight_through", "reduction.fold_gates": False},
    ],
)
def test_the_compact_net_after_refinement_is_the_supernet_masked_to_the_refined_spec(over):
    base = {"reduction.tau": 0.0, **over}  # keep every element whose eval gate is > 0: much to refine
    cfg, run, model, reduction = _searched({**base, "reduction.refine_tol": 0.5})
    state = {k: v.clone() for k, v in model.state_dict().items()}
    refined = reduction.function(run, reduction, model, Start())
    model_plain = build_supernet(cfg.model, run.tasks).to(run.device)
    model_plain.load_state_dict(state)
    run_plain = dataclasses.replace(run, cfg=apply_overrides(cfg, {"reduction.refine_tol": None}))
    plain = reduction.function(run_plain, reduction, model_plain, Start())
    for t, a in refined.spec.tasks:  # a sub-architecture of the reduction's, with a path
        p = plain.spec[t]
        assert set(a.edges) <= set(p.edges) and set(a.read_in) <= set(p.read_in) and set(a.read_out) <= set(p.read_out)
        assert a.read_in and a.read_out
    x = next(iter(run.loader("train")))[0].to(run.device)
    compact = refined.model
    assert refined.spec != plain.spec  # the refinement removed something
    if not cfg.reduction.fold_gates:  # plain 0/1 gates: a kept path at gate 0 is opened, so no equality is claimed
        return
    with torch.no_grad():  # the compact net computes the masked supernet, in eval and in train mode
        model.eval(), compact.eval()
        ref, out = model(x), compact(x)
        for t in ref:
            torch.testing.assert_close(out[t], ref[t], rtol=1e-4, atol=1e-5)
        model.train(), compact.train()
        ref, out = model(x, model.eval_gates()), compact(x)
        for t in ref:
            torch.testing.assert_close(out[t], ref[t], rtol=1e-4, atol=1e-5)


def test_refined_losses_stay_within_the_budget_measured_afresh():
    cfg, run, model, _ = _searched({"reduction.tau": 0.05})
    batches = list(run.loader("train"))
    trivial = trivial_losses(run.train, run.tasks, cfg.data.batch_size)
    spec = ArchSpec.full(cfg.model.n_nodes, cfg.model.flow_width, run.tasks)
    got, log = refine(spec, Probe(model, batches, run.tasks, run.device, "fp32"), trivial, 0.3)
    fresh = Probe(model, batches, run.tasks, run.device, "fp32")
    for t in run.tasks:
        start = fresh.loss(spec, t)
        assert log[t]["loss_before"] == pytest.approx(start)
        assert log[t]["budget"] == pytest.approx(start + 0.3 * max(trivial[t] - start, 0.0))
        assert fresh.loss(got, t) == pytest.approx(log[t]["loss_after"]) and log[t]["loss_after"] <= log[t]["budget"]
    # a probe works on a copy: the model's weights and running statistics are untouched
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Probe(model, batches, run.tasks, run.device, "fp32").loss(spec, next(iter(run.tasks)))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("value", [-0.1, 1.5, "x"])
def test_a_refine_tolerance_outside_the_unit_interval_is_refused(value):
    with pytest.raises(ConfigError, match="reduction.refine_tol"):
        build_config("tiny", {"reduction.refine_tol": value})


def test_refine_samples_must_be_positive():
    with pytest.raises(ConfigError, match="reduction.refine_samples"):
        build_config("tiny", {"reduction.refine_samples": 0})
