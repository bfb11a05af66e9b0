"""Early-stopped trials in the analysis: where they stopped, read from the results table, in the report and on
the fronts figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from analysis_fixtures import make_results, write_results

from analysis import compare_fronts, load_results
from analysis.plots import front_plot_data
from analysis.report import write_report
from analysis.stopping import stopped_by_rung, stopped_trials

# trial id -> (step, stage) where a scheduler stopped it
STOPS = {"supernet_0001": (12, "finetune"), "supernet_0004": (12, "finetune"), "supernet_0007": (36, "finetune")}


def stopped_experiment(tmp_path: Path) -> Path:
    df, _ = make_results(errored=False)
    df["stopped_step"] = pd.array([STOPS.get(t, (None,))[0] for t in df["trial_id"]], dtype="Int64")
    df["stopped_stage"] = [STOPS[t][1] if t in STOPS else None for t in df["trial_id"]]
    df.loc[df["trial_id"].isin(STOPS), "status"] = "early_stopped"
    df.loc[df["trial_id"] == "supernet_0002", "status"] = "early_stopped"  # stopped, but the table does not say where
    write_results(df, tmp_path / "exp" / "results.parquet")
    return tmp_path / "exp"


def test_stopped_trials_and_rungs_come_from_the_results_table(tmp_path):
    df = load_results(stopped_experiment(tmp_path))
    rows = stopped_trials(df)
    assert rows["trial_id"].tolist() == ["supernet_0001", "supernet_0004", "supernet_0007"]
    rungs = stopped_by_rung(df)
    assert rungs[["stopped_step", "stopped_stage", "trials"]].values.tolist() == [
        [12, "finetune", 2],
        [36, "finetune", 1],
    ]
    assert rungs["trial_ids"].tolist() == ["supernet_0001, supernet_0004", "supernet_0007"]
    assert rungs["modes"].tolist() == ["supernet 2", "supernet 1"]
    assert stopped_trials(df.drop(columns=["stopped_step"])).empty  # a table without the column (a hand-built one)


def test_fronts_figure_rings_the_stopped_trials_by_rung(tmp_path):
    df = load_results(stopped_experiment(tmp_path))
    cmp = compare_fronts(df, by="flow_width")
    data = front_plot_data(cmp)
    assert list(data.stopped) == ["stopped at step 12 (finetune)", "stopped at step 36 (finetune)"]
    want = (
        df.set_index("trial_id").loc[["supernet_0001", "supernet_0004"], ["params_union", "delta_mtl"]].to_numpy(float)
    )
    assert np.allclose(data.stopped["stopped at step 12 (finetune)"], want[np.lexsort((want[:, 1], want[:, 0]))])
    assert len(data.stopped["stopped at step 36 (finetune)"]) == 1
    assert not front_plot_data(
        compare_fronts(load_results(stopped_experiment(tmp_path / "b")).assign(stopped_step=np.nan), by="flow_width")
    ).stopped


def test_report_lists_which_trials_were_stopped_at_which_rung(tmp_path):
    out = write_report(stopped_experiment(tmp_path), by="flow_width")
    md = (out / "report.md").read_text()
    assert "## Early stopping" in md and "stopped 3 trial(s)" in md
    table = pd.read_csv(out / "stopped.csv")
    assert sorted(zip(table["trial_id"], table["stopped_step"])) == [
        ("supernet_0001", 12),
        ("supernet_0004", 12),
        ("supernet_0007", 36),
    ]
    assert pd.read_csv(out / "stopped_by_rung.csv")["trials"].tolist() == [2, 1]
    df, _ = make_results(errored=False)  # a sweep without a scheduler: no section
    write_results(df, tmp_path / "plain" / "results.parquet")
    assert "Early stopping" not in (write_report(tmp_path / "plain") / "report.md").read_text()
