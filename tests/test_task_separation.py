"""Tasks stay separate in the supernet, and the compact net computes what the supernet computes, in train
mode as in eval mode, for every normalisation and gate a config accepts (supernet/ops.py states the rule)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from norm_fixtures import set_running_stats

from supernet.compact import CompactNet, plan_instances
from supernet.config import GATES as CONFIG_GATES
from supernet.dag import Supernet
from supernet.epoch import set_trainable
from supernet.ops import GroupedBatchNorm2d, edge_key
from supernet.spec import ArchSpec, TaskArch
from supernet.tasks import TaskSpec, losses

TASKS = {
    "segmentation": TaskSpec("segmentation", "segmentation", num_classes=4),
    "depth": TaskSpec("depth", "depth"),
    "normal": TaskSpec("normal", "normal"),
}
NORMS = ["bn", "gn"]
GATES = list(CONFIG_GATES)  # every gate kind a config accepts


def _net(norm: str, gate: str = "sigmoid", arch_init: float = 0.0, n: int = 4, m: int = 2) -> Supernet:
    torch.manual_seed(0)
    return Supernet(TASKS, n, m, 8, norm=norm, gate=gate, arch_init=arch_init)


def _batch(b: int = 4, size: int = 8, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 3, size, size, generator=g)
    y = {
        "segmentation": torch.randint(0, 4, (b, size, size), generator=g),
        "depth": torch.rand(b, 1, size, size, generator=g) + 0.5,
        "normal": F.normalize(torch.randn(b, 3, size, size, generator=g), dim=1),
    }
    return x, y


def _assert_same_outputs_and_grads(net, gates, compact) -> dict[str, torch.Tensor]:
    """The compact net's outputs equal the supernet's with ``gates`` (1e-5), and so do the gradients of
    every shared weight the compact net keeps, heads included. Returns the supernet's outputs."""
    x, y = _batch()
    ref, got = net(x, gates), compact(x)
    for t in TASKS:
        torch.testing.assert_close(got[t], ref[t], atol=1e-5, rtol=0)
    sum(losses(TASKS, ref, y).values()).backward()
    sum(losses(TASKS, got, y).values()).backward()
    own = dict(compact.named_parameters())
    for name, p in net.named_parameters():
        if name in own:
            assert own[name].grad is not None, name
            torch.testing.assert_close(own[name].grad, p.grad, atol=1e-5, rtol=1e-4, msg=name)
    return ref


def _randomise(net: Supernet, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 2)


# ----------------------------------------------------------------------------- task independence


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("norm", NORMS)
def test_a_task_depends_only_on_its_own_gates(norm, gate, mode):
    """Changing every other task's A, B and Gamma leaves task 0's output and the gradient of its loss
    exactly unchanged, and that loss sends no gradient to other tasks' architecture parameters."""
    x, y = _batch()
    results = []
    for other_seed in (1, 2):
        net = _net(norm, gate)
        _randomise(net, 0)
        g = torch.Generator().manual_seed(other_seed)
        with torch.no_grad():
            for p in net.arch_parameters():
                p[1:].copy_(torch.randn(p[1:].shape, generator=g) * 3)  # only tasks 1.. change
        net.train(mode == "train")
        torch.manual_seed(7)  # the same gumbel noise in both runs
        out = net(x)
        task = net.task_names[0]
        loss = losses({task: TASKS[task]}, {task: out[task]}, {task: y[task]})[task]
        loss.backward()
        for p in net.arch_parameters():
            assert torch.count_nonzero(p.grad[1:]) == 0, "task 0's loss reached another task's gates"
        results.append(
            (
                out[task].detach(),
                [p.grad[0].clone() for p in net.arch_parameters()],
                [p.grad.clone() for p in net.weight_parameters() if p.grad is not None],
            )
        )
    (out_a, arch_a, w_a), (out_b, arch_b, w_b) = results
    assert torch.equal(out_a, out_b)
    for a, b in zip(arch_a, arch_b):
        assert torch.equal(a, b)
    assert len(w_a) == len(w_b) and all(torch.equal(a, b) for a, b in zip(w_a, w_b))


# ----------------------------------------------------------------------------- compact == supernet, train mode


def _shared_op_spec() -> ArchSpec:
    """o_23 is applied to two distinct inputs (depth's node 2 has a read-in, segmentation's has not);
    o_12 is applied to one input that two tasks share; normal skips through 1->3."""
    return ArchSpec(
        4,
        2,
        (
            ("segmentation", TaskArch(((1, 2), (2, 3)), (1,), (3,))),
            ("depth", TaskArch(((1, 2), (2, 3)), (1, 2), (3,))),
            ("normal", TaskArch(((1, 3), (3, 4)), (1,), (3, 4))),
        ),
    )


def test_the_spec_applies_one_op_to_several_inputs():
    instances, _ = plan_instances(_shared_op_spec())
    applications_of_23 = {src.instance for inst in instances for src in inst.sources if (src.node, inst.node) == (2, 3)}
    assert len(applications_of_23) == 2


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("norm", NORMS)
def test_compact_equals_supernet_outputs_gradients_and_running_stats(norm, mode):
    spec = _shared_op_spec()
    net = _net(norm)
    set_running_stats(net, 3, spec)
    compact = CompactNet(spec, TASKS, 8, norm=norm)
    compact.load_from(net)
    net.train(mode == "train")
    compact.train(mode == "train")
    _assert_same_outputs_and_grads(net, net.discrete_gates(spec), compact)
    kept = compact.state_dict()
    for name, buf in net.state_dict().items():
        if name in kept and ("running_" in name or "num_batches" in name):
            torch.testing.assert_close(kept[name], buf, atol=1e-6, rtol=1e-5, msg=name)


def test_running_stats_are_per_task_rows():
    """GroupedBatchNorm2d by hand: per-group normalisation of a batch-major stack (row b*G + g); each member
    row's running statistics move towards its group's, a row in no group keeps its own; eval normalises a
    group with the mean of its rows."""
    torch.manual_seed(0)
    bn = GroupedBatchNorm2d(2, rows=3)
    x = torch.randn(3 * 2, 2, 4, 4)  # B=3 samples of G=2 groups, batch-major
    members = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # group 0 feeds tasks 0 and 2, group 1 task 1
    out = bn(x, 2, members).view(3, 2, 2, 4, 4)
    groups = x.view(3, 2, 2, 4, 4)
    for k in range(2):
        torch.testing.assert_close(
            out[:, k], F.batch_norm(groups[:, k], None, None, training=True, eps=bn.eps), atol=1e-5, rtol=0
        )
    mean = groups.mean(dim=(0, 3, 4))  # (G, C)
    var = groups.var(dim=(0, 3, 4), unbiased=True)
    torch.testing.assert_close(bn.running_mean, 0.1 * mean[[0, 1, 0]])
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * var[[0, 1, 0]])
    assert bn.num_batches_tracked.tolist() == [1, 1, 1]
    before = bn.running_mean.clone()
    bn(x, 2, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))  # task 2 does not use the op in this step
    torch.testing.assert_close(bn.running_mean[2], before[2], atol=0, rtol=0)
    assert bn.num_batches_tracked.tolist() == [2, 2, 1]
    bn.eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([[0.0, 1.0], [5.0, 5.0], [2.0, 3.0]]))
        bn.running_var.copy_(torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 1.0]]))
    got = bn(x, 2, members).view(3, 2, 2, 4, 4)
    m0, v0 = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 1.0])  # the mean of rows 0 and 2
    ref0 = (groups[:, 0] - m0.view(1, 2, 1, 1)) / (v0.view(1, 2, 1, 1) + bn.eps).sqrt() * bn.weight.view(
        1, 2, 1, 1
    ) + bn.bias.view(1, 2, 1, 1)
    torch.testing.assert_close(got[:, 0], ref0, atol=1e-5, rtol=0)
    ref1 = (groups[:, 1] - 5.0) / (2.0 + bn.eps) ** 0.5 * bn.weight.view(1, 2, 1, 1) + bn.bias.view(1, 2, 1, 1)
    torch.testing.assert_close(got[:, 1], ref1, atol=1e-5, rtol=0)
    cumulative = GroupedBatchNorm2d(2, rows=3, momentum=None)  # as nn.BatchNorm2d: the average of a row's updates
    cumulative(x, 2, members)
    cumulative(x, 2, torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    torch.testing.assert_close(cumulative.running_mean, torch.stack([mean.mean(0), mean.mean(0), mean[0]]))
    bn1, ref = GroupedBatchNorm2d(2), torch.nn.BatchNorm2d(2)  # one row, one group: plain BatchNorm2d
    torch.testing.assert_close(bn1(x[:3]), ref(x[:3]))
    torch.testing.assert_close(bn1.running_mean[0], ref.running_mean)
    torch.testing.assert_close(bn1.running_var[0], ref.running_var)


@pytest.mark.parametrize("gate", GATES)
def test_a_task_eval_output_reads_only_its_own_running_statistics(gate):
    """Train-mode forwards update the norms' running statistics; whatever the other tasks' gates were
    during those forwards, task 0's eval output afterwards is the same (one row of statistics per task:
    a row shared by tasks whose inputs differ would mix their statistics)."""
    x, _ = _batch()
    outs = []
    for other_seed in (1, 2):
        net = _net("bn", gate)
        _randomise(net, 0)
        g = torch.Generator().manual_seed(other_seed)
        with torch.no_grad():
            for p in net.arch_parameters():
                p[1:].copy_(torch.randn(p[1:].shape, generator=g) * 3)  # only tasks 1.. change
        net.train()
        with torch.no_grad():
            for step in range(3):
                net(_batch(seed=10 + step)[0], net.eval_gates())
        net.eval()
        with torch.no_grad():
            outs.append(net(x)[net.task_names[0]])
    torch.testing.assert_close(outs[0], outs[1], atol=0, rtol=0)


# ----------------------------------------------------------------------------- warm-up trains the shared weights


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("norm", NORMS)
def test_every_gate_kind_trains_the_shared_weights_in_warmup(norm, gate):
    """With the default arch_init (0), warm-up's gates let every path through: every shared weight
    (stem, every edge op, every read-in) gets a gradient."""
    net = _net(norm, gate, arch_init=0.0)
    net.train()
    set_trainable(net, weights=True, heads=True, arch=False)
    x, y = _batch()
    sum(losses(TASKS, net(x), y).values()).backward()
    for name, p in net.named_parameters():
        if name in ("alpha", "beta", "gamma"):
            continue
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name


@pytest.mark.parametrize("rescale", [False, True])
@pytest.mark.parametrize("norm", NORMS)
def test_a_path_dropped_warmup_step_is_the_forward_at_its_drawn_gates(norm, rescale):
    """warmup.path_dropout: a train-mode warm-up forward computes what the forward at the gates it drew
    computes (outputs, gradients, running statistics); an edge op every task dropped gets no gradient and
    keeps its running statistics. In eval mode nothing is dropped."""
    x, y = _batch()
    nets = [_net(norm, arch_init=0.0) for _ in range(2)]
    for net in nets:
        set_running_stats(net, 3, _shared_op_spec())
        net.train()
        set_trainable(net, weights=True, heads=True, arch=False)
        net.hold_gates, net.path_dropout, net.path_dropout_rescale = True, 0.8, rescale
    before = {k: v.clone() for k, v in nets[0].named_buffers()}
    torch.manual_seed(5)
    drawn = nets[1].gates()
    torch.manual_seed(5)
    got = nets[0](x)  # draws the same gates inside
    ref = nets[1](x, drawn)
    for t in TASKS:
        torch.testing.assert_close(got[t], ref[t], atol=0, rtol=0)
    for out in (got, ref):
        sum(losses(TASKS, out, y).values()).backward()
    for (name, a), (_, b) in zip(nets[0].named_parameters(), nets[1].named_parameters()):
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, atol=0, rtol=0, msg=name)
    for (name, a), (_, b) in zip(nets[0].named_buffers(), nets[1].named_buffers()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)
    dropped = [e for e in range(drawn.alpha.shape[1]) if bool((drawn.alpha[:, e] == 0).all())]
    assert dropped, "the seed should drop some edge for every task"
    for e in dropped:
        key = edge_key(*nets[0].edges_ij[e])
        for p in nets[0].edges[key].parameters():
            assert p.grad is None or torch.count_nonzero(p.grad) == 0
        for name, b in nets[0].edges[key].named_buffers():
            torch.testing.assert_close(b, before[f"edges.{key}.{name}"], atol=0, rtol=0, msg=name)
    nets[0].eval()
    init = nets[0].initial_gates()
    torch.testing.assert_close(nets[0](x)["depth"], nets[0](x, init)["depth"], atol=0, rtol=0)


# ----------------------------------------------------------------------------- folded gates (reduction.fold_gates)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("norm", NORMS)
def test_compact_with_folded_gates_is_the_gated_supernet_minus_pruned_paths(norm, gate, mode):
    """With the supernet's gates folded into the spec, the compact net computes the supernet with its own
    (eval-mode) gates on the kept elements and 0 on the pruned ones, the kept read-outs keeping their
    read-out weights (not renormalised): outputs and shared-weight gradients."""
    from supernet.reduction import fold_gates, reduce

    net = _net(norm, gate, n=5, m=3)
    _randomise(net, 4)
    spec = reduce(net.reduction_probs(), net.task_names, 5, 3, 0.1)  # what the reduction stage reads
    folded = fold_gates(spec, net.eval_gates(), net.task_names)
    set_running_stats(net, 5, folded)
    assert ArchSpec.from_dict(folded.to_dict()) == folded  # the gates travel with the JSON spec
    compact = CompactNet(folded, TASKS, 8, norm=norm)
    compact.load_from(net)
    g, mask = net.eval_gates(), net.discrete_gates(spec)
    # pruned elements at 0, kept read-outs with the weights they had (gamma_j / sum of all of the task's gammas)
    masked = type(g)(
        g.alpha.detach() * mask.alpha,
        g.beta.detach() * mask.beta,
        g.gamma.detach() * mask.gamma,
        read_out_total=g.gamma.detach().sum(dim=1),
    )
    net.train(mode == "train")
    compact.train(mode == "train")
    ref = _assert_same_outputs_and_grads(net, masked, compact)
    x, _ = _batch()
    # and the unfolded spec is the plain 0/1 network, which differs from the gated supernet
    plain = CompactNet(spec, TASKS, 8, norm=norm)
    plain.load_from(net)
    plain.train(mode == "train")
    assert any(not torch.allclose(plain(x)[t], ref[t], atol=1e-3) for t in TASKS)
