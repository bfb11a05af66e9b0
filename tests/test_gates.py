"""Hard-concrete gates, the own_gate reduction rule and the warm-up's path dropout, by hand."""

from __future__ import annotations

import math

import numpy as np
import torch

from supernet.dag import HC_HIGH, HC_LOW, Supernet, open_probability, relax
from supernet.reduction import reduce_task
from supernet.tasks import TaskSpec


def test_hard_concrete_is_exactly_zero_or_one_with_the_stated_probability():
    torch.manual_seed(0)
    logits = torch.full((200_000,), 0.5)
    g = relax(logits, "hard_concrete", 2 / 3, training=True)
    assert float(g.min()) == 0.0 and float(g.max()) == 1.0 and bool(((g >= 0) & (g <= 1)).all())
    p_open = float(open_probability(logits[:1], "hard_concrete", 2 / 3))
    assert abs(float((g > 0).float().mean()) - p_open) < 0.005  # P(gate > 0), the squeeze's expected L0
    # P(gate = 1) = P(stretched sample >= 1) = 1 - sigmoid(T * logit((1 - low) / (high - low)) - logit)
    q = (1 - HC_LOW) / (HC_HIGH - HC_LOW)
    p_one = 1 - 1 / (1 + math.exp(-((2 / 3) * math.log(q / (1 - q)) - 0.5)))
    assert abs(float((g == 1).float().mean()) - p_one) < 0.005


def test_hard_concrete_in_eval_is_the_noise_free_clipped_value():
    logits = torch.tensor([-5.0, 0.0, 5.0])
    g = relax(logits, "hard_concrete", 1.0, training=False)
    torch.testing.assert_close(g, torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(relax(logits, "hard_concrete", 1.0, training=False), g)  # deterministic


def test_own_gate_keeps_a_deep_path_that_path_product_drops():
    """A 3-edge chain 1->2->3->4 with gates 0.8 against a direct read-in -> read-out at node 4 of 0.8 x 0.8:
    path_product scores the chain below the 2-gate path (0.8^5 < 0.8^2); own_gate keeps every element >= tau."""
    edges = [(1, 2), (2, 3), (3, 4)]
    a = np.array([0.8, 0.8, 0.8])
    b = np.array([0.8, 0.0, 0.0, 0.8])
    g = np.array([0.0, 0.0, 0.0, 0.8])
    own = reduce_task(a, b, g, 4, 1, 0.5, "own_gate")
    assert own.edges == tuple(edges) and own.read_in == (1, 4) and own.read_out == (4,)
    product = reduce_task(a, b, g, 4, 1, 0.5, "path_product")
    assert product.edges == ()  # the chain's flow share is below tau; only the best (2-gate) path stays


def test_an_element_whose_eval_gate_is_exactly_zero_is_pruned_at_any_tau():
    """hard_concrete's eval gate is 0 while P(gate > 0) < 1/2 (straight-through's while its probability is
    < 1/2): such an element computes nothing at eval, so the reduction reads capacity 0 for it and keeps none
    of them even at a tau below its probability; the live elements keep their probabilities."""
    from supernet.dag import Supernet
    from supernet.reduction import reduce
    from supernet.tasks import TaskSpec

    tasks = {"a": TaskSpec("a", "depth"), "b": TaskSpec("b", "depth")}
    for gate, temperature, dead_logit in [("hard_concrete", 2 / 3, -2.5), ("straight_through", 1.0, -1.0)]:
        net = Supernet(tasks, 4, 2, 4, gate=gate, temperature=temperature)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for x in (net.alpha, net.beta, net.gamma):
                live = torch.rand(x.shape, generator=g) < 0.5
                x.copy_(torch.where(live, torch.full_like(x, 3.0), torch.full_like(x, dead_logit)))
        probs, eval_gates, read = net.gate_probs(), net.eval_gates(), net.reduction_probs()
        for p, e, r in zip(
            (probs.alpha, probs.beta, probs.gamma),
            (eval_gates.alpha, eval_gates.beta, eval_gates.gamma),
            (read.alpha, read.beta, read.gamma),
        ):
            dead = e == 0
            assert bool(dead.any()) and bool((p[dead] > 0.05).all()), gate  # above tau, yet computing nothing
            assert bool((r[dead] == 0).all()) and torch.equal(r[~dead], p[~dead]), gate
        spec = reduce(read, net.task_names, 4, 2, 0.05, "own_gate")
        kept = net.discrete_gates(spec)  # 1 where the spec keeps an element
        pairs = list(zip((kept.alpha, kept.beta, kept.gamma), (eval_gates.alpha, eval_gates.beta, eval_gates.gamma)))
        assert bool((sum(k.sum(dim=1) for k, _ in pairs) > 0).all()), (gate, spec)  # every task keeps something
        assert not any(bool(((k == 1) & (e == 0)).any()) for k, e in pairs), (gate, spec)  # and nothing dead
        before = reduce(probs, net.task_names, 4, 2, 0.05, "own_gate")  # reading gate_probs kept them
        assert before != spec, gate


# ----------------------------------------------------------------------------- warm-up path dropout


def _warming(p: float, rescale: bool = False, n: int = 4, m: int = 2) -> Supernet:
    torch.manual_seed(0)
    tasks = {"a": TaskSpec("a", "depth"), "b": TaskSpec("b", "depth"), "c": TaskSpec("c", "depth")}
    net = Supernet(tasks, n, m, 4)
    net.hold_gates, net.path_dropout, net.path_dropout_rescale = True, p, rescale
    return net.train()


def test_path_dropout_zeroes_each_gate_with_its_probability_and_always_keeps_a_read_out():
    """p = 0.9 on N = 4 read-outs: an edge or read-in gate is 0 with probability 0.9, a read-out gate with
    0.9 - 0.9**4 / 4 = 0.7360 (a row whose read-outs all drew 0 gets one back, drawn uniformly); every other
    value is the initial gate 0.5, and no row is ever without a read-out."""
    net = _warming(0.9)
    torch.manual_seed(1)
    draws = [net.gates() for _ in range(3000)]
    alpha = torch.stack([g.alpha for g in draws])
    beta = torch.stack([g.beta for g in draws])
    gamma = torch.stack([g.gamma for g in draws])
    for v in (alpha, beta, gamma):
        assert set(v.unique().tolist()) == {0.0, 0.5}
    assert abs(float((alpha == 0).float().mean()) - 0.9) < 0.01
    assert abs(float((beta == 0).float().mean()) - 0.9) < 0.01
    assert abs(float((gamma == 0).float().mean()) - (0.9 - 0.9**4 / 4)) < 0.01
    assert bool((gamma.sum(dim=2) > 0).all())


def test_rescaled_path_dropout_keeps_the_expected_gate_of_an_edge_and_read_in_and_leaves_read_outs_alone():
    """path_dropout_rescale at p = 0.75: a kept edge or read-in gate is 0.5 / 0.25 = 2, so its mean over draws is
    the initial 0.5 (what search and eval read); a kept read-out stays 0.5 (forward renormalises read-outs)."""
    net = _warming(0.75, rescale=True)
    torch.manual_seed(2)
    draws = [net.gates() for _ in range(4000)]
    for name in ("alpha", "beta"):
        v = torch.stack([getattr(g, name) for g in draws])
        assert set(v.unique().tolist()) == {0.0, 2.0}
        assert abs(float(v.mean()) - 0.5) < 0.02
    assert set(torch.stack([g.gamma for g in draws]).unique().tolist()) == {0.0, 0.5}
    net.eval()
    assert bool((net.gates().alpha == 0.5).all())  # eval: the initial gates, unscaled


def test_path_dropout_is_off_in_eval_mode_outside_warm_up_and_at_zero():
    net = _warming(0.5)
    init = net.initial_gates()
    net.eval()
    g = net.gates()  # eval: the full initial gates, as warm-up's validation reads them
    assert all(torch.equal(a, b) for a, b in zip((g.alpha, g.beta, g.gamma), (init.alpha, init.beta, init.gamma)))
    net.train()
    net.hold_gates = False  # search: the relaxed gates of the logits, never dropped
    assert bool((net.gates().alpha == 0.5).all())
    net.hold_gates, net.path_dropout = True, 0.0  # off: no draw, so the global generator is left as it was
    state = torch.get_rng_state()
    net.gates()
    assert torch.equal(torch.get_rng_state(), state)


def test_a_kept_element_at_gate_zero_is_folded_open():
    """Task a's search closed every read-in (eval gate 0) and task b's every read-out; the reduction still keeps
    each a valid path, and fold_gates opens what it kept at 0 (read-in and edge gates 1, read-out weights 1/k
    over the k kept), so the compact net's output depends on its input. The other gates fold as they were."""
    from supernet.compact import CompactNet
    from supernet.reduction import fold_gates, reduce

    tasks = {"a": TaskSpec("a", "depth"), "b": TaskSpec("b", "depth")}
    net = Supernet(tasks, 4, 2, 4, gate="hard_concrete", temperature=2 / 3)
    with torch.no_grad():
        net.alpha.fill_(3.0)
        net.beta.fill_(3.0)
        net.gamma.fill_(3.0)
        net.beta[0].fill_(-5.0)  # a: no read-in open
        net.gamma[1].fill_(-5.0)  # b: no read-out open
    with torch.no_grad():
        gates = net.eval_gates()
    assert float(gates.beta[0].max()) == 0.0 and float(gates.gamma[1].max()) == 0.0
    spec = reduce(net.reduction_probs(), net.task_names, 4, 2, 0.5, "own_gate")
    folded = dict(fold_gates(spec, gates, net.task_names).tasks)
    a, b = folded["a"], folded["b"]
    assert a.read_in and all(a.read_in_gate(j) == 1.0 for j in a.read_in)
    assert a.edges and all(a.edge_gate(e) == 1.0 for e in a.edges)  # open edges fold as they were (1)
    assert all(a.read_out_gate(j) == 0.25 for j in a.read_out)  # 1 / 4 open read-outs: unchanged
    assert b.read_out and all(b.read_out_gate(j) == 1.0 / len(b.read_out) for j in b.read_out)
    compact = CompactNet(fold_gates(spec, gates, net.task_names), tasks, 4)
    compact.load_from(net)
    compact.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        out = compact(torch.randn(2, 3, 8, 8))
    for t in tasks:
        assert float(out[t].std()) > 0, t  # not a constant
