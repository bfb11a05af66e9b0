"""One typed configuration for a trial: frozen dataclasses, defaults in code, presets, YAML overrides.

A YAML file (or ``--set key=value``) overrides only what changes; unknown keys and out-of-range values
are errors that name the key. Every float must be finite (nan/inf are errors) and every seed an integer
in [0, 2**32), whatever the field. Every detail the paper leaves open is a field here (see docs/method.md).

Each field is declared once, with ``setting(default, doc, check)``: its doc (what it is, its range, why
its default, whether it is the paper's or ours) and its check live in the field's metadata. ``validate``
runs every field's checks, then the few rules that read two fields (``CROSS_CHECKS``).
``reference_markdown()`` renders the reference from the same fields (a table per section, then the
presets); ``python -m supernet.config > docs/config.md`` writes it, and tests/test_config_reference.py
holds docs/config.md equal to it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, get_args, get_origin, get_type_hints

import yaml

MODES = ("supernet", "single_task", "hard_sharing", "full_supernet", "random_arch")
GATES = ("sigmoid", "straight_through", "gumbel", "hard_concrete")
SQUEEZE = ("union_params", "l1", "task_params", "share_params", "bimodal")
WEIGHT_PASSES = ("shared", "noise_free")  # search.weight_pass (supernet/epoch.py)
LOSS_SCALES = ("none", "trivial")  # search.loss_scale (supernet/trivial.py: trivial_losses)
STEMS = ("conv", "resnet18", "resnet34", "resnet50")
DATASETS = ("synthetic", "planted", "nyuv2", "cityscapes", "omniglot")
PRECISIONS = ("fp32", "bf16", "fp16")
NORMS = ("bn", "gn")
FLOW_RULES = ("node_share", "path_product", "own_gate")  # reduction.flow (supernet/reduction.py)
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names the key and how to fix it."""


class DataError(ValueError):
    """A data file is missing a partner, malformed or corrupt; the message names the path."""


# ----------------------------------------------------------------------------- checks and fields


@dataclass(frozen=True)
class Check:
    """A rule on one field's value: ``shown`` in the reference's range column, ``fix`` in the error.

    ``fix`` is the message after ``"<key>: "``; ``{v!r}`` in it is the value (tuples shown as lists, as
    YAML writes them), so every message names the key, the value and what is allowed.
    """

    shown: str
    ok: Callable[[Any], bool]
    fix: str

    def __call__(self, key: str, value: Any) -> None:
        if not self.ok(value):
            shown = list(value) if isinstance(value, tuple) else value
            raise ConfigError(f"{key}: {self.fix.format(v=shown)}")


def at_least(lo: int | float, note: str = "") -> Check:
    return Check(f">= {lo}", lambda v: v >= lo, f"must be >= {lo}{note}, got {{v!r}}")


def positive() -> Check:
    return Check("> 0", lambda v: v > 0, "must be > 0, got {v!r}")


def unit_interval() -> Check:
    """[0, 1): a threshold or a momentum."""
    return Check("[0, 1)", lambda v: 0 <= v < 1, "must be in [0, 1), got {v!r}")


def between(lo: int, hi: int) -> Check:
    return Check(f"{lo}..{hi}", lambda v: lo <= v <= hi, f"must be in {lo}..{hi}, got {{v!r}}")


def one_of(choices: tuple[str, ...]) -> Check:
    return Check(", ".join(f"`{c}`" for c in choices), lambda v: v in choices, f"{{v!r}} is not one of {choices}")


# Float fields that may hold inf or nan (none today): every other float must be a finite number.
NONFINITE_OK: frozenset[str] = frozenset()
SEED_LIMIT = 2**32  # every field named *seed is an integer in [0, 2**32) (numpy, torch and Python RNGs accept it)
FINITE = Check("finite", lambda v: not isinstance(v, float) or math.isfinite(v), "must be a finite number, got {v!r}")
SEED = Check(
    "[0, 2**32)",
    lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < SEED_LIMIT,
    "a seed must be an integer in [0, 2**32), got {v!r}",
)


def setting(default: Any, doc: str, check: Check | None = None) -> Any:
    """A config field: its default, its doc (one or two sentences) and its own check (None: its type's rules only)."""
    return field(default=default, metadata={"doc": doc, "check": check})


def section(cls: type, doc: str) -> Any:
    """A section of Config: a dataclass of settings, and what the section is for."""
    return field(default_factory=cls, metadata={"doc": doc})


# ----------------------------------------------------------------------------- the sections


@dataclass(frozen=True)
class DataConfig:
    name: str = setting(
        "synthetic",
        "Data set: `synthetic` (embedded scenes), `planted` (embedded, a known answer: supernet/data/planted.py) or a"
        " real one read from `data.root`. `synthetic` by default: it is embedded, so nothing is downloaded, ever.",
        one_of(DATASETS),
    )
    root: str | None = setting(
        None, "Local folder of a real data set (nothing is ever downloaded); null for embedded data."
    )
    tasks: tuple[str, ...] = setting(
        (),
        "Tasks to train, by name; empty = every task the data set offers. A name the data set lacks is an error.",
        Check("no duplicates", lambda v: len(set(v)) == len(v), "duplicate task names in {v!r}"),
    )
    image_size: tuple[int, int] = setting(
        (32, 32),
        "(H, W) in pixels: the synthetic render size, or the resize target of real data. 32x32 keeps a trial on a"
        " CPU short.",
        Check("[H, W], each >= 8", lambda v: len(v) == 2 and min(v) >= 8, "needs [H, W], each >= 8, got {v!r}"),
    )
    n_train: int = setting(
        384,
        "Synthetic and planted data: number of generated training scenes (rendered at every trial start).",
        at_least(1),
    )
    n_val: int = setting(128, "Synthetic and planted data: number of generated validation scenes.", at_least(1))
    data_seed: int = setting(
        0,
        "Seed of the generated scenes and of the Omniglot train/val split; apart from `trial.seed` so that every"
        " trial seed sees the same data.",
    )
    batch_size: int = setting(
        32, "Images per step, every task on the same images. The `default` preset uses 8 (more steps).", at_least(1)
    )
    num_workers: int = setting(
        0,
        "DataLoader worker processes; 0 loads in the trial's process, enough for embedded data held in memory.",
        at_least(0),
    )
    pin_memory: bool = setting(
        False, "Page-locked host memory for faster copies to a GPU; off because the code defaults run on a CPU."
    )
    augment: bool = setting(
        False,
        "Ours: random scale-crop and flip of the real data's training split (normals flipped consistently). Off by"
        " default, as in MTAN's published numbers.",
    )
    max_train: int = setting(
        0, "> 0: use only the first `max_train` training samples (quick checks on real data); 0 = all.", at_least(0)
    )
    max_val: int = setting(0, "> 0: use only the first `max_val` validation samples; 0 = all.", at_least(0))


@dataclass(frozen=True)
class ModelConfig:
    n_nodes: int = setting(
        4,
        "Paper: N, the number of hidden states of the central network. 4 gives paths of several depths at a CPU's"
        " cost.",
        at_least(1),
    )
    flow_width: int = setting(
        2,
        "Paper: M, the flow-restriction width: edge i->j exists iff 1 <= j-i <= M, and M = N-1 is the unrestricted"
        " DAG. 2 keeps the restriction active at N = 4.",
        Check(
            "1 <= M < `n_nodes` (1 at `n_nodes` 1)",
            lambda v: v >= 1,
            "M must satisfy 1 <= M < N, got {v!r}; M = N-1 is the unrestricted DAG",
        ),
    )
    channels: int = setting(16, "Channels of every hidden state; 16 suits 32x32 images on a CPU.", at_least(1))
    stem: str = setting(
        "conv",
        "Shared feature extractor: a small conv stem, or a torchvision ResNet trunk for real data. `conv` by default:"
        " the embedded images are small.",
        one_of(STEMS),
    )
    stem_weights: str | None = setting(
        None, "Local .pth state_dict for the ResNet trunk (never downloaded); null = random initialisation."
    )
    stem_layers: int = setting(
        2, "ResNet trunks: residual stages kept, 1-4; 2 gives features at stride 8.", between(1, 4)
    )
    norm: str = setting(
        "bn",
        "Normalisation inside every edge and read-in op: `bn` with per-task batch statistics (tasks stay separate:"
        " docs/method.md) or `gn` (GroupNorm, no batch statistics). `bn` by default: it trains these small nets"
        " faster.",
        one_of(NORMS),
    )
    gate: str = setting(
        "sigmoid",
        "Ours: the gate relaxation of the architecture logits (supernet/dag.py). `sigmoid` by default, the paper-like"
        " setting; `hard_concrete` (Louizos et al. 2018) gives gates that are exactly 0 or 1 with finite probability.",
        one_of(GATES),
    )
    temperature: float = setting(
        1.0, "Gate temperature: g = sigmoid(logit / temperature). 1.0 is the plain sigmoid.", positive()
    )
    arch_init: float = setting(
        0.0,
        "Initial logit of every gate. 0: sigmoid(0) = 0.5, every path on and equally weighted when warm-up starts.",
    )


@dataclass(frozen=True)
class StageConfig:
    epochs: int = setting(
        4,
        "Epochs of the stage; 0 skips it. 4 is a quick check's budget: presets and config files set their own.",
        at_least(0),
    )
    lr: float = setting(
        0.05,
        "SGD learning rate (cosine schedule) of the weights (Theta) and heads. 0.05 with momentum 0.9 suits small"
        " conv nets.",
        at_least(0),
    )
    momentum: float = setting(0.9, "SGD momentum, in [0, 1); 0.9, the usual value.", unit_interval())
    weight_decay: float = setting(1e-4, "SGD weight decay; 1e-4, the usual value for conv nets.", at_least(0))


@dataclass(frozen=True)
class WarmupConfig(StageConfig):
    path_dropout: float = setting(
        0.0,
        "Ours (Bender et al. 2018's path dropout): while the supernet warms up, every gate of every task is zeroed"
        " with this probability at each step (a task keeps at least one read-out), so that Theta and the heads"
        " learn to work on sub-networks and removing an op the task does not need costs it little in search."
        " 0 = off, the paper's warm-up with every path on; the baselines' chains never drop.",
        unit_interval(),
    )
    path_dropout_epochs: int = setting(
        0,
        "Ours: path dropout only in the last k warm-up epochs, so the supernet first learns with every path on;"
        " 0 = in every warm-up epoch.",
        at_least(0, " (0 = every epoch)"),
    )
    path_dropout_rescale: bool = setting(
        True,
        "Ours (inverted dropout, as NASNet's ScheduledDropPath): the edge and read-in gates a dropout step keeps are"
        " divided by 1 - path_dropout, so that a node's sum has the same expected scale as with every path on, which"
        " is what search and eval read. Read-outs need none: their weights are renormalised over the kept ones."
        " false = the kept gates unscaled (the node sums shrink by 1 - p in dropout steps).",
    )


@dataclass(frozen=True)
class SearchConfig:
    epochs: int = setting(4, "Epochs of the search; 0 skips it. 4 is a quick check's budget.", at_least(0))
    lr: float = setting(
        0.05, "SGD learning rate of the heads (and of Theta with `train_weights`); 0 freezes them.", at_least(0)
    )
    arch_lr: float = setting(
        0.2,
        "Ours: Adam learning rate of the architecture logits A, B, Gamma (the paper does not give one). 0.2 lets the"
        " gates move within a few search epochs.",
        at_least(0),
    )
    momentum: float = setting(0.9, "SGD momentum of the heads, in [0, 1).", unit_interval())
    weight_decay: float = setting(1e-4, "SGD weight decay of the heads.", at_least(0))
    train_weights: bool = setting(
        False, "Also train Theta in search. Paper: Theta frozen (false, the default); true is ours, an ablation."
    )
    weight_pass: str = setting(
        "shared",
        "Ours: what the heads (and Theta with `train_weights`) learn from in search. `shared`: the forward whose loss"
        " trains the gates, at their noisy samples (one forward per step). `noise_free`: a second forward per step at"
        " the eval-mode gates, so that the weights follow the architecture as its gates shrink while the noise that"
        " trains the gates never reaches them (first-order alternating steps, as in DARTS).",
        one_of(WEIGHT_PASSES),
    )
    frozen_epochs: int = setting(
        0,
        "Ours: the first k search epochs keep Theta and the heads frozen whatever `search.lr`, so the gates first"
        " decide with the warm-up's weights; the later epochs train the heads (and Theta with `train_weights`) at"
        " `search.lr`, on its cosine schedule over all search epochs. 0 = they learn from the first epoch.",
        at_least(0, " (0 = off)"),
    )
    squeeze: str = setting(
        "union_params",
        "Squeeze loss (paper: exists; formulas ours, supernet/squeeze.py). `union_params` by default: the expected"
        " parameter count of the union network pays a shared op once, so it rewards sharing as well as dropping.",
        one_of(SQUEEZE),
    )
    lambda_sq: float = setting(
        1.0,
        "Weight of the squeeze loss against the sum of task losses; 0 = no squeeze.",
        at_least(0, " (a weight)"),
    )
    squeeze_read_out: bool = setting(
        False,
        "Ours: read-outs join the squeeze, each at a read-in op's cost; without it nothing pushes a task off a"
        " read-out it does not need, and a kept read-out keeps the path that feeds it. Off: the paper-like setting.",
    )
    loss_scale: str = setting(
        "none",
        "Ours: the task losses the search trades against the squeeze. `none`: their plain sum (as in every"
        " stage). `trivial`: each task's loss divided by the loss of its trivial predictor on the training split"
        " (supernet/trivial.py; about a task's loss at initialisation, the scale loss-ratio weightings such as"
        " GradNorm's divide by), so that an op is worth the share of what a task can learn that removing it"
        " costs, whatever the units of the task's loss; lambda_sq is then a fraction of each task's trivial loss.",
        one_of(LOSS_SCALES),
    )
    temperature_end: float | None = setting(
        None,
        "Ours: the gate temperature anneals geometrically from `model.temperature` to this value over the search"
        " steps, so that gates end near 0/1 and the reduction removes little of what the supernet computes."
        " null = a constant temperature.",
        Check("> 0 or null", lambda v: v is None or v > 0, "must be > 0 (or null: no annealing), got {v!r}"),
    )
    recalibrate_norms: bool = setting(
        True,
        "Ours: after the last search step, recompute the BatchNorm running statistics over one pass of the training"
        " split at the final gates, since during search they average statistics of past gates.",
    )
    prune_epochs: int = setting(
        0,
        "Ours (supernet/prune.py): the last k search epochs run the reduction on the gates before every step and"
        " zero what it prunes, so the end-of-search supernet is the compact net (the search then depends on"
        " `reduction.tau`). 0 = off, the paper's search; k > `epochs` prunes in every epoch.",
        at_least(0, " (0 = off)"),
    )


@dataclass(frozen=True)
class ReductionConfig:
    tau: float = setting(
        0.15,
        "Threshold of the flow-based reduction (paper: the reduction exists; algorithm ours, supernet/reduction.py):"
        " keep an element iff its share of a task's flow is >= tau; an element whose eval gate is exactly 0 is never"
        " kept (with `own_gate` and hard-concrete or straight-through gates every tau <= 0.5 keeps the same). 0.15"
        " lies inside the range the paper-like sweeps cover.",
        unit_interval(),
    )
    flow: str = setting(
        "path_product",
        "Ours: how an element's share of a task's output is measured: gates multiplied along paths (`path_product`),"
        " relative to the other inputs of their node (`node_share`) or each element's own P(gate > 0) (`own_gate`)."
        " `path_product` by default: a path carries what its gates let through end to end.",
        one_of(FLOW_RULES),
    )
    refine_tol: float | None = setting(
        None,
        "Ours (supernet/refine.py): after the flow-based reduction, per task remove kept elements one at a time, the"
        " one that saves the most parameters first, while the task's training loss of the supernet stays within this"
        " fraction of what it learned over its trivial predictor (loss <= start + tol * (trivial - start)); the random"
        " control is drawn at the refined sizes. null = off: the flow-based reduction alone.",
        Check("null or in [0, 1]", lambda v: v is None or 0 <= v <= 1, "must be in [0, 1] (or null: off), got {v!r}"),
    )
    refine_samples: int = setting(
        256,
        "The first (un-augmented) training samples on which `refine_tol` measures every candidate removal's loss.",
        at_least(1),
    )
    fold_gates: bool = setting(
        True,
        "Ours: the compact net keeps each kept element's supernet gate and read-out weight, so right after reduction"
        " it computes the gated supernet minus the pruned paths; false: plain 0/1 gates.",
    )


@dataclass(frozen=True)
class TrialConfig:
    mode: str = setting(
        "supernet",
        "The method (`supernet`) or a baseline: `single_task`, `hard_sharing`, `full_supernet` (no reduction) or"
        " `random_arch` (a size-matched random topology, the control).",
        one_of(MODES),
    )
    single_task: str | None = setting(None, "The task a `single_task` baseline trains; needed in that mode.")
    random_draw: int = setting(0, "`random_arch`: which seeded draw (supernet/random_arch.py).", at_least(0))
    seed: int = setting(0, "Seed of model initialisation and shuffling (reseeded per stage and epoch).")
    device: str = setting(
        "auto",
        "`auto` (cuda if torch.cuda.is_available()), `cpu` or `cuda`. `auto`: one config runs on a laptop and on a GPU"
        " node.",
        Check("`auto`, `cpu`, `cuda`", lambda v: v in DEVICES, "must be auto, cpu or cuda, got {v!r}"),
    )
    precision: str = setting(
        "fp32",
        "Autocast precision (`fp16` with a grad scaler). `fp32` by default, what a CPU runs; the real-data configs"
        " use `bf16` on a GPU.",
        one_of(PRECISIONS),
    )
    deterministic: bool = setting(
        False, "torch.use_deterministic_algorithms, for tests; off because it slows some GPU kernels."
    )
    checkpoint_every: int = setting(
        0, "> 0: also checkpoint every k epochs inside a stage; 0 = at stage boundaries only.", at_least(0)
    )
    progress: bool = setting(True, "Progress bars when stderr is a terminal.")
    latency_repeats: int = setting(
        10, "Forward passes timed for the summary's latency figure; 10 averages out timer noise cheaply.", at_least(1)
    )
    keep_freed_memory: bool = setting(
        True,
        "Raise glibc's malloc thresholds so that freed activation memory is reused between steps (CPU speed only,"
        " supernet/runtime.py); results do not depend on it.",
    )


@dataclass(frozen=True)
class Config:
    data: DataConfig = section(DataConfig, "Which data set, which tasks, sizes and loader settings.")
    model: ModelConfig = section(
        ModelConfig, "The central network: N hidden states, flow-restriction width M, channels, stem, gates."
    )
    warmup: WarmupConfig = section(
        WarmupConfig,
        "Stage 1 (paper): Theta and heads train with every gate held at its initial, noise-free value (path dropout"
        " aside).",
    )
    search: SearchConfig = section(
        SearchConfig,
        "Stage 2 (paper): A, B, Gamma and heads (Theta frozen by default) under the task losses + lambda_sq * squeeze.",
    )
    reduction: ReductionConfig = section(
        ReductionConfig, "Flow-based reduction of the searched gates to a compact per-task architecture."
    )
    finetune: StageConfig = section(StageConfig, "Stage 3 (paper): the compact network's kept Theta and heads.")
    trial: TrialConfig = section(TrialConfig, "Mode (the method or a baseline), seed, device, precision, checkpoints.")


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "data.image_size": [16, 16],
        "data.n_train": 64,
        "data.n_val": 32,
        "data.batch_size": 16,
        "model.n_nodes": 3,
        "model.flow_width": 2,
        "model.channels": 8,
        "warmup.epochs": 1,
        "search.epochs": 1,
        "finetune.epochs": 1,
        "search.lambda_sq": 2.0,  # one search epoch: a strong squeeze so the reduction visibly prunes
        "trial.latency_repeats": 2,
    },
    "nano": {
        "data.image_size": [8, 8],
        "data.n_train": 8,
        "data.n_val": 8,
        "data.batch_size": 8,
        "model.n_nodes": 2,
        "model.flow_width": 1,
        "model.channels": 4,
        "warmup.epochs": 1,
        "search.epochs": 1,
        "finetune.epochs": 1,
        "search.lambda_sq": 2.0,
        "trial.latency_repeats": 1,
        "trial.progress": False,
    },
    "planted": {
        "data.name": "planted",
        "data.image_size": [24, 24],
        "data.n_train": 256,
        "data.n_val": 128,
        "data.tasks": ["local", "deep"],
        "data.batch_size": 8,
        "model.n_nodes": 6,
        "model.flow_width": 2,
        "warmup.epochs": 20,
        "warmup.lr": 0.02,
        "search.epochs": 6,
        "search.lr": 0.02,
        "finetune.epochs": 8,
        "finetune.lr": 0.02,
        "trial.latency_repeats": 1,
        "trial.progress": False,
    },
    "default": {
        "data.batch_size": 8,  # 4x the steps per epoch of batch 32 at about the same cost per image, so that
        # segmentation leaves its initial plateau within the budget
        "warmup.epochs": 8,
        "warmup.lr": 0.1,
        "search.epochs": 3,
        "search.lr": 0.1,
        "finetune.epochs": 8,
        "finetune.lr": 0.1,
    },
}

PRESET_DOCS: dict[str, str] = {
    "tiny": "A whole trial in seconds on 2 CPU cores: tests and first contact.",
    "nano": "Sub-second trials for driver benchmarks (bench/scale.py): every stage, the smallest data and net.",
    "planted": (
        "The planted benchmark with a known answer (configs/planted.yaml; supernet/data/planted.py): a local task and"
        " a task that needs a path of 3 edges, N = 6, M = 2, and a warm-up long enough for the supernet to use its"
        " deep paths (it must beat the 2-edge oracle bound before the search has a deep path worth keeping)."
    ),
    "default": (
        "The embedded default used by configs/default.yaml and the ablation configs: calibrated so that every"
        " single-task baseline and the method beat the trivial references by the margins of supernet/trivial.py"
        ' (docs/findings.md, "Calibration of the embedded default"). A method trial: about 90 s of one CPU core.'
    ),
}


# ----------------------------------------------------------------------------- building and checking


def to_dict(cfg: Any) -> dict[str, Any]:
    """Nested plain dict (lists for tuples), ready for JSON/YAML."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")


def _to_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in TRUE_WORDS + FALSE_WORDS:
        return value.lower() in TRUE_WORDS
    raise ConfigError(f"{key}: expected true/false, got {value!r}")


def _to_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected an integer, got {value!r}") from None


def _to_float(value: Any, key: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a number, got {value!r}") from None


def _to_str(value: Any, key: str) -> str:
    return str(value)


SCALARS: dict[type, Callable[[Any, str], Any]] = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}


def _to_tuple(value: Any, args: tuple, key: str) -> tuple:
    """A list, or a comma-separated string from the CLI; each item coerced to the tuple's item type."""
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key}: expected a list, got {value!r}")
    inner = args[0] if args else str
    return tuple(_coerce(v, inner, key) for v in value)


def _to_optional(value: Any, args: tuple, key: str) -> Any:
    """X | None: the words null/none mean None, anything else is coerced to X."""
    if isinstance(value, str) and value.lower() in ("null", "none"):
        return None
    (inner,) = [a for a in args if a is not type(None)]
    return _coerce(value, inner, key)


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Turn a YAML/CLI value into the field's type, or raise ConfigError naming the key."""
    args = get_args(typ)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{key}: null is not allowed here")
    if get_origin(typ) is tuple or typ is tuple:
        return _to_tuple(value, args, key)
    if type(None) in args:
        return _to_optional(value, args, key)
    scalar = SCALARS.get(typ)
    return scalar(value, key) if scalar else value


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Return cfg with dotted-key overrides applied ({'model.flow_width': 3}); unknown keys raise."""
    sections = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    changes: dict[str, dict[str, Any]] = {}
    for key, value in flatten(overrides).items():
        parts = key.split(".")
        if len(parts) != 2 or parts[0] not in sections:
            raise ConfigError(
                f"unknown config key {key!r}: keys are <section>.<field> with sections "
                f"{sorted(sections)} (see docs/config.md)"
            )
        sec, name = parts
        types = get_type_hints(type(sections[sec]))
        if name not in types:
            raise ConfigError(f"unknown config key {key!r}: section {sec!r} has fields {sorted(types)}")
        changes.setdefault(sec, {})[name] = _coerce(value, types[name], key)
    new = {sec: replace(obj, **changes.get(sec, {})) for sec, obj in sections.items()}
    out = Config(**new)
    validate(out)
    return out


@functools.cache
def field_checks(section_name: str) -> dict[str, tuple[Check, ...]]:
    """Per field of a section ('model'), its checks in order: its type's rules (finite float, seed), then its own."""
    cls = {f.name: f.default_factory for f in fields(Config)}[section_name]
    types = get_type_hints(cls)
    out: dict[str, tuple[Check, ...]] = {}
    for f in fields(cls):
        is_float = float in (types[f.name], *get_args(types[f.name]))
        kinds = [FINITE] if is_float and f"{section_name}.{f.name}" not in NONFINITE_OK else []
        kinds += [SEED] if f.name.endswith("seed") else []
        own = f.metadata.get("check")
        out[f.name] = (*kinds, *([own] if own else []))
    return out


# Rules that read two fields: (the key the error names, ok(cfg), message(cfg)).
CROSS_CHECKS: tuple[tuple[str, Callable[[Config], bool], Callable[[Config], str]], ...] = (
    (
        "model.flow_width",
        lambda c: c.model.flow_width < max(c.model.n_nodes, 2),
        lambda c: (
            f"M must satisfy 1 <= M < N (N={c.model.n_nodes}), got {c.model.flow_width}; "
            + ("a single node has no edge, so M is 1" if c.model.n_nodes == 1 else "M = N-1 is the unrestricted DAG")
        ),
    ),
    (
        "trial.single_task",
        lambda c: c.trial.mode != "single_task" or c.trial.single_task is not None,
        lambda c: "mode single_task needs the task to train",
    ),
)


def validate(cfg: Config) -> None:
    """Raise ConfigError naming the first key whose value is out of range (fields in order, then CROSS_CHECKS)."""
    for sec in fields(cfg):
        section_cfg = getattr(cfg, sec.name)
        for name, checks in field_checks(sec.name).items():
            for check in checks:
                check(f"{sec.name}.{name}", getattr(section_cfg, name))
    for key, ok, message in CROSS_CHECKS:
        if not ok(cfg):
            raise ConfigError(f"{key}: {message(cfg)}")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict; a clear error when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping at top level")
    return data


def parse_set(items: list[str]) -> dict[str, Any]:
    """['model.flow_width=3', 'data.tasks=[depth,normal]'] -> {'model.flow_width': 3, ...} (YAML values)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set model.flow_width=3")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v) if v.strip() else None
    return out


def build_config(
    preset: str | None = None, overrides: dict[str, Any] | None = None, base: Config | None = None
) -> Config:
    """Defaults <- preset <- overrides (dotted or nested keys); validated."""
    cfg = base or Config()
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; presets are {sorted(PRESETS)}")
        cfg = apply_overrides(cfg, PRESETS[preset])
    if overrides:
        cfg = apply_overrides(cfg, flatten(overrides))
    validate(cfg)
    return cfg


def from_dict(d: dict[str, Any]) -> Config:
    """Inverse of to_dict (e.g. reading a trial's config.json)."""
    return build_config(overrides=d)


# ----------------------------------------------------------------------------- the reference (docs/config.md)

REFERENCE_INTRO = """\
# Config reference

Generated from the fields of `supernet/config.py` by `python -m supernet.config > docs/config.md`; do not edit
by hand (a test holds this file equal to the generated text).

A trial's config is one frozen dataclass per section. A YAML file overrides only what changes, as dotted keys
`<section>.<field>` under `config:`; `--set key=value` overrides on the command line (YAML values:
`--set data.tasks=[depth,normal]`). Layering: code defaults <- preset <- file <- `--set`. Unknown keys and
out-of-range values are errors naming the key (exit code 2). For every field a float must be finite (`nan`, `inf`
are errors) and a seed an integer in [0, 2**32); the range column lists each field's rules."""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _shown_default(value: Any) -> str:
    """A default as YAML writes it."""
    if isinstance(value, tuple):
        value = list(value)
    return f"`{value}`" if isinstance(value, str) else f"`{json.dumps(value)}`"


def _type_name(typ: Any) -> str:
    return typ.__name__ if isinstance(typ, type) and not get_args(typ) else str(typ)


def _section_table(name: str, cls: type) -> list[str]:
    types, checks = get_type_hints(cls), field_checks(name)
    rows = ["| key | type | default | choices / range | doc |", "|---|---|---|---|---|"]
    for f in fields(cls):
        rules = "; ".join(c.shown for c in checks[f.name])
        cells = [f"`{name}.{f.name}`", f"`{_type_name(types[f.name])}`", _shown_default(f.default), rules]
        rows.append("| " + " | ".join(_cell(c) for c in [*cells, f.metadata["doc"]]) + " |")
    return rows


def _preset_table(name: str) -> list[str]:
    rows = ["| key | value |", "|---|---|"]
    rows += [f"| `{k}` | {_shown_default(v)} |" for k, v in PRESETS[name].items()]
    return rows


def reference_markdown() -> str:
    """The config reference: a table per section (key, type, default, choices/range, doc), then the presets."""
    lines = [REFERENCE_INTRO]
    for sec in fields(Config):
        lines += ["", f"## `{sec.name}`", "", sec.metadata["doc"], "", *_section_table(sec.name, sec.default_factory)]
    lines += [
        "",
        "## Presets",
        "",
        "`--preset NAME` or `preset: NAME` in a sweep file: overrides of the code defaults.",
    ]
    for name in PRESETS:
        lines += ["", f"### `{name}`", "", PRESET_DOCS[name], "", *_preset_table(name)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
