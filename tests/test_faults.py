"""A sweep whose driver is SIGKILLed again and again, and resumed after each kill, ends as if nothing happened.

The driver runs as ``python run.py`` in its own session (it and the Ray it starts are killed together, by
process group); kills fall at moments chosen by how many trials have finished, the first the moment a
trial's summary.json appears (right after its final report, before Tune's saved state can know it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from supernet.config import build_config
from supernet.trial import run_trial

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {"trial.deterministic": True, "trial.checkpoint_every": 1, "warmup.epochs": 6, "trial.latency_repeats": 1}
STEPS = list(range(1, 9))  # nano: 6 warm-up + 1 search + 1 fine-tune epochs
LAMBDAS, SEEDS = [0.5, 2.0], [0, 1]


def _env() -> dict:
    # Tune's saved state at most 1 s old (5 s by default): kills then find trials mid-way with checkpoints it names
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    env.pop("RAY_ADDRESS", None)
    return env


def _finished_on_disk(exp: Path) -> dict[str, str]:
    """trial folder -> its summary.json text, for the trials whose summary says finished."""
    out = {}
    for p in exp.glob("trial_*/summary.json"):
        try:
            text = p.read_text()
            if json.loads(text).get("status") == "finished":
                out[p.parent.name] = text
        except (OSError, ValueError):
            pass
    return out


def _fragment_statuses(exp: Path) -> dict[str, str]:
    out = {}
    for f in (exp / "results").glob("*.parquet"):
        out[f"trial_{f.stem}"] = pq.read_table(f, columns=["status"]).column("status")[0].as_py()
    return out


def _kill_when(cmd: list[str], cwd: Path, exp: Path, n_finished: int) -> subprocess.Popen:
    """Start the driver and SIGKILL it (and its Ray) as soon as ``n_finished`` trials say finished on disk."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=_env(), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.time() + 180
        while len(_finished_on_disk(exp)) < n_finished and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert len(_finished_on_disk(exp)) >= n_finished, "the sweep took too long"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    return proc


def _check_never_errored(exp: Path, finished: dict[str, str]) -> None:
    """A trial that finished stays finished: same summary, and no fragment of it says anything else."""
    now = _finished_on_disk(exp)
    for trial, text in finished.items():
        assert now.get(trial) == text, f"{trial} was run again or rewritten"
    for trial, status in _fragment_statuses(exp).items():
        if trial in now:
            assert status == "finished", (trial, status)


def test_repeated_driver_kills_lose_and_repeat_nothing(tmp_path):
    doc = {
        "preset": "nano",
        "config": CONFIG,
        "sweep": {
            "name": "faults",
            "num_samples": len(SEEDS),
            "axes": {"search.lambda_sq": {"grid": LAMBDAS}},
            "resources": {"cpu": 1},
            "max_concurrent": 2,
            "max_failures": 0,
        },
    }
    (tmp_path / "faults.yaml").write_text(yaml.safe_dump(doc))
    storage, exp = tmp_path / "runs", tmp_path / "runs" / "faults"
    base = [sys.executable, str(ROOT / "run.py"), "--storage", str(storage), "--no-report"]
    resume = [*base, "--resume", "--name", "faults"]

    finished: dict[str, str] = {}
    for i, n in enumerate([1, 2, 3]):  # kill at 1 trial finished (right after its final report), then 2, then 3
        _kill_when([*base, "--config", str(tmp_path / "faults.yaml")] if i == 0 else resume, tmp_path, exp, n)
        _check_never_errored(exp, finished)
        finished = _finished_on_disk(exp)
        assert (exp / "driver.lock").is_file()  # left by the killed driver: the next one breaks it
        if i == 1:  # a checkpoint Tune's saved state may name is gone: the trial continues from one that exists
            for trial in sorted(set(p.name for p in exp.glob("trial_*")) - set(finished)):
                for ckpt in sorted((exp / trial).glob("checkpoint_*"))[1:]:
                    for f in ckpt.iterdir():
                        f.unlink()
                    ckpt.rmdir()
    out = subprocess.run(resume, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "note: " in out.stdout and "which is gone; taking over" in out.stdout  # the stale lock, broken
    assert not (exp / "driver.lock").exists()
    _check_never_errored(exp, finished)

    df = pq.read_table(exp / "results.parquet").to_pandas()
    assert len(df) == len(LAMBDAS) * len(SEEDS) and df["trial_id"].is_unique
    assert set(df["status"]) == {"finished"}, df[["trial_id", "status", "error"]]
    assert sorted(zip(df["lambda_sq"], df["seed"])) == sorted((lam, s) for lam in LAMBDAS for s in SEEDS)
    ep = pq.read_table(exp / "epochs.parquet").to_pandas()
    assert len(ep) == len(df) * len(STEPS) and not ep.duplicated(["trial_id", "step"]).any()
    for _, r in df.iterrows():
        tdir = exp / r["trial_dir"]
        steps = [json.loads(x)["step"] for x in (tdir / "metrics.jsonl").read_text().splitlines()]
        assert steps == STEPS, (r["trial_dir"], steps)  # one line per step
        assert len(list(tdir.glob("checkpoint_*"))) == 1  # an ended trial keeps its last checkpoint only
        # the same trial, uninterrupted and without Ray (one thread, as a 1-CPU trial runs), ends the same
        cfg = build_config("nano", {**CONFIG, "search.lambda_sq": r["lambda_sq"], "trial.seed": int(r["seed"])})
        ref = _one_thread(run_trial, cfg, tmp_path / "ref" / r["trial_dir"])
        got = json.loads((tdir / "summary.json").read_text())
        assert got["val_loss"] == pytest.approx(ref["val_loss"], rel=1e-6)
        for t, ms in ref["metrics"].items():
            assert got["metrics"][t] == pytest.approx(ms, rel=1e-6), (r["trial_dir"], t)
        assert r["params_union"] == ref["params"]["union"]


def _one_thread(fn, *args, **kwargs):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(before)
