"""The sweep file: ``preset`` + ``config`` (dotted trial overrides) + ``sweep`` (what varies and how).

    preset: tiny                         # optional, a supernet.config preset
    config: {data.n_train: 128}          # trial overrides shared by every trial (dotted or nested)
    sweep:
      name: default                      # experiment folder: <storage>/<name>
      search: grid                       # grid | optuna
      num_samples: 2                     # grid: seeds per grid point; optuna: number of method trials
      axes:                              # dotted config key -> one of
        model.flow_width: {grid: [1, 2, 3]}        #   grid (grid search only)
        search.lambda_sq: {loguniform: [0.01, 1]}  #   choice | uniform | loguniform (optuna only)
      baselines: [single_task, hard_sharing]       # extra trials at the shared config, per seed
      random_archs: 0                    # grid: k random_arch draws per method trial (the control)
      objectives: {score: min, params_union: min}  # optuna's objectives; pareto_asha's by default
      sampler: nsga2                     # optuna only: nsga2 | tpe | random
      scheduler: none                    # or {type: asha, metric: score, grace_period: 4, reduction_factor: 2}
                                         #   or {type: pareto_asha, objectives: {score: min, params_union: min},
                                         #   grace_period: 4, reduction_factor: 3, max_t: 9} (Pareto rank;
                                         #   neither stops single_task/hard_sharing baselines)
      resources: {cpu: 1, gpu: 0}        # per trial; gpu may be fractional
      max_concurrent: 2                  # 0 = as many as resources allow
      max_failures: 1                    # retries of a failing trial (from its last checkpoint); a config
                                         #   error or divergence is a result, never retried
      loggers: []                        # Tune's own per-trial logs: any of tensorboard, csv, json (default none)

Every trial's config is a flat dict of dotted overrides (``trial.seed`` always explicit); the trial
builds ``build_config(preset, {**config, **overrides})``. Grid points are enumerated here, so seeds
and baselines are plain rows of the same list. No Ray imports: this module is pure data.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supernet.config import Config, ConfigError, build_config, flatten, load_yaml

TOP_KEYS = {"preset", "config", "sweep"}
SWEEP_KEYS = {
    "name",
    "search",
    "num_samples",
    "axes",
    "baselines",
    "objectives",
    "sampler",
    "scheduler",
    "resources",
    "max_concurrent",
    "max_failures",
    "seed",
    "random_archs",
    "loggers",
}
AXIS_KINDS = ("grid", "choice", "uniform", "loguniform")
BASELINES = ("single_task", "hard_sharing", "full_supernet")
SAMPLERS = ("nsga2", "tpe", "random")
LOGGERS = ("tensorboard", "csv", "json")  # Tune's logger callbacks; off unless a sweep asks
SCHEDULER_KEYS = {"type", "metric", "mode", "grace_period", "reduction_factor", "max_t"}
PARETO_SCHEDULER_KEYS = {"type", "objectives", "grace_period", "reduction_factor", "max_t"}


@dataclass(frozen=True)
class Sweep:
    """A parsed, validated sweep file."""

    name: str
    preset: str | None
    base: dict[str, Any]  # dotted overrides shared by every trial
    search: str = "grid"
    num_samples: int = 1
    axes: dict[str, tuple[str, list]] = field(default_factory=dict)  # key -> (kind, values)
    baselines: tuple[str, ...] = ()
    random_archs: int = 0  # grid: random_arch draws per method grid point and seed
    objectives: dict[str, str] = field(default_factory=lambda: {"score": "min", "params_union": "min"})
    sampler: str = "nsga2"
    scheduler: dict[str, Any] | None = None
    cpu: float = 1.0
    gpu: float = 0.0
    max_concurrent: int = 0
    max_failures: int = 1
    seed: int = 0  # optuna sampler seed
    loggers: tuple[str, ...] = ()  # Tune's logger callbacks to turn on (LOGGERS)

    @property
    def swept_keys(self) -> list[str]:
        """Config keys that vary between the sweep's trials (the ``config/<key>`` columns of the results)."""
        return sorted(set(self.axes) | {k for p in self.points() for k in p} | {"trial.seed"})

    def config(self, overrides: dict[str, Any] | None = None) -> Config:
        """The typed config of one trial (raises ConfigError for an invalid point)."""
        return build_config(self.preset, {**self.base, **(overrides or {})})

    @property
    def seeds(self) -> list[int]:
        """Grid: ``num_samples`` seeds from the shared ``trial.seed``; optuna: that one seed."""
        s0 = self.config().trial.seed
        if "trial.seed" in self.axes:
            return [int(v) for v in self.axes["trial.seed"][1]]
        return [s0 + i for i in range(self.num_samples)] if self.search == "grid" else [s0]

    def grid_points(self) -> list[dict[str, Any]]:
        """Grid search: the cross product of the grid axes and the seeds (one dict per trial)."""
        # Order for stage reuse: axes of later stages vary slowest, seeds fastest, so trials running at the
        # same time differ in their warm-up and later trials find their warm-up / search in the cache.
        rank = {"reduction": 0, "finetune": 0, "search": 1}
        keys = sorted((k for k in self.axes if k != "trial.seed"), key=lambda k: rank.get(k.split(".")[0], 2))
        out = []
        for values in itertools.product(*(self.axes[k][1] for k in keys), self.seeds):
            out.append({**dict(zip(keys, values[:-1])), "trial.seed": values[-1]})
        return out

    def baseline_points(self) -> list[dict[str, Any]]:
        """One single_task trial per task and seed, one hard_sharing (full_supernet) trial per seed."""
        out = []
        tasks = task_names(self.config()) if "single_task" in self.baselines else []
        for seed in self.seeds:
            for b in self.baselines:
                if b == "single_task":
                    out += [{"trial.mode": "single_task", "trial.single_task": t, "trial.seed": seed} for t in tasks]
                else:
                    out.append({"trial.mode": b, "trial.seed": seed})
        return out

    def random_arch_points(self) -> list[dict[str, Any]]:
        """``random_archs`` random_arch draws at every method grid point: the same overrides (so the same
        warm-up, search and tau), each draw seeded by (trial.seed, trial.random_draw)."""
        return [
            {**p, "trial.mode": "random_arch", "trial.random_draw": d}
            for d in range(self.random_archs)
            for p in self.grid_points()
        ]

    def points(self) -> list[dict[str, Any]]:
        """Every fixed trial of the sweep: grid points (grid search only), their random_arch draws (after
        them, so the draws find the method's warm-up and search in the stage cache), then baselines."""
        grid = self.grid_points() + self.random_arch_points() if self.search == "grid" else []
        return grid + self.baseline_points()

    @property
    def epochs(self) -> dict[str, int]:
        from supernet.stages import stage_epochs

        return stage_epochs(self.config())


def task_names(cfg: Config) -> list[str]:
    """The tasks a trial of ``cfg`` trains (data.tasks, or every task the data set offers)."""
    return list(task_kinds(cfg))


def task_kinds(cfg: Config) -> dict[str, str]:
    """Task name -> kind (segmentation, depth, ...) for the trials of ``cfg``."""
    if cfg.data.name == "synthetic":
        from supernet.data import select_tasks
        from supernet.data.synthetic import TASKS

        return {t: s.kind for t, s in select_tasks(TASKS, cfg.data.tasks).items()}
    from supernet.data import build_data

    return {t: s.kind for t, s in build_data(cfg.data).tasks.items()}


def _need(ok: bool, key: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"sweep.{key}: {msg}")


def _axis(key: str, spec: Any, base: Config, search: str) -> tuple[str, list]:
    from supernet.config import apply_overrides

    _need(
        isinstance(spec, dict) and len(spec) == 1,
        f"axes.{key}",
        f"expected one of {{grid: [...]}}, {{choice: [...]}}, {{uniform: [lo, hi]}}, {{loguniform: [lo, hi]}}; "
        f"got {spec!r}",
    )
    ((kind, values),) = spec.items()
    _need(kind in AXIS_KINDS, f"axes.{key}", f"unknown axis kind {kind!r}; kinds are {AXIS_KINDS}")
    _need(isinstance(values, list) and len(values) >= 1, f"axes.{key}.{kind}", "needs a non-empty list")
    if kind in ("uniform", "loguniform"):
        _need(
            len(values) == 2 and float(values[0]) < float(values[1]),
            f"axes.{key}.{kind}",
            "needs [lo, hi] with lo < hi",
        )
        _need(kind == "uniform" or float(values[0]) > 0, f"axes.{key}.loguniform", "needs lo > 0")
    if search == "grid":
        _need(
            kind == "grid", f"axes.{key}", f"{kind} axes need search: optuna (grid search takes {{grid: [...]}} axes)"
        )
    else:
        _need(kind != "grid", f"axes.{key}", "grid axes need search: grid; use {choice: [...]} with optuna")
    try:  # the path must be a config key: apply a sample value
        apply_overrides(base, {key: values[0]})
    except ConfigError as e:
        raise ConfigError(f"sweep.axes.{key}: not a valid config axis ({e})") from None
    return kind, list(values)


def parse_sweep(doc: dict[str, Any]) -> Sweep:
    """Validate a sweep document (a loaded YAML file); unknown keys are ConfigError naming the key."""
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {sorted(unknown)} in the sweep file; keys are {sorted(TOP_KEYS)}")
    preset = doc.get("preset")
    base = flatten(doc.get("config") or {})
    cfg = build_config(preset, base)  # validates the shared config
    sw = doc.get("sweep") or {}
    _need(isinstance(sw, dict), "", "must be a mapping")
    unknown = set(sw) - SWEEP_KEYS
    if unknown:
        raise ConfigError(
            f"unknown sweep key(s) {sorted('sweep.' + k for k in unknown)}; keys are {sorted(SWEEP_KEYS)}"
        )
    search = sw.get("search", "grid")
    _need(search in ("grid", "optuna"), "search", f"{search!r} is not one of grid, optuna")
    num_samples = sw.get("num_samples", 1)
    _need(
        isinstance(num_samples, int) and num_samples >= 1,
        "num_samples",
        f"must be an integer >= 1, got {num_samples!r}",
    )
    axes_doc = sw.get("axes") or {}
    _need(isinstance(axes_doc, dict), "axes", "must map dotted config keys to axis specs")
    axes = {k: _axis(k, v, cfg, search) for k, v in flatten_axes(axes_doc).items()}
    if "trial.seed" in axes:
        _need(num_samples == 1 or search != "grid", "num_samples", "must be 1 when trial.seed is an axis")
    baselines = tuple(sw.get("baselines") or ())
    random_archs = sw.get("random_archs", 0)
    _need(
        isinstance(random_archs, int) and not isinstance(random_archs, bool) and random_archs >= 0,
        "random_archs",
        f"must be an integer >= 0 (random_arch draws per method grid point), got {random_archs!r}",
    )
    _need(random_archs == 0 or search == "grid", "random_archs", "needs search: grid (draws pair with grid points)")
    for b in baselines:
        _need(b in BASELINES, "baselines", f"{b!r} is not one of {BASELINES}")
    objectives = dict(sw.get("objectives") or {"score": "min", "params_union": "min"})
    for k, m in objectives.items():
        _need(m in ("min", "max"), f"objectives.{k}", f"mode must be min or max, got {m!r}")
    sampler = sw.get("sampler", "nsga2")
    _need(sampler in SAMPLERS, "sampler", f"{sampler!r} is not one of {SAMPLERS}")
    sched = _scheduler(sw.get("scheduler", "none"), cfg, objectives)
    res = sw.get("resources") or {}
    _need(
        isinstance(res, dict) and set(res) <= {"cpu", "gpu"}, "resources", f"expected {{cpu: N, gpu: F}}, got {res!r}"
    )
    cpu, gpu = res.get("cpu", 1), res.get("gpu", 0)
    _need(
        all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (cpu, gpu)),
        "resources",
        f"cpu and gpu must be numbers, got {res!r}",
    )
    _need(cpu > 0 and gpu >= 0, "resources", "cpu must be > 0 and gpu >= 0 (fractional gpu allowed, e.g. 0.5)")
    seed = sw.get("seed", 0)
    _need(_whole(seed) and seed >= 0, "seed", f"must be an integer >= 0 (the first trial's seed), got {seed!r}")
    max_conc = sw.get("max_concurrent", 0)
    _need(isinstance(max_conc, int) and max_conc >= 0, "max_concurrent", "must be an integer >= 0 (0 = no limit)")
    max_fail = sw.get("max_failures", 1)
    _need(isinstance(max_fail, int) and max_fail >= 0, "max_failures", "must be an integer >= 0")
    loggers = sw.get("loggers") or []
    _need(
        isinstance(loggers, list) and all(x in LOGGERS for x in loggers),
        "loggers",
        f"expected a list of {list(LOGGERS)}, got {loggers!r}",
    )
    sweep_name = sw.get("name")
    _need(bool(sweep_name) and "/" not in str(sweep_name), "name", "needs a name (a folder name, no '/')")
    return Sweep(
        name=str(sweep_name),
        preset=preset,
        base=base,
        search=search,
        num_samples=num_samples,
        axes=axes,
        baselines=baselines,
        random_archs=random_archs,
        objectives=objectives,
        sampler=sampler,
        scheduler=sched,
        cpu=float(cpu),
        gpu=float(gpu),
        max_concurrent=max_conc,
        max_failures=max_fail,
        seed=seed,
        loggers=tuple(dict.fromkeys(loggers)),
    )


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _scheduler(sched: Any, cfg: Config, objectives: dict[str, str]) -> dict[str, Any] | None:
    """``sweep.scheduler`` with its defaults: None, ``{type: asha, ...}`` or ``{type: pareto_asha, ...}``."""
    if sched in (None, "none", "fifo"):
        return None
    kinds = ("asha", "pareto_asha")
    _need(
        isinstance(sched, dict) and sched.get("type") in kinds,
        "scheduler",
        f"expected none, {{type: asha, ...}} or {{type: pareto_asha, ...}}, got {sched!r}",
    )
    keys = SCHEDULER_KEYS if sched["type"] == "asha" else PARETO_SCHEDULER_KEYS
    unknown = set(sched) - keys
    _need(
        not unknown,
        "scheduler",
        f"unknown key(s) {sorted(unknown)} for type {sched['type']}; keys are {sorted(keys)}"
        + ("" if sched["type"] == "asha" else " (pareto_asha ranks by objectives, not by one metric)"),
    )
    from supernet.stages import stage_epochs

    steps = sum(stage_epochs(cfg).values())
    if sched["type"] == "asha":
        out = {
            "metric": "score",
            "mode": "min",
            "grace_period": cfg.warmup.epochs + cfg.search.epochs,
            "reduction_factor": 2,
            "max_t": steps + 10,
            **sched,
        }
        _need(
            isinstance(out["metric"], str) and bool(out["metric"]),
            "scheduler.metric",
            f"expected a reported metric's name (e.g. score), got {out['metric']!r}",
        )
        _need(out["mode"] in ("min", "max"), "scheduler.mode", f"must be min or max, got {out['mode']!r}")
    else:
        # the first report after the reduction (the first fine-tune epoch): the compact net's parameters are
        # known there, and with the reduction-aware search (search.prune_epochs) its quality is the end of search's
        out = {
            "objectives": dict(objectives),
            "grace_period": cfg.warmup.epochs + cfg.search.epochs + 1,
            "reduction_factor": 3,
            "max_t": steps,
            **sched,
        }
        _need(
            isinstance(out["objectives"], dict) and len(out["objectives"]) >= 1,
            "scheduler.objectives",
            f"expected {{metric: min|max, ...}}, got {out['objectives']!r}",
        )
        for k, m in out["objectives"].items():
            _need(m in ("min", "max"), f"scheduler.objectives.{k}", f"mode must be min or max, got {m!r}")
    g, rf, t = out["grace_period"], out["reduction_factor"], out["max_t"]
    _need(isinstance(rf, (int, float)) and rf > 1, "scheduler.reduction_factor", f"must be > 1, got {rf!r}")
    _need(_whole(g) and g > 0, "scheduler.grace_period", f"must be a whole step > 0, got {g!r}")
    _need(
        _whole(t) and t > g,
        "scheduler.max_t",
        f"must be a whole step above grace_period ({g}): no rung would lie below it "
        f"(got {t!r}; a trial has {steps} steps)",
    )
    return out


def flatten_axes(axes: dict[str, Any]) -> dict[str, Any]:
    """Axes may be dotted (``model.flow_width: {grid: ..}``) or nested (``model: {flow_width: {grid: ..}}``)."""
    out: dict[str, Any] = {}
    for k, v in axes.items():
        if isinstance(v, dict) and not (set(v) & set(AXIS_KINDS)) and "." not in k:
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def sweep_doc(
    path: str | Path, name: str | None = None, preset: str | None = None, overrides: dict | None = None
) -> dict:
    """The sweep file as it will run (``parse_sweep`` reads it): ``preset`` and ``overrides`` (dotted keys,
    from --set) applied to it, its name ``name``, else the file's, else the file's stem."""
    doc = load_yaml(path)
    if preset:
        doc["preset"] = preset
    sw = dict(doc.get("sweep") or {})
    axes = sw.get("axes") if isinstance(sw.get("axes"), dict) else {}
    on_axes = sorted(set(overrides or {}) & set(flatten_axes(axes)))
    if on_axes:
        raise ConfigError(
            f"--set {', '.join(on_axes)}: a sweep axis of {path} (the axis would override it in every trial); "
            f"change the axis in the file (e.g. `{on_axes[0]}: {{grid: [VALUE]}}`) instead of --set"
        )
    if overrides:
        doc["config"] = {**flatten(doc.get("config") or {}), **overrides}
    sw["name"] = name or sw.get("name") or Path(path).stem
    doc["sweep"] = sw
    return doc
