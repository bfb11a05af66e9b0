"""run.py's command line: --dry-run (a sweep's trials listed, nothing started) and --verbose."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import run

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "configs" / "default.yaml"
TRIAL_LINE = re.compile(r"^\d+\s+(supernet|single_task|hard_sharing|full_supernet|random_arch)\s")


def trial_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if TRIAL_LINE.match(ln)]


def test_dry_run_lists_the_default_sweeps_12_trials_and_starts_no_ray(tmp_path):
    storage = tmp_path / "runs"
    probe = (
        "import sys, run\n"
        f"rc = run.main(['--dry-run', '--config', {str(DEFAULT)!r}, '--storage', {str(storage)!r}])\n"
        "print('ray imported:', 'ray' in sys.modules)\n"
        "sys.exit(rc)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = trial_lines(r.stdout)
    assert len(lines) == 12
    assert sum("supernet" in ln.split()[1] for ln in lines) == 8
    assert {ln.split()[2] for ln in lines if ln.split()[1] == "single_task"} == {"segmentation", "depth", "normal"}
    assert all("model.flow_width=" in ln and "reduction.tau=" in ln for ln in lines if ln.split()[1] == "supernet")
    assert "12 trials: 8 supernet, 3 single_task, 1 hard_sharing" in r.stdout
    # warm-ups: 2 flow widths of the supernet + 3 single-task chains + 1 hard-sharing chain; the reduction-aware
    # search depends on tau, so no search is shared
    assert "stage reuse: 6 warm-ups, 8 searches run (6 warm-ups reused)" in r.stdout
    assert "ray imported: False" in r.stdout
    assert not storage.exists()  # no experiment folder, no lock


def test_stage_reuse_groups_trials_by_stage_key():
    from tune.space import parse_sweep, sweep_doc

    sweep = parse_sweep(sweep_doc(DEFAULT))
    cfgs = [sweep.config(p) for p in sweep.points()]
    assert run.stage_reuse(cfgs) == {"warmup": (6, 6), "search": (8, 0)}
    assert run.reuse_line(run.stage_reuse(cfgs), uri=True).startswith("stage reuse: off")


def test_dry_run_of_a_grid_with_an_invalid_value_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: tiny\nsweep:\n  name: bad\n  axes:\n    model.flow_width: {grid: [2, -3]}\n")
    assert run.main(["--dry-run", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sweep point 2 of 2") and "model.flow_width" in err


def test_set_of_a_sweep_axis_is_refused_with_the_axis_named(tmp_path, capsys):
    doc = tmp_path / "ax.yaml"
    doc.write_text("preset: tiny\nsweep:\n  name: ax\n  axes:\n    search.lambda_sq: {grid: [0.3]}\n")
    assert run.main(["--dry-run", "--config", str(doc), "--set", "search.lambda_sq=0.1"]) == 2
    err = capsys.readouterr().err
    assert "--set search.lambda_sq: a sweep axis of" in err and "change the axis in the file" in err
    assert run.main(["--dry-run", "--config", str(doc), "--set", "search.tau=0.1"]) == 2  # a wrong key: its own error
    assert run.main(["--dry-run", "--config", str(doc), "--set", "reduction.tau=0.1"]) == 0
    nested = tmp_path / "nested.yaml"  # the same axis, written nested
    nested.write_text("preset: tiny\nsweep:\n  name: ax\n  axes:\n    search: {lambda_sq: {grid: [0.3]}}\n")
    assert run.main(["--dry-run", "--config", str(nested), "--set", "search.lambda_sq=0.1"]) == 2
    assert "--set search.lambda_sq: a sweep axis of" in capsys.readouterr().err


def test_dry_run_of_an_optuna_sweep_lists_the_baselines_and_the_proposed_count(tmp_path, capsys):
    doc = tmp_path / "opt.yaml"
    doc.write_text(
        "preset: tiny\nsweep:\n  name: opt\n  search: optuna\n  num_samples: 5\n"
        "  axes:\n    search.lambda_sq: {loguniform: [0.01, 1]}\n  baselines: [single_task, hard_sharing]\n"
    )
    assert run.main(["--dry-run", "--config", str(doc), "--set", "trial.seed=4"]) == 0
    out = capsys.readouterr().out
    lines = trial_lines(out)
    assert [ln.split()[1] for ln in lines] == ["single_task"] * 3 + ["hard_sharing"]
    assert all(ln.split()[-3] == "4" for ln in lines)  # --set reaches the trials: seed column
    assert "9 trials: 4 fixed (3 single_task, 1 hard_sharing), 5 supernet trials proposed by Optuna at run time" in out


@pytest.mark.parametrize("other", ["--trial", "--resume"])
def test_dry_run_does_not_combine_with_trial_or_resume(other, capsys):
    assert run.main(["--dry-run", other]) == 2
    assert "--dry-run" in capsys.readouterr().err


def test_verbose_reaches_launch(monkeypatch):
    import tune.launch
    from tune.launch import Outcome

    seen = {}

    def fake_launch(config=None, **kw):
        seen.update(kw)
        return Outcome("/x/e", "flow_width", {"finished": 1})

    monkeypatch.setattr(tune.launch, "launch", fake_launch)
    assert run.main(["--no-report", "--verbose"]) == 0
    assert seen["verbose"] is True
    assert run.main(["--no-report"]) == 0
    assert seen["verbose"] is False
