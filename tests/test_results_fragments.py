"""Per-trial result fragments: written once per ended trial, read in either form, compacted on demand."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from analysis import load_epochs, load_results, schema
from analysis.__main__ import main as analysis_main

SENSES = {"abs_err": "min", "miou": "max"}
TASKS = {"depth": "depth", "seg": "segmentation"}


def _fragment(exp: Path, folder: str, trial_id: str, rows: list[dict]) -> Path:
    table = pa.Table.from_pylist(rows).replace_schema_metadata(schema.metadata(TASKS, SENSES))
    path = exp / folder / f"{trial_id}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    schema.write_table_atomic(table, pafs.LocalFileSystem(), str(path))
    return path


def _result(trial_id: str, status: str = "finished", **extra) -> dict:
    return {"experiment": "e", "trial_id": trial_id, "status": status, "mode": "supernet", "seed": 0, **extra}


def test_fragments_unify_read_compact_and_stay_the_record(tmp_path):
    exp = tmp_path / "e"
    # the same config column as int, float and all-null; an errored trial without metric columns
    _fragment(exp, "results", "a", [_result("a", **{"config/x": 1, "metric/depth/abs_err": 0.5, "params_union": 10})])
    _fragment(
        exp, "results", "b", [_result("b", **{"config/x": 0.5, "metric/depth/abs_err": 0.25, "params_union": 20})]
    )
    _fragment(exp, "results", "c", [_result("c", "errored", **{"config/x": None, "error": "ConfigError: bad"})])
    _fragment(exp, "results", "d", [_result("d", **{"config/x": "text"})])
    (exp / "results" / "d.parquet.tmp-1").write_text("half a file")  # a write in progress is not read
    df = load_results(exp, delta_mtl=False).set_index("trial_id")
    assert sorted(df.index) == ["a", "b", "c", "d"]
    assert df.loc["b", "metric/depth/abs_err"] == 0.25 and math.isnan(df.loc["c", "metric/depth/abs_err"])
    assert df.loc["a", "config/x"] == "1" and df.loc["d", "config/x"] == "text"  # int/float/text clash: text
    assert df.loc["c", "error"] == "ConfigError: bad" and not df.loc["c", "is_valid"]
    assert df.attrs["metric_senses"] == SENSES and df.attrs["tasks"] == TASKS  # metadata travels with fragments

    assert schema.compact(exp) == {"results.parquet": 4}
    table = pq.read_table(exp / "results.parquet")
    assert table.column("trial_id").to_pylist() == ["a", "b", "c", "d"]
    assert json.loads(table.schema.metadata[b"dagmtl"])["metric_senses"] == SENSES
    again = load_results(exp, delta_mtl=False).set_index("trial_id")
    assert again.drop(columns="exp_dir").equals(df.drop(columns="exp_dir"))

    # a trial ending after the compaction (a resumed sweep): its fragment is newer, so fragments are read
    late = _fragment(exp, "results", "e", [_result("e", **{"metric/depth/abs_err": 0.125})])
    os.utime(late, ns=(os.stat(exp / "results.parquet").st_mtime_ns + 10**9,) * 2)
    assert sorted(load_results(exp, delta_mtl=False)["trial_id"]) == ["a", "b", "c", "d", "e"]
    assert len(load_results(exp / "results.parquet", delta_mtl=False)) == 4  # the file itself, as asked


def test_epochs_fragments_and_compact_command(tmp_path, capsys):
    exp = tmp_path / "e"
    for t in ("a", "b"):
        _fragment(exp, "results", t, [_result(t)])
        _fragment(
            exp,
            "epochs",
            t,
            [{"experiment": "e", "trial_id": t, "stage": "warmup", "epoch": 0, "step": s} for s in (2, 1)],
        )
    ep = load_epochs(exp)
    assert len(ep) == 4 and set(ep["trial_id"]) == {"a", "b"}
    assert analysis_main([str(exp), "--compact"]) == 0
    assert "results.parquet: 2 rows" in capsys.readouterr().out
    ep = pq.read_table(exp / "epochs.parquet").to_pandas()
    assert list(zip(ep["trial_id"], ep["step"])) == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]  # sorted
    assert analysis_main([str(tmp_path / "nope"), "--compact"]) == 2


def test_newer_schema_version_is_refused(tmp_path):
    exp = tmp_path / "e"
    path = _fragment(exp, "results", "a", [_result("a")])
    t = pq.read_table(path)
    pq.write_table(t.replace_schema_metadata({b"dagmtl": json.dumps({"schema_version": 99}).encode()}), path)
    from analysis import AnalysisError

    with pytest.raises(AnalysisError, match="schema_version 99"):
        load_results(exp, delta_mtl=False)


# ----------------------------------------------------------------------------- the driver's callback


class FakeTrial:
    """What ResultsCallback reads of a Tune trial."""

    def __init__(self, exp: Path, i: int, lam: float):
        self.trial_id, self.status = f"t{i:03d}", "TERMINATED"
        self.config = {"overrides": {"search.lambda_sq": lam, "trial.seed": 0}}
        self.path = str(exp / f"trial_{self.trial_id}_0001")  # Tune may suffix it
        self.last_result = {"trial_finished": 1, "node": "n1", "params_union": 100 + i, "metric/depth/abs_err": 0.1 * i}
        self.pickled_error_file = self.error_file = None
        own = exp / f"trial_{self.trial_id}"  # where the trainable writes, whatever Tune calls its folder
        own.mkdir(parents=True)
        lines = [
            {
                "stage": s,
                "stage_index": k,
                "epoch": 0,
                "step": k + 1,
                "train_loss": 1.0,
                "squeeze": 0.0,
                "score": 1.0,
                "params_union": 100,
                "flops_multitask": 1000,
                "val_loss/depth": 0.5,
            }
            for k, s in enumerate(("warmup", "search", "finetune"))
        ]
        (own / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_callback_writes_each_trial_once_and_compacts_at_the_end(tmp_path):
    pytest.importorskip("ray")
    from tune.results import ResultsCallback

    exp = tmp_path / "e"
    cb = ResultsCallback(str(exp), "e", "tiny", {}, {"depth": "depth"}, ["search.lambda_sq", "trial.seed"])
    cb.setup()
    trials = [FakeTrial(exp, i, lam) for i, lam in enumerate((0, 0.5, 1.0, 2))]
    stamps = {}
    for k, t in enumerate(trials):
        cb.on_trial_complete(k, trials[: k + 1], t)
        stamps[t.trial_id] = (exp / "results" / f"{t.trial_id}.parquet").stat().st_mtime_ns
        for u in trials[:k]:  # what was written is never written again
            assert (exp / "results" / f"{u.trial_id}.parquet").stat().st_mtime_ns == stamps[u.trial_id]
    assert not (exp / "results.parquet").exists()  # no compaction while the sweep runs
    cb.on_experiment_end(trials)
    df = load_results(exp, delta_mtl=False)
    assert list(df["trial_id"]) == [t.trial_id for t in trials] and set(df["status"]) == {"finished"}
    assert list(df["trial_dir"]) == [f"trial_{t.trial_id}" for t in trials]
    assert list(df["config/search.lambda_sq"]) == [0.0, 0.5, 1.0, 2.0] and str(df["params_union"].dtype) == "int64"
    assert all((exp / "results" / f"{t.trial_id}.parquet").stat().st_mtime_ns == stamps[t.trial_id] for t in trials)
    ep = pq.read_table(exp / "epochs.parquet").to_pandas()
    assert len(ep) == 12 and not ep.duplicated(["trial_id", "step"]).any()
    meta = json.loads(pq.read_schema(exp / "epochs.parquet").metadata[b"dagmtl"])
    assert meta["metric_senses"]["miou"] == "max"
