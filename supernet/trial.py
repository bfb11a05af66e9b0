"""One configuration through warm-up -> search -> reduction -> fine-tune, as a generator of events.

``trial_events(cfg, out_dir, resume, store)`` walks the stages of ``cfg.trial.mode`` (``plan`` of the
stage table, ``supernet/stages.py``), runs each stage's function (or loads the stage from the stage
store, ``supernet/store.py``) and yields what a driver needs:

- ``Epoch(record, checkpoint)``: a trained epoch; ``checkpoint`` (a ``TrialState`` dict) when one is due:
  at the end of a stage and every ``trial.checkpoint_every`` epochs;
- ``Replayed(records, checkpoint)``: a stage loaded from the stage store, with its boundary checkpoint;
- ``Boundary(checkpoint)``: the end of a stage without an epoch of its own (reduction, a zero-epoch stage);
- ``Finished(record, checkpoint, summary)``: the end; ``summary.json`` is written before it is yielded.

``run_trial`` drives it for ``run.py --trial`` and tests (``TrialHooks``); the Tune trainable is a loop over
the same events (tune/trainable.py). No Ray here.

Every trial leaves in ``out_dir``: ``config.json``, ``arch_spec.json``, ``metrics.jsonl`` (one object per
epoch, same keys every line), ``checkpoint.pt`` (via LocalHooks) and ``summary.json`` (with the trivial
references of ``supernet.trivial`` and the ``learned`` flags).

Modes: ``supernet`` (the method), ``full_supernet`` (search without reduction), ``hard_sharing`` (all
tasks on one plain chain of the same ops, separate heads), ``single_task`` (one task on that chain),
``random_arch`` (the method's stages, then a random topology of the searched size: supernet/random_arch.py).
Baselines train warm-up + fine-tune epochs (the method's weight-training budget) on their fixed spec.
"""

from __future__ import annotations

import json
import math
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generator, Iterator

import torch
import torch.nn as nn

from .compact import build_compact
from .config import Config, to_dict
from .costs import cost_summary, count_flops, n_params
from .dag import build_supernet
from .data.planted import planted_summary
from .epoch import DivergenceError
from .runtime import keep_freed_memory
from .spec import ArchSpec
from .stages import REUSABLE_STAGES, STAGES, EpochResult, Run, Stage, Start, plan
from .state import TrialState, atomic_torch_save, cpu_weights, jsonable, write_json
from .store import StageStore, stage_key
from .topology import collapsed, spec_null, task_topology
from .trivial import LEARNED_MARGINS, learned_tasks, trivial_references

# ----------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Epoch:
    record: dict[str, Any]
    checkpoint: dict[str, Any] | None = None


@dataclass(frozen=True)
class Replayed:
    records: list[dict[str, Any]]  # never empty (an empty stage from the store is a Boundary)
    checkpoint: dict[str, Any]


@dataclass(frozen=True)
class Boundary:
    checkpoint: dict[str, Any]


@dataclass(frozen=True)
class Finished:
    record: dict[str, Any] | None  # the last stage's last epoch, not yielded before; None if it had none
    checkpoint: dict[str, Any]
    summary: dict[str, Any]


Event = Epoch | Replayed | Boundary | Finished


# ----------------------------------------------------------------------------- what a trial writes


class MetricsLog:
    """``metrics.jsonl``: one object per epoch. ``keep_until``: resuming from the checkpoint of that step,
    so keep the lines up to it and drop later ones (epochs after the checkpoint run again: one line per
    epoch); None = start afresh."""

    def __init__(self, path: Path, keep_until: int | None):
        self.path = path
        if keep_until is None or not path.is_file():
            path.write_text("")
            return
        kept = []
        for ln in path.read_text().splitlines(keepends=True):
            try:
                step = json.loads(ln)["step"] if ln.strip() else None
            except (ValueError, KeyError, TypeError):  # a line torn by a kill mid-write: its epoch runs again
                continue
            if step is not None and step <= keep_until:
                kept.append(ln if ln.endswith("\n") else ln + "\n")
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(kept))
        tmp.replace(path)

    def write(self, records: list[dict[str, Any]]) -> None:
        with self.path.open("a") as f:
            f.writelines(json.dumps(jsonable(r)) + "\n" for r in records)


def build_model(run: Run, state: TrialState) -> nn.Module:
    """The trial's network: a baseline's chain, the supernet, or (resumed after reduction) the compact net,
    with the state's weights when it has any (they then leave the state)."""
    cfg, m, mode = run.cfg, run.cfg.model, run.cfg.trial.mode
    torch.manual_seed(cfg.trial.seed)
    if mode in ("single_task", "hard_sharing"):
        spec = ArchSpec.chain(m.n_nodes, m.flow_width, run.tasks)
        state.spec, state.model_kind = spec.to_dict(), "compact"
        model = build_compact(spec, m, run.tasks)
    elif state.model_kind == "compact":
        model = build_compact(ArchSpec.from_dict(state.spec), m, run.tasks)
    else:
        model, state.model_kind = build_supernet(m, run.tasks), "supernet"
    if state.model is not None:
        model.load_state_dict(state.model)
        state.model = None
    return model.to(run.device)


def _costs(run: Run, model: nn.Module) -> dict[str, float]:
    x = torch.zeros(1, *run.image_shape, device=run.device)
    return {"params_union": float(n_params(model)), "flops_multitask": float(count_flops(model, x))}


def _quality(metrics: dict, vloss: dict) -> dict[str, float]:
    rec = {f"val_loss/{t}": v for t, v in vloss.items()}
    rec.update({f"metric/{t}/{name}": v for t, ms in metrics.items() for name, v in ms.items()})
    return rec


def epoch_record(stage: str, index: int, step: int, res: EpochResult, costs: dict[str, float]) -> dict[str, Any]:
    """One line of metrics.jsonl: the same keys at every epoch of every stage."""
    rec: dict[str, Any] = {
        "stage": stage,
        "stage_index": index,
        "epoch": res.epoch,
        "step": step,
        "train_loss": res.train["train_loss"],
        "squeeze": res.train["squeeze"],
    }
    rec.update(_quality(res.metrics, res.val_loss))
    rec["score"] = sum(res.val_loss.values()) / len(res.val_loss)  # the scheduler's scalar: mean val loss (min)
    rec.update(costs)
    rec["epoch_time_s"] = res.seconds
    rec["gpu_peak_mem_mb"] = res.gpu_peak_mem_mb
    return rec


def summarize(run: Run, state: TrialState, model: nn.Module, last_eval: tuple[dict, dict] | None) -> dict[str, Any]:
    """``summary.json``: final quality, trivial references and learned flags, costs, timings, stage quality."""
    cfg = run.cfg
    metrics, vloss = last_eval if last_eval is not None else run.evaluate(model)
    costs = cost_summary(model, run.image_shape, run.device, cfg.trial.latency_repeats)
    trivial = trivial_references(run.train, run.val, run.tasks, cfg.data.batch_size)
    learned = learned_tasks(metrics, trivial, {t: s.kind for t, s in run.tasks.items()})
    spec = ArchSpec.from_dict(state.spec) if state.spec else None
    return {
        "status": "finished",
        "mode": cfg.trial.mode,
        "tasks": {t: s.kind for t, s in run.tasks.items()},
        "metrics": metrics,
        "trivial": trivial,  # the trivial predictors' metrics on the same validation split (supernet.trivial)
        "learned": all(learned.values()),  # every task beats its trivial reference by LEARNED_MARGINS
        "learned_per_task": learned,
        "val_loss": vloss,
        "params": {**costs["params"], "supernet": n_params(build_supernet(cfg.model, run.tasks))},
        "flops": costs["flops"],
        "latency_ms": costs["latency_ms"],
        "timings": {s: state.timings.get(s, math.nan) for s in STAGES},
        "reused": {s: bool(state.reused.get(s, False)) for s in REUSABLE_STAGES},
        # validation quality at the end of each stage run (warm-up, search, right after reduction, fine-tune)
        "stage_quality": {s: q for s in STAGES if (q := state.stage_quality.get(s))},
        "arch_spec": "arch_spec.json" if state.spec else None,
        # what each task kept (supernet/topology.py): edges, longest path, ops shared with each other task, and
        # the longest path's distribution over random valid architectures of the same size (the hit test's null)
        **(
            {"topology": task_topology(spec), "collapsed": collapsed(spec), "null_longest_path": spec_null(spec)}
            if spec
            else {}
        ),
        **({"planted": planted_summary(tuple(run.tasks))} if cfg.data.name == "planted" else {}),
        "node": socket.gethostname(),
        "device": str(run.device),
    }


# ----------------------------------------------------------------------------- the stage loop


@dataclass(frozen=True)
class StageEnd:
    """A stage as the loop ends it."""

    records: list[dict[str, Any]]  # its metrics.jsonl lines: trained here, or replayed from the stage store
    replayed: bool  # loaded from the stage store
    checkpoint: dict[str, Any]  # the boundary checkpoint after it

    @property
    def unsent(self) -> dict[str, Any] | None:
        """Its last trained epoch: not yielded as an Epoch of its own, it goes out with the stage's end."""
        return self.records[-1] if self.records and not self.replayed else None


def closing_event(end: StageEnd) -> Event:
    """The event that ends a stage other than the last (whose last epoch goes out with ``Finished``)."""
    if end.replayed and end.records:
        return Replayed(end.records, end.checkpoint)
    if end.unsent is not None:
        return Epoch(end.unsent, end.checkpoint)
    return Boundary(end.checkpoint)


class _Trial:
    """One trial's moving parts between its stages: state, network, metrics log, costs, last evaluation.

    Built inside ``trial_events``: a config other than the checkpoint's fails in ``TrialState.resume``,
    before anything is written."""

    def __init__(self, cfg: Config, out: Path, resume: dict[str, Any] | None, store: StageStore | None):
        self.cfg, self.out, self.store = cfg, out, store
        self.state = TrialState.resume(cfg, resume) if resume is not None else TrialState.new(cfg)
        if cfg.trial.keep_freed_memory:
            keep_freed_memory()
        if cfg.trial.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        # the data first: a wrong data.root leaves no config.json, so the corrected command is not refused as a
        # rerun of an existing trial
        self.run = Run.build(cfg)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", to_dict(cfg))
        self.log = MetricsLog(out / "metrics.jsonl", keep_until=self.state.step if resume is not None else None)
        self.model = build_model(self.run, self.state)
        self.costs = _costs(self.run, self.model)
        self.last_eval: tuple[dict, dict] | None = None  # (metrics, val losses) of the current weights
        self.checkpoint: dict[str, Any] | None = None  # the latest boundary checkpoint

    def run_stage(self, index: int, stage: Stage) -> Generator[Epoch, None, StageEnd]:
        """Run ``stage`` (``index``: its place in the plan), or load it from the store; yields an ``Epoch``
        for each trained epoch but the stage's last, and returns the stage's end."""
        t0 = time.perf_counter()
        key = self._key(stage)
        hit = self.store.get(stage.name, key) if key else None
        if hit is not None:
            records = self._replay(hit)
        else:
            records = yield from self._compute(index, stage)
            if key:
                self.store.put(stage.name, key, {"model": cpu_weights(self.model), "records": records})
        return self._end(stage, records, hit is not None, time.perf_counter() - t0)

    def _key(self, stage: Stage) -> str | None:
        """The stage's store key; None when it is not shared, there is no store, or it resumes inside it."""
        if stage.reusable and self.store is not None and self.state.stage != stage.name:
            return stage_key(self.cfg, stage.name)
        return None

    def _replay(self, hit: dict[str, Any]) -> list[dict[str, Any]]:
        self.model.load_state_dict(hit["model"])
        records, self.last_eval = hit["records"], None
        self.state.step += len(records)
        self.log.write(records)
        return records

    def _start(self, stage: Stage) -> Start:
        s = self.state
        return Start(s.epoch, s.optim, s.sched) if s.stage == stage.name and s.optim is not None else Start()

    def _compute(self, index: int, stage: Stage) -> Generator[Epoch, None, list[dict[str, Any]]]:
        result = stage.function(self.run, stage, self.model, self._start(stage))
        self.model = result.model
        records = []
        for res in result.epochs:
            records.append(self._record(index, stage, res))
            if res.epoch + 1 < stage.epochs(self.cfg):  # the stage's last epoch goes out with its boundary
                yield Epoch(records[-1], self._due_checkpoint(res))
        if result.spec is not None:
            self._adopt(stage, result.spec)
        return records

    def _record(self, index: int, stage: Stage, res: EpochResult) -> dict[str, Any]:
        """A trained epoch into the state and metrics.jsonl; its record."""
        self.state.step += 1
        rec = epoch_record(stage.name, index, self.state.step, res, self.costs)
        self.log.write([rec])
        self.last_eval = (res.metrics, res.val_loss)
        self.state.stage, self.state.epoch = stage.name, res.epoch + 1
        return rec

    def _due_checkpoint(self, res: EpochResult) -> dict[str, Any] | None:
        """A mid-stage checkpoint (with optimiser and scheduler states) every ``trial.checkpoint_every`` epochs."""
        k = self.cfg.trial.checkpoint_every
        if not k or (res.epoch + 1) % k:
            return None
        optim = [o.state_dict() for o in res.optimizers]
        return self.state.to_dict(self.model, optim, [s.state_dict() for s in res.schedulers])

    def _adopt(self, stage: Stage, spec: ArchSpec) -> None:
        """The new network of a stage (reduction's compact net): its spec, and its validation right after the
        stage, which is the stage's quality (the gap at reduction)."""
        self.state.spec, self.state.model_kind = spec.to_dict(), "compact"
        self.last_eval = self.run.evaluate(self.model)
        self.state.stage_quality[stage.name] = _quality(*self.last_eval)

    def _end(self, stage: Stage, records: list[dict[str, Any]], replayed: bool, seconds: float) -> StageEnd:
        state = self.state
        if stage.reusable:
            state.reused[stage.name] = replayed
        if records:  # quality at the end of this stage: the last epoch's validation
            state.stage_quality[stage.name] = {
                k: v for k, v in records[-1].items() if k.startswith(("metric/", "val_loss/"))
            }
        if stage.name == "search" and self.cfg.trial.mode == "full_supernet":
            state.spec = ArchSpec.full(self.cfg.model.n_nodes, self.cfg.model.flow_width, self.run.tasks).to_dict()
        state.end_stage(stage.name, seconds)
        self.costs = _costs(self.run, self.model)
        self.checkpoint = state.to_dict(self.model)
        return StageEnd(records, replayed, self.checkpoint)

    def summary(self) -> dict[str, Any]:
        """``arch_spec.json`` (when there is a spec) and the summary (not yet written)."""
        if self.state.spec:
            ArchSpec.from_dict(self.state.spec).to_json(self.out / "arch_spec.json")
        return summarize(self.run, self.state, self.model, self.last_eval)

    def diverged(self, e: DivergenceError) -> None:
        summary = {"status": "diverged", "error": str(e), "mode": self.cfg.trial.mode, "timings": self.state.timings}
        write_json(self.out / "summary.json", summary)

    def final_checkpoint(self) -> dict[str, Any]:
        """The last boundary checkpoint; a fresh one when no stage ran here (resumed after the last)."""
        return self.checkpoint if self.checkpoint is not None else self.state.to_dict(self.model)


def trial_events(
    cfg: Config, out_dir: str | Path, resume: dict[str, Any] | None = None, store: StageStore | None = None
) -> Iterator[Event]:
    """Run every stage of ``cfg.trial.mode`` not yet done in ``resume`` (a checkpoint dict), yielding events.

    A config other than the checkpoint's is a ConfigError naming the keys, before anything is written.
    A diverging loss raises DivergenceError after writing ``summary.json`` with status ``diverged``;
    ``config.json``, ``metrics.jsonl`` and the last checkpoint stay as they were.
    """
    trial = _Trial(cfg, Path(out_dir), resume, store)
    stages = plan(cfg)
    last: dict[str, Any] | None = None  # the last stage's last epoch: it goes out with the summary
    try:
        for i, stage in enumerate(stages):
            if stage.name in trial.state.done:
                continue
            end = yield from trial.run_stage(i, stage)
            if i + 1 < len(stages):
                yield closing_event(end)
            else:
                last = end.unsent
        summary = trial.summary()
    except DivergenceError as e:
        trial.diverged(e)
        raise
    write_json(trial.out / "summary.json", summary)
    yield Finished(last, trial.final_checkpoint(), summary)


# ----------------------------------------------------------------------------- a driver without Ray


class TrialHooks:
    """What ``run_trial`` calls; override what a driver needs. Defaults do nothing."""

    def on_epoch(self, record: dict[str, Any]) -> None:
        """Called after every epoch of every stage with the same keys each time."""

    def on_replay(self, records: list[dict[str, Any]]) -> None:
        """Records of a stage loaded from the stage store (already in metrics.jsonl). Default: on_epoch each.

        Never called for a stage without epochs (e.g. ``warmup.epochs: 0``): ``records`` is never empty."""
        for record in records:
            self.on_epoch(record)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Called at each stage boundary and every ``trial.checkpoint_every`` epochs."""


class LocalHooks(TrialHooks):
    """``run.py --trial``: atomic ``checkpoint.pt`` in the trial folder and one line per epoch.

    ``epochs``: each stage's epoch count (``supernet.stages.stage_epochs``), so a line reads ``warmup 3/8``;
    ``detail``: the line also carries every validation metric, the squeeze loss and the epoch's seconds."""

    def __init__(
        self, out_dir: str | Path, verbose: bool = True, epochs: dict[str, int] | None = None, detail: bool = False
    ):
        self.path = Path(out_dir) / "checkpoint.pt"
        self.verbose, self.epochs, self.detail = verbose, dict(epochs or {}), detail

    def on_epoch(self, record: dict[str, Any]) -> None:
        if self.verbose:
            print(epoch_line(record, self.epochs.get(record["stage"]), self.detail), flush=True)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_torch_save(state, self.path)


def _num(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) and math.isfinite(v) else "nan"


def epoch_line(record: dict[str, Any], of: int | None = None, detail: bool = False) -> str:
    """One epoch as ``warmup 3/8  train loss 0.41  val loss: segmentation 0.52, depth 0.31`` (``of``: the
    stage's epoch count); ``detail`` adds ``val metrics: ...``, the squeeze loss (search) and the seconds."""
    by_task = [(k.split("/", 1)[1], v) for k, v in record.items() if k.startswith("val_loss/")]
    epoch = f"{record['epoch'] + 1}/{of}" if of else f"{record['epoch'] + 1}"
    line = f"{record['stage']} {epoch}  train loss {_num(record['train_loss'])}  val loss: "
    line += ", ".join(f"{t} {_num(v)}" for t, v in by_task)
    if not detail:
        return line
    metrics: dict[str, list[str]] = {}
    for k, v in record.items():
        if k.startswith("metric/"):
            _, task, name = k.split("/", 2)
            metrics.setdefault(task, []).append(f"{name} {_num(v)}")
    line += "  val metrics: " + "; ".join(f"{t} {' '.join(ms)}" for t, ms in metrics.items())
    if math.isfinite(record.get("squeeze", math.nan)):
        line += f"  squeeze {_num(record['squeeze'])}"
    return line + f"  ({record['epoch_time_s']:.1f} s)"


TRIAL_FILES = ("config.json", "arch_spec.json", "metrics.jsonl", "checkpoint.pt", "summary.json")
# the metric a task of each kind is judged on: the first one its learned margin is stated on (LEARNED_MARGINS)
MAIN_METRICS: dict[str, str] = {kind: metric for kind, metric in reversed(list(LEARNED_MARGINS))}


def _task_row(summary: dict[str, Any], task: str, kind: str) -> list[str]:
    """task, main metric (its sense), value, trivial reference, the value that counts as learned, learned."""
    metric = MAIN_METRICS.get(kind)
    value = summary["metrics"].get(task, {}).get(metric, math.nan)
    ref = summary.get("trivial", {}).get(task, {}).get(metric, math.nan)
    sense, factor = LEARNED_MARGINS.get((kind, metric), ("", math.nan))
    need = f"{'>=' if sense == 'max' else '<='} {_num(factor * ref)}" if sense else "-"
    learned = "yes" if summary.get("learned_per_task", {}).get(task) else "no"
    return [task, f"{metric} ({sense})", _num(value), _num(ref), need, learned]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def result_lines(summary: dict[str, Any], out_dir: str | Path, detail: bool = False) -> list[str]:
    """What ``run.py --trial`` prints at the end: a table of each task's main metric against its trivial
    reference (``supernet.trivial``: learned = beats it by the margin in the ``learned at`` column), the
    verdict, compact and full-supernet parameters and where the files are. ``detail``: every other metric
    of each task with its trivial value, and the seconds of each stage."""
    rows = [["task", "metric (sense)", "value", "trivial", "learned at", "learned"]]
    for task, kind in summary["tasks"].items():
        rows.append(_task_row(summary, task, kind))
        if detail:
            main = MAIN_METRICS.get(kind)
            rows += [
                ["", name, _num(v), _num(summary.get("trivial", {}).get(task, {}).get(name, math.nan)), "", ""]
                for name, v in summary["metrics"].get(task, {}).items()
                if name != main
            ]
    per_task = summary.get("learned_per_task", {})
    verdict = "yes" if summary.get("learned") else "no"
    lines = [
        *_table(rows),
        f"learned: {verdict} ({sum(map(bool, per_task.values()))} of {len(per_task)} tasks reach 'learned at')",
    ]
    p = summary["params"]
    lines.append(f"params: compact {p['union']:,}, full supernet {p['supernet']:,}")
    if detail:
        lines.append("seconds: " + ", ".join(f"{s} {_num(v)}" for s, v in summary.get("timings", {}).items()))
    files = [n for n in TRIAL_FILES if (Path(out_dir) / n).is_file()]
    lines.append(f"files in {out_dir}: {', '.join(files)}")
    return lines


def run_trial(
    cfg: Config,
    out_dir: str | Path,
    hooks: TrialHooks | None = None,
    resume: dict[str, Any] | None = None,
    store: StageStore | None = None,
) -> dict[str, Any]:
    """``trial_events`` driven through ``hooks``; returns the summary."""
    hooks = hooks or TrialHooks()
    for ev in trial_events(cfg, out_dir, resume, store):
        if isinstance(ev, Replayed):
            hooks.on_replay(ev.records)
        elif isinstance(ev, (Epoch, Finished)) and ev.record is not None:
            hooks.on_epoch(ev.record)
        if ev.checkpoint is not None:
            hooks.save_checkpoint(ev.checkpoint)
        if isinstance(ev, Finished):
            return ev.summary
    raise AssertionError("trial_events ended without Finished")
