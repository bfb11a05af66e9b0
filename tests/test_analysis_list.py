"""``python -m analysis --list STORAGE``: one row per experiment folder with its trial counts and state."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from analysis_fixtures import make_results, write_experiment, write_results

from analysis.experiments import COLUMNS, list_experiments, list_main
from analysis.load import AnalysisError
from analysis.schema import process_started

ROOT = Path(__file__).resolve().parents[1]


def sweep_yaml(exp: Path) -> None:
    exp.mkdir(parents=True, exist_ok=True)
    (exp / "sweep.yaml").write_text(f"sweep: {{name: {exp.name}, search: grid}}\n")


def lock(exp: Path, pid: int, started: str | None, host: str | None = None) -> None:
    """driver.lock as tune/lock.py writes it."""
    info = {"host": host or socket.gethostname(), "pid": pid, "started": started, "since": "2000-01-01 00:00:00"}
    (exp / "driver.lock").write_text(json.dumps(info))


def live_sweep(storage: Path, name: str, statuses: list[str], running: int) -> Path:
    """An experiment as a sweep leaves it mid-run: sweep.yaml, a trial_<id>/ folder per started trial, a results
    fragment per ended one (``statuses``), and ``running`` trial folders without a row."""
    exp = storage / name
    sweep_yaml(exp)
    df, _ = make_results(experiment=name, flow_widths=(1, 2), lambda_sqs=(0.1,), taus=(0.3,), seeds=(0,), errored=False)
    df = df[df["mode"] != "full_supernet"].head(len(statuses)).copy()
    df["status"] = statuses
    df["trial_dir"] = [f"trial_{t}" for t in df["trial_id"]]
    for (_, row), tdir in zip(df.iterrows(), df["trial_dir"]):
        (exp / tdir).mkdir()
        (exp / tdir / "metrics.jsonl").write_text("{}\n")
        write_results(pd.DataFrame([row]), exp / "results" / f"{row['trial_id']}.parquet")
    for k in range(running):
        (exp / f"trial_run{k}").mkdir()
        (exp / f"trial_run{k}" / "metrics.jsonl").write_text("{}\n")
    return exp


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def storage(tmp_path) -> Path:
    """done (compacted results, report written), running (a live driver), stopped (its driver gone), empty."""
    root = tmp_path / "runs"
    done = write_experiment(root, name="done")  # one errored, one early-stopped trial
    sweep_yaml(done)
    (done / "report").mkdir()
    (done / "report" / "report.md").write_text("# report\n")
    running = live_sweep(root, "running", ["finished", "diverged"], running=1)
    lock(running, os.getpid(), process_started(os.getpid()))
    stopped = live_sweep(root, "stopped", ["finished", "interrupted", "errored"], running=2)
    lock(stopped, dead_pid(), "1")
    sweep_yaml(root / "empty")
    (root / "not_an_experiment").mkdir()  # no sweep file, no results: left out
    (root / "stray.txt").write_text("x")
    return root


def test_one_row_per_experiment_with_counts_and_state(storage):
    df = list_experiments(storage)
    assert list(df.columns) == list(COLUMNS)
    assert df["experiment"].tolist() == ["done", "empty", "running", "stopped"]
    rows = df.set_index("experiment")
    done, _ = make_results(experiment="done")  # what write_experiment wrote
    d = rows.loc["done"]
    assert d["state"] == "done" and d["report"] and d["unfinished"] == 0
    assert (d["finished"], d["errored"], d["early_stopped"]) == ((done["status"] == "finished").sum(), 1, 1)
    assert d["trials"] == len(done) and d["tasks"] == "segmentation,depth,normal"
    r = rows.loc["running"]
    assert (r["state"], r["finished"], r["diverged"], r["unfinished"], r["trials"]) == ("running", 1, 1, 1, 3)
    assert not r["report"] and f"driver pid {os.getpid()}" in r["note"]
    s = rows.loc["stopped"]
    # the interrupted row and the two trial folders without a row are unfinished
    assert (s["state"], s["finished"], s["errored"], s["unfinished"], s["trials"]) == ("stopped", 1, 1, 3, 5)
    assert "stale driver.lock" in s["note"] and "python run.py --resume --name stopped --storage" in s["note"]
    e = rows.loc["empty"]
    assert e["state"] == "empty" and e["trials"] == 0 and e["tasks"] == "" and not e["report"]


def test_a_lock_of_another_host_counts_as_running(storage):
    lock(storage / "stopped", 1, "1", host="elsewhere.invalid")
    s = list_experiments(storage).set_index("experiment").loc["stopped"]
    assert s["state"] == "running" and "another host: not checked" in s["note"]


def test_modified_is_the_newest_file_of_the_folder_and_its_trials(storage):
    exp = storage / "running"
    old, new = 1_000_000_000, 1_500_000_000
    for p in [exp, *exp.rglob("*")]:
        os.utime(p, (old, old))
    os.utime(exp / "trial_run0" / "metrics.jsonl", (new, new))  # a running trial appended an epoch
    got = list_experiments(storage).set_index("experiment").loc["running", "modified"]
    assert got.timestamp() == new


def test_unreadable_results_are_a_state_not_an_error(storage):
    path = storage / "done" / "results.parquet"
    path.write_bytes(path.read_bytes()[:100])
    d = list_experiments(storage).set_index("experiment").loc["done"]
    assert d["state"] == "unreadable" and str(path) in d["note"] and d["trials"] == 0


def test_an_experiment_folder_given_as_storage_lists_itself(storage):
    df = list_experiments(storage / "running")
    assert df["experiment"].tolist() == ["running"] and df["state"].tolist() == ["running"]


def test_bad_storage_is_an_analysis_error(tmp_path):
    with pytest.raises(AnalysisError, match="does not exist"):
        list_experiments(tmp_path / "nowhere")
    with pytest.raises(AnalysisError, match="URI"):
        list_experiments("s3://bucket/runs")


def test_list_main_prints_the_table_and_the_notes(storage, tmp_path):
    text = list_main(storage)
    lines = text.splitlines()
    assert lines[0] == f"4 experiment(s) under {storage}:"
    header = lines[1].split()
    assert header == [c for c in COLUMNS if c != "note"]
    body = {ln.split()[0]: ln.split() for ln in lines[2:6]}
    assert set(body) == {"done", "empty", "running", "stopped"}
    assert body["done"][1] == "done" and "yes" in body["done"] and "no" in body["stopped"]
    assert any(ln.startswith("stopped: ") and "--resume --name stopped" in ln for ln in lines[6:])
    (tmp_path / "bare").mkdir()
    assert list_main(tmp_path / "bare").startswith(f"no experiments under {tmp_path / 'bare'}")


def test_experiments_module_imports_no_torch_ray_supernet_or_tune():
    code = (
        "import sys, analysis.experiments; "
        "bad = [m for m in ('torch', 'ray', 'supernet', 'tune') if m in sys.modules]; assert not bad, bad"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_python_m_analysis_list_prints_the_table_and_exits_0_or_2_for_a_bad_path(storage, tmp_path):
    from analysis.__main__ import main

    ok = subprocess.run(
        [sys.executable, "-m", "analysis", "--list", str(storage)], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == list_main(storage).strip()
    assert main(["--list", str(tmp_path / "nowhere")]) == 2
