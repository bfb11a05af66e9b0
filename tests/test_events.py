"""The trial core: the stage table, the event stream of ``trial_events`` and the typed ``TrialState``."""

from __future__ import annotations

import json

import pytest
import torch

from supernet.config import ConfigError, build_config
from supernet.stages import STAGE_PLAN, STAGE_TABLE, plan, stage_epochs
from supernet.state import CHECKPOINT_VERSION, TrialState, jsonable
from supernet.store import DirStageStore
from supernet.trial import Epoch, Finished, trial_events

SMALL = {"data.n_train": 32, "data.n_val": 16, "trial.progress": False, "trial.deterministic": True}


def tiny(**over):
    return build_config("tiny", {**SMALL, **over})


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def test_stage_table_gives_every_mode_its_stages_and_epochs():
    cfg = tiny(**{"warmup.epochs": 2, "search.epochs": 3, "finetune.epochs": 4})
    assert stage_epochs(cfg) == {"warmup": 2, "search": 3, "reduction": 0, "finetune": 4}
    assert [s.name for s in plan(cfg)] == ["warmup", "search", "reduction", "finetune"]
    assert [s.name for s in plan(tiny(**{"trial.mode": "hard_sharing"}))] == ["warmup", "finetune"]
    assert all(set(names) <= {s.name for s in STAGE_TABLE} for names in STAGE_PLAN.values())
    # plan() keeps each mode's order (a record's stage_index is its stage's index in the plan)
    assert all(list(names) == [s.name for s in STAGE_TABLE if s.name in names] for names in STAGE_PLAN.values())
    assert [s.name for s in STAGE_TABLE if s.reusable] == ["warmup", "search"]


def test_events_of_a_trial_in_order_with_checkpoints_where_due(tmp_path):
    cfg = tiny(**{"warmup.epochs": 3, "search.epochs": 2, "trial.checkpoint_every": 2})
    events = []
    for ev in trial_events(cfg, tmp_path):
        if isinstance(ev, Finished):  # summary.json is complete before the end is announced
            assert json.loads((tmp_path / "summary.json").read_text())["status"] == "finished"
        events.append(ev)
    # warm-up epochs 1, 2 (checkpoint: every 2), 3 (stage end); search 1, 2 (end); reduction;
    # fine-tune 1 with the summary
    assert kinds(events) == ["Epoch", "Epoch", "Epoch", "Epoch", "Epoch", "Boundary", "Finished"]
    ckpt = [e.checkpoint is not None for e in events]
    assert ckpt == [False, True, True, False, True, True, True]
    records = [e.record for e in events if isinstance(e, (Epoch, Finished))]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert [(r["stage"], r["epoch"]) for r in records][2:4] == [("warmup", 2), ("search", 0)]
    assert "optim" in events[1].checkpoint and "optim" not in events[2].checkpoint  # mid-stage vs boundary
    assert events[2].checkpoint["done"] == ["warmup"] and events[5].checkpoint["model_kind"] == "compact"
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == json.loads(json.dumps(jsonable(records)))  # every epoch yielded once, as written


def test_a_replayed_stage_is_one_event_and_an_empty_stage_a_boundary(tmp_path):
    store = DirStageStore(tmp_path / "store")
    cfg = lambda tau: tiny(**{"warmup.epochs": 0, "search.epochs": 2, "reduction.tau": tau})  # noqa: E731
    first = list(trial_events(cfg(0.1), tmp_path / "a", store=store))
    assert kinds(first) == ["Boundary", "Epoch", "Epoch", "Boundary", "Finished"]
    again = list(trial_events(cfg(0.3), tmp_path / "b", store=store))
    assert kinds(again) == ["Boundary", "Replayed", "Boundary", "Finished"]
    assert [r["step"] for r in again[1].records] == [1, 2] and again[1].checkpoint["reused"]["search"]
    assert again[-1].record["step"] == 3


def test_a_finished_checkpoint_resumes_to_the_summary_alone(tmp_path):
    cfg = tiny()
    events = list(trial_events(cfg, tmp_path / "a"))
    last = events[-1]
    again = list(trial_events(cfg, tmp_path / "a", resume=last.checkpoint))
    assert kinds(again) == ["Finished"] and again[0].record is None
    for task, ms in last.summary["metrics"].items():
        assert again[0].summary["metrics"][task] == pytest.approx(ms, rel=1e-6)


def test_trial_state_round_trips_and_refuses_what_it_cannot_trust(tmp_path):
    cfg = tiny()
    state = TrialState.new(cfg)
    state.done, state.stage, state.step, state.spec = ["warmup"], "warmup", 1, None
    model = torch.nn.Linear(2, 1)
    saved = state.to_dict(model)
    assert saved["version"] == CHECKPOINT_VERSION and len(saved["config_hash"]) == 24
    assert set(saved["model"]) == {"weight", "bias"} and "optim" not in saved
    back = TrialState.resume(cfg, saved)
    assert back.done == ["warmup"] and back.step == 1 and torch.equal(back.model["weight"], model.weight.detach())
    state.done.append("search")
    assert saved["done"] == ["warmup"]  # a snapshot never changes with the trial
    with pytest.raises(ConfigError, match=r"model.channels: 8 in the checkpoint, 4 now"):
        TrialState.resume(tiny(**{"model.channels": 4}), saved)
    with pytest.raises(ConfigError, match="incompatible version"):
        TrialState.resume(cfg, {**saved, "version": CHECKPOINT_VERSION - 1})
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['bogus'\]"):
        TrialState.resume(cfg, {**saved, "bogus": 1})
    old = {k: v for k, v in saved.items() if k not in ("config", "config_hash")}  # written before the hash existed
    assert TrialState.resume(cfg, old).config_hash == saved["config_hash"]
