"""Sweeps on the shared Ray session: results table, errored trials, trial resume from a checkpoint, stage reuse."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import run
from supernet.config import build_config
from supernet.store import DirStageStore
from supernet.trial import run_trial

SMALL = {"data.n_train": 32, "data.n_val": 16, "trial.progress": False, "trial.latency_repeats": 1}


def sweep_file(tmp: Path, name: str, config: dict | None = None, **sweep) -> Path:
    doc = {
        "preset": "tiny",
        "config": {**SMALL, **(config or {})},
        "sweep": {"name": name, "search": "grid", "resources": {"cpu": 1}, "max_concurrent": 2, **sweep},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_sweep(path: Path, storage: Path, *extra: str) -> tuple:
    assert run.main(["--config", str(path), "--storage", str(storage), "--no-report", *extra]) == 0
    exp = storage / yaml.safe_load(path.read_text())["sweep"]["name"]
    table = pq.read_table(exp / "results.parquet")
    return exp, table, table.to_pandas()


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_grid_2x2_writes_results_and_epochs(ray_session, tmp_path):
    path = sweep_file(
        tmp_path, "grid", axes={"model.flow_width": {"grid": [1, 2]}, "search.lambda_sq": {"grid": [0.1, 1.0]}}
    )
    exp, table, df = run_sweep(path, tmp_path / "runs")
    assert len(df) == 4 and set(df["status"]) == {"finished"}
    assert sorted(zip(df["flow_width"], df["lambda_sq"])) == [(1, 0.1), (1, 1.0), (2, 0.1), (2, 1.0)]
    assert (df["config/model.flow_width"] == df["flow_width"]).all() and (df["seed"] == 0).all()
    schema = table.schema
    for col, typ in [
        ("seed", "int64"),
        ("flow_width", "int64"),
        ("params_union", "int64"),
        ("params/depth", "int64"),
        ("lambda_sq", "double"),
        ("tau", "double"),
        ("metric/segmentation/miou", "double"),
        ("loss/normal", "double"),
        ("latency_ms", "double"),
        ("time/search", "double"),
        ("reused/warmup", "bool"),
        ("node", "string"),
        ("trial_dir", "string"),
        ("arch_spec_path", "string"),
    ]:
        assert str(schema.field(col).type) == typ, col
    meta = json.loads(schema.metadata[b"dagmtl"])
    assert meta["schema_version"] == 1 and meta["tasks"] == {
        "segmentation": "segmentation",
        "depth": "depth",
        "normal": "normal",
    }
    assert meta["metric_senses"]["miou"] == "max"
    for _, r in df.iterrows():  # every trial left its files, and the table matches its summary
        tdir = exp / r["trial_dir"]
        summary = json.loads((tdir / "summary.json").read_text())
        assert (exp / r["arch_spec_path"]).is_file() and (tdir / "config.json").is_file()
        assert r["params_union"] == summary["params"]["union"]
        assert r["metric/depth/abs_err"] == pytest.approx(summary["metrics"]["depth"]["abs_err"])
        assert r["loss/segmentation"] == pytest.approx(summary["val_loss"]["segmentation"])
        assert len(lines(tdir / "metrics.jsonl")) == 3  # tiny: 1 warm-up + 1 search + 1 fine-tune epoch
    ep = pq.read_table(exp / "epochs.parquet").to_pandas()
    assert len(ep) == 4 * 3 and set(ep["stage"]) == {"warmup", "search", "finetune"}
    assert {
        "experiment",
        "trial_id",
        "epoch",
        "step",
        "train_loss",
        "score",
        "val_loss/depth",
        "metric/normal/mean_angle",
    } <= set(ep)
    # trials sharing flow_width reuse the warm-up of the one that ran first: 2 computed, 2 reused
    assert df["reused/warmup"].sum() >= 1


def test_errored_trial_does_not_stop_the_others(ray_session, tmp_path):
    # N=3 in the tiny preset: flow_width 5 is invalid, so that trial raises a ConfigError inside run_trial's
    # config build. run.py refuses such a grid before Ray starts; the Tuner itself meets it as a trial would an
    # invalid Optuna proposal
    from tune.launch import build_tuner
    from tune.space import parse_sweep, sweep_doc

    path = sweep_file(
        tmp_path, "err", axes={"model.flow_width": {"grid": [1, 5]}}, baselines=["hard_sharing"], max_failures=1
    )
    build_tuner(parse_sweep(sweep_doc(path)), str(tmp_path / "runs")).fit()
    exp = tmp_path / "runs" / "err"
    df = pq.read_table(exp / "results.parquet").to_pandas()
    # a config error is a result of the config, not a fault: it is not retried (max_failures: 1 above)
    bad_dir = exp / df[df["flow_width"] == 5].iloc[0]["trial_dir"]
    ran = (bad_dir / "trial.log").read_text().splitlines()
    assert len(ran) == 1 and "ended errored: ConfigError" in ran[0], ran
    assert json.loads((bad_dir / "summary.json").read_text())["status"] == "errored"
    assert len(df) == 3
    bad = df[df["flow_width"] == 5].iloc[0]
    assert bad["status"] == "errored" and "ConfigError" in bad["error"] and "model.flow_width" in bad["error"]
    assert bad["config/model.flow_width"] == 5 and math.isnan(bad["loss/depth"])
    ok = df[df["status"] == "finished"]
    assert len(ok) == 2 and set(ok["mode"]) == {"supernet", "hard_sharing"} and ok["error"].isna().all()


def one_thread(fn, *args, **kwargs):
    """Run ``fn`` with one torch thread, as a 1-CPU Ray trial runs: the same reduction order, bit for bit."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(before)


def crash_once(marker: str, after_step: int):
    """A report function for the trainable that, once (``marker`` not yet written), raises right after the
    checkpointed report of a step >= ``after_step``: the trial crashes mid-stage with a checkpoint saved."""
    from ray import tune

    def report(metrics, checkpoint=None):
        tune.report(metrics, checkpoint=checkpoint)
        if checkpoint is not None and metrics["step"] >= after_step and not Path(marker).exists():
            Path(marker).write_text(str(metrics["step"]))
            raise RuntimeError(f"injected crash after the checkpoint of step {metrics['step']}")

    return report


def train_crashing_once(config, setup):
    from tune.trainable import train

    train(config, setup, report=crash_once(**config["_crash"]))


def test_trial_killed_mid_stage_resumes_from_its_checkpoint(ray_session, tmp_path):
    import sys

    import ray

    from tune.launch import build_tuner
    from tune.space import parse_sweep, sweep_doc

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the Ray worker gets the fault injection by value
    cfg = {"warmup.epochs": 3, "trial.checkpoint_every": 1, "trial.deterministic": True}
    path = sweep_file(tmp_path, "crash", config=cfg, axes={"model.flow_width": {"grid": [2]}}, max_failures=1)
    marker = tmp_path / "crashed"
    tuner = build_tuner(
        parse_sweep(sweep_doc(path)),
        str(tmp_path / "runs"),
        train_fn=train_crashing_once,
        extra_config={"_crash": {"marker": str(marker), "after_step": 2}},
    )
    result = tuner.fit()[0]
    assert marker.read_text() == "2"  # it did crash, once, after the checkpoint of step 2
    assert result.metrics["trial_finished"] == 1 and result.metrics["resumed_from_step"] == 2
    steps = [r["step"] for r in lines(Path(result.path) / "metrics.jsonl")]
    assert steps == [1, 2, 3, 4, 5]  # nothing lost, nothing doubled
    # the same trial, uninterrupted and without Ray, ends with the same figures
    ref = one_thread(run_trial, build_config("tiny", {**SMALL, **cfg, "model.flow_width": 2}), tmp_path / "ref")
    got = json.loads((Path(result.path) / "summary.json").read_text())
    assert got["val_loss"] == pytest.approx(ref["val_loss"], rel=1e-6)
    assert got["metrics"]["depth"] == pytest.approx(ref["metrics"]["depth"], rel=1e-6)
    # no scheduler, local storage: lean reports (a few keys), and the row read from the trial's files instead
    from tune.setup import LEAN_KEYS

    assert "metric/depth/abs_err" not in result.metrics and set(LEAN_KEYS) <= set(result.metrics)
    row = pq.read_table(tmp_path / "runs" / "crash" / "results.parquet").to_pylist()[0]
    assert row["metric/depth/abs_err"] == pytest.approx(ref["metrics"]["depth"]["abs_err"], rel=1e-6)
    assert row["time/finetune"] > 0 and row["learned"] in (True, False)


def test_stage_reuse_gives_the_same_result_as_recomputation(ray_session, tmp_path):
    # two taus share warm-up and search: the second trial (max_concurrent 1) loads both stages from the cache
    path = sweep_file(
        tmp_path,
        "reuse",
        config={"trial.deterministic": True, "warmup.epochs": 2},
        axes={"reduction.tau": {"grid": [0.0, 0.2]}},
        max_concurrent=1,
    )
    exp, _, df = run_sweep(path, tmp_path / "runs")
    assert set(df["status"]) == {"finished"}
    assert sorted(df["reused/search"].tolist()) == [False, True]
    assert sorted(p.parent.name for p in (exp / "stage_cache").rglob("*.pt")) == ["search", "warmup"]
    reused = df[df["reused/search"]].iloc[0]
    cfg = build_config(
        "tiny", {**SMALL, "trial.deterministic": True, "warmup.epochs": 2, "reduction.tau": reused["tau"]}
    )
    ref = one_thread(run_trial, cfg, tmp_path / "ref", store=None)
    for t, ms in ref["metrics"].items():
        for m, v in ms.items():
            assert reused[f"metric/{t}/{m}"] == pytest.approx(v, rel=1e-6), (t, m)
    assert reused["params_union"] == ref["params"]["union"]
    # and the cache entry is what a fresh store would hold (same key -> first writer kept)
    assert DirStageStore(exp / "stage_cache").get("warmup", "nope") is None


def test_optuna_multi_objective_with_baselines_and_asha(ray_session, tmp_path):
    path = sweep_file(
        tmp_path,
        "opt",
        search="optuna",
        num_samples=3,
        sampler="nsga2",
        axes={"search.lambda_sq": {"loguniform": [0.01, 1.0]}, "model.flow_width": {"choice": [1, 2]}},
        objectives={"score": "min", "params_union": "min"},
        baselines=["hard_sharing"],
        scheduler={"type": "asha", "grace_period": 2},
    )
    exp, _, df = run_sweep(path, tmp_path / "runs")
    assert len(df) == 4 and df["trial_id"].is_unique
    assert (df["mode"] == "hard_sharing").sum() == 1
    method = df[df["mode"] == "supernet"]
    assert method["lambda_sq"].between(0.01, 1.0).all() and set(method["flow_width"]) <= {1, 2}
    assert set(df["status"]) <= {"finished", "early_stopped"}
    stopped = df[df["status"] == "early_stopped"]
    assert stopped["time/finetune"].isna().all()  # partial: metrics from the last report, no summary figures
    assert list(exp.glob("searcher-state-*.pkl"))  # the Optuna study, persisted with the experiment


def test_zero_epoch_warmup_is_reused(ray_session, tmp_path):
    # warmup.epochs: 0 (no warm-up): the second trial replays an empty warm-up and a search from the cache
    path = sweep_file(
        tmp_path,
        "nowarm",
        config={"trial.deterministic": True, "warmup.epochs": 0},
        axes={"reduction.tau": {"grid": [0.0, 0.2]}},
        max_concurrent=1,
    )
    exp, _, df = run_sweep(path, tmp_path / "runs")
    assert set(df["status"]) == {"finished"}
    assert sorted(df["reused/warmup"].tolist()) == [False, True]
    for _, r in df.iterrows():  # 0 warm-up + 1 search + 1 fine-tune epoch, replayed or not
        assert [line["stage"] for line in lines(exp / r["trial_dir"] / "metrics.jsonl")] == ["search", "finetune"]
