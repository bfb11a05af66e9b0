"""The Tune trainable: one trial per Tune trial, a loop over ``supernet.trial.trial_events``.

A trial's Tune config is ``{"overrides": {dotted key: value, ...}}``; the shared part of the config
(preset + the sweep file's ``config:``) and the stage-cache root come in through ``tune.with_parameters``.
The trial's own files (config.json, arch_spec.json, metrics.jsonl, summary.json) go to
``<storage>/<name>/trial_<id>/``: written there directly for local/NFS storage; for URIs written to
Tune's trial directory and synced by Tune (``SyncConfig(sync_artifacts=True)``).

Reports: one per event that carries an epoch (a trained epoch, the last record of a stage replayed from
the stage cache, the end), each with the record's keys plus ``summary_keys`` (NaN until the last report,
which carries the summary's figures and ``trial_finished = 1``). With ``TrialSetup.report_keys`` (local or
NFS storage, no scheduler) only the events with a checkpoint and the end are reported, with those keys
alone: the results tables read ``metrics.jsonl`` and ``summary.json`` instead (tune/results.py).
The checkpoint (``state.pt`` + the ``metrics.jsonl`` so far) rides on its event's report: the last epoch
of a stage and every ``trial.checkpoint_every``-th; a restarted trial continues from the latest one.
``report`` is a parameter so that tests can inject faults around it.

What the trial folder's ``summary.json`` says is final (``tune.results.disk_status``): a trial restarted
after it finished, diverged or met a config error reports how it ended and returns, never running again.
A divergence or a config error ends the trial with one report (``trial_status``, ``error``) instead of
an exception, so Tune does not retry it. Each start, and each such end, is a line in ``trial.log``.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterator

import ray
from ray import tune

from supernet.config import ConfigError, build_config
from supernet.epoch import DivergenceError
from supernet.state import atomic_torch_save, load_checkpoint, write_json
from supernet.trial import Boundary, Event, Finished, Replayed, trial_events

from .checkpoints import note
from .results import disk_status, flatten_summary, summary_keys, write_trial_fragments
from .setup import ENDED_KEYS, TrialSetup
from .stage_cache import open_store


def _topology_bounds(setup: Any, config: dict[str, Any]) -> tuple[int, bool]:
    """(n_nodes, planted) for ``summary_keys``: N bounds the path lengths; only planted data has an oracle."""
    try:
        cfg = build_config(setup.preset, {**setup.base, **config["overrides"]})
    except ConfigError:
        return 0, False
    return cfg.model.n_nodes, cfg.data.name == "planted"


def _last_line(path: Path) -> dict[str, Any]:
    lines = path.read_text().splitlines()
    return json.loads(lines[-1]) if lines else {}


def _resume(trial_dir: Path) -> dict[str, Any] | None:
    """Tune's latest checkpoint of this trial (its state and metrics.jsonl back in the trial folder), or None.

    An unreadable ``state.pt`` (a torn copy) is a start from scratch, said in ``trial.log``."""
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        try:
            state = load_checkpoint(Path(d) / "state.pt")
        except Exception as e:  # noqa: BLE001 - any unreadable checkpoint: the trial's own config decides the rest
            note(
                str(trial_dir),
                f"its checkpoint {Path(ckpt.path).name} is unreadable ({type(e).__name__}); starting from scratch",
            )
            return None
        if (Path(d) / "metrics.jsonl").is_file():
            shutil.copy(Path(d) / "metrics.jsonl", trial_dir / "metrics.jsonl")
        return state


def _ended(
    report, trial_dir: Path, status: str, summary: dict[str, Any], where: dict[str, Any], keys: tuple[str, ...] | None
) -> None:
    """The one report of a trial that ended without a result (diverged, or a config error): no retry, no rerun."""
    note(str(trial_dir), f"ended {status}: {summary.get('error')}", echo=False)
    path = trial_dir / "metrics.jsonl"
    last = _last_line(path) if path.is_file() else {}
    send(
        report,
        {
            "trial_finished": 0.0,
            "trial_status": status,
            "error": summary.get("error"),
            "step": last.get("step", 0),
            **where,
        },
        None,
        trial_dir,
        keys and (*keys, *ENDED_KEYS),
    )


def send(
    report,
    metrics: dict[str, Any],
    checkpoint: dict[str, Any] | None,
    trial_dir: Path,
    keys: tuple[str, ...] | None = None,
) -> None:
    """One ``report(metrics[, checkpoint=...])`` (only ``keys`` of ``metrics`` when given); a checkpoint is
    ``state.pt`` + the metrics.jsonl so far."""
    metrics = {k: (math.nan if v is None else v) for k, v in metrics.items() if keys is None or k in keys}
    if checkpoint is None:
        return report(metrics)
    with tempfile.TemporaryDirectory() as d:
        atomic_torch_save(checkpoint, Path(d) / "state.pt")
        if (trial_dir / "metrics.jsonl").is_file():
            shutil.copy(trial_dir / "metrics.jsonl", Path(d) / "metrics.jsonl")
        report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


def _report_finished(
    report, trial_dir: Path, done: dict[str, Any], where: dict[str, Any], setup: TrialSetup, config: dict, trial_id: str
) -> None:
    """The one report of a trial whose ``summary.json`` says it finished: its result, without running it again."""
    note(str(trial_dir), "finished already: reporting its result, not running it again", echo=False)
    last = _last_line(trial_dir / "metrics.jsonl")
    metrics = [f"{t}/{m}" for t, ms in done["metrics"].items() for m in ms]
    final = {
        **summary_keys(list(done["val_loss"]), metrics, *_topology_bounds(setup, config)),
        **last,
        **flatten_summary(done),
        **where,
        "resumed_from_step": last["step"],
    }
    if setup.rows is not None:
        write_trial_fragments(setup.rows, trial_id, config["overrides"], "finished", final)
    send(report, final, None, trial_dir, setup.report_keys)


def _event_record(ev: Event, trial_dir: Path) -> dict[str, Any]:
    """The record an event's report carries: a replayed stage's last, or (Finished after a stage without
    epochs) the last line written."""
    record = ev.records[-1] if isinstance(ev, Replayed) else ev.record
    return record if record is not None else _last_line(trial_dir / "metrics.jsonl")


def _report_events(
    report,
    events: Iterator[Event],
    trial_dir: Path,
    where: dict[str, Any],
    setup: TrialSetup,
    config: dict,
    trial_id: str,
) -> None:
    """One report per event that carries an epoch (only those with a checkpoint, and the end, with
    ``setup.report_keys``)."""
    keys = None
    for ev in events:
        if isinstance(ev, Boundary) or (ev.checkpoint is None and setup.report_keys is not None):
            continue  # a boundary has no epoch to carry it: the next checkpoint supersedes it
        record = _event_record(ev, trial_dir)
        final = flatten_summary(ev.summary) if isinstance(ev, Finished) else {}
        if keys is None:  # the summary keys, NaN until the end, in every report
            keys = summary_keys(
                [k.split("/", 1)[1] for k in record if k.startswith("val_loss/")],
                [k.split("/", 1)[1] for k in record if k.startswith("metric/")],
                *_topology_bounds(setup, config),
            )
        metrics = {**keys, **record, **where, **final}
        if final and setup.rows is not None:
            write_trial_fragments(setup.rows, trial_id, config["overrides"], "finished", metrics)
        send(report, metrics, ev.checkpoint, trial_dir, setup.report_keys)


def train(config: dict[str, Any], setup: TrialSetup, report=tune.report) -> None:
    """The function trainable: build the config, resume from Tune's checkpoint if any, run, report.

    What the trial folder's ``summary.json`` says is final (``tune.results.disk_status``): a trial that
    finished, diverged or met a config error is never run again, whatever Tune's state says; it reports
    how it ended and returns. A config error or divergence is a result of the config, not a fault: it ends
    the trial without Tune retrying it (``max_failures`` is for faults)."""
    ctx = tune.get_context()
    # local/NFS storage: write straight into the experiment's trial folder (launch names it trial_<id>), so
    # the files are complete there when the trial reports its end; URIs: Tune's trial dir, synced by Tune
    trial_dir = Path(setup.exp_dir) / f"trial_{ctx.get_trial_id()}" if setup.exp_dir else Path(ctx.get_trial_dir())
    trial_dir.mkdir(parents=True, exist_ok=True)
    where = {"node": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname()}
    status, done = disk_status(trial_dir)
    if status == "finished":  # it finished, but the driver died before Tune's state recorded that: never re-run
        return _report_finished(report, trial_dir, done, where, setup, config, ctx.get_trial_id())
    if status is not None:
        return _ended(report, trial_dir, status, done, where, setup.report_keys)
    try:
        cfg = build_config(setup.preset, {**setup.base, **config["overrides"]})
    except ConfigError as e:  # Optuna can propose one; a grid's points are checked before the sweep starts
        summary = {"status": "errored", "error": f"ConfigError: {e}"}
        write_json(trial_dir / "summary.json", summary)
        return _ended(report, trial_dir, "errored", summary, where, setup.report_keys)
    resume = _resume(trial_dir)
    where["resumed_from_step"] = resume["step"] if resume else 0
    note(str(trial_dir), f"resuming from the checkpoint of step {resume['step']}" if resume else "starting", echo=False)
    try:
        events = trial_events(cfg, trial_dir, resume, open_store(setup.stage_cache))
        _report_events(report, events, trial_dir, where, setup, config, ctx.get_trial_id())
    except (DivergenceError, ConfigError) as e:  # a resumed config that differs from its checkpoint's is one too
        status, summary = disk_status(trial_dir)
        if status != "diverged":
            summary = {"status": "errored", "error": f"{type(e).__name__}: {e}"}
            write_json(trial_dir / "summary.json", summary)
        return _ended(report, trial_dir, status or "errored", summary, where, setup.report_keys)
