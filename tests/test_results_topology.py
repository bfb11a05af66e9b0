"""The topology, null-distribution and planted figures of summary.json become typed results columns."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pyarrow as pa
import pytest

pytest.importorskip("ray")

from analysis import schema  # noqa: E402
from tune.results import flatten_summary, results_table, summary_keys, trial_row  # noqa: E402


def _summary(**extra) -> dict:
    return {
        "latency_ms": 1.0,
        "params": {"supernet": 10, "union": 5, "per_task": {"seg": 5, "depth": 5}},
        "flops": {"multitask": 7, "per_task": {"seg": 7, "depth": 7}},
        "val_loss": {"seg": 0.5, "depth": 0.25},
        "metrics": {"seg": {"miou": 0.5}, "depth": {"abs_err": 0.2}},
        "timings": {"warmup": 1.0},
        "reused": {"warmup": False},
        **extra,
    }


PLANTED = {
    "topology": {
        "seg": {"edges": 0, "longest_path": 0, "read_in": 1, "read_out": 1, "shared": {"depth": 1}},
        "depth": {"edges": 3, "longest_path": 3, "read_in": 1, "read_out": 1, "shared": {"seg": 1}},
    },
    "collapsed": False,
    "null_longest_path": {
        "seg": {"probs": [1.0, 0.0, 0.0, 0.0], "exact": True, "n_archs": 4},
        "depth": {"probs": [0.0, 0.25, 0.25, 0.5], "exact": False, "n_archs": 1000},
    },
    "planted": {
        "needs_edges": {"seg": 0, "depth": 3},
        "oracle": {
            "seg": {"metric": "miou", "sense": "max", "by_edges": [1.0]},
            "depth": {"metric": "abs_err", "sense": "min", "by_edges": [0.364, 0.311, 0.227, 0.0]},
        },
    },
}


def test_flatten_summary_names_every_topology_null_and_planted_figure():
    flat = flatten_summary(_summary(**PLANTED))
    assert flat["topo/depth/edges"] == 3 and flat["topo/depth/longest_path"] == 3 and flat["topo/seg/read_out"] == 1
    assert flat["topo/seg/shared/depth"] == 1 and flat["topo/depth/shared/seg"] == 1
    assert flat["collapsed"] == 0.0
    assert [flat[f"null/depth/longest_path/{n}"] for n in range(4)] == [0.0, 0.25, 0.25, 0.5]
    assert flat["null/depth/exact"] == 0.0 and flat["null/seg/exact"] == 1.0
    assert flat["needs_edges/depth"] == 3 and flat["needs_edges/seg"] == 0
    assert flat["oracle/depth/abs_err/2"] == 0.227 and flat["oracle/seg/miou/0"] == 1.0
    assert "oracle/seg/miou/1" not in flat  # the oracle's last entry holds beyond: nothing is invented


def test_flatten_summary_without_these_keys_adds_none_of_their_columns():
    flat = flatten_summary(_summary())
    prefixes = (schema.TOPO, schema.NULL, schema.NEEDS_EDGES, schema.ORACLE)
    assert not [k for k in flat if k.startswith(prefixes) or k == schema.COLLAPSED]
    assert flatten_summary(_summary(collapsed=True))["collapsed"] == 1.0


def test_summary_keys_list_the_new_columns_bounded_by_n_nodes():
    keys = summary_keys(["seg", "depth"], ["seg/miou", "depth/abs_err"], n_nodes=4, planted=True)
    flat = flatten_summary(_summary(**PLANTED))
    # every new figure of a 4-node planted trial is a key of every report (progress.csv keeps one header)
    new = {k for k in flat if k.startswith((schema.TOPO, schema.NULL, schema.NEEDS_EDGES, schema.ORACLE))}
    assert new <= set(keys) and "collapsed" in keys
    assert "null/depth/longest_path/4" not in keys and "oracle/depth/abs_err/3" in keys
    assert all(math.isnan(v) for v in keys.values())
    plain = summary_keys(["seg"], ["seg/miou"], n_nodes=4)
    assert "topo/seg/edges" in plain and not [k for k in plain if k.startswith(("oracle/", "needs_edges/"))]
    assert "collapsed" not in summary_keys(["seg"], ["seg/miou"])  # unknown N: the keys as before


def test_results_row_types_topology_columns_and_keeps_unknown_ones_null(tmp_path):
    last = {
        **summary_keys(["seg", "depth"], ["seg/miou", "depth/abs_err"], 4, True),
        **flatten_summary(_summary(**PLANTED)),
    }
    trial = SimpleNamespace(trial_id="t1", config={"overrides": {}}, last_result=last, path=str(tmp_path / "trial_t1"))
    row = trial_row("exp", trial, "finished", "tiny", {}, ["seg", "depth"], [])
    assert row["topo/depth/longest_path"] == 3 and isinstance(row["topo/depth/longest_path"], int)
    assert row["needs_edges/depth"] == 3 and row["collapsed"] == 0.0
    assert math.isnan(row["oracle/seg/miou/1"])  # listed by summary_keys, not in this oracle
    table = results_table([row], {"seg": "segmentation", "depth": "depth"})
    assert table.schema.field("topo/seg/shared/depth").type == pa.int64()
    assert table.schema.field("needs_edges/seg").type == pa.int64()
    assert table.schema.field("null/depth/longest_path/3").type == pa.float64()
    assert table.schema.field("oracle/depth/abs_err/0").type == pa.float64()
    assert table.schema.field("collapsed").type == pa.float64()
    # an errored trial's row: the counts are null, not 0
    errored = trial_row(
        "exp",
        SimpleNamespace(**{**vars(trial), "last_result": summary_keys(["seg"], [], 4)}),
        "errored",
        "tiny",
        {},
        ["seg"],
        [],
    )
    assert errored["topo/seg/edges"] is None and math.isnan(errored["collapsed"])


def test_summaries_to_parquet_to_the_hit_test(tmp_path):
    """Written by tune/results.py, read back by analysis: the hit test sees the summaries' figures."""
    import pyarrow.parquet as pq

    from analysis.load import load_results
    from analysis.topology import hit_tests, topology_table

    rows = []
    for seed in range(6):
        topo = {t: dict(v) for t, v in PLANTED["topology"].items()}
        topo["depth"] = {**topo["depth"], "longest_path": 3 if seed < 5 else 2}
        summary = _summary(
            **{**PLANTED, "topology": topo},
            stage_quality={"warmup": {"metric/depth/abs_err": 0.2, "metric/seg/miou": 0.6}},
        )
        last = {**summary_keys(["seg", "depth"], ["seg/miou", "depth/abs_err"], 4, True), **flatten_summary(summary)}
        trial = SimpleNamespace(
            trial_id=f"t{seed}",
            config={"overrides": {"trial.seed": seed}},
            last_result=last,
            path=str(tmp_path / f"trial_t{seed}"),
        )
        rows.append(trial_row("exp", trial, "finished", "tiny", {}, ["seg", "depth"], ["trial.seed"]))
    pq.write_table(results_table(rows, {"seg": "segmentation", "depth": "depth"}), tmp_path / "results.parquet")
    df = load_results(tmp_path / "results.parquet", delta_mtl=False)
    (t,) = hit_tests(df)
    assert (t.hits, t.n) == (5, 6) and t.table["p0"].tolist() == [0.5] * 6 and t.table["exact"].tolist() == [False] * 6
    assert t.p_value == pytest.approx(7 / 64) and t.verdict == "no evidence" and t.local_shorter is True
    assert topology_table(df).groupby("task")["longest_path"].max().to_dict() == {"depth": 3, "seg": 0}
