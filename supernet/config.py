"""One typed configuration for a trial: frozen dataclasses, defaults in code, presets, YAML overrides.

A YAML file (or ``--set key=value``) overrides only what changes; unknown keys and out-of-range values
are errors that name the key. Every float must be finite (nan/inf are errors) and every seed an integer
in [0, 2**32), whatever the field. Every detail the paper leaves open is a field here (see README "Method").

Sections
--------
``data``       which data set, which tasks, sizes and loader settings
``model``      the central network: N hidden states, flow-restriction width M, channels, gates
``warmup``     stage 1 (paper): Theta and heads, gates held at their initial value
``search``     stage 2 (paper): A, B, Gamma and heads (Theta frozen by default) + lambda_sq * squeeze loss
``reduction``  flow-based reduction threshold tau (paper: exists; algorithm ours, supernet/reduction.py)
``finetune``   stage 3 (paper): the compact network's kept Theta and heads
``trial``      mode (the method or a baseline), seed, device, precision, checkpointing
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

MODES = ("supernet", "single_task", "hard_sharing", "full_supernet", "random_arch")
GATES = ("sigmoid", "straight_through", "gumbel", "hard_concrete")
SQUEEZE = ("union_params", "l1", "bimodal")
STEMS = ("conv", "resnet18", "resnet34", "resnet50")
DATASETS = ("synthetic", "planted", "nyuv2", "cityscapes", "omniglot")
PRECISIONS = ("fp32", "bf16", "fp16")
NORMS = ("bn", "gn")
FLOW_RULES = ("node_share", "path_product", "own_gate")  # reduction.flow (supernet/reduction.py)


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names the key and how to fix it."""


class DataError(ValueError):
    """A data file is missing a partner, malformed or corrupt; the message names the path."""


@dataclass(frozen=True)
class DataConfig:
    name: str = (
        "synthetic"  # synthetic | planted (known answer: supernet/data/planted.py) | nyuv2 | cityscapes | omniglot
    )
    root: str | None = None  # local folder of a real data set (nothing is ever downloaded)
    tasks: tuple[str, ...] = ()  # empty = every task the data set offers
    image_size: tuple[int, int] = (32, 32)  # (H, W): synthetic render size / resize target for real data
    n_train: int = 384  # synthetic only: number of generated training scenes
    n_val: int = 128  # synthetic only: number of generated validation scenes
    data_seed: int = 0  # synthetic scenes / omniglot split; fixed across trial seeds on purpose
    batch_size: int = 32
    num_workers: int = 0
    pin_memory: bool = False
    augment: bool = False  # random crop/flip/scale for real data (normals flipped consistently)
    max_train: int = 0  # >0: use only the first max_train training samples (quick checks)
    max_val: int = 0  # >0: use only the first max_val validation samples


@dataclass(frozen=True)
class ModelConfig:
    n_nodes: int = 4  # N, hidden states of the central network
    flow_width: int = 2  # M: edge i->j exists iff 1 <= j-i <= M; M = N-1 is the unrestricted DAG
    channels: int = 16  # channels of every hidden state
    stem: str = "conv"  # conv (small, CPU) | resnet18 | resnet34 | resnet50 (torchvision trunk)
    stem_weights: str | None = None  # local .pth file for the ResNet trunk; None = random init
    stem_layers: int = 2  # ResNet: how many residual stages (1-4) the trunk keeps
    norm: str = "bn"  # normalisation inside an edge op: bn | gn
    gate: str = (
        "sigmoid"  # sigmoid | straight_through | gumbel | hard_concrete (ours: gate relaxation, supernet/dag.py relax)
    )
    temperature: float = 1.0  # g = sigmoid(logit / temperature)
    arch_init: float = 0.0  # initial logit of every gate (sigmoid(0) = 0.5: all paths on, equally weighted)


@dataclass(frozen=True)
class StageConfig:
    epochs: int = 4
    lr: float = 0.05  # SGD learning rate for weights (Theta) and heads
    momentum: float = 0.9
    weight_decay: float = 1e-4


@dataclass(frozen=True)
class SearchConfig:
    epochs: int = 4
    lr: float = 0.05  # heads (and Theta when train_weights) learning rate
    arch_lr: float = 0.2  # Adam learning rate for A, B, Gamma
    momentum: float = 0.9
    weight_decay: float = 1e-4
    train_weights: bool = False  # paper: Theta frozen in search; True is our ablation
    squeeze: str = "union_params"  # union_params (default) | l1 | bimodal
    lambda_sq: float = 1.0  # weight of the squeeze loss
    # read-outs join the squeeze (ours), at the cost of a read-in op each: without it nothing pushes a task off a
    # read-out it does not need, and a kept read-out keeps the path that feeds it
    squeeze_read_out: bool = False
    # gate annealing (ours): the gate temperature goes geometrically from model.temperature to this value
    # over the search steps, so that gates end near 0/1 and the reduction removes little of what the
    # supernet computes (the gap at reduction); None = a constant temperature (no annealing)
    temperature_end: float | None = None
    # after the last search step, recompute the BatchNorm running statistics over one pass of the training
    # split at the final gates (ours): during search the gates move (and anneal) under frozen statistics'
    # momentum averages, so eval-mode quality and the compact net would read statistics of past gates
    recalibrate_norms: bool = True
    # reduction-aware search (ours, supernet/prune.py): the last prune_epochs search epochs run the reduction
    # (reduction.tau, reduction.flow) on the current gates before every step and zero the gates of what it
    # prunes, so heads, kept gates (and Theta with train_weights) learn the network the reduction keeps and
    # the end-of-search supernet computes exactly what the compact net computes (the gap at reduction: 0).
    # Makes the search depend on tau (no search reuse across tau). 0 = off (the paper's search); a value
    # above epochs prunes in every search epoch. Ignored by full_supernet (no reduction).
    prune_epochs: int = 0


@dataclass(frozen=True)
class ReductionConfig:
    tau: float = 0.15  # keep edge e iff F(e) / F_total >= tau; in [0, 1)
    # how much of a task's output flows through an element (supernet/reduction.py): path_product (gates
    # multiplied along paths) | node_share (gates relative to the other inputs of their node, as
    # normalised ops see them; smaller gap at small tau, worse fine-tuned quality: README "The gap at reduction")
    flow: str = "path_product"
    # the compact net keeps each kept element's supernet gate (true) or uses 0/1 gates (false, the gap
    # at reduction): see supernet/reduction.py fold_gates
    fold_gates: bool = True


@dataclass(frozen=True)
class TrialConfig:
    mode: str = "supernet"  # supernet | single_task | hard_sharing | full_supernet | random_arch
    single_task: str | None = None  # the task a single_task baseline trains
    random_draw: int = 0  # random_arch: which seeded draw (supernet/random_arch.py)
    seed: int = 0
    device: str = "auto"  # auto (cuda if torch.cuda.is_available()) | cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; fp16 uses a grad scaler)
    deterministic: bool = False  # torch.use_deterministic_algorithms, for tests
    checkpoint_every: int = 0  # >0: also checkpoint every k epochs inside a stage
    progress: bool = True  # progress bars when stderr is a terminal
    latency_repeats: int = 10  # forward passes timed for the summary's latency figure
    keep_freed_memory: bool = True  # raise glibc's malloc thresholds (CPU speed, see supernet/runtime.py)


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    warmup: StageConfig = field(default_factory=StageConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    reduction: ReductionConfig = field(default_factory=ReductionConfig)
    finetune: StageConfig = field(default_factory=StageConfig)
    trial: TrialConfig = field(default_factory=TrialConfig)


PRESETS: dict[str, dict[str, Any]] = {
    # A whole trial in seconds on 2 CPU cores: tests and first contact.
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
    # Sub-second trials for driver benchmarks (bench/scale.py): every stage, the smallest data and net.
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
    # The planted benchmark with a known answer (configs/planted.yaml; supernet/data/planted.py): a local task and
    # a task that needs a path of 3 edges, N = 6, M = 2, and a warm-up long enough for the supernet to use its deep
    # paths (it must beat the 2-edge oracle bound before the search has a deep path worth keeping).
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
    # The embedded default used by configs/default.yaml and the ablation configs: calibrated so that every
    # single-task baseline and the method beat the trivial references by the margins of supernet/trivial.py
    # (README "Calibration of the embedded default"). A method trial: about 90 s of one CPU core.
    "default": {
        "data.batch_size": 8,  # 4x the steps of 32 per epoch at about the same cost per image: segmentation
        # leaves its plateau (objects vs background, every object called a box: mIoU ~0.33) within the budget
        "warmup.epochs": 8,
        "warmup.lr": 0.1,
        "search.epochs": 3,
        "search.lr": 0.1,
        "finetune.epochs": 8,
        "finetune.lr": 0.1,
    },
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


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Turn a YAML/CLI value into the field's type, or raise ConfigError naming the key."""
    origin, args = get_origin(typ), get_args(typ)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{key}: null is not allowed here")
    if origin is tuple or typ is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else str
        return tuple(_coerce(v, inner, key) for v in value)
    if args and type(None) in args:  # X | None
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none")):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if typ is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if typ is str:
        return str(value)
    return value


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Return cfg with dotted-key overrides applied ({'model.flow_width': 3}); unknown keys raise."""
    sections = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    changes: dict[str, dict[str, Any]] = {}
    for key, value in flatten(overrides).items():
        parts = key.split(".")
        if len(parts) != 2 or parts[0] not in sections:
            raise ConfigError(
                f"unknown config key {key!r}: keys are <section>.<field> with sections "
                f"{sorted(sections)} (see README 'Config reference')"
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


# Float fields that may hold inf or nan (none today): every other float must be a finite number.
NONFINITE_OK: frozenset[str] = frozenset()
SEED_LIMIT = 2**32  # every field named *seed is an integer in [0, 2**32) (numpy, torch and Python RNGs accept it)


def _check_fields(cfg: Config) -> None:
    """Rules for every field of a kind, not per key: floats finite (unless in NONFINITE_OK), seeds in range."""
    for sec in fields(cfg):
        section = getattr(cfg, sec.name)
        for f in fields(section):
            key, v = f"{sec.name}.{f.name}", getattr(section, f.name)
            if isinstance(v, float) and key not in NONFINITE_OK:
                _check(math.isfinite(v), key, f"must be a finite number, got {v}")
            if f.name.endswith("seed"):
                _check(
                    isinstance(v, int) and not isinstance(v, bool) and 0 <= v < SEED_LIMIT,
                    key,
                    f"a seed must be an integer in [0, 2**32), got {v!r}",
                )


def _check(ok: bool, key: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {msg}")


def validate(cfg: Config) -> None:
    """Raise ConfigError naming the first key whose value is out of range."""
    _check_fields(cfg)
    d, m, r, t = cfg.data, cfg.model, cfg.reduction, cfg.trial
    _check(d.name in DATASETS, "data.name", f"{d.name!r} is not one of {DATASETS}")
    _check(len(d.image_size) == 2 and min(d.image_size) >= 8, "data.image_size", "needs [H, W], each >= 8")
    _check(d.n_train >= 1 and d.n_val >= 1, "data.n_train", "n_train and n_val must be >= 1")
    _check(d.batch_size >= 1, "data.batch_size", "must be >= 1")
    _check(d.num_workers >= 0, "data.num_workers", "must be >= 0")
    _check(d.max_train >= 0 and d.max_val >= 0, "data.max_train", "max_train/max_val must be >= 0")
    _check(len(set(d.tasks)) == len(d.tasks), "data.tasks", f"duplicate task names in {list(d.tasks)}")
    _check(m.n_nodes >= 1, "model.n_nodes", f"N must be >= 1, got {m.n_nodes}")
    if m.n_nodes > 1:
        _check(
            1 <= m.flow_width < m.n_nodes,
            "model.flow_width",
            f"M must satisfy 1 <= M < N (N={m.n_nodes}), got {m.flow_width}; M = N-1 is the unrestricted DAG",
        )
    else:
        _check(m.flow_width >= 1, "model.flow_width", "must be >= 1")
    _check(m.channels >= 1, "model.channels", "must be >= 1")
    _check(m.stem in STEMS, "model.stem", f"{m.stem!r} is not one of {STEMS}")
    _check(1 <= m.stem_layers <= 4, "model.stem_layers", "must be in 1..4")
    _check(m.norm in NORMS, "model.norm", f"{m.norm!r} is not one of {NORMS}")
    _check(m.gate in GATES, "model.gate", f"{m.gate!r} is not one of {GATES}")
    _check(m.temperature > 0, "model.temperature", "must be > 0")
    te = cfg.search.temperature_end
    _check(
        te is None or (math.isfinite(te) and te > 0),
        "search.temperature_end",
        f"must be > 0 (or null: no annealing), got {te}",
    )
    for name, st in (("warmup", cfg.warmup), ("search", cfg.search), ("finetune", cfg.finetune)):
        _check(st.epochs >= 0, f"{name}.epochs", "must be >= 0")
        _check(st.lr >= 0, f"{name}.lr", "must be >= 0")
        _check(st.weight_decay >= 0, f"{name}.weight_decay", "must be >= 0")
        _check(0 <= st.momentum < 1, f"{name}.momentum", "must be in [0, 1)")
    _check(cfg.search.arch_lr >= 0, "search.arch_lr", "must be >= 0")
    _check(
        cfg.search.prune_epochs >= 0, "search.prune_epochs", f"must be >= 0 (0 = off), got {cfg.search.prune_epochs}"
    )
    _check(cfg.search.lambda_sq >= 0, "search.lambda_sq", f"must be >= 0 (a weight), got {cfg.search.lambda_sq}")
    _check(cfg.search.squeeze in SQUEEZE, "search.squeeze", f"{cfg.search.squeeze!r} is not one of {SQUEEZE}")
    _check(0 <= r.tau < 1, "reduction.tau", f"must be in [0, 1), got {r.tau}")
    _check(r.flow in FLOW_RULES, "reduction.flow", f"{r.flow!r} is not one of {FLOW_RULES}")
    _check(t.mode in MODES, "trial.mode", f"{t.mode!r} is not one of {MODES}")
    _check(t.random_draw >= 0, "trial.random_draw", f"must be >= 0, got {t.random_draw}")
    if t.mode == "single_task":
        _check(t.single_task is not None, "trial.single_task", "mode single_task needs the task to train")
    _check(t.device in ("auto", "cpu", "cuda"), "trial.device", "must be auto, cpu or cuda")
    _check(t.precision in PRECISIONS, "trial.precision", f"{t.precision!r} is not one of {PRECISIONS}")
    _check(t.checkpoint_every >= 0, "trial.checkpoint_every", "must be >= 0")
    _check(t.latency_repeats >= 1, "trial.latency_repeats", "must be >= 1")


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
