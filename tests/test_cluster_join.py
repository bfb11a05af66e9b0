"""A real Ray head started with the `ray` CLI and token authentication, joined as Ray's docs set it up.

The head (tests/ray_head.py) runs in its own session, with a private HOME (holding ~/.ray/auth_token), temp dir
and ports, so nothing else on the machine is touched; at the end exactly the processes of that session are
killed (never `ray stop`, which would end every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from ray_head import ROOT, free_ports, plain_env, ray_head, short_temp, token_home

EPOCHS = {"warmup.epochs": 20, "data.n_train": 64}  # nano, 20 + 1 + 1 epochs: a few seconds per trial
STEPS = list(range(1, 23))


@pytest.fixture
def token_head(tmp_path):
    """(address, HOME with the token) of a head started by `ray start --head` with a token in ~/.ray/auth_token."""
    home = token_home(tmp_path)
    temp = short_temp("rayj")
    try:
        with ray_head(plain_env(home), num_cpus=2, temp_dir=temp) as address:
            yield address, home
    finally:
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
        env=plain_env(home),
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
        [*run, "--resume", "--name", "join"],
        cwd=tmp_path,
        env=plain_env(home),
        capture_output=True,
        text=True,
        timeout=300,
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
        [*run, "--address", address],
        cwd=tmp_path,
        env=plain_env(elsewhere),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr[-3000:]
    assert "RAY_AUTH_TOKEN" in out.stderr and "auth_token" in out.stderr and "Traceback" not in out.stderr
    dead = f"127.0.0.1:{free_ports(1)[0]}"
    out = subprocess.run(
        [*run, "--address", dead], cwd=tmp_path, env=plain_env(elsewhere), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and f"cannot reach a Ray head at {dead}" in out.stderr and "Traceback" not in out.stderr
