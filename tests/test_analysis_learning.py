"""Models that learn, analysis side: trials that did not beat their trivial references are kept off the
fronts and counted, delta_mtl refuses a baseline that did not learn, the gap at reduction and learning curves on
hand-made tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import LEARNED_MARGINS, apply_learned, make_results, write_experiment, write_results

from analysis import AnalysisError, compare_fronts, load_results, pareto_front, write_report
from analysis.compare import parse_objectives
from analysis.learning import (
    gap_summary,
    learning_curves,
    main_metrics,
    not_learned_table,
    objective_reference,
    reduction_gap,
    trivial_table,
)
from analysis.plots import front_plot_data
from analysis.stats import seed_hypervolumes

OBJ = "metric/depth/abs_err:min,params:min"


def _experiment(tmp_path: Path, edit, name: str = "exp", **kw) -> Path:
    """A generated experiment with ``edit(df)`` applied to its rows and the learned flags recomputed."""
    exp = write_experiment(tmp_path, name=name, **kw)
    df, _ = make_results(experiment=name, **kw)
    df = apply_learned(edit(df))
    write_results(df, exp / "results.parquet")
    return exp


def _smallest_supernet(df: pd.DataFrame, seed: int = 0) -> str:
    rows = df[(df["mode"] == "supernet") & (df["status"] == "finished") & (df["seed"] == seed)]
    return rows.sort_values("params_union")["trial_id"].iloc[0]


# ----------------------------------------------------------------------------- flagged trials stay off the fronts


def test_a_non_learning_trial_is_flagged_kept_off_fronts_and_counted(tmp_path):
    df0, _ = make_results(seeds=(0, 1))
    victim = _smallest_supernet(df0)  # fewest parameters: on every front of (abs_err, params) unless excluded

    def edit(df):
        df.loc[df["trial_id"] == victim, "metric/depth/abs_err"] = 0.95  # > 0.75 x trivial 1.0: depth not learned
        return df

    exp = _experiment(tmp_path, edit, seeds=(0, 1))
    df = load_results(exp)
    flagged = not_learned_table(df)
    assert flagged["trial_id"].tolist() == [victim] and flagged["missed tasks"].tolist() == ["depth"]
    assert flagged["mode"].tolist() == ["supernet"]
    sn = df[df["mode"] == "supernet"]
    assert victim not in set(pareto_front(sn, OBJ)["trial_id"])
    cmp = compare_fronts(df, by="flow_width", objectives=OBJ)
    assert all(victim not in set(g["trial_id"]) for g in cmp.points.values())
    hv = seed_hypervolumes(df, parse_objectives(OBJ, df))
    assert (
        int(hv.table.query("group == 'supernet' and seed == 0")["points"].iloc[0])
        == int(((sn["seed"] == 0) & sn["is_valid"]).sum()) - 1
    )
    # a table without the flag (dropped, as bench/pareto_asha.py does) is not filtered: the trial is back on the front
    unflagged = df.drop(columns=[c for c in df.columns if c.startswith("learned")])
    assert victim in set(pareto_front(unflagged[unflagged["mode"] == "supernet"], OBJ)["trial_id"])
    # the report keeps it in its tables, marked, and says how many were excluded and which task missed
    out = write_report(exp, objectives=OBJ, out=tmp_path / "rep")
    md = (out / "report.md").read_text()
    assert "**1 trial(s) did not learn**" in md and f"| {victim} | supernet | 0 | finished | depth |" in md
    counts = md.split("## Trials")[1].split("\n\n")[1]
    assert "| supernet | finished | 34 | 1 |" in counts  # 3 x 3 x 2 x 2 grid, one errored, one early-stopped
    assert victim not in pd.read_csv(out / "front.csv")["trial_id"].tolist()
    assert pd.read_csv(out / "not_learned.csv")["trial_id"].tolist() == [victim]
    gap = pd.read_csv(out / "reduction_gap.csv")
    assert (
        not gap.loc[gap["trial_id"] == victim, "learned"].any() and gap.loc[gap["trial_id"] != victim, "learned"].all()
    )


def test_a_non_learning_baseline_leaves_the_baseline_points(tmp_path):
    def edit(df):
        df.loc[df["trial_id"] == "hard_sharing_s0", "metric/segmentation/miou"] = 0.2  # < 2 x 0.15
        return df

    df = load_results(_experiment(tmp_path, edit, seeds=(0,)))
    from analysis.compare import baseline_points

    assert not_learned_table(df)["trial_id"].tolist() == ["hard_sharing_s0"]
    assert "hard_sharing_s0" not in set(baseline_points(df)["trial_id"])
    assert "hard_sharing" not in seed_hypervolumes(df, parse_objectives(OBJ, df)).groups


# ----------------------------------------------------------------------------- delta_mtl refused


def test_delta_mtl_refused_against_a_baseline_that_did_not_learn(tmp_path, capsys):
    def edit(df):
        df.loc[df["trial_id"] == "single_task_normal_s1", "metric/normal/mean_angle"] = 36.0  # > 0.75 x 37
        return df

    exp = _experiment(tmp_path, edit, seeds=(0, 1))
    with pytest.raises(AnalysisError, match=r"single_task_normal_s1.*did not learn task 'normal'"):
        load_results(exp)
    df = load_results(exp, delta_mtl=False)  # task metrics still load
    assert not_learned_table(df)["trial_id"].tolist() == ["single_task_normal_s1"]
    # unusable_baseline="nan": seed 1 has no delta_mtl (listed with the reason), seed 0 keeps its numbers
    lenient = load_results(exp, unusable_baseline="nan")
    strict0 = load_results(_experiment(tmp_path / "ok", lambda df: df, seeds=(0, 1)))
    s1 = (lenient["seed"] == 1) & (lenient["mode"] != "single_task")
    assert lenient.loc[s1, "delta_mtl"].isna().all() and s1.any()
    s0 = (lenient["seed"] == 0) & (lenient["mode"] != "single_task")
    pd.testing.assert_series_equal(lenient.loc[s0, "delta_mtl"], strict0.loc[s0, "delta_mtl"])
    assert lenient.attrs["delta_mtl_unavailable"] == [
        {
            "experiment": lenient["experiment"].iloc[0],
            "seed": 1,
            "task": "normal",
            "trial_id": "single_task_normal_s1",
            "reason": "did not learn",
        }
    ]
    with pytest.raises(ValueError, match="unusable_baseline"):
        load_results(exp, unusable_baseline="ignore")
    from analysis.__main__ import main

    # the report is written: one bad baseline does not take the other seeds' comparison with it
    assert main([str(exp), "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "**delta_mtl not computed for 1 seed(s)**" in md and "| single_task_normal_s1 | did not learn |" in md
    assert (tmp_path / "r" / "delta_mtl_unavailable.csv").is_file()
    # a metric objective needs no baseline: the report is written, the non-learning baseline flagged
    assert main([str(exp), "--objectives", OBJ, "--out", str(tmp_path / "r2")]) == 0


# ----------------------------------------------------------------------------- trivial references


def _hand_results() -> pd.DataFrame:
    """Two method trials, a single-task row and an errored trial; pixel_acc listed before miou on purpose."""
    rows = []
    for tid, mode, warm, search, red, fine in [
        ("s1", "supernet", (0.50, 0.60), (0.40, 0.50), (0.36, 0.55), (0.45, 0.45)),
        ("r1", "random_arch", (0.45, 0.90), (0.50, 0.80), (0.49, 0.80), (0.52, 0.70)),
    ]:
        row = {
            "experiment": "e",
            "trial_id": tid,
            "status": "finished",
            "mode": mode,
            "seed": 0,
            "is_valid": True,
            "metric/seg/pixel_acc": 0.9,
            "metric/seg/miou": fine[0],
            "metric/dep/abs_err": fine[1],
            "learned": True,
        }
        for stage, (m, a) in zip(("warmup", "search", "reduction", "finetune"), (warm, search, red, fine)):
            row |= {
                f"quality/{stage}/seg/pixel_acc": 0.8,
                f"quality/{stage}/seg/miou": m,
                f"quality/{stage}/dep/abs_err": a,
            }
        rows.append(row)
    rows.append(
        {
            "experiment": "e",
            "trial_id": "st",
            "status": "finished",
            "mode": "single_task",
            "seed": 0,
            "is_valid": True,
            "metric/seg/miou": 0.5,
            "quality/warmup/seg/miou": 0.3,
            "quality/finetune/seg/miou": 0.5,
            "learned": True,
        }
    )
    rows.append(
        {
            "experiment": "e",
            "trial_id": "x",
            "status": "errored",
            "mode": "supernet",
            "seed": 0,
            "is_valid": False,
            "learned": None,
        }
    )
    df = pd.DataFrame(rows)
    df.attrs = {
        "metric_senses": {"pixel_acc": "max", "miou": "max", "abs_err": "min"},
        "tasks": {"seg": "segmentation", "dep": "depth"},
        "trivial": {"seg": {"miou": 0.2, "pixel_acc": 0.8}, "dep": {"abs_err": 1.0}},
        "learned_margins": LEARNED_MARGINS,
    }
    return df


def test_trivial_table_and_objective_references():
    df = _hand_results()
    t = trivial_table(df).set_index(["task", "metric"])
    assert t.loc[("seg", "miou"), "trivial"] == 0.2 and t.loc[("seg", "miou"), "threshold"] == pytest.approx(0.4)
    assert t.loc[("seg", "miou"), "learned when"] == "miou >= 2 x trivial"
    assert t.loc[("dep", "abs_err"), "threshold"] == pytest.approx(0.75)
    assert t.loc[("dep", "abs_err"), "learned when"] == "abs_err <= 0.75 x trivial"
    assert t.loc[("seg", "pixel_acc"), "learned when"] == "" and math.isnan(t.loc[("seg", "pixel_acc"), "threshold"])
    trivial = df.attrs["trivial"]
    assert objective_reference("metric/dep/abs_err", trivial) == 1.0
    assert objective_reference("params_union", trivial) is None and objective_reference("delta_mtl", trivial) is None
    assert main_metrics(df) == {"seg": "miou", "dep": "abs_err"}  # by kind, not by column order


def test_fronts_plot_draws_the_trivial_reference_and_captions_delta_mtl(tmp_path):
    df = load_results(write_experiment(tmp_path, seeds=(0,)))
    data = front_plot_data(compare_fronts(df, objectives=OBJ), trivial=df.attrs["trivial"])
    assert data.y_ref == 1.0 and data.x_ref is None and data.caption == ""  # y = abs_err, trivial 1.0 in the fixture
    data = front_plot_data(compare_fronts(df), trivial=df.attrs["trivial"])
    assert data.y_ref is None and data.caption.startswith("delta_mtl is against the single-task baselines")


# ----------------------------------------------------------------------------- the gap at reduction


def test_reduction_gap_hand_computed():
    gap = reduction_gap(_hand_results()).set_index(["trial_id", "task"])
    assert set(gap.index.get_level_values(0)) == {"s1", "r1"}  # method modes only, valid rows only
    assert (gap["metric"].to_dict()) == {
        ("s1", "seg"): "miou",
        ("s1", "dep"): "abs_err",
        ("r1", "seg"): "miou",
        ("r1", "dep"): "abs_err",
    }
    expected = {
        ("s1", "seg"): 10.0,  # |0.36 - 0.40| / 0.40
        ("s1", "dep"): 10.0,  # |0.55 - 0.50| / 0.50
        ("r1", "seg"): 2.0,  # |0.49 - 0.50| / 0.50
        ("r1", "dep"): 0.0,
    }
    for k, v in expected.items():
        assert gap.loc[k, "gap_pct"] == pytest.approx(v)
    # search vs warm-up, > 0 when search improved: miou 0.50 -> 0.40 is -20%; abs_err 0.60 -> 0.50 is +16.7%
    assert gap.loc[("s1", "seg"), "search_vs_warmup_pct"] == pytest.approx(-20.0)
    assert gap.loc[("s1", "dep"), "search_vs_warmup_pct"] == pytest.approx(100 / 6)
    assert gap.loc[("s1", "seg"), ["warmup", "search", "reduction", "finetune"]].tolist() == [0.50, 0.40, 0.36, 0.45]
    s = gap_summary(gap.reset_index())
    assert s.max_pct == pytest.approx(10.0) and s.median_pct == pytest.approx(6.0) and s.n == 4 and s.within_target
    assert s.sentence.startswith("max relative gap at reduction: 10.0% (target <= 10%), median 6.0%")
    older = _hand_results().drop(columns=[c for c in _hand_results().columns if c.startswith("quality/")])
    with pytest.raises(AnalysisError, match="quality/<stage>"):
        reduction_gap(older)


# ----------------------------------------------------------------------------- learning curves


def test_learning_curves_hand_made_epochs():
    stages = [("warmup", 1), ("warmup", 2), ("search", 3), ("finetune", 4)]
    rows = []
    for tid, mode, miou in [
        ("a", "supernet", [0.2, 0.3, 0.3, 0.5]),
        ("b", "supernet", [0.2, 0.5, 0.4, 0.7]),
        ("c", "single_task", [0.25, 0.45, np.nan, np.nan]),
    ]:
        plan = stages if mode == "supernet" else [("warmup", 1), ("finetune", 2)]
        for (stage, step), v in zip(plan, miou):
            rows.append(
                {
                    "experiment": "e",
                    "trial_id": tid,
                    "mode": mode,
                    "stage": stage,
                    "epoch": 0,
                    "step": step,
                    "metric/seg/miou": v,
                    "metric/seg/pixel_acc": 0.9,
                    "metric/dep/abs_err": 1 - v if v == v else np.nan,
                }
            )
    results = _hand_results()
    lc = learning_curves(pd.DataFrame(rows), results)
    assert lc.metrics == ["seg/miou", "dep/abs_err"] and lc.modes == ["supernet", "single_task"]
    sn = lc.curve("supernet", "seg/miou")
    assert sn["step"].tolist() == [1, 2, 3, 4] and sn["stage"].tolist() == ["warmup", "warmup", "search", "finetune"]
    np.testing.assert_allclose(sn["median"], [0.2, 0.4, 0.35, 0.6])
    np.testing.assert_allclose(sn["min"], [0.2, 0.3, 0.3, 0.5])
    np.testing.assert_allclose(sn["max"], [0.2, 0.5, 0.4, 0.7])
    assert sn["n_trials"].tolist() == [2, 2, 2, 2]
    st = lc.curve("single_task", "seg/miou")
    assert st["step"].tolist() == [1, 2] and st["median"].tolist() == [0.25, 0.45]
    assert lc.boundaries["supernet"] == [("warmup", 1.0), ("search", 3.0), ("finetune", 4.0)]
    assert lc.boundaries["single_task"] == [("warmup", 1.0), ("finetune", 2.0)]
    assert lc.trivial == {"seg/miou": 0.2, "dep/abs_err": 1.0}
    # without a mode column the results table supplies it
    no_mode = pd.DataFrame(rows).drop(columns="mode")
    modes = pd.DataFrame(
        {"experiment": "e", "trial_id": ["a", "b", "c"], "mode": ["supernet", "supernet", "single_task"]}
    )
    modes.attrs = results.attrs
    assert learning_curves(no_mode, modes).curve("supernet", "seg/miou")["median"].tolist() == sn["median"].tolist()
    with pytest.raises(AnalysisError, match="no 'mode' column"):
        learning_curves(no_mode)


def test_report_has_trivial_references_learning_curves_and_gap(tmp_path):
    exp = write_experiment(tmp_path, seeds=(0,), taus=(0.3,), random_archs=1)
    out = write_report(exp)
    md = (out / "report.md").read_text()
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections[:4] == [
        "## Does the search beat random architectures?",
        "## Against hard sharing at no more parameters",  # the fixture has a hard-sharing baseline per seed
        "## Trivial references",
        "## Trials",
    ]
    assert "| segmentation | miou | 0.15 | miou >= 2 x trivial | 0.3 |" in md
    assert "none excluded" in md and "![learning curves](learning_curves.png)" in md
    assert "**Max relative gap at reduction: 3.2% (target <= 10%), median" in md  # the fixture's reduction is 3% worse
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gap = pd.read_csv(out / "reduction_gap.csv")
    assert set(gap["mode"]) == {"supernet", "random_arch"} and set(gap["metric"]) == {"miou", "abs_err", "mean_angle"}
