"""Topology table, oracle, hit test and paired test on hand-made planted results (values computed by hand)."""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest
from analysis_fixtures import write_experiment, write_results

from analysis.load import AnalysisError, load_results
from analysis.topology import (
    collapsed_count,
    has_planted,
    has_topology,
    hit_p_value,
    hit_test_table,
    hit_tests,
    oracle_comparison,
    oracles,
    paired_test_table,
    paired_tests,
    poisson_binomial_sf,
    sharing_comparisons,
    topology_table,
)

SENSES = {"abs_err": "min", "miou": "max"}
ORACLE_DEPTH = (0.364, 0.311, 0.227, 0.0)  # k = 0, 1, 2, >= 3


def _row(
    tid: str,
    mode: str,
    seed: int,
    depth_path: int,
    *,
    seg_path: int = 0,
    p_deep=(0.1, 0.2, 0.4, 0.3),
    err: float = 0.1,
    warm: float = 0.2,
    tau: float = 0.15,
    draw: int | None = None,
) -> dict:
    """One trial of a two-task planted benchmark on N = 4 nodes: seg is local (K = 0), depth needs K = 3.
    ``p_deep`` = the null P(L = 0..3) of depth's kept size (P(L >= 3) = 0.3 by default)."""
    row = {
        "experiment": "e",
        "trial_id": tid,
        "status": "finished",
        "is_valid": True,
        "mode": mode,
        "seed": seed,
        "config/trial.seed": seed,
        "config/reduction.tau": tau,
        "config/trial.mode": mode,
        "config/trial.random_draw": draw,
        "collapsed": float(depth_path == 0 and seg_path == 0),
        "needs_edges/depth": 3,
        "needs_edges/seg": 0,
        "oracle/seg/miou/0": 1.0,
        "metric/depth/abs_err": err,
        "metric/seg/miou": 0.9,
        "quality/warmup/depth/abs_err": warm,
        "null/depth/exact": 1.0,
        "null/seg/exact": 1.0,
    }
    for task, path, other in (("depth", depth_path, "seg"), ("seg", seg_path, "depth")):
        row |= {
            f"topo/{task}/edges": path,
            f"topo/{task}/longest_path": path,
            f"topo/{task}/read_in": 1,
            f"topo/{task}/read_out": 1,
            f"topo/{task}/shared/{other}": 1,
        }
    row |= {f"null/depth/longest_path/{n}": p for n, p in enumerate(p_deep)}
    row |= {f"null/seg/longest_path/{n}": float(n == 0) for n in range(4)}
    row |= {f"oracle/depth/abs_err/{k}": v for k, v in enumerate(ORACLE_DEPTH)}
    return row


def _frame(rows: list[dict], senses: dict = SENSES) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.attrs["metric_senses"] = dict(senses)
    return df


def _planted(paths=(3, 3, 3, 3, 3, 1), errs=(0.05,) * 6, random_errs=((0.2, 0.3),) * 6, **kw) -> pd.DataFrame:
    rows = [_row(f"m{s}", "supernet", s, p, err=e, **kw) for s, (p, e) in enumerate(zip(paths, errs))]
    for s, draws in enumerate(random_errs):
        rows += [_row(f"r{s}_{d}", "random_arch", s, 1, err=e, draw=d) for d, e in enumerate(draws)]
    return _frame(rows)


def _brute_force_tail(p0, k) -> float:
    """P(hits >= k) summed over all 2**n outcomes."""
    total = 0.0
    for outcome in itertools.product((0, 1), repeat=len(p0)):
        if sum(outcome) >= k:
            total += math.prod(p if o else 1 - p for p, o in zip(p0, outcome))
    return total


# ----------------------------------------------------------------------------- kernels


def test_five_hits_of_six_at_p0_point3_is_the_binomial_tail():
    p, test = hit_p_value([0.3] * 6, 5)
    assert test == "exact binomial"
    assert p == pytest.approx(6 * 0.3**5 * 0.7 + 0.3**6)  # 0.010935


def test_unequal_p0_is_the_poisson_binomial_tail_by_brute_force():
    p0 = [0.1, 0.35, 0.5, 0.8, 0.25]
    for k in range(6):
        assert poisson_binomial_sf(p0, k) == pytest.approx(_brute_force_tail(p0, k))
    p, test = hit_p_value(p0, 4)
    assert test == "exact Poisson-binomial" and p == pytest.approx(_brute_force_tail(p0, 4))
    assert poisson_binomial_sf(p0, 0) == pytest.approx(1.0)
    # a seed whose p0 is 1 is a sure hit under the null too: it moves the tail by one
    assert hit_p_value([1.0, 0.3, 0.3], 3)[0] == pytest.approx(0.09)


# ----------------------------------------------------------------------------- hit test


def test_hit_test_counts_hits_and_tests_them_against_the_null():
    (t,) = hit_tests(_planted())
    assert (t.task, t.needs_edges, t.setting) == ("depth", 3, "reduction.tau=0.15")
    assert t.hits == 5 and t.n == 6 and t.table["p0"].tolist() == pytest.approx([0.3] * 6)
    assert t.p_value == pytest.approx(0.010935) and t.verdict == "beats chance" and not t.reasons
    assert t.local_shorter is True and t.table["local_longest"].tolist() == [0.0] * 6
    assert t.sentence.startswith("Yes: depth (needs 3 edges) kept a path of >= 3 edges in 5 of 6 seeds")
    row = hit_test_table([t]).iloc[0]
    assert row["hits"] == 5 and row["verdict"] == "beats chance" and row["p0"] == ", ".join(["0.3"] * 6)


def test_hit_test_with_unequal_p0_per_seed_uses_each_trials_null():
    p_deeps = [(0.5, 0.2, 0.2, 0.1), (0.1, 0.2, 0.3, 0.4), (0.2, 0.3, 0.3, 0.2)] * 2
    rows = [_row(f"m{s}", "supernet", s, 3 if s < 5 else 2, p_deep=pd_) for s, pd_ in enumerate(p_deeps)]
    (t,) = hit_tests(_frame(rows))
    p0 = [0.1, 0.4, 0.2, 0.1, 0.4, 0.2]
    assert t.table["p0"].tolist() == pytest.approx(p0) and t.test == "exact Poisson-binomial"
    assert t.p_value == pytest.approx(_brute_force_tail(p0, 5))


def test_a_local_task_as_deep_as_the_deep_one_is_reported():
    rows = [_row(f"m{s}", "supernet", s, 3, seg_path=3 if s == 4 else 1) for s in range(6)]
    (t,) = hit_tests(_frame(rows))
    assert t.local_shorter is False and t.table["local_shorter"].tolist() == [True] * 4 + [False, True]
    assert "a local task kept a path as long as it" in t.sentence


def test_hit_test_is_not_decidable_when_the_warmup_did_not_beat_the_k0_bound():
    rows = [_row(f"m{s}", "supernet", s, 3, warm=0.40 if s == 2 else 0.2) for s in range(6)]
    (t,) = hit_tests(_frame(rows))
    assert t.verdict == "not decidable" and len(t.reasons) == 1
    assert "did not beat the k = 0 oracle bound (abs_err 0.364) in seed(s) 2 (0.4)" in t.reasons[0]
    assert t.sentence.startswith("Not decidable: the warm-up supernet")
    rows[0]["quality/warmup/depth/abs_err"] = math.nan
    assert "not recorded" in hit_tests(_frame(rows))[0].reasons[-1]
    # equal to the bound is not beating it
    assert (
        hit_tests(_frame([_row(f"m{s}", "supernet", s, 3, warm=0.364) for s in range(6)]))[0].verdict == "not decidable"
    )


def test_hit_test_is_not_decidable_when_every_p0_is_0_or_1():
    rows = [
        _row(f"m{s}", "supernet", s, 3 if s % 2 else 1, p_deep=(0, 0, 0, 1) if s % 2 else (0.5, 0.5, 0, 0))
        for s in range(6)
    ]
    (t,) = hit_tests(_frame(rows))
    assert t.verdict == "not decidable" and t.table["p0"].tolist() == [0, 1, 0, 1, 0, 1]
    assert "p0 0 or 1 (p0 = 0, 1)" in t.reasons[0] and "sweep tau" in t.reasons[0]


def test_hit_test_is_not_decidable_with_too_few_seeds():
    (t,) = hit_tests(_frame([_row(f"m{s}", "supernet", s, 3) for s in range(2)]))
    assert t.verdict == "not decidable" and t.min_p == pytest.approx(0.09)
    assert "too few seeds" in t.reasons[0] and "at least 3 seeds" in t.reasons[0]  # 0.3**3 = 0.027 < 0.05
    assert t.hits == 2 and t.p_value == pytest.approx(0.09)  # the numbers are still there
    # every reason is listed, not only the first
    (t,) = hit_tests(_frame([_row(f"m{s}", "supernet", s, 3, warm=0.5 if s == 0 else 0.2) for s in range(2)]))
    assert len(t.reasons) == 2 and "warm-up" in t.reasons[0] and "too few seeds" in t.reasons[1]


def test_hit_test_is_not_decidable_without_the_null_distribution():
    rows = [_row(f"m{s}", "supernet", s, 3) for s in range(6)]
    for n in range(4):
        rows[3][f"null/depth/longest_path/{n}"] = math.nan
    (t,) = hit_tests(_frame(rows))
    assert t.verdict == "not decidable" and t.reasons == ["the null distribution of seed(s) 3 is not recorded"]
    assert math.isnan(t.p_value)


def test_hit_tests_split_by_setting_and_skip_invalid_and_other_modes():
    rows = [_row(f"a{s}", "supernet", s, 3, tau=0.05) for s in range(6)]
    rows += [_row(f"b{s}", "supernet", s, 0, tau=0.2) for s in range(6)]
    rows += [_row("bad", "supernet", 7, 3, tau=0.05) | {"is_valid": False, "status": "errored"}]
    rows += [_row("h0", "hard_sharing", 0, 3)]
    tests = hit_tests(_frame(rows))
    assert [(t.setting, t.hits, t.n) for t in tests] == [("reduction.tau=0.05", 6, 6), ("reduction.tau=0.2", 0, 6)]
    assert tests[0].p_value == pytest.approx(0.3**6) and tests[1].verdict == "no evidence"
    with pytest.raises(AnalysisError, match="several supernet trials"):
        hit_tests(_frame(rows + [_row("dup", "supernet", 0, 3, tau=0.05)]))


def test_a_setting_swept_as_null_is_labelled_null():
    rows = [_row(f"a{s}", "supernet", s, 3) | {"config/reduction.refine_tol": None} for s in range(6)]
    rows += [_row(f"b{s}", "supernet", s, 3) | {"config/reduction.refine_tol": 0.3} for s in range(6)]
    tests = hit_tests(_frame(rows))
    assert [t.setting for t in tests] == [
        "reduction.tau=0.15, reduction.refine_tol=null",
        "reduction.tau=0.15, reduction.refine_tol=0.3",
    ]


def test_no_planted_columns_no_tests():
    rows = [
        {k: v for k, v in _row(f"m{s}", "supernet", s, 3).items() if not k.startswith(("needs_edges", "oracle"))}
        for s in range(3)
    ]
    df = _frame(rows)
    assert has_topology(df) and not has_planted(df)
    assert hit_tests(df) == [] and paired_tests(df) == [] and oracles(df) == {}
    assert not has_topology(_frame([{"trial_id": "x", "mode": "supernet", "seed": 0, "topo/seg/edges": None}]))


# ----------------------------------------------------------------------------- paired test


def test_paired_test_one_sided_for_a_min_metric():
    (t,) = paired_tests(_planted())
    assert t.n == 6 and t.table["random"].tolist() == pytest.approx([0.25] * 6) and t.table["draws"].tolist() == [2] * 6
    assert t.table["gain"].tolist() == pytest.approx([0.2] * 6)  # lower error than its draws: gain > 0
    assert t.p_value == pytest.approx(1 / 64) and t.verdict == "better"
    assert t.sentence.startswith("Yes: depth abs_err (min) of the search 0.05 vs its size-matched random draws 0.25")


def test_paired_test_direction_follows_the_metric_sense():
    df = _planted(warm=0.5)  # a warm-up that beats the k = 0 bound when abs_err is read as "max"
    df.attrs["metric_senses"] = {"abs_err": "max", "miou": "max"}  # now the method's lower values are worse
    (t,) = paired_tests(df)
    assert t.table["gain"].tolist() == pytest.approx([-0.2] * 6)
    assert t.p_value == pytest.approx(1.0) and t.verdict == "no evidence"


def test_paired_test_p_value_by_hand():
    # gains 0.03, -0.01, 0.02, 0.04, 0.05, 0.06: ranks 3, 1, 2, 4, 5, 6; T+ = 20 of 21; P(T+ >= 20) = 2 / 64
    errs = [0.2 - g for g in (0.03, -0.01, 0.02, 0.04, 0.05, 0.06)]
    (t,) = paired_tests(_planted(errs=errs, random_errs=((0.2,),) * 6))
    assert t.statistic == pytest.approx(20) and t.p_value == pytest.approx(2 / 64)
    assert paired_test_table([t]).iloc[0]["wins"] == 5


def test_paired_test_not_decidable_without_random_draws_or_with_too_few_pairs():
    (t,) = paired_tests(_planted(random_errs=()))
    assert (
        t.verdict == "not decidable" and "no random_arch rows" in t.reasons[0] and "sweep.random_archs" in t.reasons[0]
    )
    (t,) = paired_tests(_planted(random_errs=((0.2,),) * 4))  # 4 pairs: 1/16 = 0.0625 at best
    assert t.n == 4 and "too few seeds" in t.reasons[0] and "at least 5" in t.reasons[0]
    (t,) = paired_tests(_planted(random_errs=((0.2,),) * 5))
    assert t.n == 5 and t.verdict == "better" and t.p_value == pytest.approx(1 / 32)
    # 5 pairs, one tied (method and draw both 0.2): 4 untied pairs reach at best 1/16
    (t,) = paired_tests(_planted(errs=(0.05,) * 4 + (0.2,), random_errs=((0.2,),) * 5))
    assert t.n == 5 and t.min_p == pytest.approx(1 / 16) and t.verdict == "not decidable"
    assert "1 tied" in t.reasons[0] and "at least 5 untied" in t.reasons[0]


def test_paired_test_pairs_draws_of_the_same_setting_only():
    rows = [_row(f"m{s}", "supernet", s, 3, err=0.05) for s in range(6)]
    rows += [_row(f"r{s}", "random_arch", s, 1, err=0.3, draw=0) for s in range(6)]
    rows += [_row(f"o{s}", "random_arch", s, 1, err=0.01, draw=0, tau=0.5) for s in range(6)]  # another setting
    (t,) = paired_tests(_frame(rows))
    assert t.table["random"].tolist() == pytest.approx([0.3] * 6) and t.verdict == "better"


# ----------------------------------------------------------------------------- oracle


def test_oracle_table_and_bounds_of_the_kept_path():
    df = _planted(paths=(3, 2, 5, 0, 3, 3), errs=(0.05, 0.3, 0.1, 0.4, 0.2, 0.09))
    cmp = oracle_comparison(df)
    table = cmp.oracle.set_index("task")
    assert list(table.columns) == ["needs_edges", "metric", "sense", "k=0", "k=1", "k=2", "k>=3"]
    assert table.loc["depth", ["k=0", "k=1", "k=2", "k>=3"]].tolist() == list(ORACLE_DEPTH)
    assert table.loc["seg", ["k=0", "k>=3"]].tolist() == [1.0, 1.0]  # a one-entry oracle holds for every k
    m = cmp.gaps[(cmp.gaps["mode"] == "supernet") & (cmp.gaps["task"] == "depth")].set_index("trial_id")
    assert m["bound"].tolist() == [0.0, 0.227, 0.0, 0.364, 0.0, 0.0]  # path 5 > last k: the last bound holds
    # tolerance: 25% of the bound, or of the k = 0 bound (0.364) where the bound is 0
    assert m["tolerance"].tolist() == pytest.approx([0.091, 0.05675, 0.091, 0.091, 0.091, 0.091])
    assert m["excess"].tolist() == pytest.approx([0.05, 0.073, 0.1, 0.036, 0.2, 0.09])
    assert m["within"].tolist() == [True, False, False, True, False, True]
    assert (
        "depth (abs_err) is within 25% of the oracle bound of the path it kept in 3 of 6 supernet trials"
        in cmp.sentence
    )


def test_oracle_that_differs_between_trials_is_an_error():
    df = _planted()
    df.loc[0, "oracle/depth/abs_err/1"] = 0.5
    with pytest.raises(AnalysisError, match="mixes data sets"):
        oracles(df)


# ----------------------------------------------------------------------------- topology table


def test_topology_table_one_row_per_trial_and_task_with_shared_ops_and_collapse():
    rows = [_row("m0", "supernet", 0, 3), _row("m1", "supernet", 1, 0), _row("r0", "random_arch", 0, 2, draw=0)]
    rows[2]["topo/seg/shared/depth"] = rows[2]["topo/depth/shared/seg"] = 2
    rows.append({"experiment": "e", "trial_id": "x", "status": "errored", "mode": "supernet", "seed": 2})
    table = topology_table(_frame(rows))
    assert len(table) == 6 and "x" not in set(table["trial_id"])  # no topology: no rows
    assert {"reduction.tau", "trial.random_draw", "shared/seg", "shared/depth", "collapsed"} <= set(table.columns)
    depth = table[table["task"] == "depth"].set_index("trial_id")
    assert depth.loc["m0", "longest_path"] == 3 and depth.loc["r0", "shared/seg"] == 2
    assert pd.isna(depth.loc["m0", "shared/depth"])  # a task shares nothing with itself
    assert depth.index.tolist() == ["m0", "m1", "r0"]  # the method first, then its random draws
    assert depth["collapsed"].tolist() == [False, True, False]
    count = collapsed_count(_frame(rows))
    assert count.trials == ["m1"]
    assert count.sentence == "Collapsed (every task keeps 0 edges): 1 of 2 supernet, 0 of 1 random_arch trials."


def test_collapse_is_derived_from_kept_edges_when_the_flag_is_absent():
    rows = [_row("m0", "supernet", 0, 0), _row("m1", "supernet", 1, 2)]
    for r in rows:
        del r["collapsed"]
    assert collapsed_count(_frame(rows)).trials == ["m0"]
    assert topology_table(_frame(rows)).groupby("trial_id")["collapsed"].first().tolist() == [True, False]


# ----------------------------------------------------------------------------- report


# ----------------------------------------------------------------------------- against hard sharing


def _pair(seed: int, method: tuple, shared: tuple, tau: float = 0.15) -> list[dict]:
    """A supernet trial and a hard-sharing baseline of one seed, each (depth abs_err, seg miou, params)."""
    rows = []
    for mode, (err, miou, params) in (("supernet", method), ("hard_sharing", shared)):
        rows.append(
            {
                "experiment": "e",
                "trial_id": f"{mode}{seed}",
                "status": "finished",
                "is_valid": True,
                "mode": mode,
                "seed": seed,
                "config/reduction.tau": tau if mode == "supernet" else math.nan,
                "metric/depth/abs_err": err,
                "metric/seg/miou": miou,
                "params_union": params,
            }
        )
    return rows


METRICS = {"depth": "abs_err", "seg": "miou"}


def test_against_hard_sharing_each_task_in_its_sense_and_the_parameters_by_hand():
    rows = _pair(0, (0.09, 0.92, 16_000), (0.10, 0.90, 17_000))  # better on both, smaller: holds
    rows += _pair(1, (0.11, 0.92, 16_000), (0.10, 0.90, 17_000))  # depth error higher: not every task
    rows += _pair(2, (0.09, 0.89, 16_000), (0.10, 0.90, 17_000))  # seg miou lower: not every task
    rows += _pair(3, (0.09, 0.92, 17_001), (0.10, 0.90, 17_000))  # one parameter more
    rows += _pair(4, (0.10, 0.90, 17_000), (0.10, 0.90, 17_000))  # equal everywhere: at or above
    (c,) = sharing_comparisons(_frame(rows), METRICS)
    t = c.table.set_index("seed")
    assert t["holds"].tolist() == [True, False, False, False, True]
    assert t["every_task"].tolist() == [True, False, False, True, True]
    assert t["no_more_params"].tolist() == [True, True, True, False, True]
    assert t["depth/at_least"].tolist() == [True, False, True, True, True]
    assert t["seg/at_least"].tolist() == [True, True, False, True, True]
    assert t.loc[3, "params_union"] == 17_001 and t.loc[3, "params_union/hard_sharing"] == 17_000
    assert c.sentence.startswith(
        "The search is at or above hard sharing on every task at no more parameters in 2 of 5 seeds at "
        "reduction.tau=0.15 (every task: 3 of 5; no more parameters: 4 of 5)."
    )
    assert "depth abs_err 0.09 vs 0.1" in c.sentence and "parameters 16,000 vs 17,000" in c.sentence


def test_against_hard_sharing_a_missing_metric_is_never_at_least_and_unpaired_seeds_drop():
    rows = _pair(0, (math.nan, 0.92, 16_000), (0.10, 0.90, 17_000))
    rows += _pair(1, (0.09, 0.92, 16_000), (0.10, 0.90, 17_000))[:1]  # no baseline for seed 1
    rows += [dict(r, status="errored", is_valid=False) for r in _pair(2, (0.09, 0.92, 1), (0.1, 0.9, 9))]
    (c,) = sharing_comparisons(_frame(rows), METRICS)
    assert c.table["seed"].tolist() == [0] and not c.table["depth/at_least"].iloc[0] and not c.table["holds"].iloc[0]


def test_against_hard_sharing_per_setting_and_none_without_a_baseline():
    rows = _pair(0, (0.09, 0.92, 16_000), (0.10, 0.90, 17_000), tau=0.1)
    rows += [dict(r, trial_id="other") for r in _pair(0, (0.2, 0.92, 16_000), (0, 0, 0), tau=0.2)[:1]]
    by = {c.setting: c.table["holds"].tolist() for c in sharing_comparisons(_frame(rows), METRICS)}
    assert by == {"reduction.tau=0.1": [True], "reduction.tau=0.2": [False]}
    alone = [r for r in rows if r["mode"] == "supernet"]
    assert sharing_comparisons(_frame(alone), METRICS) == []
    twice = rows + [dict(rows[1], trial_id="again")]
    with pytest.raises(AnalysisError, match="several hard-sharing baselines"):
        sharing_comparisons(_frame(twice), METRICS)


def test_the_report_section_sums_up_many_settings_and_says_why_it_is_not_computed():
    from analysis.report import MAX_SENTENCES, _sharing_sections

    rows = _pair(0, (0.11, 0.92, 16_000), (0.10, 0.90, 17_000), tau=0.1)
    for i in range(1, MAX_SENTENCES + 1):  # a setting per trial, as a sampled search makes
        method = _pair(0, (0.09 if i % 2 else 0.11, 0.92, 16_000), (0, 0, 0), tau=0.1 + i / 100)[0]
        rows.append(dict(method, trial_id=f"supernet0_{i}"))
    (section,) = _sharing_sections(_frame(rows))
    assert section.blocks[0] == (
        f"**Over {MAX_SENTENCES + 1} settings, the search is at or above hard sharing on every task at no more "
        f"parameters in 4 of 9 (setting, seed) pairs (every task: 4 of 9; no more parameters: 9 of 9).**"
    )
    (section,) = _sharing_sections(_frame(rows[:2], senses={}))  # a table without metric senses
    assert section.tables == [] and section.blocks[0].startswith("(not computed: metric 'abs_err' has no known sense")


def _sections(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("## ")]


def test_report_has_the_planted_sections_after_the_answer_and_a_topology_table(tmp_path):
    from analysis import write_report

    # one method setting, so that every random draw pairs with the method trial of its seed
    exp = write_experiment(
        tmp_path, seeds=tuple(range(6)), flow_widths=(1,), lambda_sqs=(0.0,), taus=(0.0,), random_archs=1, planted=True
    )
    out = write_report(exp, by="flow_width")
    md = (out / "report.md").read_text()
    sections = _sections(md)
    assert sections[:5] == [
        "## Does the search beat random architectures?",
        "## Oracle: the best a path of k edges can reach",
        "## Does the search keep the path a task needs?",
        "## Is the task that needs depth better than its size-matched random draws?",
        "## Against hard sharing at no more parameters",
    ]
    assert "## Topology" in sections
    topo = md.split("## Topology")[1].split("\n## ")[0]
    # the fixture's last supernet trial errored and the one before stopped early: neither kept a topology
    assert "**Collapsed (every task keeps 0 edges): 0 of 4 supernet, 0 of 6 random_arch trials.**" in topo
    assert "| trial_id | mode | seed |" in topo and "shared/depth" in topo
    df = load_results(exp)
    hits = pd.read_csv(out / "hit_test.csv")
    assert hits["task"].tolist() == ["depth"] and hits["seeds"].tolist() == [4]
    expected = hit_tests(df)[0]
    assert hits["hits"].iloc[0] == expected.hits and hits["p_value"].iloc[0] == pytest.approx(expected.p_value)
    assert f"**{expected.sentence}**" in md
    paired = pd.read_csv(out / "paired_test.csv")
    assert paired["pairs"].tolist() == [5] and paired["metric"].tolist() == ["abs_err"]  # the early-stopped one too
    assert len(pd.read_csv(out / "topology.csv")) == 3 * 10  # 3 tasks of 4 method and 6 random trials
    oracle = pd.read_csv(out / "oracle.csv", index_col="task")
    assert oracle.loc["depth", "k>=2"] == 0.5 and oracle.loc["segmentation", "k=0"] == 0.3
    sharing = pd.read_csv(out / "against_hard_sharing.csv")
    assert len(sharing) == 5 and set(sharing["seed"]) <= set(range(6))  # the finished supernet trials' seeds
    for name in ("oracle_gaps", "hit_seeds", "paired_seeds", "against_hard_sharing"):
        assert (out / f"{name}.csv").is_file() and f"`{name}.csv`" in md


def test_report_without_topology_columns_is_as_before(tmp_path):
    from analysis import write_report

    exp = write_experiment(tmp_path, seeds=(0, 1))
    out = write_report(exp, by="flow_width")
    md = (out / "report.md").read_text()
    assert not [s for s in _sections(md) if s.startswith(("## Oracle", "## Does the search keep", "## Is the task"))]
    topo = md.split("## Topology")[1].split("\n## ")[0]
    assert "![topology](" in topo and "Collapsed" not in topo
    assert not [p for p in ("topology", "oracle", "hit_test", "paired_test") if (out / f"{p}.csv").exists()]


def test_report_with_topology_but_no_planted_structure_has_the_table_only(tmp_path):
    from analysis import write_report

    exp = write_experiment(tmp_path, seeds=(0, 1), planted=True)
    df = pd.read_parquet(exp / "results.parquet")
    df = df.drop(columns=[c for c in df.columns if c.startswith(("needs_edges/", "oracle/"))])
    df.loc[df["trial_id"] == "supernet_0001", "collapsed"] = 1.0
    write_results(df, exp / "results.parquet")
    md = (write_report(exp, by="flow_width") / "report.md").read_text()
    assert "## Oracle: the best a path of k edges can reach" not in md
    n_method = int(((df["mode"] == "supernet") & (df["status"] == "finished")).sum())
    assert f"**Collapsed (every task keeps 0 edges): 1 of {n_method} supernet trials.**" in md
    topo = md.split("## Topology")[1].split("\n## ")[0]
    flagged = [line for line in topo.splitlines() if line.startswith("| supernet_0001 |")]
    assert len(flagged) == 3 and all(line.endswith("| **collapsed** |") for line in flagged)  # one row per task
