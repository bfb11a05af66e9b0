"""The search's noise-free weight pass (``search.weight_pass: noise_free``) against the one-pass search it
generalises: the gates learn from the noisy forward alone, the heads from a forward at the eval gates; and the
search's held first epochs (``search.frozen_epochs``)."""

from __future__ import annotations

import pytest
import torch

from supernet.config import ConfigError, build_config
from supernet.dag import Supernet, build_supernet
from supernet.epoch import DivergenceError, make_loader, train_epoch
from supernet.stages import Run, Start, plan
from supernet.tasks import losses

SMALL = {"data.n_train": 16, "data.n_val": 8, "data.batch_size": 8, "trial.progress": False}


def test_weight_pass_is_checked():
    with pytest.raises(ConfigError, match="search.weight_pass"):
        build_config("tiny", {"search.weight_pass": "both"})


def _search_step(gate: str, weight_pass: bool, arch_lr: float, head_lr: float) -> Supernet:
    """One search step (Theta frozen, heads and gates trained) on one batch of the tiny data, from one seed."""
    cfg = build_config("tiny", {**SMALL, "model.gate": gate})
    run = Run.build(cfg)
    torch.manual_seed(0)
    net = build_supernet(cfg.model, run.tasks).to(run.device)
    with torch.no_grad():  # gates away from their initial value, different per element
        for p in net.arch_parameters():
            p.copy_(torch.randn_like(p))
    for p in net.weight_parameters():
        p.requires_grad_(False)
    opts = [torch.optim.SGD(net.head_parameters(), lr=head_lr), torch.optim.Adam(net.arch_parameters(), lr=arch_lr)]
    loader = make_loader(run.train, 8, shuffle=False, seed=0)
    batch = [next(iter(loader))]
    torch.manual_seed(1)
    weight_gates = (lambda: net.eval_gates().detach()) if weight_pass else None
    train_epoch(
        net,
        batch,
        run.tasks,
        opts,
        run.device,
        extra_loss=lambda: net.gate_probs().alpha.mean(),
        weight_gates=weight_gates,
    )
    return net


def _params(net: Supernet, group) -> list[torch.Tensor]:
    return [p.detach().clone() for p in group(net)]


@pytest.mark.parametrize("gate", ["sigmoid", "hard_concrete"])
def test_the_gates_learn_from_the_noisy_pass_alone(gate):
    """Heads frozen (lr 0): the noise-free pass steps nothing the gates depend on, so the gates after a step
    are those of the one-pass search (same noise), in train mode with batch statistics."""
    one = _search_step(gate, False, 0.1, 0.0)
    two = _search_step(gate, True, 0.1, 0.0)
    for x, y in zip(_params(one, Supernet.arch_parameters), _params(two, Supernet.arch_parameters)):
        torch.testing.assert_close(x, y)
    moved = _search_step(gate, False, 0.0, 0.0)
    assert any(
        not torch.equal(x, y)
        for x, y in zip(_params(one, Supernet.arch_parameters), _params(moved, Supernet.arch_parameters))
    )


def test_the_heads_learn_at_the_eval_gates():
    """Gates frozen (arch lr 0): with sigmoid gates the noise-free pass is the one-pass step (train and eval
    gates agree); with hard-concrete gates the heads of the two differ, and the noise-free pass's heads are
    one SGD step on the task losses at the eval gates."""
    for gate, same in (("sigmoid", True), ("hard_concrete", False)):
        one, two = _search_step(gate, False, 0.0, 0.1), _search_step(gate, True, 0.0, 0.1)
        equal = all(
            torch.allclose(x, y)
            for x, y in zip(_params(one, Supernet.head_parameters), _params(two, Supernet.head_parameters))
        )
        assert equal == same, gate
    # by hand: one SGD step on the task losses of a train-mode forward at the eval gates (batch statistics,
    # so the noisy pass's update of the running statistics does not enter)
    cfg = build_config("tiny", {**SMALL, "model.gate": "hard_concrete"})
    run = Run.build(cfg)
    torch.manual_seed(0)
    hand = build_supernet(cfg.model, run.tasks).to(run.device)
    with torch.no_grad():
        for p in hand.arch_parameters():
            p.copy_(torch.randn_like(p))
    x, y = next(iter(make_loader(run.train, 8, shuffle=False, seed=0)))
    hand.train()
    loss = sum(losses(run.tasks, hand(x, hand.eval_gates().detach()), y).values())
    grads = torch.autograd.grad(loss, hand.head_parameters(), allow_unused=True)
    expected = [p.detach() - 0.1 * g if g is not None else p.detach() for p, g in zip(hand.head_parameters(), grads)]
    two = _search_step("hard_concrete", True, 0.0, 0.1)
    for a, b in zip(_params(two, Supernet.head_parameters), expected):
        torch.testing.assert_close(a, b)


def test_a_non_finite_loss_of_the_weight_pass_stops_with_a_clear_error():
    cfg = build_config("tiny", SMALL)
    run = Run.build(cfg)
    net = build_supernet(cfg.model, run.tasks).to(run.device)
    opts = [torch.optim.SGD(net.head_parameters(), lr=0.1), torch.optim.Adam(net.arch_parameters(), lr=0.1)]
    batch = [next(iter(make_loader(run.train, 8, shuffle=False, seed=0)))]

    def nan_gates():
        g = net.eval_gates().detach()
        g.alpha.fill_(float("nan"))
        return g

    with pytest.raises(DivergenceError, match="weights' loss at the eval gates"):
        train_epoch(net, batch, run.tasks, opts, run.device, where="stage search", weight_gates=nan_gates)


@pytest.mark.parametrize("weight_pass", ["shared", "noise_free"])
def test_frozen_epochs_hold_theta_and_heads_then_let_them_learn(weight_pass):
    """search.frozen_epochs 1 of 2, Theta trained: after the first search epoch Theta and the heads are exactly
    as the warm-up left them while the gates moved; after the second both have moved. With the field at 0 they
    move in the first epoch already, and the gates end that epoch elsewhere."""

    def first_two(frozen: int) -> list[dict[str, torch.Tensor]]:
        cfg = build_config(
            "tiny",
            {
                **SMALL,
                "warmup.epochs": 1,
                "search.epochs": 2,
                "search.lr": 0.05,
                "search.train_weights": True,
                "search.weight_pass": weight_pass,
                "search.frozen_epochs": frozen,
            },
        )
        run = Run.build(cfg)
        torch.manual_seed(0)
        net = build_supernet(cfg.model, run.tasks).to(run.device)
        warmup, search = (s for s in plan(cfg) if s.name in ("warmup", "search"))
        list(warmup.function(run, warmup, net, Start()).epochs)
        snap = lambda: {k: v.detach().clone() for k, v in net.named_parameters()}  # noqa: E731
        return [snap()] + [snap() for _ in search.function(run, search, net, Start()).epochs]

    def moved(a, b, names) -> bool:
        return any(not torch.equal(a[k], b[k]) for k in names)

    held = first_two(1)
    weights = [k for k in held[0] if k.startswith(("stem.", "edges.", "read_in."))]
    heads = [k for k in held[0] if k.startswith("heads.")]
    assert weights and heads
    assert not moved(held[0], held[1], weights + heads)  # epoch 1 of 2: held
    assert moved(held[0], held[1], ["alpha", "beta", "gamma"])  # the gates learned
    assert moved(held[1], held[2], weights) and moved(held[1], held[2], heads)  # epoch 2: both learn
    free = first_two(0)
    assert moved(free[0], free[1], weights) and moved(free[0], free[1], heads)
    assert not torch.equal(held[1]["alpha"], free[1]["alpha"])  # what the gates learn from differs


def test_frozen_epochs_is_checked():
    with pytest.raises(ConfigError, match="search.frozen_epochs"):
        build_config("tiny", {"search.frozen_epochs": -1})
