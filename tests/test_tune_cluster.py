"""Sweeps in their own processes: a driver killed mid-sweep and resumed, and a simulated two-node cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"data.n_train": 32, "data.n_val": 16, "trial.progress": False, "trial.latency_repeats": 1}


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    return env


def _finished(exp: Path) -> list[str]:
    """Finished trials so far: mid-sweep the driver has written one results fragment per ended trial."""
    from analysis import AnalysisError, load_results

    try:
        df = load_results(exp, delta_mtl=False)
    except (AnalysisError, OSError):
        return []
    return df.loc[df["status"] == "finished", "trial_id"].tolist()


def test_killed_driver_resumes_without_rerunning_finished_trials(tmp_path):
    doc = {
        "preset": "tiny",
        "config": {**SMALL, "warmup.epochs": 3},
        "sweep": {
            "name": "kill",
            "axes": {"search.lambda_sq": {"grid": [0.0, 0.5, 1.0]}},
            "resources": {"cpu": 1},
            "max_concurrent": 1,
        },
    }
    cfg = tmp_path / "kill.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    storage, exp = tmp_path / "runs", tmp_path / "runs" / "kill"
    cmd = [sys.executable, str(ROOT / "run.py"), "--config", str(cfg), "--storage", str(storage), "--no-report"]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 120
        while not _finished(exp) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
        first = _finished(exp)
        assert first and proc.poll() is None, "the sweep should be running with one trial finished"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started
        proc.wait()
    done_before = {t: (exp / f"trial_{t}" / "summary.json").stat().st_mtime_ns for t in first}
    out = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--resume", "--name", "kill", "--storage", str(storage), "--no-report"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    df = pq.read_table(exp / "results.parquet").to_pandas()
    assert len(df) == 3 and df["trial_id"].is_unique, out.stdout[-3000:] and set(df["status"]) == {"finished"}
    assert sorted(df["lambda_sq"]) == [0.0, 0.5, 1.0]
    for t, mtime in done_before.items():  # finished before the kill: never re-run
        assert (exp / f"trial_{t}" / "summary.json").stat().st_mtime_ns == mtime
    for d in df["trial_dir"]:  # every trial ran each epoch exactly once
        steps = [json.loads(x)["step"] for x in (exp / d / "metrics.jsonl").read_text().splitlines()]
        assert steps == [1, 2, 3, 4, 5], (d, steps)
    ep = pq.read_table(exp / "epochs.parquet").to_pandas()
    assert len(ep) == 15 and not ep.duplicated(["trial_id", "step"]).any()


CLUSTER_SCRIPT = textwrap.dedent("""
    import sys, yaml, ray
    from ray.cluster_utils import Cluster
    from tune.launch import build_tuner
    from tune.space import parse_sweep, sweep_doc

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    try:
        build_tuner(parse_sweep(sweep_doc(sys.argv[1])), sys.argv[2]).fit()
    finally:
        ray.shutdown()
        cluster.shutdown()
""")


def test_two_node_cluster_places_trials_on_both_nodes(tmp_path):
    doc = {
        "preset": "tiny",
        "config": {**SMALL, "warmup.epochs": 3},
        "sweep": {
            "name": "two",
            "axes": {"model.flow_width": {"grid": [1, 2]}},
            "resources": {"cpu": 1},
            "max_concurrent": 2,
        },
    }
    cfg = tmp_path / "two.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    script = tmp_path / "cluster.py"
    script.write_text(CLUSTER_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), str(cfg), str(tmp_path / "runs")],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    df = pq.read_table(tmp_path / "runs" / "two" / "results.parquet").to_pandas()
    assert set(df["status"]) == {"finished"} and len(df) == 2
    assert df["node"].nunique() == 2  # Ray node ids: one trial on each node
