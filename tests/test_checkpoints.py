"""Tune's checkpoints of a trial stay restorable: a gone one falls back to the latest there is, or to scratch."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ray")

from ray.train import CheckpointConfig  # noqa: E402
from ray.train._internal.checkpoint_manager import _CheckpointManager  # noqa: E402
from ray.train._internal.session import _TrainingResult  # noqa: E402
from ray.tune import Checkpoint  # noqa: E402
from ray.tune.trainable.metadata import _TrainingRunMetadata  # noqa: E402

from tune.checkpoints import ensure_restorable  # noqa: E402


class FakeTrial:
    """What ensure_restorable reads of a Tune trial: its id, run metadata and latest checkpoint result."""

    def __init__(self, trial_dir: Path, registered: list[int]):
        self.trial_id = "t0"
        self._restore_checkpoint_result = None
        self.run_metadata = _TrainingRunMetadata()
        self.run_metadata.checkpoint_manager = _CheckpointManager(CheckpointConfig(num_to_keep=None))
        for i in registered:
            d = trial_dir / f"checkpoint_{i:06d}"
            d.mkdir(parents=True)
            (d / "state.pt").write_bytes(b"x")
            self.run_metadata.checkpoint_manager.register_checkpoint(
                _TrainingResult(Checkpoint.from_directory(str(d)), {"step": i})
            )

    @property
    def latest_checkpoint_result(self):
        return self.run_metadata.checkpoint_manager.latest_checkpoint_result


def _latest(trial: FakeTrial) -> str | None:
    r = trial.latest_checkpoint_result
    return Path(r.checkpoint.path).name if r else None


def test_a_restorable_checkpoint_is_left_alone(tmp_path):
    trial = FakeTrial(tmp_path / "trial", [0, 1])
    ensure_restorable(trial, str(tmp_path / "trial"))
    assert _latest(trial) == "checkpoint_000001" and not (tmp_path / "trial" / "trial.log").exists()


def test_a_gone_checkpoint_falls_back_to_the_latest_complete_one_and_says_so(tmp_path, capsys):
    d = tmp_path / "trial"
    trial = FakeTrial(d, [0, 1, 2])
    (d / "checkpoint_000002" / "state.pt").unlink()  # the one Tune would restore from: gone
    (d / "checkpoint_000002").rmdir()
    (d / "checkpoint_000003").mkdir()  # newer, but a copy cut short before state.pt: not complete
    ensure_restorable(trial, str(d))
    assert _latest(trial) == "checkpoint_000001"
    assert trial.latest_checkpoint_result.metrics == {"step": 1}  # the registered one, with its metrics
    said = "trial t0: its checkpoint checkpoint_000002 is gone; continuing from checkpoint_000001"
    assert said in capsys.readouterr().out and said in (d / "trial.log").read_text()


def test_with_no_checkpoint_left_the_trial_starts_from_scratch_and_says_so(tmp_path, capsys):
    d = tmp_path / "trial"
    trial = FakeTrial(d, [0])
    (d / "checkpoint_000000" / "state.pt").unlink()
    ensure_restorable(trial, str(d))
    assert trial.latest_checkpoint_result is None
    assert "no checkpoint is left: starting from scratch" in (d / "trial.log").read_text()
