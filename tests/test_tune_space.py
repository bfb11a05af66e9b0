"""The sweep file: validation names the bad key; grid points, seeds and baselines are explicit rows."""
from __future__ import annotations

import os

import pytest

from supernet.config import ConfigError
from tune.space import parse_sweep


def doc(**sweep):
    return {"preset": "tiny", "config": {"data.n_train": 32}, "sweep": {"name": "t", **sweep}}


def test_grid_points_cross_axes_and_seeds_then_baselines():
    s = parse_sweep(doc(num_samples=2, axes={"model.flow_width": {"grid": [1, 2]}, "search.lambda_sq": {"grid": [0.1, 1.0, 2.0]}},
                        baselines=["single_task", "hard_sharing"]))
    grid = s.grid_points()
    assert len(grid) == 2 * 3 * 2
    assert {p["trial.seed"] for p in grid} == {0, 1}
    assert len({tuple(sorted(p.items())) for p in grid}) == len(grid)
    base = s.baseline_points()
    assert len(base) == 2 * (3 + 1)  # per seed: one single_task per task, one hard_sharing
    assert {p["trial.single_task"] for p in base if p["trial.mode"] == "single_task"} == {"segmentation", "depth", "normal"}
    assert all("model.flow_width" not in p for p in base)
    assert s.points() == grid + base


@pytest.mark.parametrize("bad, needle", [
    ({"axes": {"model.flow_wdth": {"grid": [1]}}}, "model.flow_wdth"),
    ({"axes": {"nosection.x": {"grid": [1]}}}, "nosection.x"),
    ({"axes": {"model.flow_width": {"grid": ["wide"]}}}, "model.flow_width"),
    ({"axes": {"model.flow_width": {"uniform": [1, 2]}}}, "optuna"),
    ({"axes": {"model.flow_width": {"steps": [1, 2]}}}, "steps"),
    ({"serach": "grid"}, "sweep.serach"),
    ({"search": "bayes"}, "sweep.search"),
    ({"baselines": ["stl"]}, "sweep.baselines"),
    ({"scheduler": {"type": "asha", "grace": 2}}, "grace"),
    ({"resources": {"cpu": 1, "tpu": 1}}, "sweep.resources"),
])
def test_bad_sweep_files_name_the_key(bad, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        parse_sweep(doc(**bad))


def test_unknown_top_level_and_config_keys():
    with pytest.raises(ConfigError, match="sweeps"):
        parse_sweep({"sweeps": {}})
    with pytest.raises(ConfigError, match="model.widht"):
        parse_sweep({"config": {"model.widht": 3}, "sweep": {"name": "x"}})


def test_asha_grace_period_defaults_to_warmup_plus_search():
    s = parse_sweep(doc(scheduler={"type": "asha"}, axes={"model.flow_width": {"grid": [1, 2]}}))
    assert s.scheduler["grace_period"] == s.epochs["warmup"] + s.epochs["search"]
    assert s.scheduler["metric"] == "score" and s.scheduler["mode"] == "min"


def test_optuna_axes_and_objectives():
    s = parse_sweep(doc(search="optuna", num_samples=4, axes={"search.lambda_sq": {"loguniform": [0.01, 1.0]},
                                                             "model.flow_width": {"choice": [1, 2]}},
                        objectives={"score": "min", "params_union": "min"}, baselines=["hard_sharing"]))
    assert s.grid_points() == [] or s.search == "optuna"
    assert s.points() == [{"trial.mode": "hard_sharing", "trial.seed": 0}]


def test_loggers_are_off_unless_the_sweep_names_them(monkeypatch):
    with pytest.raises(ConfigError, match=r"sweep\.loggers"):
        parse_sweep(doc(loggers=["wandb"]))
    with pytest.raises(ConfigError, match=r"sweep\.loggers"):
        parse_sweep(doc(loggers="csv"))
    pytest.importorskip("ray")
    from ray.tune.logger import CSVLoggerCallback, TBXLoggerCallback

    from tune.launch import logger_callbacks

    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)
    assert logger_callbacks(parse_sweep(doc())) == []
    assert os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "1"  # Tune adds none of its own
    cbs = logger_callbacks(parse_sweep(doc(loggers=["tensorboard", "csv", "csv"])))
    assert [type(c) for c in cbs] == [TBXLoggerCallback, CSVLoggerCallback]


def test_swept_keys_are_the_config_columns():
    s = parse_sweep(doc(axes={"model.flow_width": {"grid": [1, 2]}}, baselines=["single_task"]))
    assert s.swept_keys == ["model.flow_width", "trial.mode", "trial.seed", "trial.single_task"]
