"""``launch(...)``: run, or resume, a sweep: Ray session, Tuner (search, scheduler, resources, storage), results.

    python run.py [--config FILE] [--storage PATH|URI] [--address ADDR] [--name NAME] [--set k=v ...]
    python run.py --resume [--name NAME] [--storage ...]

The experiment lives in ``<storage>/<name>/``: Tune's state, one folder per trial, ``sweep.yaml``
(the sweep file as run, so ``--resume`` needs nothing else), ``stage_cache/``, the per-trial fragments
``results/`` and ``epochs/``, and ``results.parquet`` and ``epochs.parquet`` compacted from them at the
end. ``run.py`` writes the analysis report and turns the ``Outcome`` into its exit code. Ray is imported
only once the cluster address is prepared (``tune.cluster.prepare_join`` must run before Ray reads its config).

Before Ray starts: the sweep file, every fixed trial's config (``check_points``) and the storage folder
(``check_storage``) are checked, and the experiment folder is claimed for this driver (``tune.lock``),
so bad input is one line (exit code 2) and two drivers never share a folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from analysis.schema import axis_column, experiment_fs, is_uri, local_path
from supernet.config import ConfigError, flatten, load_yaml, to_dict

from .cluster import join_error, prepare_join
from .lock import experiment_lock
from .space import Sweep, parse_sweep, sweep_doc, task_kinds
from .stage_cache import cache_root

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_STORAGE = "./runs"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


# ----------------------------------------------------------------------------- search


class _BaselinesFirst:
    """A Searcher that hands out fixed trials (the baselines) first, then asks the wrapped searcher.

    Plain Python, so that this module imports no Ray: ``_baselines_first`` puts Ray's ``Searcher`` under it."""

    def __init__(self, inner: Any, fixed: list[dict], base: dict, metric: list[str], mode: list[str]):
        super().__init__(metric=metric, mode=mode)
        self.inner, self.fixed, self.base, self.own = inner, list(fixed), dict(base), set()

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # metric and mode are fixed at construction

    def suggest(self, trial_id: str) -> dict | None:
        if self.fixed:
            self.own.add(trial_id)
            return {"overrides": self.fixed.pop(0)}
        params = self.inner.suggest(trial_id)
        if params is None or params == self.FINISHED:
            return params
        return {"overrides": {**self.base, **params}}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self.own:
            self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if (result or {}).get("trial_status") in ("errored", "diverged"):  # ended without figures: a failed trial
            result, error = None, True
        if trial_id not in self.own:
            self.inner.on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


def _baselines_first() -> type:
    """The ``BaselinesFirst`` searcher class: ``_BaselinesFirst`` on Ray's ``Searcher``."""
    from ray.tune.search import Searcher

    return type("BaselinesFirst", (_BaselinesFirst, Searcher), {"__module__": __name__})


def _optuna_space(sweep: Sweep) -> dict[str, Any]:
    import optuna.distributions as od

    defaults = flatten(to_dict(sweep.config()))
    space = {}
    for key, (kind, values) in sweep.axes.items():
        is_int = isinstance(defaults[key], int) and not isinstance(defaults[key], bool)
        if kind == "choice":
            space[key] = od.CategoricalDistribution(values)
        elif is_int:
            space[key] = od.IntDistribution(int(values[0]), int(values[1]), log=kind == "loguniform")
        else:
            space[key] = od.FloatDistribution(float(values[0]), float(values[1]), log=kind == "loguniform")
    return space


def make_search(sweep: Sweep) -> tuple[dict, Any, int]:
    """(param_space, search_alg, num_samples): grid = Tune's grid_search over explicit points; optuna = baselines,
    then OptunaSearch."""
    from ray import tune

    if sweep.search == "grid":
        return {"overrides": tune.grid_search(sweep.points())}, None, 1
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    sampler = {
        "nsga2": optuna.samplers.NSGAIISampler,
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
    }[sweep.sampler](seed=sweep.seed)
    metric, mode = list(sweep.objectives), list(sweep.objectives.values())
    inner = OptunaSearch(space=_optuna_space(sweep), metric=metric, mode=mode, sampler=sampler)
    fixed = sweep.baseline_points()
    searcher = _baselines_first()(inner, fixed, {"trial.seed": sweep.seeds[0]}, metric, mode)
    return {}, searcher, sweep.num_samples + len(fixed)


def make_scheduler(sweep: Sweep):
    """None, ASHA over the method's trials, or Pareto-ASHA over them (baselines always run to the end:
    tune/scheduler.py). Both count ``step`` (one per epoch, over every stage)."""
    if sweep.scheduler is None:
        return None
    from .scheduler import MethodASHA, ParetoASHA, method_trials_only

    s = sweep.scheduler
    if s["type"] == "pareto_asha":
        return ParetoASHA(
            s["objectives"],
            time_attr="step",
            grace_period=s["grace_period"],
            reduction_factor=s["reduction_factor"],
            max_t=s["max_t"],
            never_stop=method_trials_only(sweep.config().trial.mode),
        )
    return MethodASHA(
        time_attr="step",
        metric=s["metric"],
        mode=s["mode"],
        grace_period=s["grace_period"],
        reduction_factor=s["reduction_factor"],
        max_t=s["max_t"],
        default_mode=sweep.config().trial.mode,
    )


# ----------------------------------------------------------------------------- the Tuner


def trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


def _reporter(sweep: Sweep):
    """Tune's live table: mode, task, seed and the swept axes (blank where an axis does not apply to a
    trial's mode), then stage, step, score, learned, each task's main metric and params (tune/progress.py)."""
    from .progress import progress_table

    return progress_table(list(sweep.axes), flatten(to_dict(sweep.config())), task_kinds(sweep.config()))


def _trainable(
    sweep: Sweep,
    exp_path: str,
    tasks: dict[str, str],
    stage_reuse: bool = True,
    train_fn: Any = None,
    results: bool = True,
    verbose: bool = False,
):
    from ray import tune

    from .progress import quiet_trainable
    from .results import RowContext
    from .setup import LEAN_KEYS, TrialSetup
    from .trainable import train

    cache = cache_root(exp_path) if stage_reuse else None
    # every epoch and every key reach the driver only when something reads them there: the scheduler, or the
    # results tables of URI storage (local/NFS tables read each trial's metrics.jsonl and summary.json)
    lean = sweep.scheduler is None and not is_uri(exp_path)
    keys = (*LEAN_KEYS, *sweep.objectives) if lean else None
    # local/NFS: a finished trial writes its own results fragments (the driver's work per trial stays small)
    rows = (
        RowContext(exp_path, sweep.name, sweep.preset, sweep.base, tasks, tuple(sorted(sweep.swept_keys)))
        if results and not is_uri(exp_path)
        else None
    )
    setup = TrialSetup(sweep.preset, sweep.base, cache, None if is_uri(exp_path) else exp_path, keys, rows)
    return tune.with_resources(
        tune.with_parameters(quiet_trainable(train_fn or train, verbose), setup=setup),
        {"cpu": sweep.cpu, "gpu": sweep.gpu},
    )


def logger_callbacks(sweep: Sweep) -> list:
    """Tune's logger callbacks the sweep asks for (``sweep.loggers``); the automatic ones are turned off.

    Tune adds CSV, JSON and TensorBoard loggers to every run unless ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``
    (read when a run starts, ``ray.tune.utils.callback``); they keep per-trial state in the driver and
    duplicate the Parquet tables, so they are off (for this process) unless named.
    """
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    if not {"csv", "json"} & set(sweep.loggers):  # the result grid then warns once per trial that it has no result.json
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    kinds = {"csv": CSVLoggerCallback, "json": JsonLoggerCallback, "tensorboard": TBXLoggerCallback}
    return [kinds[k]() for k in sweep.loggers]


def build_tuner(
    sweep: Sweep,
    storage: str,
    extra_config: dict | None = None,
    stage_reuse: bool = True,
    train_fn: Any = None,
    results: bool = True,
    callbacks: list | None = None,
    verbose: bool = False,
):
    """A Tuner for ``sweep`` with its experiment at ``<storage>/<sweep.name>``.

    ``train_fn``: the function trainable ``(config, setup)`` (default ``tune.trainable.train``; tests wrap
    it to inject faults, ``bench/scale.py``'s floor is a trivial one); ``results``: write the results
    tables; ``stage_reuse=False`` for benchmarks; ``callbacks``: more Tune callbacks; ``verbose``: keep
    Ray's per-checkpoint lines (tune/progress.py).
    """
    from ray import tune

    from .checkpoints import CheckpointCallback
    from .results import ResultsCallback

    exp_path = _join(storage, sweep.name)
    tasks = task_kinds(sweep.config())
    ours = [CheckpointCallback(None if is_uri(exp_path) else local_path(exp_path))]
    if results:
        ours.append(ResultsCallback(exp_path, sweep.name, sweep.preset, sweep.base, tasks, sweep.swept_keys))
    trainable = _trainable(sweep, exp_path, tasks, stage_reuse, train_fn, results, verbose)
    param_space, search_alg, num_samples = make_search(sweep)
    if extra_config:
        param_space = {**param_space, **extra_config}
    scheduler = make_scheduler(sweep)
    # Tune snapshots searchers and callbacks with the experiment, not schedulers: Pareto-ASHA's rungs ride on a callback
    state = [scheduler.state_callback()] if hasattr(scheduler, "state_callback") else []
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=num_samples,
            max_concurrent_trials=sweep.max_concurrent or None,
            trial_dirname_creator=trial_dirname,
            trial_name_creator=trial_dirname,
            reuse_actors=True,  # saves importing torch per trial
        ),
        run_config=tune.RunConfig(
            name=sweep.name,
            storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
            # no rotation while a trial runs: Tune's saved state (a snapshot, up to TUNE_GLOBAL_CHECKPOINT_S
            # old) may name any of its checkpoints; an ended trial keeps its last one (tune/checkpoints.py)
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            sync_config=tune.SyncConfig(sync_period=5, sync_artifacts=is_uri(exp_path)),
            callbacks=[*ours, *state, *logger_callbacks(sweep), *(callbacks or [])],
            progress_reporter=_reporter(sweep),
            verbose=1,
        ),
    )


def restore_tuner(sweep: Sweep, storage: str, verbose: bool = False):
    """The interrupted experiment at ``<storage>/<name>``: unfinished and errored trials continue, finished ones
    stay. ``verbose``: as ``build_tuner``'s."""
    from ray import tune

    exp_path = _join(storage, sweep.name)
    if not tune.Tuner.can_restore(exp_path):
        raise ConfigError(f"--resume: no restorable experiment at {exp_path} (check --storage and --name)")
    logger_callbacks(sweep)  # the loggers it asked for come back with its RunConfig; no automatic ones
    trainable = _trainable(sweep, exp_path, task_kinds(sweep.config()), verbose=verbose)
    return tune.Tuner.restore(exp_path, trainable, resume_unfinished=True, resume_errored=True)


def _join(storage: str, name: str) -> str:
    return f"{storage.rstrip('/')}/{name}"


def _write_text(exp_path: str, name: str, text: str) -> None:
    fs, d = experiment_fs(exp_path)
    fs.create_dir(d, recursive=True)
    with fs.open_output_stream(f"{d}/{name}") as f:
        f.write(text.encode())


def _read_text(exp_path: str, name: str) -> str | None:
    import pyarrow.fs as pafs

    fs, d = experiment_fs(exp_path)
    if fs.get_file_info(f"{d}/{name}").type != pafs.FileType.File:
        return None
    with fs.open_input_stream(f"{d}/{name}") as f:
        return f.read().decode()


# ----------------------------------------------------------------------------- entry point


def _storage(storage: str | None) -> str:
    s = storage or DEFAULT_STORAGE
    return s if is_uri(s) else str(Path(local_path(s)).expanduser().resolve())


def resumed_doc(storage: str, config: str | Path | None, name: str | None) -> dict:
    """--resume: ``<exp>/sweep.yaml``, the sweep file as first run."""
    name = (
        name or load_yaml(config or DEFAULT_CONFIG).get("sweep", {}).get("name") or Path(config or DEFAULT_CONFIG).stem
    )
    text = _read_text(_join(storage, name), "sweep.yaml")
    if text is None:
        raise ConfigError(
            f"--resume: no experiment {name!r} under {storage} (no sweep.yaml there); give --name and --storage"
        )
    return yaml.safe_load(text)


def init_ray(address: str | None) -> bool:
    """Join ``address`` (or RAY_ADDRESS) or start a private local Ray; returns whether we started it (to shut it down).

    Joining: token mode when the cluster token is on this machine, and a quick check that the head answers
    (``tune.cluster``); a failure is a ``ClusterError`` (exit code 2) saying what to set. Without an address
    the sweep gets a Ray of its own (``address="local"``) even when a cluster started with ``ray start`` runs
    on this machine: a plain ``ray.init()`` would join that one, where our ``num_cpus`` is refused and other
    users' work shares the cores. ``--address auto`` joins it.
    """
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        prepare_join(address)
    import ray

    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address)
        except (ConnectionError, RuntimeError, ValueError, ray.exceptions.AuthenticationError) as e:
            raise join_error(address, e) from None
    else:
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False)
    return True


def check_storage(storage: str) -> str | None:
    """The local/NFS storage folder, created and checked writable before Ray starts (None for URIs).

    A file, or a place this user cannot write, is a ConfigError naming it and what to give instead."""
    if is_uri(storage):
        return None
    root = Path(local_path(storage))
    for p in (root, *root.parents):
        if p.exists() and not p.is_dir():
            raise ConfigError(
                f"--storage {storage}: {p} is a file, not a folder; give a folder (it is created if missing)"
            )
        if p.exists():
            break
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"--storage {storage}: cannot create it ({e.strerror or e}); give a folder you can write"
        ) from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise ConfigError(f"--storage {storage}: not writable by this user; give a folder you can write")
    return str(root)


def check_points(sweep: Sweep) -> None:
    """Every fixed trial of the sweep (grid points, random draws, baselines) builds a valid config, before Ray
    starts: a grid is finite, so none of them needs to fail at run time. The error names the point and the key."""
    for i, point in enumerate(sweep.points()):
        try:
            sweep.config(point)
        except ConfigError as e:
            shown = ", ".join(f"{k}={v!r}" for k, v in point.items())
            raise ConfigError(f"sweep point {i + 1} of {len(sweep.points())} ({shown}): {e}") from None


@dataclass(frozen=True)
class Outcome:
    """How a sweep ended: where it lives, the report's grouping, trial counts by status, Ctrl-C."""

    exp_path: str
    by: str
    counts: dict[str, int]
    interrupted: bool = False
    resume_command: str = ""


def resume_command(sweep: Sweep, storage: str) -> str:
    return f"python run.py --resume --name {sweep.name} --storage {storage}"


@contextlib.contextmanager
def _interrupt_watch():
    """Yields a function that says, after ``fit``, whether Tune's Ctrl-C handler fired.

    Tune installs its own SIGINT handler for the run and puts the previous one back when it fires; the
    previous one is this sentinel (which acts as Python's default), so seeing it again means Ctrl-C came."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def sentinel(sig, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGINT, sentinel)
    try:
        yield lambda: signal.getsignal(signal.SIGINT) is sentinel
    finally:
        signal.signal(signal.SIGINT, before)


def read_results(exp_path: str) -> pd.DataFrame | None:
    """The compacted results table of an experiment (any storage), with its metadata's ``metric_senses``
    and ``tasks`` in ``attrs``; None when there is none."""
    import pyarrow.parquet as pq

    from analysis.load import AnalysisError, read_metadata

    fs, d = experiment_fs(exp_path)
    where = f"{exp_path}/results.parquet"
    try:
        table = pq.read_table(f"{d}/results.parquet", filesystem=fs)
    except (FileNotFoundError, OSError):
        return None
    try:
        info = read_metadata(table, where)
    except AnalysisError:  # the table is still shown; only the metric senses and task kinds are missing
        info = {}
    df = table.to_pandas()
    df.attrs = {"metric_senses": dict(info.get("metric_senses", {})), "tasks": dict(info.get("tasks", {}))}
    return df


def print_summary(exp_path: str, axes: list[str] | tuple[str, ...] = ()) -> dict[str, int]:
    """The summary table of the sweep's results (``tune.progress.summary_frame``: ``axes`` are the swept
    config keys); returns the trial counts by status ({} without results)."""
    from .progress import summary_frame, summary_text

    df = read_results(exp_path)
    if df is None:
        print(f"no results written under {exp_path}")
        return {}
    counts = {str(k): int(v) for k, v in df["status"].value_counts().to_dict().items()}
    print(f"\n{len(df)} trials: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    frame = summary_frame(df, axes)
    print(summary_text(frame))
    for note in frame.attrs["notes"]:
        print(f"note: {note}")
    for _, r in df[df["status"].isin(["errored", "diverged"])].iterrows():
        print(f"{r['status']} {r['trial_id']}: {r['error']}")
    print(f"\nresults: {exp_path}/results.parquet (one row per trial), {exp_path}/epochs.parquet (per epoch)")
    return counts


def report_group(sweep: Sweep) -> str:
    """The column the report groups fronts by: the sweep's first axis (flow_width when it has none)."""
    for key in sweep.axes:
        return axis_column(key)
    return axis_column("model.flow_width")


def launch(
    config: str | Path | None = None,
    *,
    resume: bool = False,
    name: str | None = None,
    storage: str | None = None,
    address: str | None = None,
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
    verbose: bool = False,
) -> Outcome:
    """Run the sweep of ``config`` (default configs/default.yaml), or with ``resume`` continue the interrupted
    one, and write its tables and summary. ``overrides``: dotted config keys (``run.py --set``).
    ``verbose``: keep Ray's token-authentication warning of a local Ray and its per-checkpoint lines,
    left out by default (tune/progress.py).

    Everything that can be checked is checked before Ray starts (the sweep file, every grid point, the
    storage folder), and the experiment folder is claimed for this driver (``tune.lock``) for the whole run.
    Returns the ``Outcome`` (run.py writes the report and turns it into the exit code).
    """
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # use the CLIReporter table below
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")  # experiment state (for --resume) at most 5 s old
    from .progress import quiet_driver

    storage = _storage(storage)
    local = check_storage(storage)
    doc = resumed_doc(storage, config, name) if resume else sweep_doc(config or DEFAULT_CONFIG, name, preset, overrides)
    sweep = parse_sweep(doc)
    check_points(sweep)
    exp_path = _join(storage, sweep.name)
    with experiment_lock(_join(local, sweep.name) if local else None):
        if not resume and _read_text(exp_path, "sweep.yaml") is not None:
            raise ConfigError(
                f"experiment {exp_path} exists: continue it with --resume, or pick another --name/--storage"
            )
        with quiet_driver(verbose):
            started = init_ray(address)
        try:
            with _interrupt_watch() as interrupted:
                if resume:
                    tuner = restore_tuner(sweep, storage, verbose)
                else:
                    _write_text(exp_path, "sweep.yaml", yaml.safe_dump(doc, sort_keys=False))
                    tuner = build_tuner(sweep, storage, verbose=verbose)
                tuner.fit()
                stopped = interrupted()
        finally:
            if started:
                import ray

                ray.shutdown()
        counts = print_summary(exp_path, list(sweep.axes))
    return Outcome(
        exp_path,
        report_group(sweep),
        counts,
        stopped or counts.get("interrupted", 0) > 0,
        resume_command(sweep, storage),
    )
