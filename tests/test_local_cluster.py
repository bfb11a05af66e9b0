"""A Ray cluster started on this machine with `ray start --head` (as Ray's docs show) next to a plain sweep.

``python run.py`` without an address starts a Ray of its own and never joins that cluster (nor fails on it);
``--address auto`` joins it. The head runs in its own session with a private HOME (its token) and a private
RAY_TMPDIR (where Ray records "the current cluster"), so no other Ray on the machine sees it; at the end
exactly the processes of its session are killed (never `ray stop`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from ray_head import ROOT, plain_env, ray_head, short_temp, token_home


@pytest.fixture
def local_head(tmp_path):
    """The environment (HOME, RAY_TMPDIR) in which `ray start --head` runs a cluster that `ray.init()` would join."""
    tmp = short_temp("rayl")
    env = {**plain_env(token_home(tmp_path)), "RAY_TMPDIR": tmp}
    try:
        with ray_head(env, num_cpus=1):
            assert (Path(tmp) / "ray" / "ray_current_cluster").is_file()  # what a plain ray.init() would join
            yield env
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow  # about a minute on 2 CPU cores (head start, two small sweeps)
def test_a_plain_sweep_runs_on_its_own_ray_beside_a_local_cluster_and_auto_joins_it(local_head, tmp_path):
    doc = {
        "preset": "nano",
        "config": {"trial.latency_repeats": 1},
        "sweep": {"name": "own", "resources": {"cpu": 1}, "max_failures": 0},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    run = [
        sys.executable,
        str(ROOT / "run.py"),
        "--config",
        str(tmp_path / "s.yaml"),
        "--storage",
        str(tmp_path / "runs"),
        "--no-report",
    ]
    own = subprocess.run(run, cwd=tmp_path, env=local_head, capture_output=True, text=True, timeout=240)
    said = own.stdout + own.stderr
    assert own.returncode == 0 and "Traceback" not in said, said[-3000:]
    assert "Connecting to existing Ray cluster" not in said and "Started a local Ray instance" in said
    joined = subprocess.run(
        [*run, "--name", "joined", "--address", "auto"],
        cwd=tmp_path,
        env=local_head,
        capture_output=True,
        text=True,
        timeout=240,
    )
    said = joined.stdout + joined.stderr
    assert joined.returncode == 0 and "Connecting to existing Ray cluster" in said, said[-3000:]
    nodes = [
        pq.read_table(tmp_path / "runs" / n / "results.parquet").column("node").to_pylist() for n in ("own", "joined")
    ]
    assert nodes[0] != nodes[1]  # two Rays: the sweep's own, and the cluster's
