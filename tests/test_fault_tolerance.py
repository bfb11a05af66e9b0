"""What a script can trust: one driver per experiment, exit codes, bad input refused in one line before Ray
starts (nothing computed lost), corrupt files named, Ctrl-C labelled and resumable."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml

import run
from supernet.config import build_config
from supernet.store import DirStageStore
from supernet.trial import run_trial
from tune import lock
from tune.launch import Outcome

ROOT = Path(__file__).resolve().parents[1]
NANO = {"trial.latency_repeats": 1, "trial.progress": False}
TRIAL = ["--trial", "--preset", "nano", "--set", "trial.progress=false", "--set", "trial.latency_repeats=1"]


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    return env


def _sweep(tmp: Path, name: str, config: dict | None = None, **sweep) -> Path:
    doc = {
        "preset": "nano",
        "config": {**NANO, **(config or {})},
        "sweep": {"name": name, "resources": {"cpu": 1}, "max_concurrent": 2, **sweep},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def no_ray(monkeypatch):
    """Ray must not start: bad input is found before."""
    import tune.launch

    def refuse(address):
        raise AssertionError("Ray was started for a sweep with bad input")

    monkeypatch.setattr(tune.launch, "init_ray", refuse)


# ----------------------------------------------------------------------------- one driver per folder


def _claim(exp: str, barrier, out) -> None:
    barrier.wait()
    try:
        lock.acquire(exp)
        out.put("won")
        time.sleep(1.0)  # hold it while the others try
    except lock.LockError as e:
        out.put(str(e))


def test_of_drivers_claiming_one_folder_at_once_exactly_one_wins(tmp_path):
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(str(tmp_path / "exp"), barrier, out)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    got = [out.get(timeout=5) for _ in procs]
    assert got.count("won") == 1
    assert all("is in use by the driver" in g and "driver.lock" in g for g in got if g != "won")


def test_a_lock_left_by_a_dead_driver_is_broken_and_a_live_ones_is_not(tmp_path, capsys):
    exp = tmp_path / "exp"
    exp.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (exp / lock.LOCK_FILE).write_text(json.dumps({"host": os.uname().nodename, "pid": dead.pid, "started": "1"}))
    path = lock.acquire(exp)
    assert f"driver {os.uname().nodename}:{dead.pid}, which is gone; taking over" in capsys.readouterr().out
    assert json.loads(path.read_text())["pid"] == os.getpid()
    with pytest.raises(lock.LockError, match=f"in use by the driver .*:{os.getpid()}"):
        lock.acquire(exp)  # held by a live driver (this one)
    lock.release(path)
    assert not path.exists()
    (exp / lock.LOCK_FILE).write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    with pytest.raises(lock.LockError, match="if that driver is gone, delete the lock file"):
        lock.acquire(exp)  # another host's: cannot be checked from here, never broken


def test_two_sweeps_of_one_name_started_at_once_give_one_run(tmp_path):
    path = _sweep(tmp_path, "twice", num_samples=2)
    cmd = [
        sys.executable,
        str(ROOT / "run.py"),
        "--config",
        str(path),
        "--storage",
        str(tmp_path / "runs"),
        "--no-report",
    ]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], outs
    loser = _one_error_line(outs[codes.index(2)][1])
    assert "twice" in loser and ("is in use by the driver" in loser or "exists: continue it with --resume" in loser)
    exp = tmp_path / "runs" / "twice"
    df = pq.read_table(exp / "results.parquet").to_pandas()
    assert len(df) == 2 and set(df["status"]) == {"finished"} and sorted(df["seed"]) == [0, 1]
    assert len(list(exp.glob("trial_*"))) == 2 and len(list(exp.glob("experiment_state-*.json"))) == 1
    assert not (exp / lock.LOCK_FILE).exists()  # released at the end


# ----------------------------------------------------------------------------- input checked before Ray


def test_an_invalid_grid_value_is_refused_before_ray_starts(tmp_path, capsys, no_ray):
    # nano: N = 2, so flow_width 5 is out of range; the second point of the grid names it
    path = _sweep(tmp_path, "badgrid", axes={"model.flow_width": {"grid": [1, 5]}})
    assert run.main(["--config", str(path), "--storage", str(tmp_path / "runs"), "--no-report"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "sweep point 2 of 2 (model.flow_width=5, trial.seed=0)" in line and "model.flow_width" in line.split("):")[1]
    assert not (tmp_path / "runs" / "badgrid" / "sweep.yaml").exists()


def test_storage_that_is_a_file_or_cannot_be_created_is_one_line_before_ray(tmp_path, capsys, no_ray):
    path = _sweep(tmp_path, "st")
    afile = tmp_path / "afile"
    afile.write_text("x")
    for storage, says in [
        (afile, "is a file, not a folder"),
        (afile / "below", "is a file, not a folder"),
        (Path("/proc/no/such/runs"), "cannot create it"),
    ]:
        assert run.main(["--config", str(path), "--storage", str(storage), "--no-report"]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"--storage {storage}" in line and says in line and "give a folder" in line


# ----------------------------------------------------------------------------- --trial


def test_trial_out_naming_a_file_or_another_trial_is_refused(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert run.main([*TRIAL, "--out", str(afile)]) == 2
    assert f"--out {afile} is a file" in _one_error_line(capsys.readouterr().err)
    out = tmp_path / "t"
    out.mkdir()
    (out / "config.json").write_text("{}")
    assert run.main([*TRIAL, "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "holds a trial already" in line and "continue it with --resume" in line
    assert (out / "config.json").read_text() == "{}"  # untouched


def test_trial_resume_without_a_checkpoint_says_it_starts_from_scratch(tmp_path, capsys):
    out = tmp_path / "t"
    assert run.main([*TRIAL, "--out", str(out), "--resume"]) == 0
    assert f"note: no checkpoint at {out / 'checkpoint.pt'}: starting the trial from scratch" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_a_broken_trial_checkpoint_is_one_line_naming_it(tmp_path, capsys, damage):
    out = tmp_path / "t"
    assert run.main([*TRIAL, "--out", str(out)]) == 0
    ckpt = out / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    capsys.readouterr()
    assert run.main([*TRIAL, "--out", str(out), "--resume"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"{ckpt} is unreadable" in line and "delete it to start the trial from scratch" in line
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"  # nothing overwritten


# ----------------------------------------------------------------------------- analysis


@pytest.mark.parametrize("which", ["results.parquet", "fragment"])
def test_a_truncated_results_file_is_one_line_in_analysis(tmp_path, which):
    exp = tmp_path / "exp"
    rows = [
        {"experiment": "e", "trial_id": f"t{i}", "status": "finished", "mode": "supernet", "seed": i} for i in range(2)
    ]
    import pyarrow as pa

    (exp / "results").mkdir(parents=True)
    for r in rows:
        pq.write_table(pa.Table.from_pylist([r]), exp / "results" / f"{r['trial_id']}.parquet")
    pq.write_table(pa.Table.from_pylist(rows), exp / "results.parquet")
    bad = exp / "results.parquet" if which == "results.parquet" else exp / "results" / "t1.parquet"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    if which == "fragment":  # fragments newer than the compacted table are what the analysis reads
        os.utime(exp / "results.parquet", ns=(1, 1))
    for args in ([str(exp)], [str(exp), "--compact"]) if which == "fragment" else ([str(exp)],):
        out = subprocess.run(
            [sys.executable, "-m", "analysis", *args], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 2, out.stderr[-2000:]
        line = _one_error_line(out.stderr)
        assert f"{bad} is not a readable Parquet file" in line
        assert ("--compact" in line) if which == "results.parquet" else ("python run.py --resume" in line)


# ----------------------------------------------------------------------------- the stage cache


def test_a_corrupt_stage_cache_entry_is_reported_once_and_replaced(tmp_path, capsys):
    cfg = build_config("nano", {**NANO, "trial.deterministic": True})
    ref = run_trial(cfg, tmp_path / "ref")
    store = DirStageStore(tmp_path / "cache")
    run_trial(cfg, tmp_path / "first", store=store)
    entry = next((tmp_path / "cache" / "warmup").glob("*.pt"))
    entry.write_bytes(entry.read_bytes()[:100])  # a copy cut short
    capsys.readouterr()
    a, b = DirStageStore(tmp_path / "cache"), DirStageStore(tmp_path / "cache")  # two trials meeting it
    assert a.get("warmup", entry.stem) is None and b.get("warmup", entry.stem) is None
    err = capsys.readouterr().err
    assert err.count(f"stage cache: {entry} was unreadable") == 1
    again = run_trial(cfg, tmp_path / "again", store=store)  # recomputes the stage and stores it afresh
    assert again["reused"]["warmup"] is False and again["val_loss"] == pytest.approx(ref["val_loss"], rel=1e-6)
    assert torch.load(entry, weights_only=True)["records"]  # readable again
    assert run_trial(cfg, tmp_path / "last", store=store)["reused"]["warmup"] is True
    assert "unreadable" not in capsys.readouterr().err


# ----------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    "counts, interrupted, report, code",
    [
        ({"finished": 3}, False, True, 0),
        ({"finished": 2, "early_stopped": 1, "diverged": 1}, False, True, 0),  # diverged: a result, said in the summary
        ({"finished": 3}, False, None, 0),  # --no-report
        ({"finished": 2, "errored": 1}, False, True, 1),
        ({"finished": 3}, False, False, 1),  # the report failed
        ({}, False, None, 1),  # no results at all
        ({"finished": 1, "interrupted": 2}, True, None, 130),
    ],
)
def test_exit_codes(counts, interrupted, report, code, capsys):
    outcome = Outcome("/x/e", "flow_width", counts, interrupted, "python run.py --resume --name e --storage /x")
    assert run.sweep_exit(outcome, report) == code
    out = capsys.readouterr().out
    if code == 1:
        assert out.strip().splitlines()[-1].startswith("exit code 1: ")
    if code == 130:
        assert out.strip().splitlines()[-1] == "  python run.py --resume --name e --storage /x"


def test_a_diverged_trial_is_a_result_not_retried_and_a_failed_report_exits_1(
    ray_session, tmp_path, capsys, monkeypatch
):
    import analysis.report

    def broken(*a, **k):
        raise RuntimeError("no plots today")

    monkeypatch.setattr(analysis.report, "write_report", broken)
    path = _sweep(tmp_path, "div", axes={"warmup.lr": {"grid": [0.05, 1e30]}}, max_failures=1)
    assert run.main(["--config", str(path), "--storage", str(tmp_path / "runs")]) == 1
    out = capsys.readouterr().out
    assert "1 diverged" in out and "the analysis report failed (RuntimeError: no plots today)" in out
    assert out.strip().splitlines()[-1] == "exit code 1: the analysis report failed"
    exp = tmp_path / "runs" / "div"
    df = pq.read_table(exp / "results.parquet").to_pandas()
    bad = df[df["status"] == "diverged"].iloc[0]
    assert set(df["status"]) == {"finished", "diverged"} and "DivergenceError" not in str(bad["error"])
    assert "the loss became nan" in bad["error"] or "the loss became inf" in bad["error"]
    assert len((exp / bad["trial_dir"] / "trial.log").read_text().splitlines()) == 2  # started, ended: never retried
    assert not (exp / lock.LOCK_FILE).exists()


# ----------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_labels_running_trials_interrupted_and_the_printed_command_resumes_them(tmp_path):
    path = _sweep(tmp_path, "ctrlc", config={"warmup.epochs": 40}, num_samples=3, max_concurrent=1)
    storage, exp = tmp_path / "runs", tmp_path / "runs" / "ctrlc"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "--config", str(path), "--storage", str(storage), "--no-report"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while not list(exp.glob("trial_*/metrics.jsonl")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)  # a few epochs into the first trial
        proc.send_signal(signal.SIGINT)  # the driver alone, as a terminal's Ctrl-C reaches a foreground job
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, out[-3000:]
    assert out.strip().splitlines()[-1] == f"  python run.py --resume --name ctrlc --storage {storage}"
    df = pq.read_table(exp / "results.parquet").to_pandas()
    assert "interrupted" in set(df["status"]) and set(df["status"]) <= {"finished", "interrupted"}
    assert "early_stopped" not in set(df["status"])
    assert not (exp / lock.LOCK_FILE).exists()
    cmd = out.strip().splitlines()[-1].split()  # the printed command continues the interrupted trials
    again = subprocess.run(
        [sys.executable, *cmd[1:], "--no-report"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    df = pq.read_table(exp / "results.parquet").to_pandas()
    assert len(df) == 3 and set(df["status"]) == {"finished"}
    for d in df["trial_dir"]:
        steps = [json.loads(x)["step"] for x in (exp / d / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(1, 43)), (d, steps)  # 40 warm-up + 1 search + 1 fine-tune, once each
