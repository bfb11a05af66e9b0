"""The stage functions' one signature and result, the table's ``holds_gates`` column (and the warm-up's path
dropout), the closing event of a stage, and the before-step hook composition."""

from __future__ import annotations

import inspect

from supernet.config import build_config
from supernet.dag import build_supernet
from supernet.prune import compose_hooks
from supernet.stages import STAGE_TABLE, Run, Stage, StageResult, Start, _path_dropout, plan
from supernet.trial import Boundary, Epoch, Replayed, StageEnd, closing_event

SMALL = {"data.n_train": 32, "data.n_val": 16, "trial.progress": False, "trial.deterministic": True}


def test_every_stage_function_takes_the_same_arguments():
    params = {s.name: list(inspect.signature(s.function).parameters) for s in STAGE_TABLE}
    assert set(map(tuple, params.values())) == {("run", "stage", "model", "start")}


def test_stage_functions_return_a_stage_result_and_only_warmup_holds_the_gates():
    cfg = build_config("tiny", {**SMALL, "warmup.path_dropout": 0.25, "warmup.path_dropout_rescale": False})
    run = Run.build(cfg)
    model = build_supernet(cfg.model, run.tasks).to(run.device)
    assert [s.name for s in STAGE_TABLE if s.holds_gates] == ["warmup"]
    rows = {s.name: s for s in plan(cfg)}
    for name in ("warmup", "search"):
        stage: Stage = rows[name]
        result = stage.function(run, stage, model, Start())
        assert isinstance(result, StageResult) and result.model is model and result.spec is None
        assert [r.epoch for r in result.epochs] == list(range(stage.epochs(cfg)))
        assert model.hold_gates == (name == "warmup")
        assert model.path_dropout == (0.25 if name == "warmup" else 0.0)  # only the warm-up drops paths
        assert model.path_dropout_rescale is False  # from the config (the net's own default is True)
    reduction = rows["reduction"]
    result = reduction.function(run, reduction, model, Start())
    assert isinstance(result, StageResult) and result.spec is not None and result.model is not model
    assert list(result.epochs) == []


def test_a_stage_closes_with_its_replay_its_last_epoch_or_a_boundary():
    ckpt, recs = {"step": 2}, [{"step": 1}, {"step": 2}]
    replayed = closing_event(StageEnd(recs, True, ckpt))
    assert isinstance(replayed, Replayed) and replayed.records == recs and replayed.checkpoint is ckpt
    trained = closing_event(StageEnd(recs, False, ckpt))
    assert isinstance(trained, Epoch) and trained.record == recs[-1] and trained.checkpoint is ckpt
    assert StageEnd(recs, True, ckpt).unsent is None and StageEnd(recs, False, ckpt).unsent == recs[-1]
    for end in (StageEnd([], True, ckpt), StageEnd([], False, ckpt)):  # a stage without epochs
        assert isinstance(closing_event(end), Boundary) and end.unsent is None


def test_compose_hooks_runs_the_hooks_in_order_and_skips_none():
    calls = []
    hook = compose_hooks(None, lambda b: calls.append(("a", b)), None, lambda b: calls.append(("b", b)))
    hook(3)
    assert calls == [("a", 3), ("b", 3)]
    assert compose_hooks(None, None) is None and compose_hooks() is None


def test_path_dropout_runs_in_the_last_warmup_epochs_only():
    warmup, search = STAGE_TABLE[0], STAGE_TABLE[1]
    late = build_config("tiny", {"warmup.path_dropout": 0.3, "warmup.path_dropout_epochs": 5})
    assert [_path_dropout(late, warmup, e, 20) for e in range(20)] == [0.0] * 15 + [0.3] * 5
    every = build_config("tiny", {"warmup.path_dropout": 0.3})
    assert {_path_dropout(every, warmup, e, 20) for e in range(20)} == {0.3}
    assert {_path_dropout(every, search, e, 6) for e in range(6)} == {0.0}
    assert _path_dropout(late, warmup, 0, 3) == 0.3  # more dropout epochs than epochs: all of them
