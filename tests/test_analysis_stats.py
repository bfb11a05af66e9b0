"""Statistics of fronts across seeds: rank tests, attainment surfaces, EAF differences, the answer, ablation effects.

Hand-made sets with answers written down here; the answer sentence on generated sweeps where the
method clearly wins, clearly loses, or has too few seeds.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import write_experiment

from analysis import load_results
from analysis.effects import ablation_measures, effect_table, kept_edges, search_time
from analysis.stats import (
    attainment_surface,
    compare_samples,
    eaf_data,
    eaf_difference,
    mann_whitney_test,
    median_surface,
    min_p_value,
    search_vs_random,
    seed_hypervolumes,
    wilcoxon_test,
)

# ----------------------------------------------------------------------------- rank tests


def test_wilcoxon_hand_computed():
    # differences 0.1, 0.2, 0.3, 0.4, 0.5, -0.15: |d| ranks 1, 3, 4, 5, 6 positive and 2 negative, so
    # T- = 2, T+ = 19. Exact two-sided p = 2 * #{subsets of 1..6 with sum <= 2} / 2^6 = 2 * 3 / 64.
    b = np.array([0.5, 0.4, 0.3, 0.2, 0.1, 0.6])
    a = b + np.array([0.1, 0.2, 0.3, 0.4, 0.5, -0.15])
    t = wilcoxon_test(a, b)
    assert t.test == "Wilcoxon signed-rank" and t.paired and t.n == 6
    assert t.statistic == 2.0 and t.p_value == pytest.approx(6 / 64)
    assert t.effect == pytest.approx((19 - 2) / 21)  # matched-pairs rank-biserial
    assert wilcoxon_test(b, a).effect == pytest.approx(-(19 - 2) / 21)  # sign follows the direction
    assert t.min_p == pytest.approx(2 / 64) and t.decidable


def test_wilcoxon_ties_and_zero_differences():
    same = wilcoxon_test(np.ones(6), np.ones(6))
    assert same.p_value == 1.0 and same.effect == 0.0
    # one zero difference is dropped: 6 positive pairs left, all ranks positive -> p = 2 / 2^6, r = 1
    t = wilcoxon_test(np.arange(7.0), np.zeros(7))
    assert t.p_value == pytest.approx(2 / 64) and t.effect == 1.0 and t.n == 7


def test_mann_whitney_hand_computed():
    # a = 3, 4, 5 and b = 1, 2, 6: a is larger in 6 of 9 pairs, so U = 6 and Cliff's delta = (6 - 3) / 9.
    # U for 3 + 3 takes 0..9 with counts 1,1,2,3,3,3,3,2,1,1 over C(6,3) = 20: P(U >= 6) = 7/20, p = 0.7.
    t = mann_whitney_test([3, 4, 5], [1, 2, 6])
    assert t.test == "Mann-Whitney U" and not t.paired and t.n == (3, 3)
    assert t.statistic == 6.0 and t.p_value == pytest.approx(0.7) and t.effect == pytest.approx(1 / 3)
    assert t.min_p == pytest.approx(0.1) and not t.decidable


@pytest.mark.parametrize(
    "paired, n, expected",
    [
        (True, 5, 2 / 32),
        (True, 6, 2 / 64),
        (True, 1, 1.0),
        (False, (3, 3), 2 / 20),
        (False, (4, 4), 2 / 70),
        (False, (0, 4), 1.0),
    ],
)
def test_min_p_value(paired, n, expected):
    assert min_p_value(paired, n) == pytest.approx(expected)


def test_compare_samples_pairs_only_the_same_seeds():
    a = {0: 1.0, 1: 2.0, 2: 3.0}
    assert compare_samples(a, {0: 0.5, 1: 1.5, 2: 2.5}).test == "Wilcoxon signed-rank"
    assert compare_samples(a, {0: 0.5, 1: 1.5, 3: 2.5}).test == "Mann-Whitney U"
    # pairing is by seed, not by order
    t = compare_samples({0: 1.0, 1: 5.0}, {1: 4.0, 0: 2.0})
    assert t.effect == 0.0  # one seed each way, equal ranks


# ----------------------------------------------------------------------------- attainment


def test_median_surface_of_hand_sets():
    # three seeds: {(1,3), (3,1)}, {(2,2)}, {(0,4)}. A point is attained by a seed when one of its points
    # is <= it in both objectives. Median = attained by >= 2 of 3 seeds: (1,4), (2,3), (3,2).
    y = np.array([[1, 3], [3, 1], [2, 2], [0, 4], [np.nan, 0]], float)
    sets = np.array([0, 0, 1, 2, 2])  # the NaN row is skipped
    np.testing.assert_array_equal(median_surface(y, sets), [[1, 4], [2, 3], [3, 2]])
    np.testing.assert_array_equal(attainment_surface(y, sets, 1), [[0, 4], [1, 3], [2, 2], [3, 1]])
    np.testing.assert_array_equal(attainment_surface(y, sets, 3), [[2, 4]])
    assert attainment_surface(y, sets, 4).shape == (0, 2)
    # a fourth seed with no finite point still counts: median = attained by >= 2 of 4, the same surface
    np.testing.assert_array_equal(median_surface(y, sets, n_sets=4), [[1, 4], [2, 3], [3, 2]])
    # with 6 seeds, 3 are needed: only (2,4)
    np.testing.assert_array_equal(median_surface(y, sets, n_sets=6), [[2, 4]])


def test_median_of_two_seeds_is_their_union_front():
    y = np.array([[1, 3], [3, 1], [2, 2]], float)
    np.testing.assert_array_equal(median_surface(y, [5, 5, 9]), [[1, 3], [2, 2], [3, 1]])


def _diff_at(rects: np.ndarray, x: float, y: float) -> float:
    """The EAF difference at a point: the value of the rectangle holding it (0 outside all)."""
    inside = (rects[:, 0] <= x) & (x < rects[:, 2]) & (rects[:, 1] <= y) & (y < rects[:, 3])
    assert inside.sum() <= 1, "rectangles overlap"
    return float(rects[inside, 4].sum())


def test_eaf_difference_hand_sets():
    # A: seed 0 {(1,3), (3,1)}, seed 1 {(2,2)}, seed 2 {(0,0)} (no partner in B: left out).
    # B: seeds 0 and 1 both {(2.5, 2.5)}.
    ya = np.array([[1, 3], [3, 1], [2, 2], [0, 0]], float)
    sa = np.array([0, 0, 1, 2])
    yb = np.array([[2.5, 2.5], [2.5, 2.5]])
    sb = np.array([0, 1])
    rects, n = eaf_difference(ya, sa, yb, sb)
    assert n == 2 and (np.abs(rects[:, 4]) <= 1).all() and (rects[:, 4] != 0).all()
    assert _diff_at(rects, 1.5, 3.5) == pytest.approx(0.5)  # A: seed 0 of 2; B: none
    assert _diff_at(rects, 2.2, 2.2) == pytest.approx(0.5)  # A: seed 1; B: none
    assert _diff_at(rects, 2.7, 2.7) == pytest.approx(-0.5)  # A: seed 1 only; B: both
    assert _diff_at(rects, 3.5, 3.5) == pytest.approx(0.0)  # everybody
    assert _diff_at(rects, 0.5, 0.5) == pytest.approx(0.0)  # nobody (seed 2 of A is not compared)
    same, _ = eaf_difference(yb, sb, yb, sb)
    assert len(same) == 0


# ----------------------------------------------------------------------------- hypervolumes, hand table


def _hand() -> pd.DataFrame:
    # delta_mtl max, params min; minimise form (-delta, params): ideal (-2, 10), nadir (0, 20) over all groups
    rows = [
        ("s0", "supernet", 0, 2.0, 10),
        ("s1", "supernet", 1, 1.0, 10),
        ("r0", "random_arch", 0, 0.0, 20),
        ("r1", "random_arch", 1, 2.0, 20),
        ("x", "random_arch", 1, 9.0, 1),
    ]
    df = pd.DataFrame(rows, columns=["trial_id", "mode", "seed", "delta_mtl", "params_union"])
    df["experiment"], df["status"] = "hand", "finished"
    df["is_valid"] = df["trial_id"] != "x"  # an errored trial that would dominate everything
    return df


def test_seed_hypervolumes_share_one_normalisation():
    hv = seed_hypervolumes(_hand())
    np.testing.assert_allclose(hv.ideal, [-2, 10])
    np.testing.assert_allclose(hv.nadir, [0, 20])
    got = hv.table.set_index(["group", "seed"])["hypervolume"]
    # normalised: s0 (0, 0), s1 (0.5, 0), r0 (1, 1), r1 (0, 1); reference (1.1, 1.1)
    assert got[("supernet", 0)] == pytest.approx(1.1 * 1.1)
    assert got[("supernet", 1)] == pytest.approx(0.6 * 1.1)
    assert got[("random_arch", 0)] == pytest.approx(0.1 * 0.1)
    assert got[("random_arch", 1)] == pytest.approx(1.1 * 0.1)
    assert hv.groups == ["supernet", "random_arch"]
    assert hv.wide().columns.tolist() == ["supernet", "random_arch"] and hv.wide().index.tolist() == [0, 1]
    summary = hv.summary()
    assert summary["seeds"].tolist() == [2, 2] and summary["hv_max"]["supernet"] == pytest.approx(1.21)
    assert summary["params median"].tolist() == [10, 20] and summary["delta_mtl median"].tolist() == [1.5, 1.0]
    # a hard-sharing point far away widens the shared bounds for everyone
    # (ideal params 5 instead of 10: s0 moves to (0, 1/3))
    far = pd.concat([_hand(), _hand().iloc[[0]].assign(trial_id="h", mode="hard_sharing", params_union=5)])
    assert seed_hypervolumes(far).table["hypervolume"].iloc[0] == pytest.approx(1.1 * (1.1 - 1 / 3))


# ----------------------------------------------------------------------------- the answer, generated sweeps

_SMALL = dict(flow_widths=(1, 2), lambda_sqs=(0.0, 0.1), taus=(0.3,), random_archs=3)


@pytest.mark.parametrize(
    "gain, seeds, verdict, start",
    [
        (-0.05, 6, "better", "Yes: the search beats random architectures of the same size"),
        (+0.05, 6, "worse", "No: random architectures of the same size beat the search"),
        (-0.05, 4, "not decidable", "Not decidable: only 4 paired seeds"),
    ],
)
def test_answer_sentence(tmp_path, gain, seeds, verdict, start):
    df = load_results(write_experiment(tmp_path, seeds=tuple(range(seeds)), random_gain=gain, **_SMALL))
    a = search_vs_random(df)
    assert a.verdict == verdict and a.sentence.startswith(start)
    assert re.search(r"\.\s+[A-Z]", a.sentence) is None and a.sentence.endswith(".")  # one sentence
    assert "Wilcoxon signed-rank" in a.sentence
    if verdict == "not decidable":
        assert "needs at least 6 paired seeds to reach p < 0.05" in a.sentence and "is 0.12 >= alpha" in a.sentence
    else:
        assert "p = 0.031" in a.sentence and "n = 6 paired seeds" in a.sentence
        assert ("r = +1.00" if verdict == "better" else "r = -1.00") in a.sentence
    assert a.test.n == seeds and set(a.hv.groups) == {"supernet", "random_arch", "hard_sharing", "single_task"}
    assert (a.hv.table.groupby("group")["seed"].nunique() == seeds).all()


def test_answer_without_random_rows_or_with_unpaired_seeds(tmp_path):
    df = load_results(write_experiment(tmp_path, seeds=(0, 1, 2), **{**_SMALL, "random_archs": 0}))
    a = search_vs_random(df)
    assert (
        a.verdict == "not decidable" and "no random_arch rows" in a.sentence and "sweep.random_archs: k" in a.sentence
    )
    assert a.test is None and "random_arch" not in a.hv.groups
    # random rows on other seeds than the method's: Mann-Whitney U, and 3 + 3 seeds cannot reach 0.05
    df2 = load_results(write_experiment(tmp_path, name="b", seeds=(0, 1, 2, 3, 4, 5), **_SMALL))
    df2 = df2[
        ~((df2["mode"] == "supernet") & (df2["seed"] >= 3)) & ~((df2["mode"] == "random_arch") & (df2["seed"] < 3))
    ]
    b = search_vs_random(df2)
    assert b.test.test == "Mann-Whitney U" and b.verdict == "not decidable"
    assert "only 3 supernet and 3 random_arch seeds" in b.sentence


def test_answer_no_evidence_says_not_equal():
    # hand values with no consistent direction over 6 paired seeds
    df = pd.DataFrame(
        {
            "trial_id": [f"t{i}" for i in range(12)],
            "mode": ["supernet"] * 6 + ["random_arch"] * 6,
            "seed": list(range(6)) * 2,
            "delta_mtl": [1, 3, 2, 5, 4, 6, 2, 2, 3, 4, 5, 5.5],
            "params_union": [10] * 12,
            "experiment": "e",
            "status": "finished",
            "is_valid": True,
        }
    )
    a = search_vs_random(df)
    assert a.verdict == "no evidence" and a.sentence.startswith("No evidence of a difference at alpha = 0.05")
    assert "does not show that they are equal" in a.sentence and a.test.p_value >= 0.05


def test_eaf_data_natural_units(tmp_path):
    df = load_results(write_experiment(tmp_path, seeds=(0, 1, 2), random_gain=-0.05, **_SMALL))
    d = eaf_data(df)
    assert d.x_label.startswith("params") and d.y_label.startswith("delta_mtl")
    assert set(d.surfaces) == {"supernet", "random_arch", "hard_sharing", "single_task"}
    assert d.seeds["supernet"] == 3 and d.diff_seeds == 3
    for line in d.surfaces.values():  # staircase in (params, delta_mtl): x never falls, y never falls
        assert (np.diff(line[:, 0]) >= 0).all() and (np.diff(line[:, 1]) >= 0).all()
        assert d.xlim[0] <= line[:, 0].min() and line[:, 0].max() <= d.xlim[1]
    # the method wins clearly: the difference favours it (more red than blue area)
    area = (d.diff[:, 2] - d.diff[:, 0]) * (d.diff[:, 3] - d.diff[:, 1])
    assert (area * d.diff[:, 4]).sum() > 0 and np.isfinite(d.diff[:, :4]).all()


# ----------------------------------------------------------------------------- ablation effects


def _spec(n_edges: int) -> dict:
    edges = [[1, 2], [2, 3], [1, 3], [3, 4]][:n_edges]
    return {
        "n_nodes": 4,
        "flow_width": 2,
        "tasks": {
            "a": {"edges": edges, "read_in": [1], "read_out": [4]},
            "b": {"edges": edges[:1], "read_in": [1], "read_out": [2]},
        },
    }


def test_effect_table_hand(tmp_path):
    # tau 0.1: seed 0 has two trials (4 and 2 edges -> its median 3), seed 1 one (4); tau 0.2: 1 and 2 edges
    rows = [
        ("a", 0.1, 0, 4, 1.0),
        ("b", 0.1, 0, 2, 3.0),
        ("c", 0.1, 1, 4, 5.0),
        ("d", 0.2, 0, 1, 0.5),
        ("e", 0.2, 1, 2, 1.5),
    ]
    df = pd.DataFrame(rows, columns=["trial_id", "tau", "seed", "edges", "delta_mtl"])
    paths = []
    for tid, n in zip(df["trial_id"], df["edges"]):
        (tmp_path / tid).mkdir()
        (tmp_path / tid / "arch_spec.json").write_text(json.dumps(_spec(n)))
        paths.append(str(tmp_path / tid / "arch_spec.json"))
    df = df.drop(columns="edges").assign(
        arch_spec_path=paths, mode="supernet", experiment="e", status="finished", is_valid=True
    )
    extra = df.iloc[[0]].assign(trial_id="x", mode="random_arch", delta_mtl=99.0)  # not the method: left out
    bad = df.iloc[[0]].assign(trial_id="y", is_valid=False, delta_mtl=-99.0)  # errored: left out
    df = pd.concat([df, extra, bad], ignore_index=True)
    assert kept_edges(df).tolist()[:5] == [4, 2, 4, 1, 2]
    assert ablation_measures(df, "config/reduction.tau") == ["kept_edges", "delta_mtl"]
    t = effect_table(df, "tau", ["kept_edges", "delta_mtl"])
    assert t.index.tolist() == [0.1, 0.2] and t["trials"].tolist() == [3, 2] and t["seeds"].tolist() == [2, 2]
    assert t["kept_edges median"].tolist() == [3.5, 1.5]  # seeds 3 and 4; seeds 1 and 2
    assert t["kept_edges min"].tolist() == [3, 1] and t["kept_edges max"].tolist() == [4, 2]
    assert t["delta_mtl median"].tolist() == [3.5, 1.0]  # seed medians (2, 5) and (0.5, 1.5)
    # a kept_edges column, when the table has one, is used as it is
    assert effect_table(df.assign(kept_edges=7), "tau", ["kept_edges"])["kept_edges max"].tolist() == [7, 7]


def test_effect_measures_and_search_time():
    df = pd.DataFrame(
        {
            "time/search": [10.0, 12.0, 0.1],
            "reused/search": [False, None, True],
            "config/search.epochs": [2, 4, 2],
            "delta_mtl": [1.0, 2.0, 3.0],
        }
    )
    t = search_time(df)
    assert (
        t.name == "search_s_per_epoch" and t.tolist()[:2] == [5.0, 3.0] and math.isnan(t.iloc[2])
    )  # reused: no search
    plain = search_time(df.drop(columns="config/search.epochs"))
    assert plain.name == "search_s" and plain.tolist()[:2] == [10.0, 12.0]
    assert ablation_measures(df, "flow_width") == ["params_union", "search_s_per_epoch", "delta_mtl"]
    assert ablation_measures(df, "lambda_sq") == ["params_union", "delta_mtl"]
    assert ablation_measures(df, "n_nodes") is None
    metric_only = pd.DataFrame({"metric/depth/abs_err": [0.5], "delta_mtl": [np.nan]})
    assert ablation_measures(metric_only, "tau") == ["kept_edges", "metric/depth/abs_err"]


def test_wilcoxon_tied_pairs_do_not_count_towards_the_smallest_p():
    # 6 pairs, one tied: 5 untied pairs reach at best 2 / 2^5 = 0.0625 >= 0.05, so the test cannot decide
    t = wilcoxon_test(np.array([1.0, 2, 3, 4, 5, 0]), np.zeros(6))
    assert t.n == 6 and t.ties == 1 and t.min_p == pytest.approx(2 / 32) and not t.decidable
    assert t.p_value == pytest.approx(2 / 32)
