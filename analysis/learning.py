"""Did the networks learn? Trivial references, the trials kept off the fronts, the gap at reduction, learning curves.

Every front, hypervolume and delta_mtl is only as meaningful as the networks behind it. The sweep
stores, per trial, the trivial predictors' validation metrics (``trivial/<task>/<metric>``: majority class,
training median depth, mean training normal), the flags ``learned`` / ``learned/<task>`` (the trial beats
them by the margins in the metadata's ``learned_margins``) and the validation metric at the end of every
stage (``quality/<stage>/<task>/<metric>``). This module turns them into tables; :mod:`analysis.plots`
draws them.

- :func:`trivial_table`: task, metric, trivial value, the margin rule and its threshold;
- :func:`not_learned_table`: the trials flagged ``learned == False`` (kept off every front) and the tasks
  they missed;
- :func:`reduction_gap` / :func:`gap_summary`: per method trial and task, the main metric at the end of
  warm-up, of search, right after reduction and after fine-tune, and ``gap_pct = 100 |reduction - search|
  / |search|`` (target <= 10%);
- :func:`learning_curves`: per mode and task metric, the quality at every global step of ``epochs.parquet``
  (median, min, max across trials) and where each stage starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.load import AnalysisError, metric_columns, metric_sense, not_learned

STAGES: tuple[str, ...] = ("warmup", "search", "reduction", "finetune")
METHOD_MODES: tuple[str, ...] = ("supernet", "random_arch")  # the modes that reduce a searched supernet
GAP_TARGET_PCT = 10.0
# the main metric of each task kind (the one the learned margin is stated on)
MAIN_METRICS: dict[str, str] = {
    "segmentation": "miou",
    "depth": "abs_err",
    "normal": "mean_angle",
    "classification": "accuracy",
}


def main_metrics(df: pd.DataFrame) -> dict[str, str]:
    """{task: its main metric}: by the task's kind (``df.attrs["tasks"]``, else the task's name) from
    :data:`MAIN_METRICS`, else the task's first metric column."""
    kinds = df.attrs.get("tasks") or {}
    out = {}
    for task, cols in metric_columns(df).items():
        names = [c.rsplit("/", 1)[1] for c in cols]
        main = MAIN_METRICS.get(kinds.get(task, task))
        out[task] = main if main in names else names[0]
    return out


def trivial_references(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{task: {metric: trivial value}}: the metadata's (``df.attrs["trivial"]``), else the first finite value of
    each ``trivial/<task>/<metric>`` column ({} for results without trivial references)."""
    out: dict[str, dict[str, float]] = {t: dict(ms) for t, ms in (df.attrs.get("trivial") or {}).items()}
    for col in df.columns:
        if isinstance(col, str) and col.startswith("trivial/") and col.count("/") == 2:
            _, task, metric = col.split("/")
            vals = pd.to_numeric(df[col], errors="coerce").dropna()
            if len(vals) and metric not in out.get(task, {}):
                out.setdefault(task, {})[metric] = float(vals.iloc[0])
    return out


def objective_reference(column: str, trivial: Mapping[str, Mapping[str, float]]) -> float | None:
    """The trivial value of an objective column ``metric/<task>/<metric>`` (None for costs, delta_mtl, ...)."""
    if not column.startswith("metric/") or column.count("/") < 2:
        return None
    task, metric = column[len("metric/") :].rsplit("/", 1)
    v = trivial.get(task, {}).get(metric)
    return float(v) if v is not None and math.isfinite(float(v)) else None


def _margin(df: pd.DataFrame, task: str, metric: str) -> dict | None:
    margins = df.attrs.get("learned_margins") or {}
    kind = (df.attrs.get("tasks") or {}).get(task, task)
    return margins.get(f"{kind}/{metric}")


def trivial_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, metric) with a trivial reference: its value, the margin rule a trial must meet to
    have learned the task (from ``learned_margins``; empty for metrics without a rule) and that threshold."""
    rows = []
    for task, ms in trivial_references(df).items():
        for metric, value in ms.items():
            m = _margin(df, task, metric)
            rule, threshold = "", math.nan
            if m is not None:
                op = ">=" if m["sense"] == "max" else "<="
                threshold = float(m["factor"]) * float(value)
                rule = f"{metric} {op} {float(m['factor']):g} x trivial"
            rows.append(
                {"task": task, "metric": metric, "trivial": float(value), "learned when": rule, "threshold": threshold}
            )
    return pd.DataFrame(rows, columns=["task", "metric", "trivial", "learned when", "threshold"])


def not_learned_table(df: pd.DataFrame) -> pd.DataFrame:
    """The trials flagged ``learned == False``: id, mode, seed, status and the tasks they missed
    (``learned/<task> == False``; empty when the table has no per-task flags)."""
    flagged = df[not_learned(df)]
    tasks = [c[len("learned/") :] for c in df.columns if isinstance(c, str) and c.startswith("learned/")]
    missed = [", ".join(t for t in tasks if not_learned(flagged.loc[[i]], f"learned/{t}")[0]) for i in flagged.index]
    cols = [c for c in ("trial_id", "mode", "seed", "status") if c in df.columns]
    out = flagged[cols].copy()
    out["missed tasks"] = missed
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------------- the gap at reduction


def quality_columns(df: pd.DataFrame) -> dict[str, dict[str, str]]:
    """{"<task>/<metric>": {stage: column}} of the ``quality/<stage>/<task>/<metric>`` columns."""
    out: dict[str, dict[str, str]] = {}
    for col in df.columns:
        if isinstance(col, str) and col.startswith("quality/") and col.count("/") >= 3:
            stage, rest = col[len("quality/") :].split("/", 1)
            out.setdefault(rest, {})[stage] = col
    return out


def reduction_gap(df: pd.DataFrame, modes: Sequence[str] = METHOD_MODES) -> pd.DataFrame:
    """Per valid trial of ``modes`` and task: the main metric at the end of every stage and the gap at reduction.

    ``gap_pct = 100 |reduction - search| / |search|`` (NaN when a stage is missing or search is 0);
    ``search_vs_warmup_pct`` = the change from the end of warm-up to the end of search in percent of the
    warm-up value, > 0 when search improved the metric (its sense from the metadata). Trials flagged
    ``learned == False`` stay in, marked in ``learned``.
    """
    qcols = quality_columns(df)
    if not qcols:
        raise AnalysisError(
            "the results have no quality/<stage>/<task>/<metric> columns (written by an older "
            "version): re-run the sweep to measure the gap at reduction"
        )
    senses = df.attrs.get("metric_senses") or {}
    rows_in = df[df["mode"].isin(list(modes))]
    if "is_valid" in rows_in.columns:
        rows_in = rows_in[rows_in["is_valid"].to_numpy(bool)]
    flagged = not_learned(rows_in)
    rows = []
    for task, metric in main_metrics(df).items():
        cols = qcols.get(f"{task}/{metric}", {})
        if not cols:
            continue
        sign = 1.0 if metric_sense(metric, senses) == "max" else -1.0
        for (_, r), bad in zip(rows_in.iterrows(), flagged):
            v = {s: float(r[cols[s]]) if s in cols and pd.notna(r[cols[s]]) else math.nan for s in STAGES}
            search, red, warm = v["search"], v["reduction"], v["warmup"]
            gap = 100.0 * abs(red - search) / abs(search) if search != 0 else math.nan
            change = 100.0 * sign * (search - warm) / abs(warm) if warm != 0 else math.nan
            rows.append(
                {
                    "trial_id": r["trial_id"],
                    "mode": r["mode"],
                    "seed": r.get("seed"),
                    "task": task,
                    "metric": metric,
                    **v,
                    "gap_pct": gap,
                    "search_vs_warmup_pct": change,
                    "learned": not bad,
                }
            )
    return pd.DataFrame(
        rows,
        columns=["trial_id", "mode", "seed", "task", "metric", *STAGES, "gap_pct", "search_vs_warmup_pct", "learned"],
    )


@dataclass(frozen=True)
class GapSummary:
    """Max and median of ``gap_pct`` over the finite gaps (n of them), and the sentence the report prints."""

    max_pct: float
    median_pct: float
    n: int
    target_pct: float = GAP_TARGET_PCT

    @property
    def within_target(self) -> bool:
        return self.n > 0 and self.max_pct <= self.target_pct + 1e-9  # a gap of exactly the target passes

    @property
    def sentence(self) -> str:
        if self.n == 0:
            return "no gap at reduction measured (no trial has both end-of-search and after-reduction values)"
        return (
            f"max relative gap at reduction: {self.max_pct:.1f}% (target <= {self.target_pct:g}%), "
            f"median {self.median_pct:.1f}%, over {self.n} (trial, task) values"
        )


def gap_summary(table: pd.DataFrame, target_pct: float = GAP_TARGET_PCT) -> GapSummary:
    """The summary of a :func:`reduction_gap` table."""
    gaps = table["gap_pct"].to_numpy(float)
    gaps = gaps[np.isfinite(gaps)]
    if not len(gaps):
        return GapSummary(math.nan, math.nan, 0, target_pct)
    return GapSummary(float(gaps.max()), float(np.median(gaps)), len(gaps), target_pct)


# ----------------------------------------------------------------------------- learning curves


@dataclass
class LearningCurves:
    """Quality per global step from ``epochs.parquet``.

    ``table``: one row per (mode, task, metric, step) with the stage, ``median``, ``min``, ``max`` across the
    mode's trials and ``n_trials``. ``boundaries``: mode -> [(stage, first step)] in stage order (the smallest
    first step over the mode's trials). ``trivial``: "<task>/<metric>" -> trivial value (dashed line).
    """

    table: pd.DataFrame
    boundaries: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    trivial: dict[str, float] = field(default_factory=dict)

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(self.table["task"] + "/" + self.table["metric"]))

    @property
    def modes(self) -> list[str]:
        return list(dict.fromkeys(self.table["mode"]))

    def curve(self, mode: str, metric: str) -> pd.DataFrame:
        """Rows of one mode and ``"<task>/<metric>"``, by step."""
        task, name = metric.rsplit("/", 1)
        t = self.table
        return t[(t["mode"] == mode) & (t["task"] == task) & (t["metric"] == name)].sort_values("step")


def learning_curves(
    epochs: pd.DataFrame,
    results: pd.DataFrame | None = None,
    metrics: Mapping[str, str] | None = None,
) -> LearningCurves:
    """Per mode and task metric (default: each task's main metric), the validation quality at every step.

    ``results`` supplies the mode of each trial when ``epochs`` lacks a ``mode`` column, the task kinds and
    the trivial references. Rows without a step or a value are left out.
    """
    ep = epochs
    if "mode" not in ep.columns:
        if results is None or "mode" not in results.columns:
            raise AnalysisError("epochs.parquet has no 'mode' column: pass the results table to learning_curves")
        ep = ep.merge(results[["experiment", "trial_id", "mode"]], on=["experiment", "trial_id"], how="left")
    if "step" not in ep.columns:
        raise AnalysisError("epochs.parquet has no 'step' column: it is not an epochs table of this tool")
    if metrics is None:
        probe = ep.iloc[:0].copy()  # the columns, with the task kinds of the results' metadata
        probe.attrs = dict(results.attrs) if results is not None else {}
        metrics = main_metrics(probe)
    if not metrics:
        raise AnalysisError("epochs.parquet has no metric/<task>/<name> columns to draw learning curves from")
    stage_order = {s: i for i, s in enumerate(STAGES)}
    parts, boundaries = [], {}
    for mode, g in ep.dropna(subset=["step"]).groupby("mode", sort=False):
        firsts = g.groupby("stage")["step"].min()
        boundaries[str(mode)] = sorted(
            ((str(s), float(v)) for s, v in firsts.items()), key=lambda sv: (sv[1], stage_order.get(sv[0], 9))
        )
        for task, metric in metrics.items():
            col = f"metric/{task}/{metric}"
            if col not in g.columns:
                continue
            v = g[["stage", "step", col]].dropna(subset=[col])
            if v.empty:
                continue
            agg = (
                v.groupby("step")
                .agg(
                    stage=("stage", "first"),
                    median=(col, "median"),
                    min=(col, "min"),
                    max=(col, "max"),
                    n_trials=(col, "size"),
                )
                .reset_index()
            )
            agg.insert(0, "metric", metric)
            agg.insert(0, "task", task)
            agg.insert(0, "mode", str(mode))
            parts.append(agg)
    cols = ["mode", "task", "metric", "step", "stage", "median", "min", "max", "n_trials"]
    table = pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
    trivial = trivial_references(results) if results is not None else {}
    refs = {f"{t}/{m}": trivial[t][m] for t, m in metrics.items() if m in trivial.get(t, {})}
    return LearningCurves(table, boundaries, refs)
