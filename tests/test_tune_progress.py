"""What a user sees of a sweep (tune/progress.py): the end-of-sweep table on results frames made by hand,
the live table's cells, and the quiet defaults of Ray's logs."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from analysis.load import delta_mtl_column
from tune.progress import (
    AUTH_LOGGER,
    CHECKPOINT_LOGGERS,
    axis_applies,
    progress_columns,
    progress_table,
    quiet_driver,
    quiet_trainable,
    quiet_worker,
    shown_params,
    summary_frame,
    summary_text,
)

AXES = ["model.flow_width", "search.lambda_sq", "reduction.tau"]
TASKS = {"seg": "segmentation", "dep": "depth"}
SENSES = {"miou": "max", "pixel_acc": "max", "abs_err": "min"}


def _row(trial_id, mode, miou, pixel_acc, abs_err, task=None, status="finished", learned=True, fw=2, lam=0.1, tau=0.05):
    return {
        "experiment": "e",
        "trial_id": trial_id,
        "status": status,
        "mode": mode,
        "baseline_task": task,
        "seed": 0,
        "n_nodes": 4,
        "flow_width": fw,
        "lambda_sq": lam,
        "tau": tau,
        "learned": learned,
        "learned/seg": learned,
        "learned/dep": learned,
        "metric/seg/miou": miou,
        "metric/seg/pixel_acc": pixel_acc,
        "metric/dep/abs_err": abs_err,
        "params_union": 1000,
    }


def _frame(rows):
    df = pd.DataFrame(rows)
    df.attrs = {"metric_senses": dict(SENSES), "tasks": dict(TASKS)}
    return df


def _with_baselines():
    return _frame(
        [
            _row("a", "supernet", 0.5, 0.8, 1.0, fw=3, lam=1.0, tau=0.2),
            _row("b", "full_supernet", 0.45, 0.7, 1.1, fw=3, lam=1.0, tau=0.2),
            _row("c", "random_arch", 0.3, 0.6, 1.5, fw=3, lam=1.0, tau=0.2),
            _row("s1", "single_task", 0.4, 0.75, math.nan, task="seg", fw=2, lam=2.0, tau=0.15),
            _row("s2", "single_task", math.nan, math.nan, 1.2, task="dep", fw=2, lam=2.0, tau=0.15),
            _row("h", "hard_sharing", 0.42, 0.7, 1.3, fw=2, lam=2.0, tau=0.15),
        ]
    )


def test_axes_apply_by_the_stages_a_mode_runs():
    assert all(axis_applies(k, "supernet") for k in AXES)
    assert all(axis_applies(k, "random_arch") for k in AXES)
    assert axis_applies("model.flow_width", "full_supernet") and axis_applies("search.lambda_sq", "full_supernet")
    assert not axis_applies("reduction.tau", "full_supernet")  # no reduction stage
    for mode in ("single_task", "hard_sharing"):  # a plain chain, warm-up and fine-tune only
        assert not any(axis_applies(k, mode) for k in AXES)
        assert axis_applies("model.n_nodes", mode) and axis_applies("finetune.lr", mode)
    assert axis_applies("reduction.tau", None)  # an unknown mode hides nothing


def test_summary_shows_swept_values_only_where_they_apply():
    t = summary_frame(_with_baselines(), AXES).set_index("trial_id")
    assert list(t.columns[:4]) == ["status", "mode", "task", "seed"]
    assert t.loc["a", "flow_width"] == 3 and t.loc["a", "lambda_sq"] == 1.0 and t.loc["a", "tau"] == 0.2
    assert t.loc["c", "tau"] == 0.2
    assert t.loc["b", "lambda_sq"] == 1.0 and t.loc["b", "tau"] is None
    for tid in ("s1", "s2", "h"):
        assert t.loc[tid, ["flow_width", "lambda_sq", "tau"]].isna().all(), tid
    assert t.loc["s1", "task"] == "seg" and t.loc["s2", "task"] == "dep" and t["mode"].notna().all()
    assert "n_nodes" not in t  # not swept: not shown


def test_summary_has_learned_main_metrics_and_params():
    t = summary_frame(_with_baselines(), AXES)
    assert {"learned", "seg/miou", "dep/abs_err", "params"} <= set(t.columns)
    assert "seg/pixel_acc" not in t  # a secondary metric
    assert list(t.columns[-4:]) == ["delta_mtl", "seg/miou", "dep/abs_err", "params"]
    assert t["seg/miou"].iloc[0] == 0.5 and t["params"].iloc[0] == 1000


def test_summary_delta_mtl_is_analysis_own_and_only_with_baselines():
    df = _with_baselines()
    t = summary_frame(df, AXES)
    expected = delta_mtl_column(df, SENSES, list(TASKS))
    np.testing.assert_allclose(t["delta_mtl"].to_numpy(float), expected.to_numpy(float), equal_nan=True)
    assert np.isfinite(t["delta_mtl"].iloc[0]) and np.isnan(t["delta_mtl"].iloc[3])  # a baseline's is NaN
    assert t.attrs["notes"] == []
    no_base = summary_frame(_frame([r for r in df.to_dict("records") if r["mode"] != "single_task"]), AXES)
    assert "delta_mtl" not in no_base


def test_summary_delta_mtl_of_an_unusable_baseline_is_blank_with_a_note():
    df = _with_baselines()
    df.loc[df["trial_id"] == "s1", ["learned", "learned/seg"]] = False
    t = summary_frame(df, AXES)
    assert t["delta_mtl"].isna().all()
    assert len(t.attrs["notes"]) == 1 and "s1" in t.attrs["notes"][0] and "did not learn" in t.attrs["notes"][0]
    full = _with_baselines()
    missing = summary_frame(_frame(full[full["trial_id"] != "s2"].to_dict("records")), AXES)  # no dep baseline
    assert missing["delta_mtl"].isna().all() and "no valid single_task baseline" in missing.attrs["notes"][0]


def test_summary_text_leaves_blank_cells():
    text = summary_text(summary_frame(_with_baselines(), AXES))
    lines = text.splitlines()
    header = lines[0].split()
    assert header[:5] == ["trial_id", "status", "mode", "task", "seed"] and "nan" not in text.lower()
    row = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert row["h"][:4] == ["h", "finished", "hard_sharing", "0"]  # task and axes blank
    assert row["h"][4] == "yes"  # learned comes next
    more = summary_text(summary_frame(_with_baselines(), AXES), max_rows=2)
    assert more.splitlines()[-1].startswith("... 4 more trials")


def test_live_cells_fill_the_mode_and_blank_what_does_not_apply():
    defaults = {"trial.mode": "supernet", "trial.single_task": None, "trial.seed": 0, **dict.fromkeys(AXES, 2)}
    method = shown_params({"model.flow_width": 3, "reduction.tau": 0.2}, defaults, AXES)
    assert method == {
        "mode": "supernet",
        "task": None,
        "seed": 0,
        "model.flow_width": 3,
        "search.lambda_sq": 2,
        "reduction.tau": 0.2,
    }
    base = shown_params({"trial.mode": "single_task", "trial.single_task": "seg", "trial.seed": 1}, defaults, AXES)
    assert base == {"mode": "single_task", "task": "seg", "seed": 1, **dict.fromkeys(AXES)}
    params, metrics = progress_columns(AXES, TASKS)
    assert list(params.values()) == ["mode", "task", "seed", "flow_width", "lambda_sq", "tau"]
    assert metrics["metric/seg/miou"] == "seg/miou" and metrics["metric/dep/abs_err"] == "dep/abs_err"
    assert metrics["learned"] == "learned" and metrics["params_union"] == "params"


def test_live_table_fills_the_shared_mode_for_trials_that_leave_it_out(tmp_path, monkeypatch):
    from ray.tune.experiment import Trial

    # a stub trial has no storage context (its paths need a running Ray); the table prints these two
    monkeypatch.setattr(Trial, "local_experiment_path", property(lambda self: str(tmp_path)))
    monkeypatch.setattr(Trial, "error_file", property(lambda self: None))

    defaults = {"trial.mode": "supernet", "trial.single_task": None, "trial.seed": 0, **dict.fromkeys(AXES, 2)}
    trials = [
        Trial("fake", config={"overrides": {"model.flow_width": 3}}, stub=True, trial_id="m0"),
        Trial("fake", config={"overrides": {"trial.mode": "hard_sharing"}}, stub=True, trial_id="h0"),
    ]
    from ray.tune import CLIReporter

    handed = []  # the trials as the table hands them to Tune's own table printer
    monkeypatch.setattr(CLIReporter, "report", lambda self, trials, done, *info: handed.extend(trials))
    table = progress_table(AXES, defaults, TASKS)
    table.report(trials, True)
    assert [str(t) for t in handed] == [str(t) for t in trials]
    assert isinstance(table, CLIReporter) and set(table._parameter_columns) >= {"show/mode", "show/seed"}
    cells = [[t.config["show"][k] for k in ("mode", "task", "seed", *AXES)] for t in handed]
    assert cells[0] == ["supernet", None, 0, 3, 2, 2]
    assert cells[1] == ["hard_sharing", None, 0, None, None, None]


def test_ray_logs_are_quiet_unless_verbose():
    auth = logging.getLogger(AUTH_LOGGER)
    before = auth.level
    with quiet_driver(False):
        assert auth.level == logging.ERROR
    assert auth.level == before
    with quiet_driver(True):
        assert auth.level == before
    seen = []
    wrapped = quiet_trainable(lambda config, setup: seen.append((config, setup)) or "ok", False)
    try:
        assert wrapped({"overrides": {}}, "setup") == "ok" and seen == [({"overrides": {}}, "setup")]
        assert all(logging.getLogger(n).level == logging.WARNING for n in CHECKPOINT_LOGGERS)
        quiet_worker(True)
        assert all(logging.getLogger(n).level == logging.INFO for n in CHECKPOINT_LOGGERS)
    finally:
        for n in CHECKPOINT_LOGGERS:
            logging.getLogger(n).setLevel(logging.NOTSET)


def test_launch_build_and_restore_take_verbose_default_false():
    import inspect

    from tune.launch import build_tuner, launch, restore_tuner

    for fn in (launch, build_tuner, restore_tuner):
        assert inspect.signature(fn).parameters["verbose"].default is False
