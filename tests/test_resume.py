"""`run.py --trial --resume`: one metrics.jsonl line per epoch, and a changed config is an error, not a mix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import run
from supernet.config import ConfigError, build_config
from supernet.state import atomic_torch_save, check_resume_config, config_identity
from supernet.trial import TrialHooks, run_trial

SMALL = {"data.n_train": 32, "data.n_val": 16, "trial.progress": False, "trial.deterministic": True}
SETS = [
    "--preset",
    "tiny",
    "--set",
    "data.n_train=32",
    "--set",
    "data.n_val=16",
    "--set",
    "trial.progress=false",
    "--set",
    "search.epochs=3",
    "--set",
    "trial.checkpoint_every=1",
]


class Collect(TrialHooks):
    def __init__(self):
        self.states = []

    def save_checkpoint(self, state):
        self.states.append(state)


def _steps(out: Path) -> list[int]:
    return [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]


def _killed_after_search_epoch_2(out: Path) -> None:
    """A trial folder as a kill leaves it: metrics.jsonl up to step 4, checkpoint.pt of step 2 (search epoch 1)."""
    cfg = build_config("tiny", {**SMALL, "search.epochs": 3, "trial.checkpoint_every": 1, "trial.deterministic": False})
    hooks = Collect()
    run_trial(cfg, out, hooks)
    mid = next(s for s in hooks.states if s["stage"] == "search" and s["epoch"] == 1 and "optim" in s)
    assert mid["step"] == 2
    lines = (out / "metrics.jsonl").read_text().splitlines()[:4]  # steps 1-4 written before the kill
    (out / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (out / "summary.json").unlink()
    atomic_torch_save(mid, out / "checkpoint.pt")


def test_run_py_trial_resume_writes_each_epoch_once(tmp_path, capsys):
    out = tmp_path / "t"
    _killed_after_search_epoch_2(out)
    assert _steps(out) == [1, 2, 3, 4]
    assert run.main(["--trial", "--out", str(out), "--resume", *SETS]) == 0
    assert _steps(out) == [1, 2, 3, 4, 5]  # steps 3 and 4 ran again and were written once
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["epoch"]) for r in lines] == [
        ("warmup", 0),
        ("search", 0),
        ("search", 1),
        ("search", 2),
        ("finetune", 0),
    ]
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"


def test_run_py_trial_resume_alone_takes_the_trials_own_config(tmp_path, capsys):
    out = tmp_path / "t"
    _killed_after_search_epoch_2(out)
    before = json.loads((out / "config.json").read_text())
    assert run.main(["--trial", "--out", str(out), "--resume"]) == 0  # no --preset / --set: config.json's
    assert _steps(out) == [1, 2, 3, 4, 5]
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"
    assert json.loads((out / "config.json").read_text()) == before


def test_run_py_trial_resume_with_an_unreadable_config_json_says_how_to_resume(tmp_path, capsys):
    out = tmp_path / "t"
    out.mkdir()
    (out / "config.json").write_text("{not json")
    assert run.main(["--trial", "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "config.json is unreadable" in err and "--config/--set" in err and "Traceback" not in err


def test_run_py_trial_resume_of_a_checkpoint_of_another_version_is_a_one_line_error(tmp_path, capsys):
    import torch

    out = tmp_path / "t"
    _killed_after_search_epoch_2(out)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    atomic_torch_save({**ckpt, "version": -1}, out / "checkpoint.pt")
    assert run.main(["--trial", "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "incompatible version" in err and "delete the checkpoint" in err and "Traceback" not in err
    assert _steps(out) == [1, 2, 3, 4]  # nothing computed was touched


def test_run_py_trial_resume_after_a_line_torn_by_the_kill(tmp_path, capsys):
    out = tmp_path / "t"
    _killed_after_search_epoch_2(out)
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 5, "sta')  # the kill came mid-write
    assert run.main(["--trial", "--out", str(out), "--resume"]) == 0
    assert _steps(out) == [1, 2, 3, 4, 5]


def test_a_wrong_data_root_leaves_no_trial_behind_so_the_fixed_command_runs(tmp_path, capsys):
    out = tmp_path / "t"
    bad = ["--trial", "--out", str(out), "--preset", "tiny", "--set", "data.name=nyuv2"]
    assert run.main([*bad, "--set", f"data.root={tmp_path / 'nowhere'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (out / "config.json").exists()
    assert run.main(["--trial", "--out", str(out), *SETS]) == 0  # not refused as "holds a trial already"


def test_run_py_trial_that_diverges_exits_1_keeping_its_files(tmp_path, capsys):
    out = tmp_path / "t"
    code = run.main(["--trial", "--out", str(out), *SETS, "--set", "finetune.lr=1e30", "--set", "finetune.momentum=0"])
    err = capsys.readouterr().err
    assert code == 1 and "training diverged" in err and "--set finetune.lr=" in err and "Traceback" not in err
    assert (out / "config.json").is_file() and len(_steps(out)) >= 4  # warm-up and search epochs kept
    assert json.loads((out / "summary.json").read_text())["status"] == "diverged"


def test_sweep_resume_refuses_set_and_preset(tmp_path, capsys):
    for extra in (["--set", "search.lambda_sq=0.5"], ["--preset", "tiny"]):
        assert run.main(["--resume", "--storage", str(tmp_path), *extra]) == 2
        err = capsys.readouterr().err
        assert "--resume continues a sweep with the config it started with" in err and "Traceback" not in err


def test_resume_with_a_changed_config_is_an_error_naming_the_keys(tmp_path, capsys):
    out = tmp_path / "t"
    _killed_after_search_epoch_2(out)
    before = (out / "config.json").read_text()
    code = run.main(
        ["--trial", "--out", str(out), "--resume", *SETS, "--set", "reduction.tau=0.9", "--set", "model.channels=4"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "reduction.tau" in err and "model.channels" in err and "0.9" in err and "Traceback" not in err
    assert "search.epochs" not in err  # only the keys that differ
    assert (out / "config.json").read_text() == before  # nothing of the new config was written
    assert not (out / "summary.json").exists()


def test_config_identity_ignores_how_the_trial_runs():
    a = build_config("tiny", SMALL)
    ident = config_identity(a)
    check_resume_config(build_config("tiny", {**SMALL, "data.num_workers": 2, "trial.progress": True}), ident)
    with pytest.raises(ConfigError, match="trial.seed: 0 in the checkpoint, 3 now"):
        check_resume_config(build_config("tiny", {**SMALL, "trial.seed": 3}), ident)
