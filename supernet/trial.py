"""``run_trial(cfg, out_dir)``: one configuration through warm-up -> search -> reduction -> fine-tune.

Drivers (``run.py --trial``, the Ray Tune trainable, tests) plug in through ``TrialHooks``
(per-epoch records, checkpoints), ``resume`` (a checkpoint state to continue from) and ``store``
(content-addressed stage checkpoints shared between trials, for stage reuse). No Ray here.

Every trial leaves in ``out_dir``: ``config.json``, ``arch_spec.json``, ``metrics.jsonl`` (one object
per epoch, same keys every line), ``checkpoint.pt`` (via LocalHooks) and ``summary.json`` (with the
trivial references of ``supernet.trivial`` and the ``learned`` flags).

Modes: ``supernet`` (the method), ``full_supernet`` (search without reduction), ``hard_sharing`` (all
tasks on one plain chain of the same ops, separate heads), ``single_task`` (one task on that chain),
``random_arch`` (the method's stages, then a random topology of the searched size: supernet/random_arch.py).
Baselines train warm-up + fine-tune epochs (the method's weight-training budget) on their fixed spec.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn as nn

from .compact import build_compact
from .config import Config, ConfigError, flatten, to_dict
from .costs import cost_summary, count_flops, n_params
from .dag import Supernet, build_supernet
from .data import build_data
from .random_arch import random_like
from .reduction import fold_gates, reduce
from .runtime import keep_freed_memory
from .spec import ArchSpec
from .squeeze import squeeze_loss
from .stages import (
    DivergenceError, evaluate, make_loader, recalibrate_norms, set_trainable, sgd, stage_seed, train_epoch,
)
from .trivial import learned_tasks, trivial_references

STAGE_PLAN: dict[str, tuple[str, ...]] = {
    "supernet": ("warmup", "search", "reduction", "finetune"),
    "full_supernet": ("warmup", "search", "finetune"),
    "random_arch": ("warmup", "search", "reduction", "finetune"),  # the method's stages, a random topology
    "hard_sharing": ("warmup", "finetune"),
    "single_task": ("warmup", "finetune"),
}
STAGES = STAGE_PLAN["supernet"]  # every stage, in order
SUPERNET_MODES = ("supernet", "full_supernet", "random_arch")  # modes that warm up and search the supernet
REUSABLE_STAGES = ("warmup", "search")  # the stages the stage store shares between trials
CHECKPOINT_VERSION = 3  # 2: ConvNorm ops (conv/norm module names), per-task batch statistics; 3: gate temperature buffer


# ----------------------------------------------------------------------------- driver interfaces


class TrialHooks:
    """Override what a driver needs. Defaults do nothing."""

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
    """``run.py --trial``: atomic ``checkpoint.pt`` in the trial folder and one line per epoch."""

    def __init__(self, out_dir: str | Path, verbose: bool = True):
        self.path = Path(out_dir) / "checkpoint.pt"
        self.verbose = verbose

    def on_epoch(self, record: dict[str, Any]) -> None:
        if self.verbose:
            vl = " ".join(f"{k.split('/', 1)[1]}={v:.4f}" for k, v in record.items() if k.startswith("val_loss/"))
            print(f"[{record['stage']:>8} {record['epoch'] + 1:>3}] train_loss={record['train_loss']:.4f} {vl}", flush=True)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_torch_save(state, self.path)


class StageStore(Protocol):
    def get(self, stage: str, key: str) -> dict[str, Any] | None: ...

    def put(self, stage: str, key: str, state: dict[str, Any]) -> bool: ...


class DirStageStore:
    """Content-addressed stage checkpoints in a (local or NFS) folder: ``root/<stage>/<key>.pt``.

    Writes are atomic (temp file + hard link): two trials racing for one key cannot corrupt it, and the
    first writer wins. Readers see either nothing or a complete file.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, stage: str, key: str) -> Path:
        return self.root / stage / f"{key}.pt"

    def get(self, stage: str, key: str) -> dict[str, Any] | None:
        p = self._path(stage, key)
        if not p.is_file():
            return None
        try:
            return torch.load(p, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - an unreadable entry is recomputed, never trusted
            return None

    def put(self, stage: str, key: str, state: dict[str, Any]) -> bool:
        p = self._path(stage, key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-", suffix=".pt")
        os.close(fd)
        try:
            torch.save(state, tmp)
            os.link(tmp, p)  # fails if another writer got there first
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
    os.close(fd)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_jsonable(obj), indent=1))
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def stage_key(cfg: Config, stage: str) -> str:
    """Content address of a stage's result: the config fields the stage depends on (DESIGN section 7).

    warm-up: data (not loader speed settings), model, warm-up settings, seed, precision;
    search: additionally the search settings (lambda_sq, squeeze kind, ...). tau only matters later.
    """
    d = to_dict(cfg)
    parts: dict[str, Any] = {
        "data": {k: v for k, v in d["data"].items() if k not in ("num_workers", "pin_memory")},
        "model": d["model"],
        "warmup": d["warmup"],
        "seed": cfg.trial.seed,
        "precision": cfg.trial.precision,
        # the stage's network: the supernet for the method and full_supernet; a baseline's own chain otherwise
        "family": "supernet" if cfg.trial.mode in SUPERNET_MODES else f"chain:{cfg.trial.mode}:{cfg.trial.single_task}",
        "v": CHECKPOINT_VERSION,
    }
    if stage == "search":
        parts["search"] = d["search"]
    elif stage != "warmup":
        raise ValueError(f"only warmup and search are reusable, not {stage!r}")
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def pick_device(choice: str) -> torch.device:
    """``auto``: CUDA when ``torch.cuda.is_available()`` (not from Ray's resource assignment)."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trial.device: cuda requested but torch.cuda.is_available() is False; use auto or cpu")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


# ----------------------------------------------------------------------------- the trial


class _Recorder:
    """Writes metrics.jsonl and forwards each record to the hooks.

    ``append_after``: resuming from the checkpoint of that step, so keep the lines up to it and drop the
    later ones (epochs run after the checkpoint run again: one line per epoch); None = start afresh.
    """

    def __init__(self, path: Path, hooks: TrialHooks, append_after: int | None):
        self.path, self.hooks = path, hooks
        if append_after is None or not path.is_file():
            path.write_text("")
            return
        kept = [ln for ln in path.read_text().splitlines(keepends=True) if ln.strip() and json.loads(ln)["step"] <= append_after]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, path)

    def _write(self, records: list[dict[str, Any]]) -> None:
        with self.path.open("a") as f:
            f.writelines(json.dumps(_jsonable(r)) + "\n" for r in records)

    def __call__(self, record: dict[str, Any]) -> None:
        self._write([record])
        self.hooks.on_epoch(record)

    def replay(self, records: list[dict[str, Any]]) -> None:
        if not records:  # a zero-epoch stage from the store: nothing happened, nothing to report
            return
        self._write(records)
        self.hooks.on_replay(records)


class _Trial:
    """State of one running trial; ``run_trial`` is its only user."""

    def __init__(self, cfg: Config, out: Path, hooks: TrialHooks, resume: dict | None, store: StageStore | None):
        self.cfg, self.out, self.hooks, self.store = cfg, out, hooks, store
        t = cfg.trial
        if t.keep_freed_memory:
            keep_freed_memory()
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        self.device = pick_device(t.device)
        if t.mode == "single_task":  # only that task's data (Omniglot: its alphabet's images)
            try:
                data = build_data(dataclasses.replace(cfg.data, tasks=(t.single_task,)))
            except ConfigError as e:
                raise ConfigError(f"trial.single_task: {t.single_task!r} is not a task here ({e})") from None
        else:
            data = build_data(cfg.data)
        self.train_ds, self.val_ds, self.tasks = data.train, data.val, data.tasks
        self.image_shape = tuple(self.val_ds[0][0].shape)
        self.plan = STAGE_PLAN[t.mode]
        self.state: dict[str, Any] = resume or {
            "version": CHECKPOINT_VERSION, "done": [], "stage": None, "epoch": 0, "step": 0,
            "timings": {}, "reused": {}, "spec": None, "model_kind": None, **config_identity(cfg),
        }
        if self.state.get("version") != CHECKPOINT_VERSION:
            raise ValueError("checkpoint: written by an incompatible version of this tool; start the trial afresh")
        self.record = _Recorder(out / "metrics.jsonl", hooks, append_after=self.state["step"] if resume is not None else None)
        self.model = self._build_model().to(self.device)
        self.last_eval: tuple[dict, dict] | None = None  # (metrics, val losses) of the current weights
        self.costs: dict[str, float] = {"params_union": math.nan, "flops_multitask": math.nan}
        self._update_costs()

    # ---------------------------------------------------------------- models

    def _build_model(self) -> nn.Module:
        cfg, mode, st = self.cfg, self.cfg.trial.mode, self.state
        torch.manual_seed(cfg.trial.seed)
        m = cfg.model
        if mode in ("single_task", "hard_sharing"):
            spec = ArchSpec.chain(m.n_nodes, m.flow_width, self.tasks)
            st["spec"] = spec.to_dict()
            model = build_compact(spec, m, self.tasks)
            kind = "compact"
        elif st.get("model_kind") == "compact":
            model = build_compact(ArchSpec.from_dict(st["spec"]), m, self.tasks)
            kind = "compact"
        else:
            model = build_supernet(m, self.tasks)
            kind = "supernet"
        saved = st.pop("model", None)
        if saved is not None:
            model.load_state_dict(saved)
        st["model_kind"] = kind
        return model

    def _update_costs(self) -> None:
        x = torch.zeros(1, *self.image_shape, device=self.device)
        self.costs = {"params_union": float(n_params(self.model)), "flops_multitask": float(count_flops(self.model, x))}

    def _snapshot(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        st = copy.deepcopy(self.state)  # plain data; later stages must not mutate a saved snapshot
        st["model"] = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        st.update(copy.deepcopy(extra or {}))  # optimizer states alias live tensors
        return st

    # ---------------------------------------------------------------- stages

    def _optimizers(self, stage: str) -> tuple[list[torch.optim.Optimizer], list]:
        cfg, model = self.cfg, self.model
        if stage == "search" and isinstance(model, Supernet):
            s = cfg.search
            set_trainable(model, weights=s.train_weights, heads=True, arch=True)
            weight_params = model.head_parameters() + (model.weight_parameters() if s.train_weights else [])
            opts = [sgd(weight_params, s.lr, s.momentum, s.weight_decay), torch.optim.Adam(model.arch_parameters(), lr=s.arch_lr)]
            epochs = s.epochs
        else:
            sc = cfg.warmup if stage == "warmup" else cfg.finetune
            set_trainable(model, weights=True, heads=True, arch=False)  # gates held (warm-up) or fixed (fine-tune)
            opts = [sgd(model.weight_parameters() + model.head_parameters(), sc.lr, sc.momentum, sc.weight_decay)]
            epochs = sc.epochs
        scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(opts[0], T_max=max(epochs, 1))]
        return opts, scheds

    def _squeeze(self):
        s, model = self.cfg.search, self.model
        edge_cost, read_in_cost = model.op_costs()

        def loss() -> torch.Tensor:
            p = model.gate_probs()
            return s.lambda_sq * squeeze_loss(s.squeeze, p.alpha, p.beta, edge_cost, read_in_cost)

        return loss

    def _annealing(self, epoch: int, epochs: int, n_batches: int):
        """search.temperature_end: before each search step, the gate temperature
        ``T0 * (T_end / T0) ** ((k + 1) / K)`` for step k of K (T0 = model.temperature), so the last step and
        everything after it (reduction, fold) run at T_end. A function of the step alone: a resumed or
        replayed search anneals exactly as an uninterrupted one."""
        t_end, model = self.cfg.search.temperature_end, self.model
        if t_end is None or not isinstance(model, Supernet):
            return None
        t0, total = self.cfg.model.temperature, max(epochs * n_batches, 1)

        def before_step(b: int) -> None:
            model.temperature.fill_(t0 * (t_end / t0) ** ((epoch * n_batches + b + 1) / total))

        return before_step

    def train_stage(self, stage: str) -> list[dict[str, Any]]:
        cfg, st = self.cfg, self.state
        epochs = {"warmup": cfg.warmup.epochs, "search": cfg.search.epochs, "finetune": cfg.finetune.epochs}[stage]
        opts, scheds = self._optimizers(stage)
        start = 0
        if st.get("stage") == stage and "optim" in st:  # resuming inside this stage
            start = st["epoch"]
            for o, sd in zip(opts, st["optim"]):
                o.load_state_dict(sd)
            for s, sd in zip(scheds, st["sched"]):
                s.load_state_dict(sd)
        extra = self._squeeze() if stage == "search" and isinstance(self.model, Supernet) else None
        scaler = torch.amp.GradScaler(self.device.type) if cfg.trial.precision == "fp16" and self.device.type == "cuda" else None
        d = cfg.data
        records = []
        cuda = self.device.type == "cuda"
        for epoch in range(start, epochs):
            t0 = time.perf_counter()
            if cuda:
                torch.cuda.reset_peak_memory_stats(self.device)
            seed = stage_seed(cfg.trial.seed, stage, epoch)
            torch.manual_seed(seed)
            loader = make_loader(self.train_ds, d.batch_size, True, seed, d.num_workers, d.pin_memory)
            where = f"stage {stage}, epoch {epoch + 1}/{epochs}"
            anneal = self._annealing(epoch, epochs, len(loader)) if stage == "search" else None
            tr = train_epoch(self.model, loader, self.tasks, opts, self.device, cfg.trial.precision, extra, scaler, where,
                             cfg.trial.progress, anneal)
            for s in scheds:
                s.step()
            if stage == "search" and epoch + 1 == epochs and cfg.search.recalibrate_norms and isinstance(self.model, Supernet):
                recal = make_loader(self.train_ds, d.batch_size, False, 0, d.num_workers, d.pin_memory)
                recalibrate_norms(self.model, recal, self.device, cfg.trial.precision)
            val_loader = make_loader(self.val_ds, d.batch_size, False, 0, d.num_workers, d.pin_memory)
            metrics, vloss = evaluate(self.model, val_loader, self.tasks, self.device, cfg.trial.precision)
            st["step"] += 1
            rec = self._record(stage, epoch, tr, metrics, vloss)
            rec["epoch_time_s"] = time.perf_counter() - t0  # train + validation
            rec["gpu_peak_mem_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20 if cuda else math.nan
            records.append(rec)
            self.record(rec)
            self.last_eval = (metrics, vloss)
            st["stage"], st["epoch"] = stage, epoch + 1
            k = cfg.trial.checkpoint_every
            if k and (epoch + 1) % k == 0 and epoch + 1 < epochs:
                self.hooks.save_checkpoint(self._snapshot({
                    "optim": [o.state_dict() for o in opts], "sched": [s.state_dict() for s in scheds],
                }))
        return records

    def _record(self, stage: str, epoch: int, tr: dict, metrics: dict, vloss: dict) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "stage": stage, "stage_index": self.plan.index(stage), "epoch": epoch, "step": self.state["step"],
            "train_loss": tr["train_loss"], "squeeze": tr["squeeze"],
        }
        rec.update(self._quality_record(metrics, vloss))
        rec["score"] = sum(vloss.values()) / len(vloss)  # the scheduler's scalar: mean val loss (min)
        rec.update(self.costs)
        return rec

    def _quality_record(self, metrics: dict, vloss: dict) -> dict[str, float]:
        rec = {f"val_loss/{t}": v for t, v in vloss.items()}
        rec.update({f"metric/{t}/{name}": v for t, ms in metrics.items() for name, v in ms.items()})
        return rec

    def run_stage(self, stage: str) -> None:
        st, t0 = self.state, time.perf_counter()
        reusable = stage in REUSABLE_STAGES and self.store is not None and st.get("stage") != stage
        key = stage_key(self.cfg, stage) if reusable else None
        hit = self.store.get(stage, key) if reusable else None
        if hit is not None:
            self.model.load_state_dict(hit["model"])
            st["step"] += len(hit["records"])
            self.record.replay(hit["records"])
            st["reused"][stage] = True
            self.last_eval = None
            records = hit["records"]
        elif stage == "reduction":
            spec = reduce(self.model.gate_probs(), self.model.task_names, self.cfg.model.n_nodes, self.cfg.model.flow_width, self.cfg.reduction.tau,
                          self.cfg.reduction.flow)
            if self.cfg.trial.mode == "random_arch":  # the searched sizes, a uniformly random topology
                spec = random_like(spec, self.cfg.trial.seed, self.cfg.trial.random_draw)
                gates = self.model.initial_gates()  # the gates its weights were warmed up with
            else:
                gates = self.model.eval_gates()
            if self.cfg.reduction.fold_gates:  # the compact net computes the gated supernet minus the pruned paths
                spec = fold_gates(spec, gates, self.model.task_names)
            compact = build_compact(spec, self.cfg.model, self.tasks)
            compact.load_from(self.model)
            self.model = compact.to(self.device)
            st["spec"], st["model_kind"] = spec.to_dict(), "compact"
            # the compact net's quality right after reduction, before fine-tune (the gap at reduction)
            d = self.cfg.data
            val_loader = make_loader(self.val_ds, d.batch_size, False, 0, d.num_workers, d.pin_memory)
            self.last_eval = evaluate(self.model, val_loader, self.tasks, self.device, self.cfg.trial.precision)
            records = [self._quality_record(*self.last_eval)]
        else:
            records = self.train_stage(stage)
            st["reused"][stage] = False
            if reusable:
                sd = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
                self.store.put(stage, key, {"model": sd, "records": records})
        if records:  # quality at the end of this stage: the last epoch's (or the reduced net's) validation
            st.setdefault("stage_quality", {})[stage] = {
                k: v for k, v in records[-1].items() if k.startswith(("metric/", "val_loss/"))
            }
        if stage == "search" and self.cfg.trial.mode == "full_supernet":
            st["spec"] = ArchSpec.full(self.cfg.model.n_nodes, self.cfg.model.flow_width, self.tasks).to_dict()
        st["timings"][stage] = st["timings"].get(stage, 0.0) + time.perf_counter() - t0
        st["done"].append(stage)
        st["stage"], st["epoch"] = stage, 0
        st.pop("optim", None)
        st.pop("sched", None)
        self._update_costs()
        self.hooks.save_checkpoint(self._snapshot())

    def finish(self) -> dict[str, Any]:
        cfg, st = self.cfg, self.state
        spec = ArchSpec.from_dict(st["spec"]) if st["spec"] else None
        if spec is not None:
            spec.to_json(self.out / "arch_spec.json")
        d = cfg.data
        if self.last_eval is not None:  # the last epoch already evaluated these exact weights
            metrics, vloss = self.last_eval
        else:
            val_loader = make_loader(self.val_ds, d.batch_size, False, 0, d.num_workers, d.pin_memory)
            metrics, vloss = evaluate(self.model, val_loader, self.tasks, self.device, cfg.trial.precision)
        costs = cost_summary(self.model, self.image_shape, self.device, cfg.trial.latency_repeats)
        supernet_params = n_params(build_supernet(cfg.model, self.tasks))
        trivial = trivial_references(self.train_ds, self.val_ds, self.tasks, d.batch_size)
        learned = learned_tasks(metrics, trivial, {t: s.kind for t, s in self.tasks.items()})
        return {
            "status": "finished",
            "mode": cfg.trial.mode,
            "tasks": {t: s.kind for t, s in self.tasks.items()},
            "metrics": metrics,
            "trivial": trivial,  # the trivial predictors' metrics on the same validation split (supernet.trivial)
            "learned": all(learned.values()),  # every task beats its trivial reference by LEARNED_MARGINS
            "learned_per_task": learned,
            "val_loss": vloss,
            "params": {**costs["params"], "supernet": supernet_params},
            "flops": costs["flops"],
            "latency_ms": costs["latency_ms"],
            "timings": {s: st["timings"].get(s, math.nan) for s in STAGES},
            "reused": {s: bool(st["reused"].get(s, False)) for s in REUSABLE_STAGES},
            # validation quality at the end of each stage run (warm-up, search, right after reduction, fine-tune)
            "stage_quality": {s: q for s in STAGES if (q := st.get("stage_quality", {}).get(s))},
            "arch_spec": "arch_spec.json" if spec is not None else None,
            "node": socket.gethostname(),
            "device": str(self.device),
        }


def run_trial(
    cfg: Config,
    out_dir: str | Path,
    hooks: TrialHooks | None = None,
    resume: dict[str, Any] | None = None,
    store: StageStore | None = None,
) -> dict[str, Any]:
    """Run every stage of ``cfg.trial.mode`` not yet done in ``resume``; return (and write) the summary.

    A diverging loss raises DivergenceError after writing ``summary.json`` with status ``diverged``;
    ``config.json``, ``metrics.jsonl`` and the last checkpoint stay as they were.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if resume is not None:
        check_resume_config(cfg, resume)
    write_json(out / "config.json", to_dict(cfg))
    trial = _Trial(cfg, out, hooks or TrialHooks(), resume, store)
    try:
        for stage in trial.plan:
            if stage not in trial.state["done"]:
                trial.run_stage(stage)
        summary = trial.finish()
    except DivergenceError as e:
        write_json(out / "summary.json", {"status": "diverged", "error": str(e), "mode": cfg.trial.mode,
                                          "timings": trial.state["timings"]})
        raise
    write_json(out / "summary.json", summary)
    return summary


RESUME_MAY_CHANGE = ("data.num_workers", "data.pin_memory", "trial.progress")  # how it runs, not what it computes


def config_identity(cfg: Config) -> dict[str, Any]:
    """What a checkpoint keeps of its config: the flat config and its hash (``RESUME_MAY_CHANGE`` left out)."""
    flat = {k: v for k, v in flatten(to_dict(cfg)).items() if k not in RESUME_MAY_CHANGE}
    return {"config": flat, "config_hash": hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:24]}


def check_resume_config(cfg: Config, resume: dict[str, Any]) -> None:
    """Resuming with another config than the checkpoint's would mix two configs in one trial: an error naming the keys.

    Checkpoints written before the hash was stored carry none and are not checked.
    """
    if "config_hash" not in resume:
        return
    now = config_identity(cfg)
    if now["config_hash"] == resume["config_hash"]:
        return
    old = resume.get("config", {})
    keys = sorted(k for k in set(old) | set(now["config"]) if old.get(k) != now["config"].get(k))
    diff = ", ".join(f"{k}: {old.get(k)!r} in the checkpoint, {now['config'].get(k)!r} now" for k in keys)
    raise ConfigError(f"resume: the config differs from the checkpoint's ({diff}); resume with the checkpoint's "
                      "config, or start the trial afresh in another folder")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A trial checkpoint: tensors and plain data only (``weights_only=True``: cannot run code)."""
    return torch.load(path, map_location="cpu", weights_only=True)
