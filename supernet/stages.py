"""The stage table and the stage functions it names.

Paper (stated): warm-up learns Theta and heads with the gates held at their initial value; search learns
A, B, Gamma and heads with Theta frozen, under task losses + lambda_sq * squeeze loss; fine-tune trains
the compact network's kept Theta and heads. Ours: SGD + cosine schedule for weights and heads, Adam for
the architecture logits, single-level search on the training split, task losses summed with equal weight.

``STAGE_TABLE`` has one row per stage; its ``function`` column names the plain function that runs it.
Every stage function has one signature, ``(run, stage, model, start) -> StageResult``: the trial's
context (``Run``), the stage's row, the network as the previous stage left it, and where to start
(``Start``: epoch 0, or inside the stage when resuming). The result is the network after the stage, its
epochs as a lazy iterator (trained as they are read) and, for a stage that fixes an architecture, its
spec. ``STAGE_PLAN`` says which rows each mode runs (``plan``); ``supernet/trial.py`` walks them.
The epoch-level pieces (one training pass, evaluation, seeds, loaders) are in ``supernet/epoch.py``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn
from torch.utils.data import Dataset, Subset

from .compact import build_compact
from .config import Config, ConfigError, field_checks
from .dag import Supernet
from .data import build_data
from .epoch import evaluate, make_loader, recalibrate_norms, set_trainable, sgd, stage_seed, train_epoch
from .prune import compose_hooks, prunes, pruning_hook, reduction_mask, reduction_spec, set_reduction_mask
from .random_arch import random_like
from .reduction import fold_gates
from .refine import Probe, refine
from .spec import ArchSpec
from .squeeze import squeeze_loss
from .tasks import TaskSpec
from .trivial import trivial_losses, unaugmented

# ----------------------------------------------------------------------------- what stage functions take and return


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
    """``auto``: CUDA when ``torch.cuda.is_available()`` (not from Ray's resource assignment). A choice the config
    would refuse is the same ConfigError naming ``trial.device`` (``--eval`` picks the device before the config)."""
    for check in field_checks("trial")["device"]:
        check("trial.device", choice)
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trial.device: cuda requested but torch.cuda.is_available() is False; use auto or cpu")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


@dataclass(frozen=True)
class Stage:
    """One row of the stage table."""

    name: str
    section: str  # the config section that holds its settings (epochs, learning rates, ...)
    trains: tuple[str, ...]  # parameter groups it optimises; () = it transforms the network (reduction)
    reusable: bool  # shared between trials through the stage store, under supernet.store.stage_key
    holds_gates: bool  # a supernet keeps its initial gates, noise-free, while this stage trains (dag.Supernet)
    function: Callable[[Run, Stage, nn.Module, Start], StageResult]  # the plain function that runs it

    def epochs(self, cfg: Config) -> int:
        """Its epochs under ``cfg`` (0 for a stage without epochs)."""
        return getattr(getattr(cfg, self.section), "epochs", 0)


@dataclass(frozen=True)
class Start:
    """Where a stage function starts: epoch 0, or (resuming inside the stage) the epoch after the
    checkpoint's, with the optimiser and scheduler states saved with it."""

    epoch: int = 0
    optim: list[dict[str, Any]] | None = None
    sched: list[dict[str, Any]] | None = None


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


@dataclass
class StageResult:
    """What every stage function returns."""

    model: nn.Module  # the network after the stage: the one it was given (trained in place) or a new one
    epochs: Iterator[EpochResult]  # its epochs, each trained as it is read; empty for a stage without epochs
    spec: ArchSpec | None = None  # the architecture of a new network (reduction's compact net); None: unchanged


# ----------------------------------------------------------------------------- the stage functions


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


def search_task_weights(cfg: Config, run: Run) -> dict[str, float] | None:
    """search.loss_scale: each task's weight in the search loss; None = the plain sum (``none``). ``trivial``:
    1 / the task's trivial loss on the training split (a function of the data alone, so a resumed search
    weighs as an uninterrupted one). A task whose trivial loss is 0 or undefined is an error that names it."""
    if cfg.search.loss_scale == "none":
        return None
    ref = trivial_losses(run.train, run.tasks, cfg.data.batch_size)
    bad = {t: v for t, v in ref.items() if not (math.isfinite(v) and v > 0)}
    if bad:
        raise ConfigError(
            f"search.loss_scale: trivial needs every task's trivial training loss > 0, but {bad} (a constant or"
            " absent training target: nothing to learn); use search.loss_scale=none or drop the task"
        )
    return {t: 1.0 / v for t, v in ref.items()}


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


def _hold_weights(cfg: Config, model: Supernet, epoch: int) -> bool:
    """search.frozen_epochs: whether Theta and the heads are held in this search epoch (then only the gates'
    optimiser steps and there is no noise-free weight pass); sets the parameter groups' ``requires_grad`` for it."""
    frozen = epoch < cfg.search.frozen_epochs
    set_trainable(model, weights=cfg.search.train_weights and not frozen, heads=not frozen, arch=True)
    return frozen


def _path_dropout(cfg: Config, stage: Stage, epoch: int, epochs: int) -> float:
    """warmup.path_dropout in this epoch: in the warm-up's last ``path_dropout_epochs`` epochs (0: in every one);
    0 in every other stage."""
    w = cfg.warmup
    late = w.path_dropout_epochs == 0 or epoch >= epochs - w.path_dropout_epochs
    return w.path_dropout if stage.holds_gates and late else 0.0


def _step_schedulers(scheds: list, frozen: bool) -> None:
    """One epoch's step of every scheduler. In a held search epoch the weights' optimiser did not step; its
    cosine schedule advances all the same (torch warns of that order, which is intended here)."""
    with warnings.catch_warnings():
        if frozen:
            warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"))
        for s in scheds:
            s.step()


def train_stage(run: Run, stage: Stage, model: nn.Module, start: Start) -> StageResult:
    """Train ``model`` (in place) for the stage's epochs from ``start.epoch`` (with the saved optimiser and
    scheduler states when resuming inside the stage), evaluating after every epoch.

    Search (``"arch"`` in ``stage.trains``) adds the squeeze loss and the gate annealing, and after its last
    epoch recalibrates the norms (``search.recalibrate_norms``) before that epoch's evaluation."""
    return StageResult(model, _train_epochs(run, stage, model, start))


def _train_epochs(run: Run, stage: Stage, model: nn.Module, start: Start) -> Iterator[EpochResult]:
    cfg, device = run.cfg, run.device
    epochs = stage.epochs(cfg)
    opts, scheds = _optimizers(stage, cfg, model)
    for objs, saved in ((opts, start.optim), (scheds, start.sched)):
        for o, sd in zip(objs, saved or ()):
            o.load_state_dict(sd)
    searching = "arch" in stage.trains and isinstance(model, Supernet)
    if isinstance(model, Supernet):
        model.hold_gates = stage.holds_gates
        model.fixed_gates = not searching and not stage.holds_gates  # full_supernet's fine-tune
    extra = _squeeze(cfg, model) if searching else None
    task_weights = search_task_weights(cfg, run) if searching else None
    scaler = torch.amp.GradScaler(device.type) if cfg.trial.precision == "fp16" and device.type == "cuda" else None
    cuda = device.type == "cuda"
    for epoch in range(start.epoch, epochs):
        t0 = time.perf_counter()
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        seed = stage_seed(cfg.trial.seed, stage.name, epoch)
        torch.manual_seed(seed)
        loader = run.loader("train", shuffle=True, seed=seed)
        # search: the gate annealing, and (search.prune_epochs) the reduction's mask, before every step
        before_step = (
            compose_hooks(_annealing(cfg, model, epoch, epochs, len(loader)), pruning_hook(cfg, model, epoch, epochs))
            if searching
            else None
        )
        frozen = _hold_weights(cfg, model, epoch) if searching else False
        if isinstance(model, Supernet):
            model.path_dropout = _path_dropout(cfg, stage, epoch, epochs)
            model.path_dropout_rescale = cfg.warmup.path_dropout_rescale
        tr = train_epoch(
            model,
            loader,
            run.tasks,
            opts[1:] if frozen else opts,
            device,
            cfg.trial.precision,
            extra,
            scaler,
            f"stage {stage.name}, epoch {epoch + 1}/{epochs}",
            cfg.trial.progress,
            before_step,
            (lambda: model.eval_gates().detach())
            if searching and not frozen and cfg.search.weight_pass == "noise_free"
            else None,
            task_weights,
            f"{stage.section}.lr",
        )
        _step_schedulers(scheds, frozen)
        if searching and epoch + 1 == epochs and prunes(cfg):
            set_reduction_mask(model, cfg)  # the final gates' mask: what the reduction will keep
        if searching and epoch + 1 == epochs and cfg.search.recalibrate_norms:
            recalibrate_norms(model, run.loader("train"), device, cfg.trial.precision)
        metrics, vloss = run.evaluate(model)
        mem = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else math.nan
        yield EpochResult(epoch, tr, metrics, vloss, time.perf_counter() - t0, mem, opts, scheds)


def reduction_stage(run: Run, stage: Stage, model: nn.Module, start: Start) -> StageResult:
    """Flow-based reduction of the searched supernet to its compact net (weights copied from it). It has no
    epochs, so there is nothing to resume inside it: ``start`` is unused."""
    cfg, names = run.cfg, model.task_names
    spec = reduction_spec(model, cfg)
    if prunes(cfg):  # the mask the search ended with (not in the state_dict): fold reads the masked gates
        model.prune_mask = reduction_mask(model, cfg, spec)
    if cfg.reduction.refine_tol is not None:
        spec = _refined(run, model, spec)
    if cfg.reduction.fold_gates:  # the compact net computes the gated supernet minus the pruned paths
        spec = fold_gates(spec, model.eval_gates(), names)
    if cfg.trial.mode == "random_arch":  # the searched sizes and gate values, a uniformly random topology
        spec = random_like(spec, cfg.trial.seed, cfg.trial.random_draw)
    compact = build_compact(spec, cfg.model, run.tasks)
    compact.load_from(model)
    return StageResult(compact.to(run.device), iter(()), spec)


def _refined(run: Run, model: Supernet, spec: ArchSpec) -> ArchSpec:
    """``reduction.refine_tol`` (supernet/refine.py): the refined spec. The supernet is then masked to it and, with
    ``search.recalibrate_norms``, its norms recalibrated at the masked gates: fold and the compact net read both."""
    cfg = run.cfg
    data = Subset(unaugmented(run.train), range(min(cfg.reduction.refine_samples, len(run.train))))
    batches = list(make_loader(data, cfg.data.batch_size, False, 0))
    probe = Probe(model, batches, run.tasks, run.device, cfg.trial.precision)
    spec, _ = refine(spec, probe, trivial_losses(run.train, run.tasks, cfg.data.batch_size), cfg.reduction.refine_tol)
    model.prune_mask = reduction_mask(model, cfg, spec)
    if cfg.search.recalibrate_norms:
        recalibrate_norms(model, run.loader("train"), run.device, cfg.trial.precision)
    return spec


# ----------------------------------------------------------------------------- the stage table

STAGE_TABLE: tuple[Stage, ...] = (
    Stage("warmup", "warmup", ("weights", "heads"), reusable=True, holds_gates=True, function=train_stage),
    # search: + weights when search.train_weights
    Stage("search", "search", ("arch", "heads"), reusable=True, holds_gates=False, function=train_stage),
    Stage("reduction", "reduction", (), reusable=False, holds_gates=False, function=reduction_stage),
    Stage("finetune", "finetune", ("weights", "heads"), reusable=False, holds_gates=False, function=train_stage),
)
STAGES = tuple(s.name for s in STAGE_TABLE)  # every stage, in order
REUSABLE_STAGES = tuple(s.name for s in STAGE_TABLE if s.reusable)

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
