"""The paper's stated effects, measured: one sweep axis against a few measures, with the spread across seeds.

:func:`effect_table` is generic (any axis, any measure columns); :func:`ablation_measures` picks what
each ablation exists to show:

- flow-restriction width M (``flow_width``): parameters, search-step time, quality;
- squeeze weight ``lambda_sq``: compactness (parameters) and quality;
- reduction threshold ``tau``: kept edges and quality.

Derived measures (:func:`with_effect_columns`): ``kept_edges`` (a ``kept_edges`` column if the table
has one, else the distinct edges over all tasks of each row's ``arch_spec.json``: shared edges count
once, as they do in ``params_union``) and the search-step time: ``search_s_per_epoch`` (``time/search``
divided by ``config/search.epochs``) when the table has that column, else ``search_s`` (the whole
search stage); left NaN where the search stage was reused from the stage cache (no search ran).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.compare import usable_rows
from analysis.load import AnalysisError, metric_columns
from analysis.schema import CONFIG, SHORT_NAMES

KEPT_EDGES = "kept_edges"
SEARCH_TIME = "search_s_per_epoch"  # when config/search.epochs is in the table
SEARCH_TIME_TRIAL = "search_s"  # otherwise: seconds of the whole search stage
# sweep keys and results columns that name the same axis: a config key with a short column (analysis.schema),
# dotted or as its config/<key> column, is that short column
AXIS_ALIASES = {alias: name for key, name in SHORT_NAMES.items() for alias in (key, CONFIG + key)}
FLOW_WIDTH, LAMBDA_SQ, TAU = (SHORT_NAMES[k] for k in ("model.flow_width", "search.lambda_sq", "reduction.tau"))


def _spec_edges(path: object) -> float:
    """Distinct kept edges over all tasks of an ``arch_spec.json`` (NaN when there is no readable file)."""
    if not isinstance(path, str) or not path or not Path(path).is_file():
        return float("nan")
    try:
        spec = json.loads(Path(path).read_text())
        return float(len({(int(i), int(j)) for t in spec["tasks"].values() for i, j in t["edges"]}))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise AnalysisError(f"{path} is not an architecture spec ({type(e).__name__}: {e})") from e


def kept_edges(df: pd.DataFrame) -> pd.Series:
    """Kept edges per row: the ``kept_edges`` column when present, else counted from ``arch_spec_path``."""
    if KEPT_EDGES in df.columns:
        return df[KEPT_EDGES].astype(float)
    if "arch_spec_path" not in df.columns:
        return pd.Series(np.nan, index=df.index, name=KEPT_EDGES)
    return pd.Series([_spec_edges(p) for p in df["arch_spec_path"]], index=df.index, name=KEPT_EDGES, dtype=float)


def search_time_column(df: pd.DataFrame) -> str:
    """``search_s_per_epoch`` when the table knows the search epochs (``config/search.epochs``), else ``search_s``."""
    return SEARCH_TIME if "config/search.epochs" in df.columns else SEARCH_TIME_TRIAL


def search_time(df: pd.DataFrame) -> pd.Series:
    """Search-stage seconds (per epoch when the table has the epochs); NaN where the stage was reused."""
    name = search_time_column(df)
    if "time/search" not in df.columns:
        return pd.Series(np.nan, index=df.index, name=name)
    t = df["time/search"].astype(float)
    if name == SEARCH_TIME:
        epochs = pd.to_numeric(df["config/search.epochs"], errors="coerce").astype(float)
        t = t / epochs.where(epochs > 0)
    if "reused/search" in df.columns:
        reused = np.array([v is True or v is np.True_ for v in df["reused/search"]], dtype=bool)
        t = t.where(~reused)
    return t.rename(name)


def with_effect_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the derived measures ``kept_edges`` and the search time (:func:`search_time_column`) added."""
    out = df.copy()
    out[KEPT_EDGES] = kept_edges(df)
    out[search_time_column(df)] = search_time(df)
    return out


def quality_column(df: pd.DataFrame) -> str:
    """``delta_mtl`` when the table has values for it, else the first metric column."""
    if "delta_mtl" in df.columns and df["delta_mtl"].notna().any():
        return "delta_mtl"
    metrics = [c for cols in metric_columns(df).values() for c in cols]
    if not metrics:
        raise AnalysisError("no quality column: the results have neither delta_mtl nor metric/<task>/<name> columns")
    return metrics[0]


def axis_name(axis: str) -> str:
    """The results column of a sweep axis (``config/model.flow_width`` -> ``flow_width``)."""
    return AXIS_ALIASES.get(axis, axis)


def ablation_measures(df: pd.DataFrame, axis: str) -> list[str] | None:
    """The measures the ablation of ``axis`` exists to show, or None when ``axis`` is not one of them."""
    q = quality_column(df)
    return {
        FLOW_WIDTH: ["params_union", search_time_column(df), q],
        LAMBDA_SQ: ["params_union", q],
        TAU: [KEPT_EDGES, q],
    }.get(axis_name(axis))


def effect_table(
    df: pd.DataFrame, axis: str, measures: Sequence[str], modes: Sequence[str] = ("supernet",)
) -> pd.DataFrame:
    """One row per value of ``axis``: trials, seeds, and per measure the median / min / max across seeds.

    Valid rows of ``modes`` only. Each seed first contributes the median of its rows at that value
    (one row per seed when the axis is the only other thing that varies); the spread is then over
    seeds. A measure with no value at some axis value is NaN there. Measures may be derived ones
    (``kept_edges``, ``search_s_per_epoch``, ``search_s``): they are added when missing.
    """
    axis = axis_name(axis)
    if axis not in df.columns:
        raise AnalysisError(f"no column {axis!r} to group the effect by (e.g. {FLOW_WIDTH}, {LAMBDA_SQ}, {TAU})")
    rows = usable_rows(df[df["mode"].isin(list(modes))])
    if any(m in (KEPT_EDGES, SEARCH_TIME, SEARCH_TIME_TRIAL) and m not in rows.columns for m in measures):
        rows = with_effect_columns(rows)
    missing = [m for m in measures if m not in rows.columns]
    if missing:
        raise AnalysisError(f"no column(s) {missing} in the results to measure the effect of {axis!r}")
    if rows.empty:
        raise AnalysisError(f"no valid {'/'.join(modes)} trials to measure the effect of {axis!r}")
    seeds = ["experiment", "seed"] if "experiment" in rows.columns else ["seed"]
    per_seed = rows.groupby([axis, *seeds], sort=True, dropna=False)[list(measures)].median()
    g = per_seed.groupby(level=axis, sort=True, dropna=False)
    out = pd.DataFrame({"trials": rows.groupby(axis, sort=True, dropna=False).size(), "seeds": g.size()})
    for m in measures:
        out[f"{m} median"] = g[m].median()
        out[f"{m} min"] = g[m].min()
        out[f"{m} max"] = g[m].max()
    out.index.name = axis
    return out


def effect_plot_data(table: pd.DataFrame, measures: Sequence[str]) -> dict[str, np.ndarray]:
    """Per measure an ``(n_values, 3)`` array of (median, min, max) in axis order, for one panel each."""
    return {m: table[[f"{m} median", f"{m} min", f"{m} max"]].to_numpy(float) for m in measures}
