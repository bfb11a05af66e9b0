"""Fronts of tables and front comparisons: hand-made groups with hand-computed volumes, order invariance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import write_experiment

from analysis import AnalysisError, compare_fronts, load_results, pareto_front, parse_objectives, single_task_ensemble
from analysis.compare import usable_rows, with_ranks


def _t(rows: list[tuple]) -> pd.DataFrame:
    cols = ["trial_id", "mode", "status", "is_valid", "seed", "flow_width", "delta_mtl", "params_union"]
    return pd.DataFrame(rows, columns=cols).assign(experiment="hand")


def hand_groups() -> pd.DataFrame:
    # delta_mtl max, params min. Minimise form (-delta, params): ideal (-3, 10), nadir (0, 30) over the
    # supernet points, so normalised A = {(2/3, 0), (0, .5)}, B = {(1/3, 1), (1, 0)}.
    return _t(
        [
            ("a1", "supernet", "finished", True, 0, 1, 1.0, 10),
            ("a2", "supernet", "finished", True, 1, 1, 3.0, 20),
            ("b1", "supernet", "finished", True, 0, 2, 2.0, 30),
            ("b2", "supernet", "early_stopped", True, 0, 2, 0.0, 10),
            ("b3", "supernet", "finished", True, 0, 2, np.nan, 5),  # NaN objective: not a point
            ("bx", "supernet", "errored", False, 0, 2, 99.0, 1),  # would dominate all: excluded
            ("hs", "hard_sharing", "finished", True, 0, 1, 50.0, 1),  # baseline mode: not competing
        ]
    )


def test_pareto_front_mixed_senses_aliases_nan_errored():
    df = hand_groups()
    sup = df[df["mode"] == "supernet"]
    front = pareto_front(sup, {"delta_mtl": "max", "params": "min"})
    # a2 (3, 20), a1 (1, 10) and b2 (0, 10)? b2 is dominated by a1 (better delta, same params)
    assert front["trial_id"].tolist() == ["a2", "a1"]
    # both senses reversed: the worst points form the front
    worst = pareto_front(sup, "delta_mtl:min,params:max")
    assert worst["trial_id"].tolist() == ["b2", "b1"]
    ranks = with_ranks(sup, {"delta_mtl": "max", "params": "min"}).set_index("trial_id")["pareto_rank"]
    assert ranks.to_dict() == {"a1": 0, "a2": 0, "b1": 1, "b2": 1, "b3": -1, "bx": -1}


def test_duplicates_both_on_front():
    df = _t(
        [
            ("x", "supernet", "finished", True, 0, 1, 1.0, 10),
            ("y", "supernet", "finished", True, 1, 1, 1.0, 10),
            ("z", "supernet", "finished", True, 0, 1, 0.5, 10),
        ]
    )
    assert pareto_front(df)["trial_id"].tolist() == ["x", "y"]


def test_compare_fronts_hand_computed():
    cmp = compare_fronts(hand_groups(), by="flow_width", budgets={"params": [15, 25]})
    np.testing.assert_allclose(cmp.ideal, [-3, 10])
    np.testing.assert_allclose(cmp.nadir, [0, 30])
    t = cmp.table
    assert list(t.index) == ["1", "2"]
    assert t["points"].tolist() == [2, 2] and t["trials"].tolist() == [2, 4] and t["front_size"].tolist() == [2, 2]
    # A: (2/3)(1.1-.5) + (1.1-2/3)(1.1); B: (1-1/3)(.1) + (.1)(1.1)
    assert t.loc["1", "hypervolume"] == pytest.approx(2 / 3 * 0.6 + (1.1 - 2 / 3) * 1.1)
    assert t.loc["2", "hypervolume"] == pytest.approx(2 / 3 * 0.1 + 0.1 * 1.1)
    # A's seeds hold one point each: (2/3, 0) -> (1.1-2/3)*1.1, (0, .5) -> 1.1*.6
    hv0, hv1 = (1.1 - 2 / 3) * 1.1, 1.1 * 0.6
    assert t.loc["1", "n_seeds"] == 2
    assert t.loc["1", "hv_seed_median"] == pytest.approx((hv0 + hv1) / 2)
    assert (t.loc["1", "hv_seed_min"], t.loc["1", "hv_seed_max"]) == pytest.approx((hv0, hv1))
    # the union front is A (B's points are each dominated by one of A's): IGD+ of A is 0; of B the mean
    # over A's points of the nearest d+ = (sqrt(1/9 + 1/4) + 1/3) / 2
    assert t.loc["1", "igd_plus"] == pytest.approx(0.0)
    assert t.loc["2", "igd_plus"] == pytest.approx((np.sqrt(1 / 9 + 1 / 4) + 1 / 3) / 2)
    assert t.loc["1", "best delta_mtl @ params<=15"] == 1.0 and t.loc["2", "best delta_mtl @ params<=15"] == 0.0
    assert t.loc["1", "best delta_mtl @ params<=25"] == 3.0 and t.loc["2", "best delta_mtl @ params<=25"] == 0.0
    assert cmp.coverage.loc["1", "2"] == 1.0 and cmp.coverage.loc["2", "1"] == 0.0
    assert cmp.coverage.loc["1", "1"] == 1.0
    ps = cmp.per_seed.set_index(["group", "seed"])["hypervolume"]
    assert ps.loc[("1", 0)] == pytest.approx(hv0) and ps.loc[("1", 1)] == pytest.approx(hv1)


def test_two_experiments_seed_0_are_two_seeds():
    a, b = hand_groups(), hand_groups()
    a["experiment"], b["experiment"] = "x", "y"
    b["trial_id"] = "y_" + b["trial_id"]
    cmp = compare_fronts(pd.concat([a, b], ignore_index=True), by="flow_width")
    assert cmp.table.loc["1", "n_seeds"] == 4  # (x, 0), (x, 1), (y, 0), (y, 1): not two merged seeds
    ps = cmp.per_seed[cmp.per_seed["group"] == "1"]
    assert list(zip(ps["experiment"], ps["seed"])) == [("x", 0), ("x", 1), ("y", 0), ("y", 1)]
    assert ps["points"].tolist() == [1, 1, 1, 1]


def test_shared_reference_makes_groups_comparable():
    # the same points measured alone or beside another group get different volumes unless the bounds are shared
    df = hand_groups()
    alone = compare_fronts(df[df["flow_width"] == 1])
    both = compare_fronts(df)
    assert alone.table.loc["1", "hypervolume"] != pytest.approx(both.table.loc["1", "hypervolume"])
    fixed = compare_fronts(df, ref_point=[2.0, 2.0])
    assert fixed.table.loc["2", "hypervolume"] == pytest.approx(2 / 3 * 1.0 + 1.0 * 2.0)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> pd.DataFrame:
    return load_results(write_experiment(tmp_path_factory.mktemp("gen"), seeds=(0, 1, 2)))


@pytest.mark.parametrize("by", ["flow_width", ["lambda_sq", "tau"]])
def test_row_order_changes_nothing(generated, by):
    ref = compare_fronts(generated, by=by)
    for seed in (1, 2):
        shuffled = generated.sample(frac=1.0, random_state=seed)
        got = compare_fronts(shuffled, by=by)
        pd.testing.assert_frame_equal(got.table, ref.table, rtol=1e-12)
        pd.testing.assert_frame_equal(got.coverage, ref.coverage)
        pd.testing.assert_frame_equal(got.per_seed, ref.per_seed, rtol=1e-12)
        for g in ref.groups:
            assert got.fronts[g]["trial_id"].tolist() == ref.fronts[g]["trial_id"].tolist()
        assert pareto_front(shuffled)["trial_id"].tolist() == pareto_front(generated)["trial_id"].tolist()


def test_generated_comparison_is_consistent(generated):
    cmp = compare_fronts(generated, by="flow_width")
    assert cmp.groups == ["1", "2", "3"]
    assert cmp.table["n_seeds"].tolist() == [3, 3, 3]
    # the errored trial is counted in trials but not in points
    assert int((cmp.table["trials"] - cmp.table["points"]).sum()) == 1
    # pooling seeds can only add volume; diagonal of the coverage matrix is 1
    assert (cmp.table["hypervolume"] >= cmp.table["hv_seed_max"] - 1e-12).all()
    assert np.diag(cmp.coverage.to_numpy()).tolist() == [1.0, 1.0, 1.0]
    assert cmp.budgets and all(len(v) == 3 for v in cmp.budgets.values())
    # each group's front rows are on the front of that group's own points
    for g in cmp.groups:
        assert set(cmp.fronts[g]["trial_id"]) == set(pareto_front(cmp.points[g])["trial_id"])


def test_single_task_ensemble(generated):
    ens = single_task_ensemble(generated).set_index("seed")
    assert ens.index.tolist() == [0, 1, 2] and (ens["delta_mtl"] == 0).all()
    st = generated[(generated["mode"] == "single_task") & (generated["seed"] == 0)]
    assert ens.loc[0, "params_union"] == st["params_union"].sum()
    seg = st[st["baseline_task"] == "segmentation"]
    assert ens.loc[0, "metric/segmentation/miou"] == seg["metric/segmentation/miou"].iloc[0]
    # an early-stopped baseline is no part of the ensemble: seed 0 is left out
    stopped = generated.copy()
    stopped.loc[seg.index, "status"] = "early_stopped"
    assert single_task_ensemble(stopped)["seed"].tolist() == [1, 2]


def test_objective_parsing_and_errors(generated):
    objs = parse_objectives("delta_mtl,params,metric/depth/abs_err,flops:max", generated)
    assert [(o.column, o.sense) for o in objs] == [
        ("delta_mtl", "max"),
        ("params_union", "min"),
        ("metric/depth/abs_err", "min"),
        ("flops_multitask", "max"),
    ]
    with pytest.raises(AnalysisError, match="no column 'nope'"):
        parse_objectives("nope:max", generated)
    with pytest.raises(AnalysisError, match="no known sense"):
        parse_objectives(["node"], generated)
    with pytest.raises(AnalysisError, match="cannot group by"):
        compare_fronts(generated, by="width")
    with pytest.raises(AnalysisError, match="no valid supernet trials"):
        compare_fronts(generated[generated["mode"] != "supernet"])
    with pytest.raises(AnalysisError, match="budget on 'latency'"):
        compare_fronts(generated, budgets={"latency": [1.0]})


def test_usable_rows_are_valid_and_not_flagged():
    df = hand_groups().assign(learned=[True, False, None, True, True, True, True, *[True] * (len(hand_groups()) - 7)])
    kept = usable_rows(df)["trial_id"].tolist()
    assert "a2" not in kept and "bx" not in kept  # flagged learned == False; not valid
    assert "b1" in kept  # a null flag (a trial without final metrics to judge) is not a flag
    assert usable_rows(df.drop(columns=["learned", "is_valid"]))["trial_id"].tolist() == df["trial_id"].tolist()
