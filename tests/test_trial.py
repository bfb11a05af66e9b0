"""A whole trial end to end: files, costs, checkpoints, resume, stage reuse, divergence, baselines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from supernet.config import build_config
from supernet.epoch import DivergenceError
from supernet.state import load_checkpoint
from supernet.store import DirStageStore, stage_key
from supernet.trial import TrialHooks, run_trial

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"data.n_train": 32, "data.n_val": 16, "trial.progress": False, "trial.deterministic": True}


def flat(metrics: dict) -> dict:
    return {f"{t}/{k}": v for t, m in metrics.items() for k, v in m.items()}


def tiny(**over):
    return build_config("tiny", {**SMALL, **over})


def test_run_py_trial_writes_every_file(tmp_path):
    out = tmp_path / "t"
    r = subprocess.run(
        [sys.executable, "run.py", "--trial", "--preset", "tiny", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    for name in ("config.json", "arch_spec.json", "metrics.jsonl", "checkpoint.pt", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["params"]["union"] < summary["params"]["supernet"]
    assert set(summary["metrics"]) == {"segmentation", "depth", "normal"}
    assert all(summary["timings"][s] >= 0 for s in ("warmup", "search", "reduction", "finetune"))
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["stage"] for line in lines] == ["warmup", "search", "finetune"]
    assert len({tuple(sorted(line)) for line in lines}) == 1  # same keys at every step
    assert all(line["epoch_time_s"] > 0 for line in lines)
    if not torch.cuda.is_available():
        assert all(line["gpu_peak_mem_mb"] is None for line in lines)  # NaN, written as null
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)  # tensors and plain data only
    assert ckpt["done"] == ["warmup", "search", "reduction", "finetune"]
    # the output names what it prints and ends with the verdict against the trivial references
    shown = r.stdout.splitlines()
    assert shown[0].startswith("warmup 1/1  train loss ") and "  val loss: segmentation " in shown[0]
    header = next(i for i, ln in enumerate(shown) if ln.startswith("task "))
    rows = {ln.split()[0]: ln.split() for ln in shown[header + 1 : header + 4]}
    assert {t: row[1] for t, row in rows.items()} == {
        "segmentation": "miou",
        "depth": "abs_err",
        "normal": "mean_angle",
    }
    for t, row in rows.items():
        m = row[1]
        assert float(row[3]) == pytest.approx(summary["metrics"][t][m], rel=1e-3)
        assert float(row[4]) == pytest.approx(summary["trivial"][t][m], rel=1e-3)
        assert row[-1] == ("yes" if summary["learned_per_task"][t] else "no")
    assert shown[header + 4].startswith(f"learned: {'yes' if summary['learned'] else 'no'} (")
    p = summary["params"]
    assert shown[-2] == f"params: compact {p['union']:,}, full supernet {p['supernet']:,}"
    assert shown[-1].startswith(f"files in {out}: config.json") and "summary.json" in shown[-1]


def test_run_py_rejects_bad_config_with_the_key(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "run.py",
            "--trial",
            "--preset",
            "tiny",
            "--set",
            "model.flow_width=3",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "model.flow_width" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "setting,key", [("model.arch_init=nan", "model.arch_init"), ("data.data_seed=-1", "data.data_seed")]
)
def test_run_py_rejects_nonsense_values_with_exit_code_2(tmp_path, setting, key):
    r = subprocess.run(
        [sys.executable, "run.py", "--trial", "--preset", "tiny", "--set", setting, "--out", str(tmp_path / "t")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {key}: ") and "Traceback" not in r.stderr
    assert not (tmp_path / "t").exists()  # rejected before anything was written


class Collect(TrialHooks):
    def __init__(self):
        self.records, self.states = [], []

    def on_epoch(self, record):
        self.records.append(record)

    def save_checkpoint(self, state):
        self.states.append(state)


def test_resume_from_a_mid_stage_checkpoint_gives_the_same_result(tmp_path):
    cfg = tiny(**{"search.epochs": 3, "trial.checkpoint_every": 1})
    full = Collect()
    ref = run_trial(cfg, tmp_path / "a", full)
    mid = [s for s in full.states if s["stage"] == "search" and s["epoch"] == 1 and "optim" in s]
    assert mid, "expected a checkpoint after search epoch 1"
    resumed = Collect()
    got = run_trial(cfg, tmp_path / "b", resumed, resume=mid[0])
    assert [r["stage"] for r in resumed.records] == ["search", "search", "finetune"]  # not from scratch
    assert flat(got["metrics"]) == pytest.approx(flat(ref["metrics"]), rel=1e-6)
    assert got["params"] == ref["params"]


def test_stage_reuse_gives_the_same_result_as_recomputation(tmp_path):
    store = DirStageStore(tmp_path / "store")
    a = tiny(**{"reduction.tau": 0.1})
    b = tiny(**{"reduction.tau": 0.3})  # same warm-up and search, different tau
    assert stage_key(a, "search") == stage_key(b, "search")
    assert stage_key(a, "warmup") != stage_key(tiny(**{"model.flow_width": 1}), "warmup")
    assert stage_key(a, "search") != stage_key(tiny(**{"search.lambda_sq": 0.3}), "search")
    assert stage_key(a, "warmup") == stage_key(tiny(**{"search.lambda_sq": 0.3}), "warmup")
    first = run_trial(a, tmp_path / "a", store=store)
    fresh_b = run_trial(b, tmp_path / "b0")
    reused_b = run_trial(b, tmp_path / "b1", store=store)
    assert not first["reused"]["warmup"] and reused_b["reused"] == {"warmup": True, "search": True}
    assert flat(reused_b["metrics"]) == pytest.approx(flat(fresh_b["metrics"]), rel=1e-6)
    assert json.loads((tmp_path / "b1/arch_spec.json").read_text()) == json.loads(
        (tmp_path / "b0/arch_spec.json").read_text()
    )
    lines = lambda p: [json.loads(line)["val_loss/depth"] for line in (p / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert lines(tmp_path / "b1") == pytest.approx(lines(tmp_path / "b0"), rel=1e-6)


class LastOfReplay(Collect):
    """A driver that reports a replayed stage by its last record (as the Tune trainable does)."""

    def on_replay(self, records):
        self.records.append(records[-1])


def test_zero_epoch_stage_is_reused(tmp_path):
    store = DirStageStore(tmp_path / "store")
    cfg = lambda tau: tiny(**{"warmup.epochs": 0, "reduction.tau": tau})  # noqa: E731 - no warm-up, a natural ablation
    run_trial(cfg(0.1), tmp_path / "a", LastOfReplay(), store=store)
    fresh = run_trial(cfg(0.3), tmp_path / "b0", LastOfReplay())
    hooks = LastOfReplay()
    reused = run_trial(cfg(0.3), tmp_path / "b1", hooks, store=store)
    assert reused["reused"] == {"warmup": True, "search": True}
    assert [r["stage"] for r in hooks.records] == ["search", "finetune"]
    assert [r["step"] for r in hooks.records] == [1, 2]
    assert flat(reused["metrics"]) == pytest.approx(flat(fresh["metrics"]), rel=1e-6)
    stages = [json.loads(line)["stage"] for line in (tmp_path / "b1" / "metrics.jsonl").read_text().splitlines()]
    assert stages == ["search", "finetune"]


def test_store_first_writer_wins(tmp_path):
    store = DirStageStore(tmp_path)
    assert store.put("warmup", "k", {"x": torch.ones(1)})
    assert not store.put("warmup", "k", {"x": torch.zeros(1)})
    assert store.get("warmup", "k")["x"].item() == 1.0
    assert store.get("warmup", "missing") is None
    assert not list((tmp_path / "warmup").glob(".tmp-*"))


def test_divergence_stops_with_a_clear_error_and_keeps_files(tmp_path):
    cfg = tiny(**{"warmup.epochs": 2, "finetune.lr": 1e30, "finetune.momentum": 0.0})  # explodes the weights
    with pytest.raises(
        DivergenceError, match=r"stage finetune.*Lower the stage.s learning rate \(e.g. --set finetune.lr="
    ):
        run_trial(cfg, tmp_path, TrialHooks())
    assert (tmp_path / "config.json").is_file()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["stage"] for line in lines][:3] == ["warmup", "warmup", "search"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged" and "finetune" in summary["error"]


@pytest.mark.parametrize(
    "mode,extra", [("single_task", {"trial.single_task": "depth"}), ("hard_sharing", {}), ("full_supernet", {})]
)
def test_baseline_modes(tmp_path, mode, extra):
    s = run_trial(tiny(**{"trial.mode": mode, **extra}), tmp_path)
    spec = json.loads((tmp_path / "arch_spec.json").read_text())
    if mode == "single_task":
        assert list(s["metrics"]) == ["depth"]
    if mode in ("single_task", "hard_sharing"):
        assert all(a["edges"] == [[1, 2], [2, 3]] for a in spec["tasks"].values())  # the plain chain
        assert s["timings"]["search"] != s["timings"]["search"]  # NaN: no search stage
    else:
        assert s["params"]["union"] == s["params"]["supernet"]
    if mode == "hard_sharing":  # one shared chain: the tasks' FLOPs differ only by their heads
        assert s["flops"]["multitask"] < sum(s["flops"]["per_task"].values())


def test_checkpoint_loads_weights_only(tmp_path):
    run_trial(
        tiny(), tmp_path, __import__("supernet.trial", fromlist=["LocalHooks"]).LocalHooks(tmp_path, verbose=False)
    )
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["model_kind"] == "compact" and state["spec"]["n_nodes"] == 3
    # a file that would run code when unpickled is refused, not loaded
    torch.save({"payload": Path}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_checkpoint(tmp_path / "evil.pt")


# ----------------------------------------------------------------------------- gate annealing (search.temperature_end)


def test_annealing_is_geometric_over_search_steps_and_reduction_folds_gates_at_the_final_temperature(tmp_path):
    t0, t_end, epochs = 2.0, 0.1, 3
    cfg = tiny(
        **{
            "model.temperature": t0,
            "search.temperature_end": t_end,
            "search.epochs": epochs,
            "trial.checkpoint_every": 1,
        }
    )
    hooks = Collect()
    run_trial(cfg, tmp_path / "a", hooks)
    temp = lambda s: float(s["model"]["temperature"])  # noqa: E731
    # checkpoints after search epochs 1 and 2 (every step anneals; the epoch ends at step k * steps_per_epoch)
    mid = [temp(s) for s in hooks.states if s["stage"] == "search" and s["epoch"] > 0]
    assert mid == pytest.approx([t0 * (t_end / t0) ** (k / epochs) for k in (1, 2)], rel=1e-6)
    after_search = next(s for s in hooks.states if s["done"][-1:] == ["search"])
    assert temp(after_search) == pytest.approx(t_end, rel=1e-6)  # the last step runs at T_end
    warm = [temp(s) for s in hooks.states if s["stage"] == "warmup"]
    assert warm == pytest.approx([t0] * len(warm))  # warm-up keeps model.temperature
    # the spec's folded gates are sigmoid(logit / T_end) of the searched logits
    spec = json.loads((tmp_path / "a/arch_spec.json").read_text())
    beta = after_search["model"]["beta"]
    task = next(iter(spec["tasks"]))
    row = list(spec["tasks"]).index(task)
    j = spec["tasks"][task]["read_in"][0]
    assert spec["tasks"][task]["gates"]["read_in"][0] == pytest.approx(
        float(torch.sigmoid(beta[row, j - 1] / t_end)), rel=1e-5
    )


def test_annealed_search_resumed_mid_stage_gives_the_same_result(tmp_path):
    cfg = tiny(**{"search.temperature_end": 0.2, "search.epochs": 3, "trial.checkpoint_every": 1})
    full = Collect()
    ref = run_trial(cfg, tmp_path / "a", full)
    mid = next(s for s in full.states if s["stage"] == "search" and s["epoch"] == 1 and "optim" in s)
    got = run_trial(cfg, tmp_path / "b", Collect(), resume=mid)
    assert flat(got["metrics"]) == pytest.approx(flat(ref["metrics"]), rel=1e-6)
    assert json.loads((tmp_path / "b/arch_spec.json").read_text()) == json.loads(
        (tmp_path / "a/arch_spec.json").read_text()
    )
    no_anneal = tiny(**{"search.epochs": 3})
    assert stage_key(cfg, "search") != stage_key(
        no_anneal, "search"
    )  # a cached search is never reused across schedules
    assert stage_key(cfg, "warmup") == stage_key(no_anneal, "warmup")


# ----------------------------------------------------------------------------- run.py --trial's lines


def test_epoch_line_names_what_it_prints():
    from supernet.trial import epoch_line

    rec = {"stage": "warmup", "epoch": 2, "train_loss": 0.41, "squeeze": float("nan"), "epoch_time_s": 1.25}
    rec.update({"val_loss/segmentation": 0.52, "val_loss/depth": 0.31, "metric/depth/abs_err": 0.3})
    assert epoch_line(rec, 8) == "warmup 3/8  train loss 0.41  val loss: segmentation 0.52, depth 0.31"
    assert epoch_line(rec).startswith("warmup 3  ")
    detail = epoch_line({**rec, "squeeze": 0.5}, 8, detail=True)
    assert detail.endswith("val metrics: depth abs_err 0.3  squeeze 0.5  (1.2 s)")


def test_result_lines_judge_each_task_on_its_main_metric(tmp_path):
    from supernet.trial import MAIN_METRICS, result_lines
    from supernet.trivial import LEARNED_MARGINS

    assert MAIN_METRICS == {
        "segmentation": "miou",
        "classification": "accuracy",
        "depth": "abs_err",
        "normal": "mean_angle",
    }
    assert set(LEARNED_MARGINS) == set(MAIN_METRICS.items())
    (tmp_path / "summary.json").write_text("{}")
    summary = {
        "tasks": {"seg": "segmentation", "d": "depth"},
        "metrics": {"seg": {"miou": 0.5, "pixel_acc": 0.9}, "d": {"abs_err": 1.0, "rel_err": 0.2}},
        "trivial": {"seg": {"miou": 0.2, "pixel_acc": 0.8}, "d": {"abs_err": 1.2, "rel_err": 0.3}},
        "learned_per_task": {"seg": True, "d": False},
        "learned": False,
        "params": {"union": 2296, "supernet": 4099},
        "timings": {"warmup": 1.0},
    }
    lines = result_lines(summary, tmp_path)
    assert lines[1].split() == ["seg", "miou", "(max)", "0.5", "0.2", ">=", "0.4", "yes"]
    assert lines[2].split() == ["d", "abs_err", "(min)", "1", "1.2", "<=", "0.9", "no"]
    assert lines[3:] == [
        "learned: no (1 of 2 tasks reach 'learned at')",
        "params: compact 2,296, full supernet 4,099",
        f"files in {tmp_path}: summary.json",
    ]
    detail = result_lines(summary, tmp_path, detail=True)
    assert detail[2].split() == ["pixel_acc", "0.9", "0.8"] and "seconds: warmup 1" in detail
