"""The trained network in hand: load a finished trial's compact net, evaluate it as the trial did, export it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from data_fixtures import write_dense_npy

from supernet import load_compact
from supernet.compact import CompactNet
from supernet.config import ConfigError, build_config, from_dict
from supernet.costs import n_params
from supernet.inference import (
    InferenceError,
    eval_main,
    evaluate_compact,
    export_compact,
    find_checkpoint,
    load_export,
)
from supernet.spec import ArchSpec
from supernet.stages import Run
from supernet.trial import LocalHooks, run_trial

SMALL = {"data.n_train": 32, "data.n_val": 16, "trial.progress": False, "trial.latency_repeats": 1}


def trial(out: Path, **over) -> Path:
    """A tiny trial into ``out`` with its checkpoint.pt, as ``run.py --trial`` writes it."""
    run_trial(build_config("tiny", {**SMALL, **over}), out, LocalHooks(out, verbose=False))
    return out


@pytest.fixture(scope="module")
def method(tmp_path_factory) -> Path:
    return trial(tmp_path_factory.mktemp("inference") / "method")


@pytest.fixture(scope="module")
def moved_single_task(tmp_path_factory) -> tuple[Path, Path]:
    """(trial folder, new data root): a single-task trial on a real-data layout whose data set then moved."""
    base = tmp_path_factory.mktemp("moved")
    root = write_dense_npy(base / "nyuv2", "nyuv2", n_train=4, n_val=3, size=(16, 16))
    out = trial(
        base / "trial",
        **{"data.name": "nyuv2", "data.root": str(root), "trial.mode": "single_task", "trial.single_task": "depth"},
    )
    return out, Path(shutil.move(str(root), str(base / "elsewhere")))


def summary(d: Path) -> dict:
    return json.loads((d / "summary.json").read_text())


def assert_metrics_equal(got: dict, want: dict, tol: float = 1e-4) -> None:
    assert set(got) == set(want)
    for t, ms in want.items():
        assert set(got[t]) == set(ms), t
        for m, v in ms.items():
            assert got[t][m] == pytest.approx(v, abs=tol, rel=tol), (t, m)


def copy_trial(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst))


def test_load_compact_is_the_fine_tuned_compact_net(method):
    net, cfg = load_compact(method)
    assert isinstance(net, CompactNet) and not net.training
    assert cfg == from_dict(json.loads((method / "config.json").read_text()))
    assert net.spec.to_dict() == ArchSpec.from_json(method / "arch_spec.json").to_dict()
    assert n_params(net) == summary(method)["params"]["union"]
    assert next(net.parameters()).device == torch.device("cpu")
    weights = torch.load(method / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(v, weights[k]) for k, v in net.state_dict().items())


def test_evaluate_compact_equals_the_trials_final_metrics(method):
    net, cfg = load_compact(method)
    assert_metrics_equal(evaluate_compact(net, cfg), summary(method)["metrics"])
    train = evaluate_compact(net, cfg, split="train")  # the other split, through the same path
    assert set(train) == set(summary(method)["metrics"]) and train != evaluate_compact(net, cfg)
    with pytest.raises(ValueError, match="split"):
        evaluate_compact(net, cfg, split="test")


def test_a_moved_data_set_evaluates_with_its_new_root(moved_single_task):
    out, new_root = moved_single_task
    net, cfg = load_compact(out)
    assert list(net.task_names) == ["depth"]
    with pytest.raises(FileNotFoundError, match="data.root"):  # the trial's own data.root is gone
        evaluate_compact(net, cfg)
    assert_metrics_equal(evaluate_compact(net, cfg, data_root=str(new_root)), summary(out)["metrics"])
    got = eval_main(out, {"data.root": str(new_root)})
    assert_metrics_equal(got, summary(out)["metrics"])


def test_eval_main_is_one_json_object_and_refuses_keys_that_change_the_net(method):
    got = eval_main(method, {"data.batch_size": 5, "trial.device": "cpu"})  # another batch size: the same metrics
    assert_metrics_equal(got, summary(method)["metrics"])
    assert json.loads(json.dumps(got, allow_nan=False)) == got
    with pytest.raises(ConfigError, match="model.channels"):
        eval_main(method, {"model.channels": 4})
    with pytest.raises(ConfigError, match="data.batch_size"):
        eval_main(method, {"data.batch_size": 0})
    with pytest.raises(ConfigError, match="trial.device"):  # not a RuntimeError from torch
        eval_main(method, {"trial.device": "gpu"})


def test_export_gives_the_nets_outputs(method, tmp_path):
    net, cfg = load_compact(method)
    x = next(iter(Run.build(cfg).loader("val")))[0]  # a batch of validation images
    path = export_compact(net, x[:1], tmp_path / "net.pt2")  # a one-image example: the batch stays dynamic
    assert not net.training
    exported = load_export(path)
    for batch in (x, x[:3], torch.randn(1, *x.shape[1:])):
        want, got = net(batch), exported(batch)
        assert set(got) == set(want) == set(net.task_names)
        for t in want:
            torch.testing.assert_close(got[t], want[t], atol=1e-5, rtol=1e-5)
    net.train()
    export_compact(net, x, tmp_path / "again.pt2")
    assert net.training  # its mode is restored


def test_a_sweep_trial_folder_loads_its_newest_tune_checkpoint(method, tmp_path):
    d = copy_trial(method, tmp_path / "trial_abc")
    (d / "checkpoint_000003").mkdir()
    (d / "checkpoint.pt").rename(d / "checkpoint_000003" / "state.pt")
    (d / "checkpoint_000001").mkdir()
    (d / "checkpoint_000001" / "state.pt").write_bytes(b"an older, unreadable one: never read")
    assert find_checkpoint(d) == d / "checkpoint_000003" / "state.pt"
    net, cfg = load_compact(d)
    assert_metrics_equal(evaluate_compact(net, cfg), summary(method)["metrics"])


def test_missing_checkpoint_names_the_file(method, tmp_path):
    d = copy_trial(method, tmp_path / "t")
    (d / "checkpoint.pt").unlink()
    with pytest.raises(InferenceError, match=r"checkpoint\.pt is missing.*run the trial again"):
        load_compact(d)


@pytest.mark.parametrize("cut", [0, 100, -200])
def test_corrupt_checkpoint_names_the_file(method, tmp_path, cut):
    d = copy_trial(method, tmp_path / "t")
    data = (d / "checkpoint.pt").read_bytes()
    (d / "checkpoint.pt").write_bytes(data[:cut] if cut else b"not a checkpoint")
    with pytest.raises(InferenceError, match=r"checkpoint\.pt is unreadable .*truncated or not a checkpoint"):
        load_compact(d)


def test_not_a_trial_folder(tmp_path):
    with pytest.raises(InferenceError, match="does not exist"):
        load_compact(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InferenceError, match="is not a trial folder"):
        load_compact(tmp_path / "empty")


def test_unfinished_or_failed_trials_are_refused(method, tmp_path):
    d = copy_trial(method, tmp_path / "unfinished")
    (d / "summary.json").unlink()
    with pytest.raises(InferenceError, match=r"summary\.json is missing: the trial has not finished.*--resume"):
        load_compact(d)
    d = copy_trial(method, tmp_path / "diverged")
    (d / "summary.json").write_text(json.dumps({"status": "diverged", "error": "finetune, epoch 0: nan"}))
    with pytest.raises(InferenceError, match=r"status 'diverged'.*nan"):
        load_compact(d)
    d = copy_trial(method, tmp_path / "torn")
    (d / "summary.json").write_text('{"status": "fin')
    with pytest.raises(InferenceError, match=r"summary\.json is unreadable"):
        load_compact(d)


def test_a_checkpoint_of_another_config_or_before_the_end_is_refused(method, tmp_path):
    d = copy_trial(method, tmp_path / "mixed")
    config = json.loads((d / "config.json").read_text())
    config["trial"]["seed"] = 7
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(InferenceError, match="another config"):
        load_compact(d)
    d = copy_trial(method, tmp_path / "midway")
    state = torch.load(d / "checkpoint.pt", weights_only=True)
    state["done"] = ["warmup", "search"]
    torch.save(state, d / "checkpoint.pt")
    with pytest.raises(InferenceError, match=r"stops before the stage\(s\) \['reduction', 'finetune'\]"):
        load_compact(d)


def test_a_mode_without_a_compact_net_is_refused(tmp_path):
    zero = {"warmup.epochs": 0, "search.epochs": 0, "finetune.epochs": 0}
    d = trial(tmp_path / "full", **{"trial.mode": "full_supernet", **zero})
    with pytest.raises(InferenceError, match="'full_supernet' fine-tunes the supernet network, not a compact one"):
        load_compact(d)


def test_run_py_eval_prints_the_trials_metrics_as_its_last_json_line(method, capsys):
    import run

    assert run.main(["--eval", str(method)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert_metrics_equal(json.loads(last), summary(method)["metrics"])


def test_run_py_eval_of_a_folder_that_is_no_trial_is_one_line_and_exit_2(tmp_path, capsys):
    import run

    assert run.main(["--eval", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "nothing" in err[0]
