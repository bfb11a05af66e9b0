"""A real Ray head started with the `ray` CLI and token authentication, joined as Ray's docs set it up.

The head runs in its own session, with a private HOME (holding ~/.ray/auth_token), temp dir and ports, so
nothing else on the machine is touched; at the end exactly the processes of that session are killed
(never `ray stop`, which would end every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RAY = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
EPOCHS = {"warmup.epochs": 20, "data.n_train": 64}  # nano, 20 + 1 + 1 epochs: a few seconds per trial
STEPS = list(range(1, 23))


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _env(home: Path) -> dict:
    """The environment of a plain shell of this user: no RAY_AUTH_MODE, no RAY_ADDRESS, no token variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    return {**env, "HOME": str(home), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _kill_session(sid: int) -> None:
    """SIGKILL every process of the session ``sid`` (the head's: gcs, raylet, agents, workers)."""
    for _ in range(3):
        pids = []
        for p in Path("/proc").iterdir():
            if p.name.isdigit() and int(p.name) != os.getpid():
                try:
                    if os.getsid(int(p.name)) == sid:
                        pids.append(int(p.name))
                except (ProcessLookupError, PermissionError):
                    pass
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


@pytest.fixture
def token_head(tmp_path):
    """(address, HOME with the token) of a head started by `ray start --head` with a token in ~/.ray/auth_token."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    temp = tempfile.mkdtemp(prefix="rayj", dir="/tmp")  # short: Ray's unix socket paths must stay < 108 chars
    gcs, nm, om, agent, agent_grpc, metrics, renv, dash = _free_ports(8)
    cmd = [
        RAY,
        "start",
        "--head",
        f"--port={gcs}",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        f"--temp-dir={temp}",
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
        cmd, env=_env(home), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = head.communicate(timeout=120)
        assert head.returncode == 0, out[-3000:]
        yield f"127.0.0.1:{gcs}", home
    finally:
        _kill_session(head.pid)
        shutil.rmtree(temp, ignore_errors=True)


def _finished(exp: Path) -> list[str]:
    """Trials whose results fragment says finished (the driver writes one per ended trial)."""
    done = []
    for f in (exp / "results").glob("*.parquet"):
        try:
            if pq.read_table(f).column("status").to_pylist() == ["finished"]:
                done.append(f.stem)
        except OSError:
            pass
    return done


@pytest.mark.slow  # about 1.5-2 minutes on 2 CPU cores (head start, sweep, kill, resume)
def test_join_token_head_from_a_plain_shell_kill_and_resume(token_head, tmp_path):
    address, home = token_head
    doc = {
        "preset": "nano",
        "config": EPOCHS,
        "sweep": {"name": "join", "num_samples": 3, "resources": {"cpu": 1}, "max_concurrent": 1, "max_failures": 0},
    }
    (tmp_path / "join.yaml").write_text(yaml.safe_dump(doc))
    storage, exp = tmp_path / "runs", tmp_path / "runs" / "join"
    run = [sys.executable, str(ROOT / "run.py"), "--storage", str(storage), "--address", address, "--no-report"]
    driver = subprocess.Popen(
        [*run, "--config", str(tmp_path / "join.yaml")],
        cwd=tmp_path,
        env=_env(home),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 180
        while not _finished(exp) and time.time() < deadline and driver.poll() is None:
            time.sleep(0.2)
        first = _finished(exp)
        assert first and driver.poll() is None, (
            driver.poll(),
            driver.stdout.read()[-3000:] if driver.poll() is not None else "",
        )
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver only: the cluster keeps running
        driver.wait()
    assert len(first) < 3 and not (exp / "results.parquet").exists()  # killed before the end: only fragments
    done_before = {t: (exp / f"trial_{t}" / "summary.json").stat().st_mtime_ns for t in first}
    out = subprocess.run(
        [*run, "--resume", "--name", "join"], cwd=tmp_path, env=_env(home), capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    df = pq.read_table(exp / "results.parquet").to_pandas()
    assert len(df) == 3 and df["trial_id"].is_unique and set(df["status"]) == {"finished"}
    assert sorted(df["seed"]) == [0, 1, 2]
    for t, mtime in done_before.items():  # finished before the kill: never re-run
        assert (exp / f"trial_{t}" / "summary.json").stat().st_mtime_ns == mtime
    for d in df["trial_dir"]:  # each epoch ran exactly once
        steps = [json.loads(x)["step"] for x in (exp / d / "metrics.jsonl").read_text().splitlines()]
        assert steps == STEPS, (d, steps)
    ep = pq.read_table(exp / "epochs.parquet").to_pandas()
    assert len(ep) == 3 * len(STEPS) and not ep.duplicated(["trial_id", "step"]).any()


@pytest.mark.slow  # shares the head start (~15 s) with the test above
def test_join_without_the_token_or_to_a_dead_port_is_one_error_line(token_head, tmp_path):
    address, _ = token_head
    elsewhere = tmp_path / "no_token_home"
    elsewhere.mkdir()
    run = [sys.executable, str(ROOT / "run.py"), "--storage", str(tmp_path / "runs"), "--no-report", "--preset", "nano"]
    out = subprocess.run(
        [*run, "--address", address], cwd=tmp_path, env=_env(elsewhere), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2, out.stderr[-3000:]
    assert "RAY_AUTH_TOKEN" in out.stderr and "auth_token" in out.stderr and "Traceback" not in out.stderr
    dead = f"127.0.0.1:{_free_ports(1)[0]}"
    out = subprocess.run(
        [*run, "--address", dead], cwd=tmp_path, env=_env(elsewhere), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and f"cannot reach a Ray head at {dead}" in out.stderr and "Traceback" not in out.stderr
