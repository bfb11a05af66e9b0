"""What a user sees of a sweep: Tune's live table (``ProgressTable``), the end-of-sweep table (``summary_frame``,
``summary_text``) and the quiet defaults of Ray's logs (``quiet_driver``, ``quiet_trainable``).

Both tables show a swept value only where it has an effect (``axis_applies``): a stage's settings
(``search.*``, ``reduction.*``, ...) only in the modes that run that stage (``supernet.stages.STAGE_PLAN``),
the flow width only where a supernet is built (``SUPERNET_MODES``: the single_task and hard_sharing
baselines run a plain chain). Elsewhere the cell is blank: the value there is the shared config's, not
a point of the sweep. The end-of-sweep table adds what a researcher looks for first: the learned flag,
``delta_mtl`` (when the sweep ran single-task baselines; ``analysis.load.delta_mtl_column``), the main
metric of each task (``analysis.learning.main_metrics``) and the size.

Quiet by default: the token-authentication warning of a private local Ray (it starts with token mode on,
``ray._private.authentication``) and the per-checkpoint info line of every trial (``ray.train``'s
storage logger, in the trial's worker) are left out unless ``verbose``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from analysis.schema import axis_column
from supernet.stages import STAGE_PLAN, STAGES, SUPERNET_MODES

# Ray's loggers that are quiet by default: the warning a new local Ray logs about token authentication
# (authentication_token_setup.py) and the info line per persisted checkpoint (ray.train's storage module)
AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"
CHECKPOINT_LOGGERS = ("ray.train._internal.storage", "ray.train.v2._internal.execution.storage")
FLOW_WIDTH = "model.flow_width"
BASELINE_MODE = "single_task"


def axis_applies(key: str, mode: str | None) -> bool:
    """Whether the config key ``key`` has an effect on a trial of ``mode``.

    A stage's section applies only in the modes whose plan runs that stage; the flow width only in the
    modes that build a supernet. Every other key (and an unknown mode) applies."""
    plan = STAGE_PLAN.get(mode or "")
    if plan is None:
        return True
    if key == FLOW_WIDTH:
        return mode in SUPERNET_MODES
    section = key.split(".", 1)[0]
    return section not in STAGES or section in plan


# ----------------------------------------------------------------------------- the live table


def shown_params(overrides: Mapping[str, Any], defaults: Mapping[str, Any], axes: Sequence[str]) -> dict[str, Any]:
    """The live table's parameter cells of one trial: mode, task, seed and each axis (None where it does
    not apply). ``defaults``: the sweep's shared config (flat), for the keys a trial's overrides leave out."""

    def value(key: str) -> Any:
        return overrides[key] if key in overrides else defaults.get(key)

    mode = value("trial.mode")
    out = {"mode": mode, "task": value("trial.single_task") if mode == BASELINE_MODE else None}
    out["seed"] = value("trial.seed")
    out.update({key: value(key) if axis_applies(key, mode) else None for key in axes})
    return out


class _Shown:
    """A Tune trial as the progress table reads it: its config is the trial's ``shown_params`` (under
    ``show``); everything else is the trial's own."""

    def __init__(self, trial: Any, show: dict[str, Any]):
        self._trial, self.config = trial, {"show": show}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)

    def __str__(self) -> str:
        return str(self._trial)


def progress_columns(axes: Sequence[str], tasks: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(parameter columns, metric columns) of the live table: keys as ``ProgressTable`` looks them up ->
    headers. Tune leaves out a metric column no trial has reported yet."""
    from analysis.learning import MAIN_METRICS

    params = {"show/mode": "mode", "show/task": "task", "show/seed": "seed"}
    params.update({f"show/{k}": k.split(".")[-1] for k in axes})
    metrics = {"stage": "stage", "step": "step", "score": "score", "learned": "learned"}
    mains = {t: MAIN_METRICS[kind] for t, kind in tasks.items() if kind in MAIN_METRICS}
    metrics.update({f"metric/{t}/{m}": f"{t}/{m}" for t, m in mains.items()})
    metrics["params_union"] = "params"
    return params, metrics


def progress_table(axes: Sequence[str], defaults: Mapping[str, Any], tasks: Mapping[str, str]):
    """Tune's live table (a ``CLIReporter``) with ``progress_columns``, filled from each trial's
    ``shown_params``: a trial whose overrides leave the mode out shows the sweep's shared one."""
    from ray.tune import CLIReporter

    class ProgressTable(CLIReporter):
        def report(self, trials: list, done: bool, *sys_info: Any) -> None:
            shown = [_Shown(t, shown_params(t.config.get("overrides") or {}, defaults, axes)) for t in trials]
            super().report(shown, done, *sys_info)

    params, metrics = progress_columns(axes, tasks)
    return ProgressTable(
        metric_columns=metrics, parameter_columns=params, max_report_frequency=20, sort_by_metric=False
    )


# ----------------------------------------------------------------------------- the end-of-sweep table


def _delta_mtl(df: pd.DataFrame) -> tuple[pd.Series | None, str | None]:
    """(analysis's delta_mtl of every row, or None; a note when it could not be computed for some rows)."""
    from analysis.load import AnalysisError, delta_mtl_column

    if "mode" not in df or not (df["mode"] == BASELINE_MODE).any():
        return None, None
    unavailable: list[dict] = []
    try:
        col = delta_mtl_column(
            df, df.attrs.get("metric_senses", {}), list(df.attrs.get("tasks") or {}) or None, "nan", unavailable
        )
    except AnalysisError as e:
        return pd.Series(math.nan, index=df.index), f"delta_mtl not computed: {e}"
    notes = [f"seed {u['seed']}, task {u['task']}: baseline {u['trial_id']} {u['reason']}" for u in unavailable]
    return col, ("delta_mtl not computed for " + "; ".join(notes)) if notes else None


def _main_metric_columns(df: pd.DataFrame) -> dict[str, str]:
    """{header: results column} of each task's main metric (``analysis.learning.main_metrics``)."""
    from analysis.learning import main_metrics

    return {f"{t}/{m}": f"metric/{t}/{m}" for t, m in main_metrics(df).items() if f"metric/{t}/{m}" in df}


def _axis_cells(df: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """The swept axes' columns of ``df``, None in the rows whose mode the axis does not apply to."""
    modes = df["mode"] if "mode" in df else pd.Series(None, index=df.index)
    out = pd.DataFrame(index=df.index)
    for key in axes:
        col = axis_column(key)
        if col in df:
            keep = [axis_applies(key, m) for m in modes]
            out[col.removeprefix("config/")] = df[col].astype(object).where(keep, None)
    return out


def summary_frame(df: pd.DataFrame, axes: Sequence[str] = ()) -> pd.DataFrame:
    """The end-of-sweep table of a results frame (one row per trial; ``df.attrs``: the tables' metadata,
    ``metric_senses`` and ``tasks``): trial, status, mode, task, seed, each swept axis of ``axes`` (None
    where it does not apply to the row's mode), learned, delta_mtl (only with single-task baselines),
    each task's main metric and params. ``df.attrs["notes"]`` of the result: why delta_mtl is missing."""
    out = pd.DataFrame(index=df.index)
    for col, header in (("trial_id", "trial_id"), ("status", "status"), ("mode", "mode"), ("baseline_task", "task")):
        if col in df:
            out[header] = df[col]
    if "seed" in df:
        out["seed"] = df["seed"]
    out = out.join(_axis_cells(df, axes))
    if "learned" in df:
        out["learned"] = df["learned"]
    delta, note = _delta_mtl(df)
    if delta is not None:
        out["delta_mtl"] = delta
    for header, col in _main_metric_columns(df).items():
        out[header] = df[col]
    if "params_union" in df:
        out["params"] = df["params_union"]
    out.attrs["notes"] = [note] if note else []
    return out.reset_index(drop=True)


def _cell(v: Any) -> str:
    """One cell as text: blank for a missing value, 4 significant digits for a float."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def summary_text(frame: pd.DataFrame, max_rows: int = 40) -> str:
    """``summary_frame`` as a text table (blank cells where a value is missing or does not apply)."""
    shown = frame.head(max_rows).astype(object).map(_cell)
    text = shown.to_string(index=False)
    if len(frame) > max_rows:
        text += f"\n... {len(frame) - max_rows} more trials (all in results.parquet)"
    return text


# ----------------------------------------------------------------------------- Ray's logs


@contextlib.contextmanager
def quiet_driver(verbose: bool) -> Iterator[None]:
    """Around ``ray.init`` of a private local Ray: its token-authentication warning left out unless ``verbose``."""
    logger = logging.getLogger(AUTH_LOGGER)
    before = logger.level
    if not verbose:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def quiet_worker(verbose: bool) -> None:
    """In a trial's worker: ``ray.train``'s line per persisted checkpoint left out unless ``verbose``."""
    for name in CHECKPOINT_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


def quiet_trainable(fn: Callable[..., Any], verbose: bool) -> Callable[..., Any]:
    """The function trainable ``fn`` (``(config, setup)``) that first sets its worker's logs (``quiet_worker``)."""

    @functools.wraps(fn)
    def trainable(config: dict[str, Any], setup: Any) -> Any:
        quiet_worker(verbose)
        return fn(config, setup)

    return trainable
