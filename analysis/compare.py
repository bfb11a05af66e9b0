"""Pareto fronts of result tables and front-vs-front comparisons grouped by a sweep axis.

DataFrames are adapted to the array kernels of :mod:`analysis.pareto` in one place,
:func:`objective_matrix`: objectives are named by column (aliases ``params``, ``flops``, ``latency``)
with a sense, turned to "minimise", and only then handed to the kernels.

A comparison (:func:`compare_fronts`) normalises every group by the same ideal/nadir bounds (taken
over all compared points), so one reference point serves all groups and hypervolumes compare.
Rows flagged ``learned == False`` (they did not beat the trivial references, see :mod:`analysis.learning`)
are treated like invalid rows: never on a front, never in a hypervolume or a baseline point.
Seeds are aggregated by the median and spread (quartiles, min, max) of per-seed hypervolumes, never
by a single "best" run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis import pareto
from analysis.load import ALIASES, BASELINE_MODE, AnalysisError, metric_columns, metric_sense, not_learned

DEFAULT_OBJECTIVES: dict[str, str] = {"delta_mtl": "max", "params": "min"}
BASELINE_MODES = ("single_task", "hard_sharing", "full_supernet")
_COST_PREFIXES = ("params", "flops", "latency", "time/", "loss/")


@dataclass(frozen=True)
class Objective:
    """One objective: the table column, its sense ('max'/'min') and the name the user gave it."""

    column: str
    sense: str
    name: str


ObjectiveSpec = str | Mapping[str, str | None] | Sequence[str | Objective]


def objective_sense(column: str, senses: Mapping[str, str] | None = None) -> str:
    """The natural sense of a column: delta_mtl max, metrics by their name, costs and losses min."""
    if column == "delta_mtl":
        return "max"
    if column.startswith("metric/"):
        return metric_sense(column.rsplit("/", 1)[1], senses)
    if column.startswith(_COST_PREFIXES):
        return "min"
    raise AnalysisError(f"objective {column!r} has no known sense: write it as '{column}:max' or '{column}:min'")


def parse_objectives(spec: ObjectiveSpec | None, df: pd.DataFrame | None = None) -> list[Objective]:
    """Objectives from ``"delta_mtl:max,params:min"``, ``{"delta_mtl": "max"}`` or ``["delta_mtl", ...]``.

    A missing sense is inferred (:func:`objective_sense`); with ``df`` every column must exist.
    """
    items = _objective_items(DEFAULT_OBJECTIVES if spec is None else spec)
    if not items:
        raise AnalysisError("no objectives given: e.g. 'delta_mtl:max,params:min'")
    senses = (df.attrs.get("metric_senses") if df is not None else None) or {}
    out = [_objective(name, sense, df, senses) for name, sense in items]
    if len({o.column for o in out}) != len(out):
        raise AnalysisError(f"an objective is named twice: {[o.name for o in out]}")
    return out


def _objective_items(spec: ObjectiveSpec) -> list[tuple[str, str | None]]:
    """(name, sense or None) of every objective of a spec, in its order."""
    if isinstance(spec, str):
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    if isinstance(spec, Mapping):
        return list(spec.items())
    items: list[tuple[str, str | None]] = []
    for s in spec:
        if isinstance(s, Objective):
            items.append((s.name, s.sense))
        else:
            name, _, sense = s.rpartition(":") if s.endswith((":max", ":min")) else (s, "", "")
            items.append((name, sense or None))
    return items


def _objective(name: str, sense: str | None, df: pd.DataFrame | None, senses: Mapping[str, str]) -> Objective:
    """One objective: its column (an alias resolved, checked against ``df`` when given) and its sense."""
    column = ALIASES.get(name, name)
    if df is not None and column not in df.columns:
        near = [c for c in df.columns if isinstance(c, str) and name.split("/")[-1] in c][:8]
        raise AnalysisError(
            f"objective {name!r}: no column {column!r} in the results"
            + (f" (did you mean one of {near}?)" if near else "")
        )
    sense = sense or objective_sense(column, senses)
    if sense not in ("max", "min"):
        raise AnalysisError(f"objective {name!r}: sense must be 'max' or 'min', got {sense!r}")
    return Objective(column, sense, name)


def objective_matrix(df: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """The objective columns of ``df`` as an ``(n, k)`` array to minimise (the one DataFrame->array edge)."""
    values = df[[o.column for o in objectives]].to_numpy(dtype=float, na_value=np.nan)
    return pareto.to_minimise(values, [o.sense for o in objectives])


def _sorted(df: pd.DataFrame, objectives: Sequence[Objective]) -> pd.DataFrame:
    """Deterministic order: best first by the objectives in turn, then by experiment and trial id."""
    cols = [o.column for o in objectives] + [c for c in ("experiment", "trial_id") if c in df.columns]
    asc = [o.sense == "min" for o in objectives] + [True] * (len(cols) - len(objectives))
    return df.sort_values(cols, ascending=asc, kind="mergesort")


def usable_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that may stand on a front or add hypervolume: valid, and not flagged ``learned == False``."""
    keep = df["is_valid"].to_numpy(bool) if "is_valid" in df.columns else np.ones(len(df), bool)
    return df[keep & ~not_learned(df)]


def pareto_front(df: pd.DataFrame, objectives: ObjectiveSpec | None = None) -> pd.DataFrame:
    """The rows of ``df`` on the Pareto front of ``objectives`` (invalid, NaN and ``learned == False`` rows never are).

    Equal rows are all kept. The rows come best-first by the first objective. Filter ``df`` first
    to choose what competes (e.g. ``df[df["mode"] == "supernet"]``).
    """
    objs = parse_objectives(objectives, df)
    rows = usable_rows(df)
    return _sorted(rows[pareto.pareto_mask(objective_matrix(rows, objs))], objs)


def with_ranks(df: pd.DataFrame, objectives: ObjectiveSpec | None = None) -> pd.DataFrame:
    """``df`` with a ``pareto_rank`` column (0 = front; -1 = invalid, not learned or NaN objectives)."""
    objs = parse_objectives(objectives, df)
    out = df.copy()
    y = objective_matrix(df, objs)
    if "is_valid" in df.columns:
        y[~df["is_valid"].to_numpy(bool)] = np.nan
    y[not_learned(df)] = np.nan
    out["pareto_rank"] = pareto.nondomination_rank(y)
    return out


# ----------------------------------------------------------------------------- baselines


def single_task_ensemble(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (experiment, seed): the T single-task networks taken together as one system.

    Its ``delta_mtl`` is 0 by definition, its metrics are those of each task's own network, and its
    costs are sums over the tasks (T separate forwards) - the point a multi-task front is compared to.
    Only finished single-task rows count (an early-stopped one trained less); seeds without a finished
    baseline for every task are left out.
    """
    base = usable_rows(df[(df["mode"] == BASELINE_MODE) & (df["status"] == "finished")])
    tasks = list(df.attrs.get("tasks") or metric_columns(df))
    metric_cols = metric_columns(df)
    cost = [c for c in ("params_union", "flops_multitask", "latency_ms") if c in df.columns]
    rows = []
    for (exp, seed), g in base.groupby(["experiment", "seed"], sort=True):
        by_task = {t: g[g["baseline_task"] == t] for t in tasks}
        if any(b.empty for b in by_task.values()):
            continue
        row: dict[str, object] = {
            "experiment": exp,
            "trial_id": f"single_task_ensemble/seed={seed}",
            "status": "finished",
            "mode": BASELINE_MODE,
            "seed": seed,
            "is_valid": True,
            "delta_mtl": 0.0,
        }
        for t, b in by_task.items():
            for c in metric_cols.get(t, []):
                row[c] = b[c].mean()
            for prefix in ("params", "flops"):
                if f"{prefix}/{t}" in df.columns:
                    row[f"{prefix}/{t}"] = b[f"{prefix}/{t}"].mean()
        for c in cost:
            row[c] = float(sum(b[c].mean() for b in by_task.values()))
        rows.append(row)
    out = pd.DataFrame(
        rows,
        columns=list(
            dict.fromkeys(
                [
                    "experiment",
                    "trial_id",
                    "status",
                    "mode",
                    "seed",
                    "is_valid",
                    "delta_mtl",
                    *cost,
                    *(k for r in rows for k in r),
                ]
            )
        ),
    )
    return out


def baseline_points(df: pd.DataFrame, modes: Sequence[str] = BASELINE_MODES) -> pd.DataFrame:
    """Reference points to mark beside fronts: the single-task ensemble and the other baseline rows."""
    parts = []
    if BASELINE_MODE in modes:
        parts.append(single_task_ensemble(df))
    other = usable_rows(df[df["mode"].isin([m for m in modes if m != BASELINE_MODE])])
    parts.append(other)
    parts = [p for p in parts if len(p)]
    if not parts:
        return df.iloc[:0].copy()
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    return out.sort_values(["mode", "experiment", "seed", "trial_id"], kind="mergesort").reset_index(drop=True)


# ----------------------------------------------------------------------------- comparison


@dataclass
class FrontComparison:
    """Fronts of the groups of one sweep axis, compared on one normalised scale.

    ``table``: one row per group (points, front size, pooled and per-seed hypervolume, IGD+ to the
    union front, best quality within each cost budget). ``coverage.loc[a, b]`` = C(front a, front b).
    ``per_seed``: group x (experiment, seed) hypervolumes. ``ideal``/``nadir`` (minimise form) and ``ref_point``
    (normalised) say exactly which volume was measured.
    """

    by: list[str]
    objectives: list[Objective]
    ideal: np.ndarray
    nadir: np.ndarray
    ref_point: np.ndarray
    table: pd.DataFrame
    coverage: pd.DataFrame
    per_seed: pd.DataFrame
    fronts: dict[str, pd.DataFrame] = field(default_factory=dict)
    points: dict[str, pd.DataFrame] = field(default_factory=dict)
    budgets: dict[str, list[float]] = field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        return list(self.table.index)


def _group_keys(df: pd.DataFrame, by: list[str]) -> list[tuple]:
    """The distinct values of the ``by`` columns as tuples, sorted (NaN last), independent of row order."""
    keys = df[by].drop_duplicates().itertuples(index=False, name=None)
    return sorted(keys, key=lambda k: tuple((pd.isna(v), str(type(v)), v if not pd.isna(v) else 0) for v in k))


def _match(df: pd.DataFrame, by: list[str], key: tuple) -> np.ndarray:
    """Rows of ``df`` whose ``by`` values equal ``key`` (NaN matches NaN)."""
    sel = np.ones(len(df), bool)
    for c, v in zip(by, key):
        col = df[c]
        sel &= (col.isna() if pd.isna(v) else col == v).to_numpy(bool)
    return sel


def _label(by: list[str], key: tuple) -> str:
    if len(by) == 1:
        return str(key[0])
    return ", ".join(f"{c}={v}" for c, v in zip(by, key))


def _budget_col(quality: Objective, cost: Objective, b: float) -> str:
    op = "<=" if cost.sense == "min" else ">="
    return f"best {quality.name} @ {cost.name}{op}{b:.4g}"


def default_budgets(points: pd.DataFrame, objectives: Sequence[Objective]) -> dict[str, list[float]]:
    """Budgets on the last objective (the cost) at the quartiles of its values over the compared points."""
    if len(objectives) < 2:
        return {}
    cost = objectives[-1]
    vals = points[cost.column].to_numpy(float)
    vals = vals[~np.isnan(vals)]
    if len(vals) == 0:
        return {}
    return {cost.name: sorted({float(v) for v in np.quantile(vals, [0.25, 0.5, 0.75])})}


def best_within_budgets(
    points: pd.DataFrame, quality: Objective, cost: Objective, budgets: Sequence[float]
) -> list[float]:
    """Best ``quality`` among the points whose ``cost`` is within each budget (NaN where none is)."""
    q = points[quality.column].to_numpy(float)
    c = points[cost.column].to_numpy(float)
    ok = ~np.isnan(q) & ~np.isnan(c)
    out = []
    for b in budgets:
        inside = ok & ((c <= b) if cost.sense == "min" else (c >= b))
        if not inside.any():
            out.append(float("nan"))
        else:
            out.append(float(q[inside].max() if quality.sense == "max" else q[inside].min()))
    return out


def _checked_budgets(
    budgets: Mapping[str, Sequence[float]] | None, points: pd.DataFrame, objs: Sequence[Objective]
) -> dict[str, list[float]]:
    """The budgets as floats (default: :func:`default_budgets`), each on one of the objectives."""
    names = {o.name for o in objs} | {o.column for o in objs}
    out = (
        {k: [float(b) for b in v] for k, v in budgets.items()} if budgets is not None else default_budgets(points, objs)
    )
    for k in out:
        if k not in names:
            raise AnalysisError(f"budget on {k!r}, which is not one of the objectives {[o.name for o in objs]}")
    return out


def _seed_rows(label: str, g: pd.DataFrame, yn: np.ndarray, ref: np.ndarray) -> list[dict[str, object]]:
    """One row per seed of a group: its points, front size and hypervolume (``yn``: the group's normalised points).
    A seed is (experiment, seed): two experiments' seed 0 are two seeds."""
    exp = g["experiment"].astype(str) if "experiment" in g.columns else pd.Series("", index=g.index)
    rows = []
    for e, seed in sorted(set(zip(exp, g["seed"]))):
        s = ((exp == e) & (g["seed"] == seed)).to_numpy(bool)
        rows.append(
            {
                "group": label,
                "experiment": e,
                "seed": seed,
                "points": int(s.sum()),
                "front_size": int(pareto.pareto_mask(yn[s]).sum()),
                "hypervolume": pareto.hypervolume(yn[s], ref),
            }
        )
    return rows


def _spread(hv_seed: np.ndarray) -> dict[str, object]:
    """How many seeds, and the median, quartiles, min and max of their hypervolumes."""
    return {
        "n_seeds": len(hv_seed),
        "hv_seed_median": float(np.median(hv_seed)),
        "hv_seed_q25": float(np.quantile(hv_seed, 0.25)),
        "hv_seed_q75": float(np.quantile(hv_seed, 0.75)),
        "hv_seed_min": float(hv_seed.min()),
        "hv_seed_max": float(hv_seed.max()),
    }


def _budget_cells(g: pd.DataFrame, objs: Sequence[Objective], budgets: Mapping[str, list[float]]) -> dict[str, float]:
    """The best value of the first other objective within each budget of each cost objective, by column name."""
    by_name = {o.name: o for o in objs} | {o.column: o for o in objs}
    out = {}
    for cost_name, bs in budgets.items():
        cost = by_name[cost_name]
        quality = next((o for o in objs if o is not cost), None)
        if quality is None:
            continue
        for b, v in zip(bs, best_within_budgets(g, quality, cost, bs)):
            out[_budget_col(quality, cost, b)] = v
    return out


def compare_fronts(
    df: pd.DataFrame,
    by: str | Sequence[str] = "flow_width",
    objectives: ObjectiveSpec | None = None,
    *,
    budgets: Mapping[str, Sequence[float]] | None = None,
    modes: Sequence[str] = ("supernet",),
    ref_point: float | Sequence[float] = 1.1,
) -> FrontComparison:
    """Compare the Pareto fronts of the groups of ``by`` (e.g. one front per flow width M).

    Only valid rows of ``modes`` with finite objectives compete. All groups are normalised by the
    same bounds (ideal = 0, nadir = 1 over all compared points) and measured against the same
    normalised ``ref_point`` (1.1: the worst point of any group still adds volume).
    ``budgets`` maps a cost objective to budgets; the table reports the best value of the first
    other objective within each (default: the last objective at its quartiles).
    """
    by = [by] if isinstance(by, str) else list(by)
    objs = parse_objectives(objectives, df)
    missing = [c for c in by if c not in df.columns]
    if missing:
        raise AnalysisError(f"cannot group by {missing}: no such column (e.g. flow_width, lambda_sq, tau, n_nodes)")
    rows = usable_rows(df[df["mode"].isin(list(modes))])
    y_all = objective_matrix(rows, objs)
    finite = pareto.finite_rows(y_all)
    if not finite.any():
        raise AnalysisError(f"no valid {'/'.join(modes)} trials with values for {[o.name for o in objs]}")
    points, y_all = rows[finite], y_all[finite]
    ideal, nadir = pareto.bounds(y_all)
    ref = np.broadcast_to(np.asarray(ref_point, float), (len(objs),)).copy()
    y_norm = pareto.normalise(y_all, ideal, nadir)
    union_front = y_norm[pareto.pareto_mask(y_norm)]

    budgets = _checked_budgets(budgets, points, objs)
    contenders = df[df["mode"].isin(list(modes))]
    table_rows, seed_rows, fronts, group_points, front_y = [], [], {}, {}, {}
    for key in _group_keys(points, by):
        label = _label(by, key)
        sel = _match(points, by, key)
        g, yn = points[sel], y_norm[sel]
        on_front = pareto.pareto_mask(yn)
        fronts[label] = _sorted(g[on_front], objs)
        group_points[label] = g
        front_y[label] = yn[on_front]
        seeds = _seed_rows(label, g, yn, ref)
        seed_rows += seeds
        row: dict[str, object] = dict(zip(by, key))
        row |= {
            "trials": int(_match(contenders, by, key).sum()),
            "points": len(g),
            "front_size": int(on_front.sum()),
            "hypervolume": pareto.hypervolume(yn, ref),
            "igd_plus": pareto.igd_plus(yn, union_front),
            **_spread(np.asarray([r["hypervolume"] for r in seeds])),
            **_budget_cells(g, objs, budgets),
            "group": label,
        }
        table_rows.append(row)
    table = pd.DataFrame(table_rows).set_index("group")
    labels = list(table.index)
    cov = pd.DataFrame(
        [[pareto.coverage(front_y[a], front_y[b]) for b in labels] for a in labels], index=labels, columns=labels
    )
    cov.index.name, cov.columns.name = "A (covers)", "B (covered)"
    return FrontComparison(
        by=by,
        objectives=objs,
        ideal=ideal,
        nadir=nadir,
        ref_point=ref,
        table=table,
        coverage=cov,
        per_seed=pd.DataFrame(
            seed_rows, columns=["group", "experiment", "seed", "points", "front_size", "hypervolume"]
        ),
        fronts=fronts,
        points=group_points,
        budgets=budgets,
    )
