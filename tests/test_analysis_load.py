"""Loading results: delta_mtl by hand, baselines per seed, flags, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import write_experiment, write_results

from analysis import AnalysisError, load_arch_spec, load_epochs, load_results

TASKS = {"seg": "segmentation", "depth": "depth"}


def _row(tid, mode, seed, status="finished", baseline_task=None, **metrics):
    row = {
        "experiment": "hand",
        "trial_id": tid,
        "status": status,
        "mode": mode,
        "baseline_task": baseline_task,
        "seed": seed,
        "flow_width": 1,
        "params_union": 100,
        "arch_spec_path": f"{tid}/arch_spec.json",
        "metric/seg/miou": np.nan,
        "metric/seg/pixel_acc": np.nan,
        "metric/depth/abs_err": np.nan,
    }
    row.update({f"metric/{k.replace('__', '/')}": v for k, v in metrics.items()})
    return row


def hand_table() -> pd.DataFrame:
    return pd.DataFrame(
        [
            # seed 0 baselines: seg miou mean of 0.4 and 0.6 = 0.5 (pixel_acc not in the baseline: unused)
            _row("st_seg_a", "single_task", 0, baseline_task="seg", seg__miou=0.4),
            _row("st_seg_b", "single_task", 0, baseline_task="seg", seg__miou=0.6),
            _row("st_seg_bad", "single_task", 0, status="errored", baseline_task="seg", seg__miou=100.0),
            _row("st_depth", "single_task", 0, baseline_task="depth", depth__abs_err=0.4),
            # seed 1 baselines differ: a row must use its own seed's
            _row("st_seg_1", "single_task", 1, baseline_task="seg", seg__miou=0.25),
            _row("st_depth_1", "single_task", 1, baseline_task="depth", depth__abs_err=0.5),
            # miou +10%, abs_err falls 25% (better): 100/2 * (0.10 + 0.25) = 17.5
            _row("a", "supernet", 0, seg__miou=0.55, seg__pixel_acc=0.9, depth__abs_err=0.3),
            # seed 1: miou +20%, abs_err rises 10% (worse): 100/2 * (0.2 - 0.1) = 5
            _row("b", "supernet", 1, seg__miou=0.3, depth__abs_err=0.55),
            _row("c", "hard_sharing", 0, seg__miou=0.5, depth__abs_err=0.4),  # equal to baseline: 0
            _row("d", "supernet", 0, status="errored"),
        ]
    )


def test_delta_mtl_hand_computed(tmp_path):
    write_results(hand_table(), tmp_path / "exp" / "results.parquet", TASKS)
    df = load_results(tmp_path / "exp").set_index("trial_id")
    assert df.loc["a", "delta_mtl"] == pytest.approx(17.5)
    assert df.loc["b", "delta_mtl"] == pytest.approx(5.0)
    assert df.loc["c", "delta_mtl"] == pytest.approx(0.0)
    assert df.loc[["st_seg_a", "st_depth", "d"], "delta_mtl"].isna().all()
    assert df["is_valid"].to_dict() == {t: t not in ("st_seg_bad", "d") for t in df.index}


def test_missing_baseline_raises_naming_it(tmp_path):
    t = hand_table()
    t = t[t["trial_id"] != "st_depth_1"]
    write_results(t, tmp_path / "exp" / "results.parquet", TASKS)
    with pytest.raises(AnalysisError, match=r"task 'depth', experiment 'hand', seed 1"):
        load_results(tmp_path / "exp")
    assert "delta_mtl" not in load_results(tmp_path / "exp", delta_mtl=False).columns
    # an errored baseline is not a baseline
    t2 = hand_table()
    t2.loc[t2["trial_id"] == "st_depth_1", "status"] = "errored"
    write_results(t2, tmp_path / "exp2" / "results.parquet", TASKS)
    with pytest.raises(AnalysisError, match="seed 1"):
        load_results(tmp_path / "exp2")


def test_early_stopped_baseline_is_never_a_reference(tmp_path):
    # beside finished baselines, an early-stopped one is ignored: a's gain stays 17.5 (not pulled by 100.0)
    t = pd.concat(
        [
            hand_table(),
            pd.DataFrame(
                [_row("st_seg_es", "single_task", 0, status="early_stopped", baseline_task="seg", seg__miou=100.0)]
            ),
        ]
    )
    write_results(t, tmp_path / "exp" / "results.parquet", TASKS)
    df = load_results(tmp_path / "exp").set_index("trial_id")
    assert df.loc["a", "delta_mtl"] == pytest.approx(17.5)
    assert df.loc["st_seg_es", "is_valid"]  # still a valid row of its own, just not a baseline
    # a seed whose only baseline for a task stopped early: an error naming it, never a number
    t2 = hand_table()
    t2.loc[t2["trial_id"] == "st_depth_1", "status"] = "early_stopped"
    write_results(t2, tmp_path / "exp2" / "results.parquet", TASKS)
    with pytest.raises(
        AnalysisError, match=r"task 'depth', experiment 'hand', seed 1 did not finish.*early_stopped.*st_depth_1"
    ):
        load_results(tmp_path / "exp2")


def test_metric_senses_from_metadata_and_unknown_metric(tmp_path):
    t = pd.DataFrame(
        [
            _row("st", "single_task", 0, baseline_task="seg", seg__bleu=10.0),
            _row("a", "supernet", 0, seg__bleu=12.0),
        ]
    ).drop(columns=["metric/seg/miou", "metric/seg/pixel_acc", "metric/depth/abs_err"])
    f = write_results(t, tmp_path / "x" / "results.parquet", {"seg": "text"}, metadata=False)
    with pytest.raises(AnalysisError, match="'bleu' has no known sense"):
        load_results(f)
    import pyarrow.parquet as pq

    table = pq.read_table(f)
    meta = {"schema_version": 1, "metric_senses": {"bleu": "min"}, "tasks": {"seg": "text"}}
    pq.write_table(table.replace_schema_metadata({b"dagmtl": json.dumps(meta).encode()}), f)
    df = load_results(f).set_index("trial_id")
    assert df.loc["a", "delta_mtl"] == pytest.approx(-20.0)  # lower is better here: +20% is a loss
    assert df.attrs["metric_senses"]["bleu"] == "min"


def test_several_experiments_and_paths(tmp_path):
    a = write_experiment(tmp_path, name="a", seeds=(0,), rng=1)
    b = write_experiment(tmp_path, name="b", seeds=(0,), rng=2)
    df = load_results([a, b / "results.parquet"])
    assert set(df["experiment"]) == {"a", "b"}
    assert len(df) == len(load_results(a)) + len(load_results(b))
    sup = df[df["mode"] == "supernet"]
    assert all(p.startswith(str(tmp_path.resolve())) for p in sup["arch_spec_path"])
    assert load_arch_spec(sup["arch_spec_path"].iloc[0])["n_nodes"] == 4
    assert (df.loc[df["status"] == "errored", "is_valid"] == False).all()  # noqa: E712
    with pytest.raises(AnalysisError, match="appears twice"):
        load_results([a, a])


def test_load_errors(tmp_path):
    with pytest.raises(AnalysisError, match="does not exist"):
        load_results(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisError, match="no results.parquet"):
        load_results(tmp_path / "empty")
    with pytest.raises(AnalysisError, match="no epochs.parquet"):
        load_epochs(tmp_path / "empty")


def test_load_epochs(tmp_path):
    exp = write_experiment(tmp_path, seeds=(0,))
    ep = load_epochs(exp)
    res = load_results(exp)
    assert set(ep["trial_id"]) == set(res["trial_id"])
    assert set(ep["stage"]) == {"warmup", "search", "finetune"}
    assert {"val_loss/segmentation", "score", "step"} <= set(ep.columns)


def test_arch_spec_validation(tmp_path):
    p = tmp_path / "spec.json"
    p.write_text(json.dumps({"n_nodes": 3, "tasks": {"t": {"edges": [[2, 1]], "read_in": [1], "read_out": [3]}}}))
    with pytest.raises(AnalysisError, match="edge 2->1"):
        load_arch_spec(p)
    p.write_text(json.dumps({"n_nodes": 3, "tasks": {"t": {"edges": [[1, 2]], "read_in": [0], "read_out": [3]}}}))
    with pytest.raises(AnalysisError, match="read_in"):
        load_arch_spec(p)
    p.write_text(json.dumps({"tasks": {}}))
    with pytest.raises(AnalysisError, match="not an architecture spec"):
        load_arch_spec(p)
