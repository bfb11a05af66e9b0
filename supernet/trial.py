"""One configuration through warm-up -> search -> reduction -> fine-tune, as a generator of events.

``trial_events(cfg, out_dir, resume, store)`` walks ``STAGE_TABLE`` (the stages of ``cfg.trial.mode``),
runs each stage's plain function and yields what a driver needs:

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

import dataclasses
import hashlib
import json
import math
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from .compact import build_compact
from .config import Config, ConfigError, to_dict
from .costs import cost_summary, count_flops, n_params
from .dag import Supernet, build_supernet
from .data import build_data
from .data.planted import planted_summary
from .prune import chain, prunes, pruning_hook, reduction_mask, reduction_spec, set_reduction_mask
from .random_arch import random_like
from .reduction import fold_gates
from .runtime import keep_freed_memory
from .spec import ArchSpec
from .squeeze import squeeze_loss
from .stages import (
    DivergenceError,
    evaluate,
    make_loader,
    recalibrate_norms,
    set_trainable,
    sgd,
    stage_seed,
    train_epoch,
)
from .state import (  # noqa: F401 - re-exported: the checkpoint API drivers use
    CHECKPOINT_VERSION,
    TrialState,
    atomic_torch_save,
    check_resume_config,
    config_identity,
    cpu_weights,
    jsonable,
    load_checkpoint,
    write_json,
)
from .store import DirStageStore, StageStore  # noqa: F401 - re-exported
from .tasks import TaskSpec
from .topology import collapsed, spec_null, task_topology
from .trivial import learned_tasks, trivial_references

# ----------------------------------------------------------------------------- the stage table


@dataclass(frozen=True)
class Stage:
    """One row of the stage table."""

    name: str
    section: str  # the config section that holds its settings (epochs, learning rates, ...)
    trains: tuple[str, ...]  # parameter groups it optimises; () = it transforms the network (reduction)
    reusable: bool  # shared between trials through the stage store, under stage_key
    run: Callable[..., Any]  # the plain function that runs it: train_stage or reduction_stage

    def epochs(self, cfg: Config) -> int:
        """Its epochs under ``cfg`` (0 for a stage without epochs)."""
        return getattr(getattr(cfg, self.section), "epochs", 0)


STAGE_PLAN: dict[str, tuple[str, ...]] = {  # which stages each mode runs, in order
    "supernet": ("warmup", "search", "reduction", "finetune"),
    "full_supernet": ("warmup", "search", "finetune"),
    "random_arch": ("warmup", "search", "reduction", "finetune"),  # the method's stages, a random topology
    "hard_sharing": ("warmup", "finetune"),
    "single_task": ("warmup", "finetune"),
}
SUPERNET_MODES = ("supernet", "full_supernet", "random_arch")  # modes that warm up and search the supernet


def stage_epochs(cfg: Config) -> dict[str, int]:
    """Epochs of every stage of the table (0 for a stage without epochs): the one stage -> epochs table."""
    return {s.name: s.epochs(cfg) for s in STAGE_TABLE}


def plan(cfg: Config) -> list[Stage]:
    """The rows of ``STAGE_TABLE`` that ``cfg.trial.mode`` runs, in order."""
    names = STAGE_PLAN[cfg.trial.mode]
    return [s for s in STAGE_TABLE if s.name in names]


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


# ----------------------------------------------------------------------------- what stages take


@dataclass
class Run:
    """The explicit context of a trial's stage functions: config, data, tasks, device."""

    cfg: Config
    train: Dataset
    val: Dataset
    tasks: dict[str, TaskSpec]
    device: torch.device

    @classmethod
    def build(cls, cfg: Config) -> "Run":
        if cfg.trial.mode == "single_task":  # only that task's data (Omniglot: its alphabet's images)
            try:
                data = build_data(dataclasses.replace(cfg.data, tasks=(cfg.trial.single_task,)))
            except ConfigError as e:
                raise ConfigError(f"trial.single_task: {cfg.trial.single_task!r} is not a task here ({e})") from None
        else:
            data = build_data(cfg.data)
        return cls(cfg, data.train, data.val, data.tasks, pick_device(cfg.trial.device))

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.val[0][0].shape)

    def loader(self, split: str, shuffle: bool = False, seed: int = 0):
        d = self.cfg.data
        return make_loader(
            self.train if split == "train" else self.val, d.batch_size, shuffle, seed, d.num_workers, d.pin_memory
        )

    def evaluate(self, model: nn.Module) -> tuple[dict, dict]:
        return evaluate(model, self.loader("val"), self.tasks, self.device, self.cfg.trial.precision)


def pick_device(choice: str) -> torch.device:
    """``auto``: CUDA when ``torch.cuda.is_available()`` (not from Ray's resource assignment)."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trial.device: cuda requested but torch.cuda.is_available() is False; use auto or cpu")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


# ----------------------------------------------------------------------------- the stage functions


@dataclass
class EpochResult:
    epoch: int
    train: dict[str, float]  # train_loss, squeeze
    metrics: dict[str, dict[str, float]]
    val_loss: dict[str, float]
    seconds: float  # train + validation
    gpu_peak_mem_mb: float
    optimizers: list[torch.optim.Optimizer]
    schedulers: list[Any]


def _optimizers(stage: Stage, cfg: Config, model: nn.Module) -> tuple[list[torch.optim.Optimizer], list]:
    sc = getattr(cfg, stage.section)
    if "arch" in stage.trains and isinstance(model, Supernet):
        train_weights = cfg.search.train_weights
        set_trainable(model, weights=train_weights, heads=True, arch=True)
        weight_params = model.head_parameters() + (model.weight_parameters() if train_weights else [])
        opts = [
            sgd(weight_params, sc.lr, sc.momentum, sc.weight_decay),
            torch.optim.Adam(model.arch_parameters(), lr=sc.arch_lr),
        ]
    else:  # gates held (warm-up) or fixed (fine-tune, the baselines' chains)
        set_trainable(model, weights=True, heads=True, arch=False)
        opts = [sgd(model.weight_parameters() + model.head_parameters(), sc.lr, sc.momentum, sc.weight_decay)]
    return opts, [torch.optim.lr_scheduler.CosineAnnealingLR(opts[0], T_max=max(sc.epochs, 1))]


def _squeeze(cfg: Config, model: Supernet) -> Callable[[], torch.Tensor]:
    s = cfg.search
    edge_cost, read_in_cost = model.op_costs()

    # search.squeeze_read_out: read-outs join the squeeze at the cost of a read-in op each (a kept read-out keeps
    # its node, and the cheapest op that computes a node is its read-in)
    read_out_cost = read_in_cost if s.squeeze_read_out else None

    def loss() -> torch.Tensor:
        p = model.gate_probs()
        return s.lambda_sq * squeeze_loss(
            s.squeeze, p.alpha, p.beta, edge_cost, read_in_cost, p.gamma if s.squeeze_read_out else None, read_out_cost
        )

    return loss


def _annealing(cfg: Config, model: Supernet, epoch: int, epochs: int, n_batches: int) -> Callable[[int], None] | None:
    """search.temperature_end: before each search step, the gate temperature
    ``T0 * (T_end / T0) ** ((k + 1) / K)`` for step k of K (T0 = model.temperature), so the last step and
    everything after it (reduction, fold) run at T_end. A function of the step alone: a resumed or
    replayed search anneals exactly as an uninterrupted one."""
    t_end = cfg.search.temperature_end
    if t_end is None:
        return None
    t0, total = cfg.model.temperature, max(epochs * n_batches, 1)

    def before_step(b: int) -> None:
        model.temperature.fill_(t0 * (t_end / t0) ** ((epoch * n_batches + b + 1) / total))

    return before_step


def train_stage(
    run: Run, stage: Stage, model: nn.Module, start: int = 0, optim: list | None = None, sched: list | None = None
) -> Iterator[EpochResult]:
    """Train ``model`` (in place) for the stage's epochs from epoch ``start`` (with the saved optimiser and
    scheduler states when resuming inside the stage), evaluating after every epoch.

    Search (``"arch"`` in ``stage.trains``) adds the squeeze loss and the gate annealing, and after its last
    epoch recalibrates the norms (``search.recalibrate_norms``) before that epoch's evaluation."""
    cfg, device = run.cfg, run.device
    epochs = stage.epochs(cfg)
    opts, scheds = _optimizers(stage, cfg, model)
    for objs, saved in ((opts, optim), (scheds, sched)):
        for o, sd in zip(objs, saved or ()):
            o.load_state_dict(sd)
    searching = "arch" in stage.trains and isinstance(model, Supernet)
    if isinstance(model, Supernet):
        model.hold_gates = stage.name == "warmup"  # warm-up: the initial gates, noise-free (dag.Supernet)
    extra = _squeeze(cfg, model) if searching else None
    scaler = torch.amp.GradScaler(device.type) if cfg.trial.precision == "fp16" and device.type == "cuda" else None
    cuda = device.type == "cuda"
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        seed = stage_seed(cfg.trial.seed, stage.name, epoch)
        torch.manual_seed(seed)
        loader = run.loader("train", shuffle=True, seed=seed)
        # search: the gate annealing, and (search.prune_epochs) the reduction's mask, before every step
        before_step = (
            chain(_annealing(cfg, model, epoch, epochs, len(loader)), pruning_hook(cfg, model, epoch, epochs))
            if searching
            else None
        )
        tr = train_epoch(
            model,
            loader,
            run.tasks,
            opts,
            device,
            cfg.trial.precision,
            extra,
            scaler,
            f"stage {stage.name}, epoch {epoch + 1}/{epochs}",
            cfg.trial.progress,
            before_step,
        )
        for s in scheds:
            s.step()
        if searching and epoch + 1 == epochs and prunes(cfg):
            set_reduction_mask(model, cfg)  # the final gates' mask: what the reduction will keep
        if searching and epoch + 1 == epochs and cfg.search.recalibrate_norms:
            recalibrate_norms(model, run.loader("train"), device, cfg.trial.precision)
        metrics, vloss = run.evaluate(model)
        mem = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else math.nan
        yield EpochResult(epoch, tr, metrics, vloss, time.perf_counter() - t0, mem, opts, scheds)


def reduction_stage(run: Run, model: Supernet) -> tuple[nn.Module, ArchSpec]:
    """Flow-based reduction of the searched supernet to its compact net (weights copied from it)."""
    cfg, names = run.cfg, model.task_names
    spec = reduction_spec(model, cfg)
    if prunes(cfg):  # the mask the search ended with (not in the state_dict): fold reads the masked gates
        model.prune_mask = reduction_mask(model, cfg, spec)
    if cfg.reduction.fold_gates:  # the compact net computes the gated supernet minus the pruned paths
        spec = fold_gates(spec, model.eval_gates(), names)
    if cfg.trial.mode == "random_arch":  # the searched sizes and gate values, a uniformly random topology
        spec = random_like(spec, cfg.trial.seed, cfg.trial.random_draw)
    compact = build_compact(spec, cfg.model, run.tasks)
    compact.load_from(model)
    return compact.to(run.device), spec


STAGE_TABLE: tuple[Stage, ...] = (
    Stage("warmup", "warmup", ("weights", "heads"), True, train_stage),
    Stage("search", "search", ("arch", "heads"), True, train_stage),  # + weights when search.train_weights
    Stage("reduction", "reduction", (), False, reduction_stage),
    Stage("finetune", "finetune", ("weights", "heads"), False, train_stage),
)
STAGES = tuple(s.name for s in STAGE_TABLE)  # every stage, in order
REUSABLE_STAGES = tuple(s.name for s in STAGE_TABLE if s.reusable)


def stage_key(cfg: Config, stage: str) -> str:
    """Content address of a stage's result: the config fields the stage depends on.

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
        if prunes(cfg):  # a reduction-aware search depends on the reduction settings too
            parts["prune_at"] = {"tau": d["reduction"]["tau"], "flow": d["reduction"]["flow"]}
    elif stage != "warmup":
        raise ValueError(f"only warmup and search are reusable, not {stage!r}")
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


# ----------------------------------------------------------------------------- the trial


class MetricsLog:
    """``metrics.jsonl``: one object per epoch. ``keep_until``: resuming from the checkpoint of that step,
    so keep the lines up to it and drop later ones (epochs after the checkpoint run again: one line per
    epoch); None = start afresh."""

    def __init__(self, path: Path, keep_until: int | None):
        self.path = path
        if keep_until is None or not path.is_file():
            path.write_text("")
            return
        kept = [
            ln
            for ln in path.read_text().splitlines(keepends=True)
            if ln.strip() and json.loads(ln)["step"] <= keep_until
        ]
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


def trial_events(
    cfg: Config, out_dir: str | Path, resume: dict[str, Any] | None = None, store: StageStore | None = None
) -> Iterator[Event]:
    """Run every stage of ``cfg.trial.mode`` not yet done in ``resume`` (a checkpoint dict), yielding events.

    A config other than the checkpoint's is a ConfigError naming the keys, before anything is written.
    A diverging loss raises DivergenceError after writing ``summary.json`` with status ``diverged``;
    ``config.json``, ``metrics.jsonl`` and the last checkpoint stay as they were.
    """
    out = Path(out_dir)
    state = TrialState.resume(cfg, resume) if resume is not None else TrialState.new(cfg)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", to_dict(cfg))
    if cfg.trial.keep_freed_memory:
        keep_freed_memory()
    if cfg.trial.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    run = Run.build(cfg)
    log = MetricsLog(out / "metrics.jsonl", keep_until=state.step if resume is not None else None)
    model = build_model(run, state)
    costs = _costs(run, model)
    last_eval: tuple[dict, dict] | None = None  # (metrics, val losses) of the current weights
    stages = plan(cfg)
    held: dict[str, Any] | None = None  # the last stage's last epoch: it goes out with the summary
    checkpoint = None
    try:
        for i, stage in enumerate(stages):
            if stage.name in state.done:
                continue
            t0, records, final = time.perf_counter(), [], i == len(stages) - 1
            key = (
                stage_key(cfg, stage.name)
                if stage.reusable and store is not None and state.stage != stage.name
                else None
            )
            hit = store.get(stage.name, key) if key else None
            if hit is not None:
                model.load_state_dict(hit["model"])
                records, last_eval = hit["records"], None
                state.step += len(records)
                log.write(records)
            elif not stage.trains:  # reduction
                model, spec = stage.run(run, model)
                state.spec, state.model_kind = spec.to_dict(), "compact"
                last_eval = run.evaluate(model)  # the compact net right after reduction (the gap at reduction)
                records = [_quality(*last_eval)]
            else:
                resuming = state.stage == stage.name and state.optim is not None
                start = state.epoch if resuming else 0
                epochs = stage.epochs(cfg)
                for res in stage.run(
                    run, stage, model, start, state.optim if resuming else None, state.sched if resuming else None
                ):
                    state.step += 1
                    rec = epoch_record(stage.name, i, state.step, res, costs)  # i: the stage's index in the plan
                    log.write([rec])
                    records.append(rec)
                    last_eval = (res.metrics, res.val_loss)
                    state.stage, state.epoch = stage.name, res.epoch + 1
                    if res.epoch + 1 < epochs:  # the stage's last epoch goes out with its boundary checkpoint
                        k = cfg.trial.checkpoint_every
                        due = bool(k) and (res.epoch + 1) % k == 0
                        yield Epoch(
                            rec,
                            state.to_dict(
                                model,
                                [o.state_dict() for o in res.optimizers],
                                [s.state_dict() for s in res.schedulers],
                            )
                            if due
                            else None,
                        )
                if key:
                    store.put(stage.name, key, {"model": cpu_weights(model), "records": records})
            if stage.reusable:
                state.reused[stage.name] = hit is not None
            if records:  # quality at the end of this stage: the last epoch's (or the reduced net's) validation
                state.stage_quality[stage.name] = {
                    k: v for k, v in records[-1].items() if k.startswith(("metric/", "val_loss/"))
                }
            if stage.name == "search" and cfg.trial.mode == "full_supernet":
                state.spec = ArchSpec.full(cfg.model.n_nodes, cfg.model.flow_width, run.tasks).to_dict()
            state.end_stage(stage.name, time.perf_counter() - t0)
            costs = _costs(run, model)
            checkpoint = state.to_dict(model)
            trained = records and stage.trains and hit is None  # its last epoch has not been yielded yet
            if final:
                held = records[-1] if trained else None
            elif hit is not None and records:
                yield Replayed(records, checkpoint)
            elif trained:
                yield Epoch(records[-1], checkpoint)
            else:
                yield Boundary(checkpoint)
        if state.spec:
            ArchSpec.from_dict(state.spec).to_json(out / "arch_spec.json")
        summary = summarize(run, state, model, last_eval)
    except DivergenceError as e:
        write_json(
            out / "summary.json",
            {"status": "diverged", "error": str(e), "mode": cfg.trial.mode, "timings": state.timings},
        )
        raise
    write_json(out / "summary.json", summary)
    yield Finished(held, checkpoint if checkpoint is not None else state.to_dict(model), summary)


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
    """``run.py --trial``: atomic ``checkpoint.pt`` in the trial folder and one line per epoch."""

    def __init__(self, out_dir: str | Path, verbose: bool = True):
        self.path = Path(out_dir) / "checkpoint.pt"
        self.verbose = verbose

    def on_epoch(self, record: dict[str, Any]) -> None:
        if self.verbose:
            vl = " ".join(f"{k.split('/', 1)[1]}={v:.4f}" for k, v in record.items() if k.startswith("val_loss/"))
            print(
                f"[{record['stage']:>8} {record['epoch'] + 1:>3}] train_loss={record['train_loss']:.4f} {vl}",
                flush=True,
            )

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_torch_save(state, self.path)


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
