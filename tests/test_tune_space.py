"""The sweep file: validation names the bad key; grid points, seeds and baselines are explicit rows."""

from __future__ import annotations

import os

import pytest

from supernet.config import ConfigError
from tune.space import parse_sweep


def doc(**sweep):
    return {"preset": "tiny", "config": {"data.n_train": 32}, "sweep": {"name": "t", **sweep}}


def test_grid_points_cross_axes_and_seeds_then_baselines():
    s = parse_sweep(
        doc(
            num_samples=2,
            axes={"model.flow_width": {"grid": [1, 2]}, "search.lambda_sq": {"grid": [0.1, 1.0, 2.0]}},
            baselines=["single_task", "hard_sharing"],
        )
    )
    grid = s.grid_points()
    assert len(grid) == 2 * 3 * 2
    assert {p["trial.seed"] for p in grid} == {0, 1}
    assert len({tuple(sorted(p.items())) for p in grid}) == len(grid)
    base = s.baseline_points()
    assert len(base) == 2 * (3 + 1)  # per seed: one single_task per task, one hard_sharing
    assert {p["trial.single_task"] for p in base if p["trial.mode"] == "single_task"} == {
        "segmentation",
        "depth",
        "normal",
    }
    assert all("model.flow_width" not in p for p in base)
    assert s.points() == grid + base


@pytest.mark.parametrize(
    "bad, needle",
    [
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
        ({"resources": {"cpu": "two"}}, "sweep.resources"),
        ({"seed": "x"}, "sweep.seed"),
        ({"seed": -1}, "sweep.seed"),
        ({"scheduler": {"type": "asha", "mode": "maximize"}}, "sweep.scheduler.mode"),
        ({"scheduler": {"type": "asha", "metric": 3}}, "sweep.scheduler.metric"),
        ({"scheduler": {"type": "asha", "grace_period": "x"}}, "sweep.scheduler.grace_period"),
        ({"scheduler": {"type": "asha", "reduction_factor": 1}}, "sweep.scheduler.reduction_factor"),
        ({"scheduler": {"type": "asha", "grace_period": 5, "max_t": 5}}, "sweep.scheduler.max_t"),
        ({"random_archs": -1}, "sweep.random_archs"),
        (
            {"random_archs": 2, "search": "optuna", "axes": {"search.lambda_sq": {"uniform": [0.1, 1.0]}}},
            "sweep.random_archs",
        ),
    ],
)
def test_bad_sweep_files_name_the_key(bad, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        parse_sweep(doc(**bad))


def test_random_archs_are_k_draws_at_every_method_point_after_the_grid():
    s = parse_sweep(
        doc(num_samples=2, axes={"search.lambda_sq": {"grid": [0.1, 1.0]}}, random_archs=3, baselines=["hard_sharing"])
    )
    grid, rnd = s.grid_points(), s.random_arch_points()
    assert len(rnd) == 3 * len(grid) == 12
    for p in rnd:
        assert p["trial.mode"] == "random_arch"
        method = {k: v for k, v in p.items() if k not in ("trial.mode", "trial.random_draw")}
        assert method in grid  # the same lambda_sq and seed as a method trial: it reuses its search
    assert {(p["search.lambda_sq"], p["trial.seed"], p["trial.random_draw"]) for p in rnd} == {
        (lam, seed, d) for lam in (0.1, 1.0) for seed in (0, 1) for d in range(3)
    }
    assert s.points() == grid + rnd + s.baseline_points()
    s.config(rnd[0])  # a valid trial config


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
    s = parse_sweep(
        doc(
            search="optuna",
            num_samples=4,
            axes={"search.lambda_sq": {"loguniform": [0.01, 1.0]}, "model.flow_width": {"choice": [1, 2]}},
            objectives={"score": "min", "params_union": "min"},
            baselines=["hard_sharing"],
        )
    )
    assert s.search == "optuna" and s.num_samples == 4 and s.seeds == [0]
    assert s.axes == {"search.lambda_sq": ("loguniform", [0.01, 1.0]), "model.flow_width": ("choice", [1, 2])}
    assert s.objectives == {"score": "min", "params_union": "min"}
    # Optuna proposes the method trials; only the baselines are fixed points
    assert s.points() == [{"trial.mode": "hard_sharing", "trial.seed": 0}]


def test_asha_never_stops_or_ranks_baselines_and_delegates_for_the_method():
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from tune.launch import make_scheduler

    sched = make_scheduler(
        parse_sweep(
            doc(
                scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 2},
                baselines=["single_task", "hard_sharing"],
            )
        )
    )

    def trial(tid, **overrides):
        return SimpleNamespace(trial_id=tid, config={"overrides": {"trial.seed": 0, **overrides}})

    good, bad = trial("m1"), trial("m2", **{"model.flow_width": 1})  # method trials: mode from the shared config
    full = trial("f", **{"trial.mode": "full_supernet"})
    st = trial("b1", **{"trial.mode": "single_task", "trial.single_task": "depth"})
    hs = trial("b2", **{"trial.mode": "hard_sharing"})
    for t in (good, bad, full, st, hs):
        sched.on_trial_add(None, t)
    assert sched.on_trial_result(None, good, {"step": 1, "score": 0.1}) == TrialScheduler.CONTINUE
    # a baseline far worse than the method at the rung continues, and does not enter the rung
    assert sched.on_trial_result(None, st, {"step": 1, "score": 50.0}) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(None, hs, {"step": 1, "score": 60.0}) == TrialScheduler.CONTINUE
    # method trials are ASHA's: worse than the rung's median -> stopped
    assert sched.on_trial_result(None, bad, {"step": 1, "score": 5.0}) == TrialScheduler.STOP
    assert sched.on_trial_result(None, full, {"step": 1, "score": 7.0}) == TrialScheduler.STOP
    rung = {tid for b in sched._brackets for _, recorded in b._rungs for tid in recorded}
    assert rung == {"m1", "m2", "f"}
    sched.on_trial_complete(None, st, {"step": 2, "score": 50.0})  # not ASHA's trial: no KeyError
    sched.on_trial_remove(None, hs)
    sched.on_trial_complete(None, good, {"step": 2, "score": 0.1})


@pytest.mark.parametrize(
    "name",
    [
        "default",
        "ablation_flow_width",
        "ablation_squeeze",
        "ablation_threshold",
        "ablation_fold",
        "search_vs_random",
        "planted",
        "planted_seeds",
        "ablation_planted_squeeze_cost",
        "ablation_planted_loss_scale",
        "ablation_planted_finetune",
        "ablation_planted_sharing",
    ],
)
def test_embedded_data_configs_parse_and_open_with_their_command(name):
    from pathlib import Path

    from tune.space import sweep_doc

    path = Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml"
    assert path.read_text().startswith("# python run.py")
    sweep = parse_sweep(sweep_doc(path))
    for p in sweep.points():
        sweep.config(p)  # every trial's config is valid


def test_planted_seeds_runs_planted_yamls_search_at_more_seeds():
    """planted_seeds.yaml claims planted.yaml's method and control at 12 seeds: the same config block, the same
    axis, the same random draws, seeds 0..11 (so its first 6 seeds are planted.yaml's trials)."""
    from pathlib import Path

    import yaml

    from tune.space import sweep_doc

    configs = Path(__file__).resolve().parents[1] / "configs"
    planted, seeds = (yaml.safe_load((configs / f"{n}.yaml").read_text()) for n in ("planted", "planted_seeds"))
    assert seeds["config"] == planted["config"] and seeds["preset"] == planted["preset"]
    a, b = (parse_sweep(sweep_doc(configs / f"{n}.yaml")) for n in ("planted", "planted_seeds"))
    assert b.axes == a.axes and b.random_archs == a.random_archs == 1
    assert b.seeds == list(range(12)) and a.seeds == b.seeds[:6]
    assert b.baselines == ()


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


def test_sweep_doc_applies_preset_overrides_and_name(tmp_path):
    from tune.space import sweep_doc

    path = tmp_path / "abl.yaml"
    path.write_text("config:\n  data:\n    n_train: 32\nsweep:\n  axes:\n    model.flow_width: {grid: [1, 2]}\n")
    d = sweep_doc(path, preset="tiny", overrides={"data.n_val": 16})
    assert d["preset"] == "tiny" and d["config"] == {"data.n_train": 32, "data.n_val": 16}
    assert d["sweep"]["name"] == "abl"  # the file's stem when neither the file nor the caller names it
    assert sweep_doc(path, name="other")["sweep"]["name"] == "other"
    s = parse_sweep(d)
    assert s.name == "abl" and s.preset == "tiny" and s.base == {"data.n_train": 32, "data.n_val": 16}


def test_report_groups_by_the_first_axis_short_column():
    pytest.importorskip("ray")
    from tune.launch import report_group

    assert report_group(parse_sweep(doc())) == "flow_width"
    assert report_group(parse_sweep(doc(axes={"reduction.tau": {"grid": [0.1, 0.2]}}))) == "tau"
    assert report_group(parse_sweep(doc(axes={"model.n_nodes": {"grid": [3, 4]}}))) == "n_nodes"
    assert report_group(parse_sweep(doc(axes={"data.n_train": {"grid": [16, 32]}}))) == "config/data.n_train"


def test_file_scheme_storage_is_the_local_folder(tmp_path):
    pytest.importorskip("ray")
    from tune.launch import _storage, check_storage

    assert _storage(f"file://{tmp_path}/runs") == str(tmp_path / "runs")
    assert _storage("s3://bucket/runs") == "s3://bucket/runs"
    assert check_storage(f"file://{tmp_path}/r2") == str(tmp_path / "r2") and (tmp_path / "r2").is_dir()
    assert check_storage("s3://bucket/runs") is None


def test_ray_client_urls_are_not_storage_uris():
    from analysis.schema import is_uri
    from tune.cluster import _host_port, is_client_url

    assert is_client_url("ray://10.0.0.1:10001") and not is_client_url("10.0.0.1:6379")
    assert _host_port("ray://10.0.0.1:10001") is None and _host_port("10.0.0.1:6379") == ("10.0.0.1", 6379)
    assert is_client_url("file:///tmp") and not is_uri("file:///tmp")  # two questions, two rules
