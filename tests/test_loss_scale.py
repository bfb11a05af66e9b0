"""``search.loss_scale``: the task losses the search trades against the squeeze, each in units of its trivial
predictor's training loss (``trivial``) or summed as they are (``none``)."""

from __future__ import annotations

import pytest
import torch

from supernet.config import ConfigError, build_config
from supernet.dag import build_supernet
from supernet.epoch import make_loader, train_epoch
from supernet.stages import Run, Start, plan, search_task_weights
from supernet.store import stage_key
from supernet.tasks import TaskSpec
from supernet.trivial import trivial_losses

SMALL = {"data.n_train": 16, "data.n_val": 8, "data.batch_size": 8, "trial.progress": False}


def test_loss_scale_is_checked():
    with pytest.raises(ConfigError, match="search.loss_scale"):
        build_config("tiny", {"search.loss_scale": "gradnorm"})


def _first_batch_loss(task_weights: dict[str, float] | None) -> float:
    """The loss train_epoch reports for one batch of the tiny data (train mode, batch statistics), from one seed;
    its forward runs before the step, so the step does not enter it."""
    cfg = build_config("tiny", {**SMALL, "model.gate": "hard_concrete"})
    run = Run.build(cfg)
    torch.manual_seed(0)
    net = build_supernet(cfg.model, run.tasks).to(run.device)
    opt = torch.optim.SGD(net.head_parameters(), lr=0.1)
    batch = [next(iter(make_loader(run.train, 8, shuffle=False, seed=0)))]
    torch.manual_seed(1)
    return train_epoch(net, batch, run.tasks, [opt], run.device, task_weights=task_weights)["train_loss"]


def test_task_weights_scale_each_task_loss():
    tasks = list(Run.build(build_config("tiny", SMALL)).tasks)
    assert len(tasks) == 3
    plain = _first_batch_loss(None)
    assert _first_batch_loss({t: 1.0 for t in tasks}) == pytest.approx(plain, rel=1e-6)
    assert _first_batch_loss({t: 2.5 for t in tasks}) == pytest.approx(2.5 * plain, rel=1e-6)
    alone = {t: _first_batch_loss({u: float(u == t) for u in tasks}) for t in tasks}
    assert sum(alone.values()) == pytest.approx(plain, rel=1e-6)  # the plain loss is the sum of the tasks'
    assert all(v > 0 for v in alone.values())
    mixed = _first_batch_loss({t: float(i + 1) for i, t in enumerate(tasks)})
    assert mixed == pytest.approx(sum((i + 1) * alone[t] for i, t in enumerate(tasks)), rel=1e-6)


def test_search_task_weights_are_the_inverse_trivial_losses():
    none = build_config("tiny", SMALL)
    run = Run.build(none)
    assert search_task_weights(none, run) is None
    cfg = build_config("tiny", {**SMALL, "search.loss_scale": "trivial"})
    ref = trivial_losses(run.train, run.tasks, cfg.data.batch_size)
    weights = search_task_weights(cfg, run)
    assert set(weights) == set(run.tasks) and all(v > 0 for v in ref.values())
    assert weights == pytest.approx({t: 1 / v for t, v in ref.items()})


def test_a_constant_training_target_is_a_clear_error():
    cfg = build_config("tiny", {**SMALL, "search.loss_scale": "trivial"})
    tasks = {"cls": TaskSpec("cls", "classification", num_classes=3)}
    train = [(torch.zeros(3, 2, 2), {"cls": torch.tensor(2)}) for _ in range(4)]  # every label the same
    run = Run(cfg, train, train, tasks, torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"search.loss_scale.*'cls'.*search.loss_scale=none"):
        search_task_weights(cfg, run)


def _search_loss(loss_scale: str) -> float:
    """The search stage's first-epoch training loss on one task of the tiny data, nothing trained (arch_lr and
    lr 0, no squeeze), so both scales see the same forwards."""
    cfg = build_config(
        "tiny",
        {
            **SMALL,
            "data.tasks": ["depth"],
            "model.gate": "hard_concrete",
            "search.arch_lr": 0.0,
            "search.lr": 0.0,
            "search.lambda_sq": 0.0,
            "search.loss_scale": loss_scale,
        },
    )
    run = Run.build(cfg)
    torch.manual_seed(0)
    model = build_supernet(cfg.model, run.tasks).to(run.device)
    search = next(s for s in plan(cfg) if s.name == "search")
    first = next(search.function(run, search, model, Start()).epochs)
    return first.train["train_loss"]


def test_the_search_stage_divides_by_the_trivial_loss():
    cfg = build_config("tiny", {**SMALL, "data.tasks": ["depth"]})
    ref = trivial_losses(Run.build(cfg).train, {"depth": TaskSpec("depth", "depth")}, cfg.data.batch_size)["depth"]
    assert _search_loss("trivial") == pytest.approx(_search_loss("none") / ref, rel=1e-5)


def test_the_scale_is_part_of_the_search_key_only():
    a = build_config("tiny", SMALL)
    b = build_config("tiny", {**SMALL, "search.loss_scale": "trivial"})
    assert stage_key(a, "warmup") == stage_key(b, "warmup")
    assert stage_key(a, "search") != stage_key(b, "search")
