"""Invariants of the central network, squeeze loss, reduction and compact network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from norm_fixtures import set_running_stats

from supernet.compact import CompactNet, plan_instances
from supernet.config import FLOW_RULES
from supernet.costs import count_flops, n_params, task_params
from supernet.dag import Gates, Supernet, edge_key
from supernet.reduction import edge_flows, reduce, reduce_task
from supernet.spec import ArchSpec, TaskArch, edge_list
from supernet.squeeze import squeeze_loss, union_params
from supernet.tasks import TaskSpec

TASKS = {
    "segmentation": TaskSpec("segmentation", "segmentation", num_classes=4),
    "depth": TaskSpec("depth", "depth"),
    "normal": TaskSpec("normal", "normal"),
}


def make_net(n=5, m=3, c=8, **kw) -> Supernet:
    torch.manual_seed(0)
    return Supernet(TASKS, n, m, c, **kw)


def random_gates(net: Supernet, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 3)


@pytest.mark.parametrize("n,m", [(1, 1), (2, 1), (4, 1), (4, 2), (4, 3), (6, 2), (8, 3), (8, 7)])
def test_edge_count_is_linear_in_n(n, m):
    expected = n * m - m * (m + 1) // 2 if m < n else n * (n - 1) // 2
    assert len(edge_list(n, m)) == expected
    if m < n:
        net = Supernet(TASKS, n, m, 4)
        assert len(net.edges) == expected
        assert net.alpha.shape == (3, expected)
        assert all(1 <= j - i <= m for i, j in net.edges_ij)


def test_unrestricted_dag_is_m_equals_n_minus_1():
    n = 6
    assert set(edge_list(n, n - 1)) == {(i, j) for j in range(1, n + 1) for i in range(1, j)}


def test_arch_and_weight_parameters_partition_the_model():
    net = make_net()
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    arch, weights, heads = ids(net.arch_parameters()), ids(net.weight_parameters()), ids(net.head_parameters())
    assert not (arch & weights) and not (arch & heads) and not (weights & heads)
    assert arch | weights | heads == ids(net.parameters())


def test_state_dict_round_trips_architecture_parameters():
    net = make_net()
    random_gates(net, 1)
    other = make_net()
    assert not torch.equal(other.alpha, net.alpha)
    other.load_state_dict(net.state_dict())
    for a, b in zip(net.arch_parameters(), other.arch_parameters()):
        assert torch.equal(a, b)
    assert {"alpha", "beta", "gamma"} <= set(net.state_dict())


def test_one_forward_serves_all_tasks_and_stem_runs_once():
    net = make_net()
    calls = []
    net.stem.register_forward_hook(lambda *a: calls.append(1))
    out = net(torch.randn(2, 3, 16, 16))
    assert len(calls) == 1
    assert out["segmentation"].shape == (2, 4, 16, 16)
    assert out["depth"].shape == (2, 1, 16, 16)
    assert out["normal"].shape == (2, 3, 16, 16)


# ----------------------------------------------------------------------------- gradients


def fixed_spec() -> ArchSpec:
    return ArchSpec(
        5,
        3,
        (
            ("segmentation", TaskArch(((1, 2), (2, 4), (4, 5)), (1,), (5,))),
            ("depth", TaskArch(((1, 2), (2, 3)), (1, 2), (3,))),
            ("normal", TaskArch(((1, 4),), (1,), (1, 4))),
        ),
    )


def test_pruned_ops_get_no_gradient_kept_ops_do():
    net = make_net()
    spec = fixed_spec()
    out = net(torch.randn(2, 3, 16, 16), net.discrete_gates(spec))
    sum(o.float().pow(2).mean() for o in out.values()).backward()
    kept = set(spec.union_edges())
    for i, j in net.edges_ij:
        grads = [p.grad for p in net.edges[edge_key(i, j)].parameters()]
        has_grad = any(g is not None and g.abs().sum() > 0 for g in grads)
        assert has_grad == ((i, j) in kept), (i, j)
    kept_in = set(spec.union_read_in())
    for j in range(1, 6):
        has_grad = any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.read_in[str(j)].parameters())
        assert has_grad == (j in kept_in), j


def test_compact_net_holds_and_trains_only_kept_ops():
    spec = fixed_spec()
    c = CompactNet(spec, TASKS, 8)
    assert set(c.edges) == {edge_key(i, j) for i, j in spec.union_edges()}
    out = c(torch.randn(2, 3, 16, 16))
    sum(o.float().pow(2).mean() for o in out.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in c.edges.parameters() if p.dim() > 1)


# ----------------------------------------------------------------------------- squeeze loss


def test_union_squeeze_counts_a_shared_edge_once():
    cost = torch.tensor([10.0, 30.0, 60.0])
    shared = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # both tasks keep edge 0
    separate = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # each task its own edge
    assert union_params(shared, cost).item() == pytest.approx(10 / 100)
    assert union_params(separate, cost).item() == pytest.approx(40 / 100)
    # hand value with soft gates: 1 - (1-.5)(1-.5) = .75 on edge 0, .2 on edge 2
    soft = torch.tensor([[0.5, 0.0, 0.2], [0.5, 0.0, 0.0]])
    assert union_params(soft, cost).item() == pytest.approx((10 * 0.75 + 60 * 0.2) / 100)


def test_task_params_squeeze_charges_each_task_its_ops_at_their_cost():
    from supernet.squeeze import task_params

    cost = torch.tensor([10.0, 30.0, 60.0])
    shared = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # both tasks keep op 0: each pays it
    assert task_params(shared, cost).item() == pytest.approx(10 / 100)
    # one task on the cheap op, the other on the dear one: the mean of 10/100 and 60/100
    assert task_params(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), cost).item() == pytest.approx(0.35)
    soft = torch.tensor([[0.5, 0.0, 0.2], [0.0, 1.0, 0.0]])
    assert task_params(soft, cost).item() == pytest.approx(((5 + 12) / 100 + 30 / 100) / 2)
    # at equal costs it is l1
    g = torch.rand(3, 5, generator=torch.Generator().manual_seed(0))
    assert squeeze_loss("task_params", g[:, :3], g[:, 3:], torch.ones(3), torch.ones(2)).item() == pytest.approx(
        squeeze_loss("l1", g[:, :3], g[:, 3:], torch.ones(3), torch.ones(2)).item()
    )


def test_share_squeeze_charges_each_task_its_share_of_an_op():
    from supernet.squeeze import share_params

    cost = torch.tensor([10.0, 30.0, 60.0])
    g = torch.tensor([[1.0, 0.0, 0.5], [1.0, 1.0, 0.2]], requires_grad=True)
    loss = share_params(g, cost)
    # its value is the expected union's: 10 (both keep op 0) + 30 + 60 * (1 - 0.5 * 0.8)
    assert loss.item() == pytest.approx((10 + 30 + 36) / 100)
    assert loss.item() == pytest.approx(union_params(g, cost).item())
    loss.backward()
    # the gradient: each task's share, held constant. Op 0 kept by both: half its cost to each (the union's
    # gradient is 0 there); op 1 its own: task 1 pays all of it, task 0 would pay half to join it; op 2:
    # E[1 / (1 + n)] = 1 - g_other / 2
    hand = torch.tensor([[5.0, 15.0, 60 * (1 - 0.2 / 2)], [5.0, 30.0, 60 * (1 - 0.5 / 2)]]) / 100
    assert torch.allclose(g.grad, hand)


@given(st.integers(0, 10_000))
@settings(max_examples=20, deadline=None)
def test_share_of_an_op_matches_enumeration_over_the_other_tasks(seed):
    """E[1 / (1 + n_tk)] against the sum over every 0/1 assignment of the other tasks' gates."""
    from itertools import product

    from supernet.squeeze import _share

    gen = torch.Generator().manual_seed(seed)
    T, K = 1 + seed % 4, 3
    g = torch.rand(T, K, generator=gen, dtype=torch.float64)
    brute = torch.zeros(T, K, dtype=torch.float64)
    for t in range(T):
        others = [o for o in range(T) if o != t]
        for bits in product((0, 1), repeat=len(others)):
            p = torch.ones(K, dtype=torch.float64)
            for o, b in zip(others, bits):
                p = p * (g[o] if b else 1 - g[o])
            brute[t] += p / (1 + sum(bits))
    assert torch.allclose(_share(g), brute)
    # the shares of an op's keepers add up to the probability that someone keeps it: the union's value, any T
    from supernet.squeeze import share_params

    cost = torch.rand(K, generator=gen, dtype=torch.float64) + 0.1
    assert share_params(g, cost).item() == pytest.approx(union_params(g, cost).item())


def test_every_squeeze_the_config_accepts_is_a_loss():
    from supernet.config import SQUEEZE
    from supernet.squeeze import SQUEEZE_LOSSES

    assert set(SQUEEZE) == set(SQUEEZE_LOSSES)


@given(st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_squeeze_losses_fall_as_gates_fall(seed):
    g = torch.Generator().manual_seed(seed)
    alpha, beta = torch.rand(3, 7, generator=g), torch.rand(3, 4, generator=g)
    ce, cr = torch.rand(7, generator=g) + 0.1, torch.rand(4, generator=g) + 0.1
    for kind in ("union_params", "l1", "task_params", "share_params"):
        hi = squeeze_loss(kind, alpha, beta, ce, cr)
        lo = squeeze_loss(kind, alpha * 0.5, beta * 0.9, ce, cr)
        assert 0.0 <= lo.item() < hi.item() <= 1.0
    # bimodal is smallest at 0/1 gates
    assert squeeze_loss("bimodal", (alpha > 0.5).float(), (beta > 0.5).float(), ce, cr).item() == 0.0


def test_bimodal_squeeze_by_hand():
    # mean g (1 - g) over every gate, costs ignored: edges 0.5, 0.1 -> 0.25, 0.09; read-in 1 -> 0; read-out 0.5 -> 0.25
    alpha, beta, gamma = torch.tensor([[0.5, 0.1]]), torch.tensor([[1.0]]), torch.tensor([[0.5]])
    cost = torch.tensor([3.0, 5.0])
    got = squeeze_loss("bimodal", alpha, beta, cost, torch.tensor([1.0]), gamma, torch.tensor([1.0]))
    assert got.item() == pytest.approx((0.25 + 0.09 + 0.0 + 0.25) / 4)


# ----------------------------------------------------------------------------- reduction


def test_edge_flows_hand_computed():
    # N=2, M=1: S->1 (b1=.5), S->2 (b2=1), 1->2 (a=.5), 1->K (g1=0), 2->K (g2=1)
    fe, fin, fout, total = edge_flows(np.array([0.5]), np.array([0.5, 1.0]), np.array([0.0, 1.0]), [(1, 2)])
    # paths: S-1-2-K = .25 ; S-2-K = 1  => total 1.25
    assert total == pytest.approx(1.25)
    assert fe[0] == pytest.approx(0.25 / 1.25)
    assert fin == pytest.approx([0.25 / 1.25, 1.0 / 1.25])
    assert fout == pytest.approx([0.0, 1.0])


def test_node_share_flows_hand_computed():
    # N=2, M=1: S->1 (b1=.5), S->2 (b2=1), 1->2 (a=.5), 1->K (g1=0), 2->K (g2=1)
    # node 2's inputs: read-in 1, edge .5 -> shares 2/3 and 1/3; node 1 is fed by its read-in alone;
    # read-out weights 0 and 1. Pout(2) = 1, Pout(1) = 0 + 1/3 * 1.
    fe, fin, fout, total = edge_flows(
        np.array([0.5]), np.array([0.5, 1.0]), np.array([0.0, 1.0]), [(1, 2)], "node_share"
    )
    assert total == pytest.approx(1.0)
    assert fe[0] == pytest.approx(1 / 3)
    assert fin == pytest.approx([1 / 3, 2 / 3])
    assert fout == pytest.approx([0.0, 1.0])
    # scaling every gate upstream of an op changes nothing (the op normalises what reaches it);
    # path_product's share of the edge falls with the read-in gate of node 1
    small = edge_flows(np.array([0.5]), np.array([0.05, 1.0]), np.array([0.0, 1.0]), [(1, 2)], "node_share")[0]
    assert small[0] == pytest.approx(1 / 3)
    assert edge_flows(np.array([0.5]), np.array([0.05, 1.0]), np.array([0.0, 1.0]), [(1, 2)])[0][0] < 0.03
    with pytest.raises(ValueError, match="unknown flow rule"):
        edge_flows(np.array([0.5]), np.array([0.5, 1.0]), np.array([0.0, 1.0]), [(1, 2)], "nope")


def test_node_share_keeps_an_edge_whose_upstream_split_into_small_shares():
    # N=3, M=2, edges (1,2), (1,3), (2,3); read-out weights 0.4 (node 1) and 0.6 (node 3). Node 3 is fed
    # only by 2->3 (share 0.6 of the output); node 2 by read-in 2 and edge 1->2 (shares 0.225, 0.375).
    # The maximum-product path is S->1->K (0.4 > 0.625 * 0.6), so only the connect step can keep 2->3.
    edges = edge_list(3, 2)
    a = np.array([0.5, 0.0, 0.9])  # (1,2), (1,3), (2,3)
    b = np.array([0.8, 0.3, 0.0])
    g = np.array([0.4, 0.0, 0.6])
    fe, fin, fout, _ = edge_flows(a, b, g, edges, "node_share")
    assert fe == pytest.approx([0.375, 0.0, 0.6]) and fin == pytest.approx([0.775, 0.225, 0.0])
    assert fout == pytest.approx([0.4, 0.0, 0.6])
    arch = reduce_task(a, b, g, 3, 2, 0.55, "node_share")
    assert arch.edges == ((1, 2), (2, 3)) and arch.read_in == (1,) and arch.read_out == (1, 3)
    # path_product at the same tau drops 2->3 (its upstream does not clear tau, so it dangles)
    assert (2, 3) not in reduce_task(a, b, g, 3, 2, 0.55, "path_product").edges


def _spec_edges(spec: ArchSpec) -> dict[str, set]:
    return {t: set(a.edges) | {("in", j) for j in a.read_in} | {("out", j) for j in a.read_out} for t, a in spec.tasks}


@pytest.mark.parametrize("rule", FLOW_RULES)
@given(n=st.integers(1, 7), data=st.data(), seed=st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_reduction_keeps_a_valid_path_and_no_dangling_node(rule, n, data, seed):
    m = data.draw(st.integers(1, max(1, n - 1)))
    tau1, tau2 = sorted(data.draw(st.lists(st.floats(0.0, 0.99), min_size=2, max_size=2)))
    rng = np.random.default_rng(seed)
    e = len(edge_list(n, m))
    a, b, g = (rng.uniform(0, 1, size=k) ** 3 for k in (e, n, n))  # skewed towards small gates
    lo, hi = reduce_task(a, b, g, n, m, tau1, rule), reduce_task(a, b, g, n, m, tau2, rule)
    for arch in (lo, hi):
        ArchSpec(n, m, (("t", arch),))  # validates: a read-in, a read-out, every node on a path
    assert set(hi.edges) <= set(lo.edges)
    assert set(hi.read_in) <= set(lo.read_in) and set(hi.read_out) <= set(lo.read_out)


@pytest.mark.parametrize("rule", FLOW_RULES)
def test_reduction_of_a_supernet_and_threshold_extremes(rule):
    net = make_net(6, 3)
    random_gates(net, 3)
    everything = reduce(net.gate_probs(), net.task_names, 6, 3, 0.0, rule)
    # tau = 0 keeps every edge whose endpoints are on a path: here all gates > 0, so all edges
    assert all(set(a.edges) == set(net.edges_ij) for _, a in everything.tasks)
    probs = net.gate_probs()
    # a huge tau: 0.99 of the flow for the flow-share rules; above every gate for own_gate (its shares are the gates)
    top = max(float(p.max().detach()) for p in (probs.alpha, probs.beta, probs.gamma))
    minimal = reduce(probs, net.task_names, 6, 3, 0.99 if rule != "own_gate" else (top + 1) / 2, rule)
    for _, a in minimal.tasks:  # only the max-product path survives a huge tau
        assert len(a.read_in) == 1 and len(a.read_out) == 1 and len(a.edges) == len(a.nodes) - 1


def test_arch_spec_json_round_trip(tmp_path):
    spec = fixed_spec()
    spec.to_json(tmp_path / "a.json")
    assert ArchSpec.from_json(tmp_path / "a.json") == spec


def test_arch_spec_rejects_dangling_nodes_and_illegal_edges():
    with pytest.raises(ValueError, match="not on an input-to-output path"):
        ArchSpec(4, 2, (("t", TaskArch(((1, 2),), (1,), (3,))),))
    with pytest.raises(ValueError, match="violate"):
        ArchSpec(4, 1, (("t", TaskArch(((1, 3),), (1,), (3,))),))


# ----------------------------------------------------------------------------- compact == supernet


@pytest.mark.parametrize("norm", ["bn", "gn"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compact_equals_supernet_with_discrete_gates(seed, norm):
    net = make_net(5, 3, norm=norm)
    random_gates(net, seed)
    spec = reduce(net.gate_probs(), net.task_names, 5, 3, 0.05)
    compact = CompactNet(spec, TASKS, 8, norm=norm)
    compact.load_from(net)
    set_running_stats(net, seed, spec)  # non-trivial norm statistics before comparing in eval mode
    compact.load_from(net)
    net.eval()
    compact.eval()
    x = torch.randn(3, 3, 16, 16)
    ref = net(x, net.discrete_gates(spec))
    got = compact(x)
    for t in TASKS:
        torch.testing.assert_close(got[t], ref[t], atol=1e-5, rtol=0)
    # a single task's forward gives the same output as the multi-task one
    torch.testing.assert_close(compact(x, tasks=["depth"])["depth"], got["depth"], atol=1e-6, rtol=0)


def test_compact_params_and_flops_are_those_of_kept_ops_only():
    spec = fixed_spec()
    c = CompactNet(spec, TASKS, 8)
    full = make_net(5, 3)
    edge_p = n_params(full.edges[edge_key(1, 2)])
    read_p = n_params(full.read_in["1"])
    heads_p = sum(n_params(h) for h in full.heads.values())
    assert (
        n_params(c)
        == n_params(full.stem) + len(spec.union_edges()) * edge_p + len(spec.union_read_in()) * read_p + heads_p
    )
    assert task_params(c, "normal") == n_params(full.stem) + 1 * edge_p + 1 * read_p + n_params(full.heads["normal"])

    x = torch.zeros(1, 3, 16, 16)
    x0 = full.stem(x)
    f_stem = count_flops(full.stem, x)
    f_edge = count_flops(full.edges[edge_key(1, 2)], x0)
    f_read = count_flops(full.read_in["1"], x0)
    f_head = {t: count_flops(full.heads[t], x0, out_size=(16, 16)) for t in TASKS}
    instances, _ = plan_instances(spec)
    applications = {(src.node, inst.node, src.instance) for inst in instances for src in inst.sources}
    read_ins = {inst.node for inst in instances if inst.read_in_gate is not None}
    expected = f_stem + len(applications) * f_edge + len(read_ins) * f_read + sum(f_head.values())
    assert count_flops(c, x) == expected
    # normal alone: stem, read-in 1, edge 1->4, its head
    assert count_flops(c, x, tasks=["normal"]) == f_stem + f_read + f_edge + f_head["normal"]


def test_hard_sharing_chain_computes_each_op_once_for_all_tasks():
    spec = ArchSpec.chain(4, 2, TASKS)
    instances, per_task = plan_instances(spec)
    assert len(instances) == 4  # one instance per node, shared by the three tasks
    assert len({tuple(m.items()) for m in per_task.values()}) == 1
    c = CompactNet(spec, TASKS, 8)
    calls = []
    for mod in c.edges.values():
        mod.register_forward_hook(lambda *a: calls.append(1))
    c(torch.randn(2, 3, 16, 16))
    assert len(calls) == 3  # N-1 edges, once each


def test_gate_relaxations():
    net = make_net(3, 2, gate="straight_through")
    random_gates(net, 0)
    g = net.gates()
    assert set(torch.unique(g.alpha.detach()).tolist()) <= {0.0, 1.0}
    g.alpha.sum().backward()
    assert net.alpha.grad is not None and net.alpha.grad.abs().sum() > 0
    net = make_net(3, 2, gate="gumbel")
    with torch.no_grad():
        net.alpha.normal_(0, 2)  # logits apart from 0, where every sigmoid is 0.5
    net.train()
    assert not torch.equal(net.gates().alpha, net.gates().alpha)  # noisy while training
    net.eval()
    expected = torch.sigmoid(net.alpha.detach() / net.temperature)  # eval: the noise-free relaxation
    torch.testing.assert_close(net.gates().alpha, expected)
    assert len(torch.unique(expected)) > 1


@pytest.mark.parametrize("gate", ["gumbel", "hard_concrete"])
def test_fixed_gates_train_at_the_eval_gates_without_noise(gate):
    net = make_net(3, 2, gate=gate)
    random_gates(net, 0)
    net.train()
    assert not torch.equal(net.gates().alpha, net.gates().alpha)  # the search's samples
    net.fixed_gates = True  # full_supernet's fine-tune
    a, b = net.gates(), net.gates()
    e = net.eval_gates()
    for k in ("alpha", "beta", "gamma"):
        torch.testing.assert_close(getattr(a, k), getattr(b, k))
        torch.testing.assert_close(getattr(a, k), getattr(e, k))


def test_supernet_with_all_gates_on_is_the_full_spec():
    net = make_net(4, 2)
    net.eval()
    full = ArchSpec.full(4, 2, TASKS)
    ones = net.discrete_gates(full)
    assert torch.all(ones.alpha == 1) and torch.all(ones.beta == 1) and torch.all(ones.gamma == 1)
    x = torch.randn(2, 3, 16, 16)
    c = CompactNet(full, TASKS, 8)
    c.load_from(net)
    c.eval()
    torch.testing.assert_close(
        c(x)["depth"], net(x, Gates(ones.alpha, ones.beta, ones.gamma))["depth"], atol=1e-5, rtol=0
    )


def test_supernet_per_task_flops_are_the_tasks_own_path():
    from supernet.costs import cost_summary

    net = make_net(4, 2).eval()
    random_gates(net, 1)
    x = torch.randn(2, 3, 16, 16)
    full = net(x)
    for t in TASKS:  # a forward restricted to one task computes that task's output, alone
        torch.testing.assert_close(net(x, tasks=[t])[t], full[t], atol=1e-6, rtol=0)
        assert list(net(x, tasks=[t])) == [t]
    one = torch.zeros(1, 3, 16, 16)
    x0 = net.stem(one)
    f_stem, f_edge, f_read = (
        count_flops(net.stem, one),
        count_flops(net.edges[edge_key(1, 2)], x0),
        count_flops(net.read_in["1"], x0),
    )
    f_head = {t: count_flops(net.heads[t], x0, out_size=(16, 16)) for t in TASKS}
    E, N, T = len(net.edges_ij), net.n_nodes, len(TASKS)
    costs = cost_summary(net, (3, 16, 16), torch.device("cpu"), 1)["flops"]
    assert costs["multitask"] == f_stem + N * f_read + T * E * f_edge + sum(f_head.values())
    for t in TASKS:  # every edge op on this task's row only; the stem and read-ins run once on x0 anyway
        assert costs["per_task"][t] == f_stem + N * f_read + E * f_edge + f_head[t]
    # the shared work (stem, read-ins on x0) is counted once per task: the exact identity
    assert sum(costs["per_task"].values()) == costs["multitask"] + (T - 1) * (f_stem + N * f_read)


def test_recalibrate_norms_recomputes_running_statistics_over_the_loader():
    from supernet.epoch import recalibrate_norms

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4, momentum=0.1))
    model[1].running_mean.fill_(5.0)  # stale statistics
    batches = [(torch.randn(6, 3, 5, 5) + k, {}) for k in range(3)]  # equal-sized batches
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    assert recalibrate_norms(model.eval(), batches, torch.device("cpu")) == 1
    with torch.no_grad():
        feats = torch.cat([model[0](x) for x, _ in batches])
        per_batch_var = torch.stack([model[0](x).var(dim=(0, 2, 3), unbiased=True) for x, _ in batches])
    torch.testing.assert_close(model[1].running_mean, feats.mean(dim=(0, 2, 3)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model[1].running_var, per_batch_var.mean(0), atol=1e-5, rtol=1e-5)  # cumulative average
    assert model[1].momentum == 0.1 and not model.training  # momentum and mode restored
    for k, v in before.items():
        torch.testing.assert_close(model.state_dict()[k], v)  # weights untouched
    gn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.GroupNorm(2, 4))
    assert recalibrate_norms(gn, batches, torch.device("cpu")) == 0


def test_recalibrated_supernet_eval_matches_its_train_mode_statistics_with_one_task():
    """One task, fixed gates: after recalibration over one batch, eval mode normalises with that batch's
    statistics, so eval outputs equal train-mode outputs on the same batch (GroupedBatchNorm2d too)."""
    from supernet.epoch import recalibrate_norms

    torch.manual_seed(1)
    net = Supernet({"depth": TASKS["depth"]}, 3, 2, 8)
    random_gates(net, 2)
    x = torch.randn(8, 3, 16, 16)
    recalibrate_norms(net, [(x, {})], torch.device("cpu"))
    net.eval()
    with torch.no_grad():
        ev = net(x)["depth"]
    # train mode normalises with the batch's own (biased) variance; running_var is unbiased: compare loosely
    net.train()
    with torch.no_grad():
        tr = net(x, net.eval_gates())["depth"]
    assert (ev - tr).abs().max() < 0.05 * tr.abs().max()
