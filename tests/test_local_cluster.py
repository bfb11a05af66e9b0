"""A Ray cluster started on this machine with `ray start --head` (as Ray's docs show) next to a plain sweep.

``python run.py`` without an address starts a Ray of its own and never joins that cluster (nor fails on it);
``--address auto`` joins it. The head runs in its own session with a private HOME (its token) and a private
RAY_TMPDIR (where Ray records "the current cluster"), so no other Ray on the machine sees it; at the end
exactly the processes of its session are killed (never `ray stop`).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from test_cluster_join import RAY, ROOT, _env, _free_ports, _kill_session


@pytest.fixture
def local_head(tmp_path):
    """The environment (HOME, RAY_TMPDIR) in which `ray start --head` runs a cluster that `ray.init()` would join."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    tmp = tempfile.mkdtemp(prefix="rayl", dir="/tmp")  # short: Ray's unix socket paths must stay < 108 chars
    env = {**_env(home), "RAY_TMPDIR": tmp}
    gcs, nm, om, agent, agent_grpc, metrics, renv, dash = _free_ports(8)
    cmd = [
        RAY,
        "start",
        "--head",
        f"--port={gcs}",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--node-manager-port={nm}",
        f"--object-manager-port={om}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}",
        f"--runtime-env-agent-port={renv}",
        f"--dashboard-port={dash}",
    ]
    head = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = head.communicate(timeout=120)
        assert head.returncode == 0, out[-3000:]
        assert (Path(tmp) / "ray" / "ray_current_cluster").is_file()  # what a plain ray.init() would join
        yield env
    finally:
        _kill_session(head.pid)
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
