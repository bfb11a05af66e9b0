"""The Tune trainable: one ``run_trial`` per Tune trial, reporting every epoch, checkpointing at stage boundaries.

A trial's Tune config is ``{"overrides": {dotted key: value, ...}}``; the shared part of the config
(preset + the sweep file's ``config:``) and the stage-cache root come in through ``tune.with_parameters``.
The trial's own files (config.json, arch_spec.json, metrics.jsonl, summary.json) go to
``<storage>/<name>/trial_<id>/``: written there directly for local/NFS storage; for URIs written to
Tune's trial directory and synced by Tune (``SyncConfig(sync_artifacts=True)``).

Reports: one per epoch (the record of ``run_trial``, the same keys every time) plus ``SUMMARY_KEYS``
(NaN until the last report, which carries the summary's figures and ``trial_finished = 1``).
A checkpoint (``state.pt`` + the ``metrics.jsonl`` so far) rides on the report of the last epoch of a
stage and of every ``trial.checkpoint_every``-th epoch; a restarted trial continues from the latest one.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from supernet.config import build_config
from supernet.trial import REUSABLE_STAGES, STAGE_PLAN, STAGES, TrialHooks, atomic_torch_save, load_checkpoint, run_trial

from .stage_cache import open_store


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a sweep shares (sent once through ``tune.with_parameters``)."""

    preset: str | None
    base: dict[str, Any]
    stage_cache: str | None  # root of the content-addressed stage store; None = no reuse
    exp_dir: str | None = None  # local/NFS experiment folder: trial files go straight to <exp_dir>/trial_<id>


def summary_keys(tasks: list[str], metrics: list[str] = ()) -> dict[str, float]:
    """Keys the final report adds (NaN before): flattened summary figures, same set at every report.
    ``metrics``: the ``<task>/<metric>`` names, for the trivial references."""
    keys = ["trial_finished", "latency_ms", "params_supernet", "learned"]
    keys += [f"{k}/{t}" for k in ("loss", "params", "flops", "learned") for t in tasks]
    keys += [f"trivial/{m}" for m in metrics]
    keys += [f"quality/{s}/{m}" for s in STAGES for m in metrics]
    keys += [f"time/{s}" for s in STAGES] + [f"reused/{s}" for s in REUSABLE_STAGES]
    return {k: math.nan for k in keys}


def flatten_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """summary.json -> the flat figures of the final report (metric/<task>/<name> from the final evaluation)."""
    out: dict[str, Any] = {"trial_finished": 1.0, "latency_ms": summary["latency_ms"],
                           "params_supernet": summary["params"]["supernet"],
                           "params_union": summary["params"]["union"], "flops_multitask": summary["flops"]["multitask"]}
    for t, v in summary["val_loss"].items():
        out[f"loss/{t}"] = v
    for t, v in summary["params"]["per_task"].items():
        out[f"params/{t}"] = v
    for t, v in summary["flops"]["per_task"].items():
        out[f"flops/{t}"] = v
    for t, ms in summary["metrics"].items():
        out.update({f"metric/{t}/{m}": v for m, v in ms.items()})
    for t, ms in summary.get("trivial", {}).items():  # absent from summaries written before issue 11
        out.update({f"trivial/{t}/{m}": v for m, v in ms.items()})
    out["learned"] = float(summary["learned"]) if "learned" in summary else math.nan
    for stage, q in summary.get("stage_quality", {}).items():  # metric/<task>/<name> at the end of each stage
        out.update({f"quality/{stage}/{k.split('/', 1)[1]}": v for k, v in q.items() if k.startswith("metric/")})
    out.update({f"learned/{t}": float(v) for t, v in summary.get("learned_per_task", {}).items()})
    out.update({f"time/{s}": v for s, v in summary["timings"].items()})
    out.update({f"reused/{s}": float(v) for s, v in summary["reused"].items()})
    out["score"] = sum(summary["val_loss"].values()) / len(summary["val_loss"])
    return out


class TuneHooks(TrialHooks):
    """Reports each epoch; holds back the epoch a checkpoint will follow so both go in one report."""

    def __init__(self, trial_dir: Path, epochs: dict[str, int], plan: tuple[str, ...], every: int, extra: dict):
        self.dir, self.epochs, self.plan, self.every, self.extra = trial_dir, epochs, plan, every, extra
        self.held: dict[str, Any] | None = None
        self.keyed = False
        self.last_state: dict[str, Any] | None = None
        self.crash = extra.pop("_crash", None)

    def _expects_checkpoint(self, rec: dict[str, Any]) -> bool:
        n, e = self.epochs[rec["stage"]], rec["epoch"] + 1
        return e == n or bool(self.every and e % self.every == 0)

    def report(self, rec: dict[str, Any], state: dict[str, Any] | None = None, final: dict | None = None) -> None:
        metrics = {**rec, **self.extra, **(final or {})}
        metrics = {k: (math.nan if v is None else v) for k, v in metrics.items()}
        if state is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as d:
            atomic_torch_save(state, Path(d) / "state.pt")
            if (self.dir / "metrics.jsonl").is_file():
                shutil.copy(self.dir / "metrics.jsonl", Path(d) / "metrics.jsonl")
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
        self._maybe_crash(rec)

    def on_epoch(self, record: dict[str, Any]) -> None:
        if not self.keyed:  # the summary keys, NaN until the end, in every report
            tasks = [k.split("/", 1)[1] for k in record if k.startswith("val_loss/")]
            metrics = [k.split("/", 1)[1] for k in record if k.startswith("metric/")]
            self.extra, self.keyed = {**summary_keys(tasks, metrics), **self.extra}, True
        if self.held is not None:  # a checkpoint was expected but did not come: report without one
            self.report(self.held)
        self.held = None
        if self._expects_checkpoint(record):
            self.held = record
        else:
            self.report(record)

    def on_replay(self, records: list[dict[str, Any]]) -> None:
        """A stage came from the stage cache: its epochs are in metrics.jsonl already; one report (the
        stage's last record, with the boundary checkpoint) instead of a driver round trip per epoch."""
        self.on_epoch(records[-1])

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        self.last_state = state
        last = self.held is not None and self.held["stage"] == self.plan[-1] and self.held["epoch"] + 1 == self.epochs[self.plan[-1]]
        if self.held is not None and not last:  # the final epoch waits for the summary
            self.report(self.held, state)
            self.held = None

    def finish(self, summary: dict[str, Any]) -> None:
        rec = self.held or _last_line(self.dir / "metrics.jsonl")
        self.report(rec, self.last_state, final=flatten_summary(summary))

    def _maybe_crash(self, rec: dict[str, Any]) -> None:
        """Fault injection for tests: ``_crash: {marker, after_step}`` raises once after that checkpoint."""
        if self.crash and rec["step"] >= self.crash["after_step"] and not os.path.exists(self.crash["marker"]):
            Path(self.crash["marker"]).write_text(str(rec["step"]))
            raise RuntimeError(f"injected crash after the checkpoint of step {rec['step']}")


def _finished_summary(trial_dir: Path) -> dict[str, Any] | None:
    p = trial_dir / "summary.json"
    if not p.is_file():
        return None
    summary = json.loads(p.read_text())
    return summary if summary.get("status") == "finished" else None


def _last_line(path: Path) -> dict[str, Any]:
    lines = path.read_text().splitlines()
    return json.loads(lines[-1])


def train(config: dict[str, Any], setup: TrialSetup) -> None:
    """The function trainable: build the config, resume from Tune's checkpoint if any, run, report."""
    overrides = config["overrides"]
    cfg = build_config(setup.preset, {**setup.base, **overrides})
    ctx = tune.get_context()
    # local/NFS storage: write straight into the experiment's trial folder (launch names it trial_<id>), so
    # the files are complete there when the trial reports its end; URIs: Tune's trial dir, synced by Tune
    trial_dir = Path(setup.exp_dir) / f"trial_{ctx.get_trial_id()}" if setup.exp_dir else Path(ctx.get_trial_dir())
    trial_dir.mkdir(parents=True, exist_ok=True)
    summary = _finished_summary(trial_dir)
    if summary is not None:  # it finished, but the driver died before Tune's state recorded that: never re-run
        last = _last_line(trial_dir / "metrics.jsonl")
        metrics = [f"{t}/{m}" for t, ms in summary["metrics"].items() for m in ms]
        tune.report({**summary_keys(list(summary["val_loss"]), metrics), **last, **flatten_summary(summary),
                     "node": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname(),
                     "resumed_from_step": last["step"]})
        return
    resume = None
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            resume = load_checkpoint(Path(d) / "state.pt")
            if (Path(d) / "metrics.jsonl").is_file():
                shutil.copy(Path(d) / "metrics.jsonl", trial_dir / "metrics.jsonl")
    epochs = {"warmup": cfg.warmup.epochs, "search": cfg.search.epochs, "finetune": cfg.finetune.epochs}
    extra = {"node": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname(),
             "resumed_from_step": resume["step"] if resume else 0}
    if "_crash" in config:
        extra["_crash"] = config["_crash"]
    hooks = TuneHooks(trial_dir, epochs, STAGE_PLAN[cfg.trial.mode], cfg.trial.checkpoint_every, extra)
    store = open_store(setup.stage_cache)
    summary = run_trial(cfg, trial_dir, hooks, resume=resume, store=store)
    hooks.finish(summary)
