"""The kept networks' topology, and on data with a known answer: does the search keep what the tasks need?

Reads the columns of :mod:`analysis.schema`: ``topo/<task>/...`` (kept edges, longest read-in -> read-out path
in edges, read-ins, read-outs, ops shared with each other task), ``collapsed``, ``null/<task>/longest_path/<L>``
(the longest path's distribution over uniformly random valid architectures of the kept size) and, on planted
data, ``needs_edges/<task>`` (the path length the generator makes necessary; 0 = a local task) and
``oracle/<task>/<metric>/<k>`` (the best value a path of k edges can reach; the last k holds for longer paths).

- :func:`topology_table`, :func:`collapsed_count`: per trial and task, and the trials whose tasks keep no edge;
- :func:`oracle_comparison`: the oracle per task and k, and each trial beside the bound of the path it kept;
- :func:`hit_tests`: per deep task (K >= 1) and search setting, hit = kept a path of >= K edges, per seed; the
  null probability p0 of a hit is the tail of that trial's null distribution; one-sided exact test over
  seeds (binomial when every p0 is equal, Poisson-binomial otherwise);
- :func:`paired_tests`: per deep task and setting, the method's final metric against the mean of its
  size-matched random draws (same experiment, seed and setting), one-sided Wilcoxon signed-rank over seeds;
- :func:`sharing_comparisons`: per setting and seed, the method against the hard-sharing baseline on every
  task's metric and the parameters (any data with that baseline).

A test is "not decidable", with its reasons, when the warm-up supernet did not beat the k = 0 oracle bound
(it never used a deep path, so there was nothing for the search to keep), when every seed's p0 is 0 or 1
(a hit is then decided by the kept size alone), when the seeds are too few for the test to reach p < alpha
at all, or when there are no random draws to pair with. Compute here, render in :mod:`analysis.report`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.load import AnalysisError, metric_sense
from analysis.schema import COLLAPSED, NEEDS_EDGES, NULL, ORACLE, TOPO, TOPO_MEASURES
from analysis.stats import ALPHA, HOW_TO_ADD_RANDOM, METHOD, RANDOM, ties_text

WITHIN = 0.25  # target: a trial's error within 25% of the oracle bound of the path it kept
# config columns that name a trial within a setting rather than the setting itself
_NOT_SETTING = ("config/trial.mode", "config/trial.random_draw", "config/trial.single_task")


# ----------------------------------------------------------------------------- columns


def has_topology(df: pd.DataFrame) -> bool:
    """Whether any row carries a kept topology (none does when no trial kept an architecture: a sweep of baselines,
    or one whose trials all ended before reduction)."""
    return any(_finite_any(df[c]) for c in df.columns if isinstance(c, str) and c.startswith(TOPO))


def has_planted(df: pd.DataFrame) -> bool:
    """Whether the results come from data with planted structure (a finite ``needs_edges/<task>``)."""
    return bool(needs_edges(df))


def _finite_any(s: pd.Series) -> bool:
    return bool(np.isfinite(pd.to_numeric(s, errors="coerce").to_numpy(float)).any())


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    """A column as floats (NaN where absent or null)."""
    if col not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(float)


def topology_tasks(df: pd.DataFrame) -> list[str]:
    """The tasks with ``topo/<task>/<measure>`` columns, in table order."""
    out: dict[str, None] = {}
    for c in df.columns:
        if isinstance(c, str) and c.startswith(TOPO):
            out[c[len(TOPO) :].split("/", 1)[0]] = None
    return list(out)


def needs_edges(df: pd.DataFrame) -> dict[str, int]:
    """{task: K} from ``needs_edges/<task>`` (a data-set constant: the first finite value)."""
    out = {}
    for c in df.columns:
        if isinstance(c, str) and c.startswith(NEEDS_EDGES):
            v = _num(df, c)
            v = v[np.isfinite(v)]
            if len(v):
                out[c[len(NEEDS_EDGES) :]] = int(v[0])
    return out


def setting_columns(df: pd.DataFrame) -> list[str]:
    """The swept ``config/<key>`` columns that make a search setting: all but seeds, mode and draw index."""
    return [
        c
        for c in df.columns
        if isinstance(c, str) and c.startswith("config/") and c not in _NOT_SETTING and not c.endswith(".seed")
    ]


def _setting_labels(df: pd.DataFrame) -> pd.Series:
    """One text label per row for its setting ("search.lambda_sq=0.1, reduction.tau=0.15"; "" for no axis; a
    value swept as null, e.g. ``reduction.refine_tol: null``, reads ``null`` as in the sweep file)."""
    cols = setting_columns(df)
    if not cols:
        return pd.Series("", index=df.index)
    parts = [[f"{c[len('config/') :]}={_text(v)}" for v in df[c]] for c in cols]
    return pd.Series([", ".join(p) for p in zip(*parts)], index=df.index)


def _text(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "null"
    return f"{v:g}" if isinstance(v, float) else str(v)


# ----------------------------------------------------------------------------- topology table


def _collapsed(df: pd.DataFrame, tasks: Sequence[str]) -> np.ndarray:
    """1.0 / 0.0 / NaN per row: the ``collapsed`` column, else every task's kept edges == 0 when all are known."""
    col = _num(df, COLLAPSED)
    edges = np.stack([_num(df, f"{TOPO}{t}/edges") for t in tasks], axis=1) if tasks else np.full((len(df), 0), np.nan)
    known = np.isfinite(edges).all(axis=1) & (edges.shape[1] > 0)
    derived = np.where(known, (np.nan_to_num(edges, nan=1.0) == 0).all(axis=1).astype(float), np.nan)
    return np.where(np.isfinite(col), col, derived)


def topology_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per trial with a kept topology and task: trial_id, mode, seed, the swept setting (config keys
    without the ``config/`` prefix), task, edges, longest_path, read_in, read_out, ``shared/<other>`` (ops kept
    by both: edges and read-ins) and ``collapsed`` (the trial's tasks all keep 0 edges)."""
    tasks = topology_tasks(df)
    settings = setting_columns(df)
    draw = [c for c in ("config/trial.random_draw",) if c in df.columns]
    cols = [
        "trial_id",
        "mode",
        "seed",
        *[c[len("config/") :] for c in settings + draw],
        "task",
        *TOPO_MEASURES,
        *[f"shared/{u}" for u in tasks],
        "collapsed",
    ]
    if not tasks:
        return pd.DataFrame(columns=cols)
    collapsed = pd.array([bool(v) if np.isfinite(v) else pd.NA for v in _collapsed(df, tasks)], dtype="boolean")
    ident = {
        "trial_id": df["trial_id"].to_numpy(),
        "mode": df["mode"].to_numpy(),
        "seed": df["seed"].to_numpy(),
        **{c[len("config/") :]: df[c].to_numpy() for c in settings + draw},
    }
    frames = []
    for t in tasks:  # a task shares nothing with itself: its own shared/ column stays null
        counts = {k: _num(df, f"{TOPO}{t}/{k}") for k in TOPO_MEASURES}
        counts |= {
            f"shared/{u}": _num(df, f"{TOPO}{t}/shared/{u}") if u != t else np.full(len(df), np.nan) for u in tasks
        }
        kept = np.isfinite(np.stack([counts[k] for k in TOPO_MEASURES], axis=1)).any(axis=1)
        part = pd.DataFrame(
            {
                **ident,
                "task": t,
                **{k: pd.array(v, dtype="Float64").astype("Int64") for k, v in counts.items()},
                "collapsed": collapsed,
            }
        )
        frames.append(part[kept])
    out = pd.concat(frames, ignore_index=True)[cols]
    order = {METHOD: 0, RANDOM: 1}  # the method first, its random draws next, then the baselines
    out["_rank"] = [order.get(m, 2) for m in out["mode"]]
    keys = ["_rank", "mode", *[c[len("config/") :] for c in settings], "seed", "trial_id"]
    return out.sort_values(keys, kind="stable").drop(columns="_rank").reset_index(drop=True)


@dataclass
class CollapsedCount:
    """Per mode, how many trials with a kept topology collapsed (every task keeps 0 edges), and which."""

    table: pd.DataFrame  # mode, trials, collapsed
    trials: list[str]

    @property
    def sentence(self) -> str:
        if self.table.empty:
            return "No trial carries a kept topology."
        parts = [f"{c} of {n} {m}" for m, n, c in self.table[["mode", "trials", "collapsed"]].itertuples(index=False)]
        return f"Collapsed (every task keeps 0 edges): {', '.join(parts)} trials."


def collapsed_count(df: pd.DataFrame) -> CollapsedCount:
    """Trials with a known ``collapsed`` flag (or every task's kept edges) counted per mode."""
    flag = _collapsed(df, topology_tasks(df))
    known = np.isfinite(flag)
    rows = [
        {
            "mode": m,
            "trials": int((known & (df["mode"] == m).to_numpy(bool)).sum()),
            "collapsed": int(((flag == 1) & (df["mode"] == m).to_numpy(bool)).sum()),
        }
        for m in dict.fromkeys(df["mode"][known])
    ]
    return CollapsedCount(
        pd.DataFrame(rows, columns=["mode", "trials", "collapsed"]), [str(t) for t in df["trial_id"][flag == 1]]
    )


# ----------------------------------------------------------------------------- oracle


@dataclass(frozen=True)
class Oracle:
    """The best value of ``metric`` a path of k edges can reach, k = 0..len(by_edges)-1 (the last holds beyond)."""

    task: str
    metric: str
    sense: str
    by_edges: tuple[float, ...]
    needs_edges: int | None = None

    def bound(self, k: float) -> float:
        """The bound of a path of ``k`` edges (NaN for an unknown k)."""
        if not np.isfinite(k):
            return math.nan
        return self.by_edges[min(int(k), len(self.by_edges) - 1)]

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` in the metric's sense."""
        return bool(a > b) if self.sense == "max" else bool(a < b)


def oracles(df: pd.DataFrame) -> dict[str, Oracle]:
    """{task: Oracle} from the ``oracle/<task>/<metric>/<k>`` columns (a data-set constant: trials that
    disagree come from different data and are an error)."""
    found: dict[str, dict[str, dict[int, float]]] = {}
    for c in df.columns:
        if not (isinstance(c, str) and c.startswith(ORACLE)):
            continue
        task, metric, k = c[len(ORACLE) :].rsplit("/", 2)
        v = _num(df, c)
        v = v[np.isfinite(v)]
        if not len(v):
            continue
        if not np.allclose(v, v[0]):
            raise AnalysisError(
                f"column {c!r} differs between trials ({v.min():.4g} to {v.max():.4g}): the table mixes "
                "data sets; analyse one data set's experiments at a time"
            )
        found.setdefault(task, {}).setdefault(metric, {})[int(k)] = float(v[0])
    needs = needs_edges(df)
    out = {}
    for task, by_metric in found.items():
        if len(by_metric) > 1:
            raise AnalysisError(f"task {task!r} has an oracle for several metrics {sorted(by_metric)}: one is expected")
        metric, ks = next(iter(by_metric.items()))
        values = []
        for k in range(max(ks) + 1):  # a k the oracle did not list takes the bound of the last k before it
            values.append(ks.get(k, values[-1] if values else math.nan))
        if not math.isfinite(values[0]):
            raise AnalysisError(f"the oracle of task {task!r} lacks k = 0 (column {ORACLE}{task}/{metric}/0)")
        out[task] = Oracle(
            task, metric, metric_sense(metric, df.attrs.get("metric_senses")), tuple(values), needs.get(task)
        )
    return out


@dataclass
class OracleComparison:
    """``oracle``: per task, the bound at each k (the last column holds for every longer path); ``gaps``: per
    trial with a kept topology and planted task, its value beside the bound of the path it kept."""

    oracle: pd.DataFrame
    gaps: pd.DataFrame
    within: float = WITHIN

    @property
    def sentence(self) -> str:
        """How many method trials of each deep task are within the target of their kept path's bound."""
        m = self.gaps[(self.gaps["mode"] == METHOD) & self.gaps["needs_edges"].fillna(0).gt(0)]
        if m.empty:
            return "No supernet trial of a task that needs depth to compare with the oracle."
        parts = []
        for task, g in m.groupby("task", sort=False):
            ok = g["within"].dropna()
            parts.append(
                f"{task} ({g['metric'].iloc[0]}) is within {100 * self.within:g}% of the oracle bound of the "
                f"path it kept in {int(ok.sum())} of {len(ok)} supernet trials"
            )
        return "; ".join(parts) + "."


def oracle_comparison(df: pd.DataFrame, within: float = WITHIN) -> OracleComparison:
    """The oracle table and every trial's gap to the bound of the path it kept.

    ``excess`` = how much worse than the bound the trial is, in the metric's sense (below 0: better than the
    bound, which only noise in the validation split allows). ``tolerance`` = ``within`` x |bound|; where the
    bound is 0 (a perfect net is reachable) ``within`` x |the k = 0 bound| instead, since ``within`` x 0
    would ask for a perfect net. ``within`` (the column) = excess <= tolerance.
    """
    orc = oracles(df)
    width = max((len(o.by_edges) for o in orc.values()), default=0)
    ks = [f"k={k}" for k in range(width - 1)] + ([f"k>={width - 1}"] if width else [])
    table = pd.DataFrame(
        [
            {
                "task": t,
                "needs_edges": o.needs_edges,
                "metric": o.metric,
                "sense": o.sense,
                **{name: o.bound(k) for k, name in enumerate(ks)},
            }
            for t, o in orc.items()
        ],
        columns=["task", "needs_edges", "metric", "sense", *ks],
    )
    labels = _setting_labels(df)
    rows = []
    valid = _valid(df)
    for t, o in orc.items():
        path = _num(df, f"{TOPO}{t}/longest_path")
        value = _num(df, f"metric/{t}/{o.metric}")
        for i in np.flatnonzero(valid & np.isfinite(path)):
            bound = o.bound(path[i])
            excess = value[i] - bound if o.sense == "min" else bound - value[i]
            tol = within * abs(bound if bound != 0 else o.bound(0))
            rows.append(
                {
                    "trial_id": df["trial_id"].iloc[i],
                    "mode": df["mode"].iloc[i],
                    "seed": df["seed"].iloc[i],
                    "setting": labels.iloc[i],
                    "task": t,
                    "needs_edges": o.needs_edges,
                    "metric": o.metric,
                    "longest_path": int(path[i]),
                    "bound": bound,
                    "value": value[i],
                    "excess": excess,
                    "tolerance": tol,
                    "within": bool(excess <= tol) if np.isfinite(excess) else pd.NA,
                }
            )
    gaps = pd.DataFrame(
        rows,
        columns=[
            "trial_id",
            "mode",
            "seed",
            "setting",
            "task",
            "needs_edges",
            "metric",
            "longest_path",
            "bound",
            "value",
            "excess",
            "tolerance",
            "within",
        ],
    )
    return OracleComparison(table, gaps, within)


# ----------------------------------------------------------------------------- hit test (kernels)


def poisson_binomial_sf(p: Sequence[float], k: int) -> float:
    """P(X >= k) for X the number of successes of independent trials with success probabilities ``p``
    (exact: the distribution of X by convolution, one trial at a time)."""
    dist = np.ones(1)
    for q in np.asarray(p, float):
        dist = np.concatenate([dist * (1 - q), [0.0]]) + np.concatenate([[0.0], dist * q])
    return float(min(1.0, dist[max(int(k), 0) :].sum()))


def hit_p_value(p0: Sequence[float], hits: int) -> tuple[float, str]:
    """One-sided exact p-value of ``hits`` hits or more when seed i hits with probability ``p0[i]``, and the
    test's name: binomial (``scipy.stats.binomtest``) when every p0 is the same and strictly between 0 and 1,
    Poisson-binomial otherwise."""
    p0 = np.asarray(p0, float)
    if len(p0) and np.all(p0 == p0[0]) and 0 < p0[0] < 1:
        return float(sps.binomtest(int(hits), len(p0), float(p0[0]), alternative="greater").pvalue), "exact binomial"
    return poisson_binomial_sf(p0, hits), "exact Poisson-binomial"


def hit_min_p(p0: Sequence[float]) -> float:
    """The smallest p-value the hit test can give with these p0: every seed that can hit (p0 > 0) hits."""
    p0 = np.asarray(p0, float)
    return float(np.prod(p0[p0 > 0])) if (p0 > 0).any() else 1.0


def _fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _seeds_text(seeds: Sequence) -> str:
    return ", ".join(str(s) for s in seeds)


# ----------------------------------------------------------------------------- hit test


@dataclass
class HitTest:
    """Does the deep task keep a path of >= K edges more often than chance? One deep task, one setting.

    ``table``: per seed (one supernet trial each) experiment, seed, trial_id, longest_path, hit, p0 (the null
    probability of a hit: sum of the trial's null P(L) over L >= K), exact (the null was enumerated),
    local_longest (the longest path any local task kept) and local_shorter. ``verdict``: "beats chance",
    "no evidence" or "not decidable" (then ``reasons`` says why).
    """

    task: str
    needs_edges: int
    setting: str
    table: pd.DataFrame
    hits: int
    n: int
    test: str
    p_value: float
    min_p: float
    local_shorter: bool | None
    verdict: str
    reasons: list[str] = field(default_factory=list)
    alpha: float = ALPHA

    @property
    def sentence(self) -> str:
        where = f" at {self.setting}" if self.setting else ""
        p0 = self.table["p0"].to_numpy(float)
        p0_text = (
            f"{p0[0]:.3g}"
            if len(p0) and np.all(p0 == p0[0])
            else f"{np.nanmin(p0):.3g} to {np.nanmax(p0):.3g}"
            if len(p0)
            else "-"
        )
        counts = (
            f"{self.task} (needs {self.needs_edges} edges) kept a path of >= {self.needs_edges} edges in "
            f"{self.hits} of {self.n} seeds{where}, against a null hit probability p0 of {p0_text}"
        )
        if self.verdict == "not decidable":
            return f"Not decidable: {'; '.join(self.reasons)} ({counts})."
        stats = f"one-sided {self.test} p = {_fmt_p(self.p_value)}"
        local = (
            ""
            if self.local_shorter is None
            else (
                "; every local task kept a shorter path in every seed"
                if self.local_shorter
                else "; a local task kept a path as long as it in some seed"
            )
        )
        if self.verdict == "beats chance":
            return f"Yes: {counts} ({stats}){local}."
        return f"No evidence that the search beats chance at alpha = {self.alpha:g}: {counts} ({stats}){local}."


def _valid(df: pd.DataFrame) -> np.ndarray:
    """The rows of trials that finished or stopped early (every row of a table without ``is_valid``)."""
    return df["is_valid"].to_numpy(bool) if "is_valid" in df.columns else np.ones(len(df), bool)


def _valid_rows(df: pd.DataFrame, mode: str) -> pd.DataFrame:
    return df[_valid(df) & (df["mode"] == mode).to_numpy(bool)]


def _method_rows(df: pd.DataFrame) -> pd.DataFrame:
    return _valid_rows(df, METHOD)


def _warmup_reasons(rows: pd.DataFrame, task: str, oracle: Oracle | None) -> list[str]:
    """Why a test is not decidable on the warm-up: the supernet did not beat the k = 0 bound in some seed."""
    if oracle is None:
        return []
    q = _num(rows, f"quality/warmup/{task}/{oracle.metric}")
    b0 = oracle.bound(0)
    unknown = [s for s, v in zip(rows["seed"], q) if not np.isfinite(v)]
    failed = [(s, v) for s, v in zip(rows["seed"], q) if np.isfinite(v) and not oracle.better(v, b0)]
    out = []
    if failed:
        vals = ", ".join(f"{v:.3g}" for _, v in failed)
        out.append(
            f"the warm-up supernet did not beat the k = 0 oracle bound ({oracle.metric} {b0:.3g}) in seed(s) "
            f"{_seeds_text([s for s, _ in failed])} ({vals}): it never used a deep path, so the search had none "
            "to keep; lengthen the warm-up"
        )
    if unknown:
        out.append(
            f"the warm-up quality ({oracle.metric}) of seed(s) {_seeds_text(unknown)} is not recorded, so "
            "whether the supernet used a deep path is unknown"
        )
    return out


def _seed_keys(rows: pd.DataFrame) -> list[str]:
    """The columns that name a seed of a trial: (experiment, seed), or seed alone in a table without experiments."""
    return ["experiment", "seed"] if "experiment" in rows.columns else ["seed"]


def _group(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Method rows by setting, each checked to hold one trial per (experiment, seed)."""
    labels = _setting_labels(rows)
    out = []
    for label in dict.fromkeys(labels):
        g = rows[(labels == label).to_numpy(bool)]
        dup = g.duplicated(_seed_keys(g))
        if dup.any():
            raise AnalysisError(
                f"seed {g['seed'][dup].iloc[0]} has several supernet trials at the setting "
                f"{label or '(no swept axis)'}: sweep the key that tells them apart, so that it is a config column"
            )
        out.append((label, g.sort_values("seed", kind="stable")))
    return out


def hit_tests(df: pd.DataFrame, alpha: float = ALPHA) -> list[HitTest]:
    """One :class:`HitTest` per task with ``needs_edges`` K >= 1 and search setting, over the valid supernet
    trials that kept a topology (one per seed)."""
    needs = needs_edges(df)
    orc = oracles(df)
    local = [t for t, k in needs.items() if k == 0]
    method = _method_rows(df)
    out = []
    for task, k in needs.items():
        if k < 1:
            continue
        rows = method[np.isfinite(_num(method, f"{TOPO}{task}/longest_path"))]
        for label, g in _group(rows) if len(rows) else [("", rows)]:
            out.append(_hit_test(g, task, k, label, local, orc.get(task), alpha))
    return out


def _hit_test(
    g: pd.DataFrame, task: str, k: int, label: str, local: list[str], oracle: Oracle | None, alpha: float
) -> HitTest:
    path = _num(g, f"{TOPO}{task}/longest_path")
    probs = [c for c in g.columns if isinstance(c, str) and c.startswith(f"{NULL}{task}/longest_path/")]
    tail = [c for c in probs if int(c.rsplit("/", 1)[1]) >= k]
    null = np.stack([_num(g, c) for c in probs], axis=1) if probs else np.full((len(g), 0), np.nan)
    known = np.isfinite(null).any(axis=1)
    p0 = np.where(known, np.nansum(np.stack([_num(g, c) for c in tail], axis=1), axis=1) if tail else 0.0, np.nan)
    p0 = np.clip(p0, 0.0, 1.0)  # sums of rounded probabilities may pass 1 by a hair
    hit = path >= k
    local_paths = (
        np.stack([_num(g, f"{TOPO}{t}/longest_path") for t in local], axis=1) if local else np.full((len(g), 0), np.nan)
    )
    local_known = np.isfinite(local_paths).all(axis=1) & (local_paths.shape[1] > 0)
    local_longest = np.where(local_known, local_paths.max(axis=1, initial=-np.inf), np.nan)
    table = pd.DataFrame(
        {
            "experiment": g["experiment"].to_numpy() if "experiment" in g.columns else "",
            "seed": g["seed"].to_numpy(),
            "trial_id": g["trial_id"].to_numpy(),
            "longest_path": path.astype(int),
            "hit": hit,
            "p0": p0,
            "exact": [bool(v) if np.isfinite(v) else pd.NA for v in _num(g, f"{NULL}{task}/exact")],
            "local_longest": local_longest,
            "local_shorter": [bool(v < p) if np.isfinite(v) else pd.NA for v, p in zip(local_longest, path)],
        }
    )
    n, hits = len(g), int(hit.sum())
    # None when there is no local task, or one's kept path is unknown in some seed
    local_shorter = bool((local_longest < path).all()) if local and n and local_known.all() else None
    reasons = [] if n else ["no valid supernet trial kept a topology"]
    reasons += _warmup_reasons(g, task, oracle)
    missing = table["seed"][~np.isfinite(p0)].tolist()
    if missing:
        reasons.append(f"the null distribution of seed(s) {_seeds_text(missing)} is not recorded")
    ok = p0[np.isfinite(p0)]
    settled = bool(n and not missing and np.all((ok == 0) | (ok == 1)))
    if settled:
        reasons.append(
            f"every seed's kept size makes p0 0 or 1 (p0 = {_seeds_text(sorted({f'{v:g}' for v in ok}))}), so "
            "a hit says nothing about the search; sweep tau so that the method keeps an intermediate size"
        )
    p_value, test = hit_p_value(ok, hits) if n and not missing else (math.nan, "exact binomial")
    min_p = hit_min_p(ok) if n and not missing else 1.0
    if n and not missing and not settled and min_p >= alpha:
        mid = ok[(ok > 0) & (ok < 1)]
        at = float(np.median(mid))
        need = math.floor(math.log(alpha) / math.log(at)) + 1  # the smallest n with at**n < alpha
        reasons.append(
            f"too few seeds: with these p0 the smallest p-value the test can reach is {_fmt_p(min_p)} >= "
            f"alpha = {alpha:g}; at p0 = {at:.3g} it needs at least {need} seeds that all hit; run more seeds"
        )
    verdict = "not decidable" if reasons else ("beats chance" if p_value < alpha else "no evidence")
    return HitTest(task, k, label, table, hits, n, test, p_value, min_p, local_shorter, verdict, reasons, alpha)


def hit_test_table(tests: Sequence[HitTest]) -> pd.DataFrame:
    """One row per hit test: task, setting, K, seeds, hits, the p0s, test, p-value, smallest reachable p,
    whether every local task kept a shorter path, verdict and the reasons when not decidable."""
    cols = [
        "task",
        "setting",
        "needs_edges",
        "seeds",
        "hits",
        "p0",
        "test",
        "p_value",
        "min_p",
        "local_shorter",
        "verdict",
        "reasons",
    ]
    return pd.DataFrame(
        [
            {
                "task": t.task,
                "setting": t.setting,
                "needs_edges": t.needs_edges,
                "seeds": t.n,
                "hits": t.hits,
                "p0": ", ".join(f"{v:.3g}" for v in t.table["p0"]),
                "test": t.test,
                "p_value": t.p_value,
                "min_p": t.min_p,
                "local_shorter": t.local_shorter,
                "verdict": t.verdict,
                "reasons": "; ".join(t.reasons),
            }
            for t in tests
        ],
        columns=cols,
    )


# ----------------------------------------------------------------------------- paired quality test


@dataclass
class PairedTest:
    """Is the deep task's final metric better than its size-matched random draws'? One task, one setting.

    ``table``: per seed experiment, seed, trial_id, method (its metric), random (the mean of its random draws'),
    draws, and ``gain`` (> 0: the method is better, in the metric's sense). One-sided exact Wilcoxon
    signed-rank over the seeds with a pair (zero differences dropped, Wilcoxon's rule).
    """

    task: str
    metric: str
    sense: str
    setting: str
    table: pd.DataFrame
    n: int
    statistic: float
    p_value: float
    min_p: float
    verdict: str
    reasons: list[str] = field(default_factory=list)
    alpha: float = ALPHA

    @property
    def sentence(self) -> str:
        where = f" at {self.setting}" if self.setting else ""
        if self.n:
            m, r = float(self.table["method"].median()), float(self.table["random"].median())
            wins = int((self.table["gain"] > 0).sum())
            what = (
                f"{self.task} {self.metric} ({self.sense}) of the search {m:.4g} vs its size-matched random draws "
                f"{r:.4g} (medians), better in {wins} of {self.n} paired seeds{where}"
            )
        else:
            what = f"{self.task} {self.metric}{where}: no pair of a supernet trial and its random draws"
        if self.verdict == "not decidable":
            return f"Not decidable: {'; '.join(self.reasons)} ({what})."
        stats = f"one-sided Wilcoxon signed-rank p = {_fmt_p(self.p_value)}"
        if self.verdict == "better":
            return f"Yes: {what} ({stats})."
        return f"No evidence that the search beats its random draws at alpha = {self.alpha:g}: {what} ({stats})."


def signed_rank_min_p(n: int) -> float:
    """The smallest one-sided p-value of the exact signed-rank test on n pairs: every sign one way, 1 / 2**n."""
    return 1.0 / 2.0**n if n > 0 else 1.0


def signed_rank_greater(gain: np.ndarray) -> tuple[float, float]:
    """(statistic, p) of the one-sided exact Wilcoxon signed-rank test that ``gain`` is centred above 0
    (zero gains dropped; every gain 0: no evidence, p = 1)."""
    gain = np.asarray(gain, float)
    if not (gain != 0).any():
        return 0.0, 1.0
    res = sps.wilcoxon(gain, zero_method="wilcox", alternative="greater")
    return float(res.statistic), float(res.pvalue)


def paired_tests(df: pd.DataFrame, alpha: float = ALPHA) -> list[PairedTest]:
    """One :class:`PairedTest` per task with ``needs_edges`` >= 1 and an oracle metric, and per search setting:
    each supernet trial against the mean of the valid ``random_arch`` trials of its experiment, seed and setting."""
    orc = oracles(df)
    method = _method_rows(df)
    rand = _valid_rows(df, RANDOM)
    rand_labels = _setting_labels(rand)
    out = []
    for task, k in needs_edges(df).items():
        if k < 1 or task not in orc:
            continue
        o = orc[task]
        col = f"metric/{task}/{o.metric}"
        for label, g in _group(method) if len(method) else [("", method)]:
            rows = []
            for _, r in g.iterrows():
                same = (rand_labels == label).to_numpy(bool) & (rand["seed"] == r["seed"]).to_numpy(bool)
                if "experiment" in rand.columns:
                    same &= (rand["experiment"] == r.get("experiment")).to_numpy(bool)
                vals = _num(rand[same], col)
                vals = vals[np.isfinite(vals)]
                m = float(pd.to_numeric(pd.Series([r.get(col)]), errors="coerce").iloc[0])
                if not len(vals) or not np.isfinite(m):
                    continue
                mean = float(vals.mean())
                rows.append(
                    {
                        "experiment": r.get("experiment", ""),
                        "seed": r["seed"],
                        "trial_id": r["trial_id"],
                        "method": m,
                        "random": mean,
                        "draws": len(vals),
                        "gain": (mean - m) if o.sense == "min" else (m - mean),
                    }
                )
            table = pd.DataFrame(rows, columns=["experiment", "seed", "trial_id", "method", "random", "draws", "gain"])
            out.append(_paired_test(table, g, task, o, label, bool(len(rand)), alpha))
    return out


def _paired_test(
    table: pd.DataFrame, g: pd.DataFrame, task: str, o: Oracle, label: str, has_random: bool, alpha: float
) -> PairedTest:
    n = len(table)
    reasons = _warmup_reasons(g, task, o)
    if not has_random:
        reasons.append(f"the results have no random_arch rows; {HOW_TO_ADD_RANDOM}")
    elif not n:
        reasons.append("no supernet trial has a random draw of its seed and setting")
    untied = int((table["gain"] != 0).sum())  # the exact test drops tied pairs
    min_p = signed_rank_min_p(untied)
    if has_random and n and min_p >= alpha:
        need = next(m for m in range(1, 64) if signed_rank_min_p(m) < alpha)
        reasons.append(
            f"too few seeds: with {n} paired seeds{ties_text(n - untied)} the one-sided signed-rank test cannot go "
            f"below {_fmt_p(min_p)} >= alpha = {alpha:g}; it needs at least {need} untied ones"
        )
    stat, p = signed_rank_greater(table["gain"].to_numpy(float)) if n else (math.nan, math.nan)
    verdict = "not decidable" if reasons else ("better" if p < alpha else "no evidence")
    return PairedTest(task, o.metric, o.sense, label, table, n, stat, p, min_p, verdict, reasons, alpha)


def paired_test_table(tests: Sequence[PairedTest]) -> pd.DataFrame:
    """One row per paired test: task, metric, sense, setting, pairs, median method and random values, wins,
    statistic, p-value, smallest reachable p, verdict and the reasons when not decidable."""
    cols = [
        "task",
        "metric",
        "sense",
        "setting",
        "pairs",
        "method_median",
        "random_median",
        "wins",
        "statistic",
        "p_value",
        "min_p",
        "verdict",
        "reasons",
    ]
    return pd.DataFrame(
        [
            {
                "task": t.task,
                "metric": t.metric,
                "sense": t.sense,
                "setting": t.setting,
                "pairs": t.n,
                "method_median": float(t.table["method"].median()) if t.n else math.nan,
                "random_median": float(t.table["random"].median()) if t.n else math.nan,
                "wins": int((t.table["gain"] > 0).sum()),
                "statistic": t.statistic,
                "p_value": t.p_value,
                "min_p": t.min_p,
                "verdict": t.verdict,
                "reasons": "; ".join(t.reasons),
            }
            for t in tests
        ],
        columns=cols,
    )


# ----------------------------------------------------------------------------- against hard sharing

HARD_SHARING = "hard_sharing"


@dataclass
class SharingComparison:
    """Is the search at or above hard sharing on every task at no more parameters? One search setting.

    ``table``: per seed with both a supernet trial and a hard-sharing baseline: experiment, seed, trial_id, the
    two ``params_union``, ``<task>`` (the method's main metric), ``<task>/hard_sharing`` (the baseline's) and
    ``<task>/at_least`` (the method is at least as good, in the metric's sense), then ``every_task``,
    ``no_more_params`` and ``holds`` (both). Trials are those that finished, learned or not: a search that did
    not learn is a loss here, not a gap in the table.
    """

    setting: str
    metrics: dict[str, str]
    table: pd.DataFrame

    @property
    def sentence(self) -> str:
        t, n = self.table, len(self.table)
        where = f" at {self.setting}" if self.setting else ""
        if not n:
            return f"No seed has both a supernet trial and a hard-sharing baseline{where}."
        per_task = ", ".join(
            f"{task} {m} {t[task].median():.4g} vs {t[f'{task}/{HARD_SHARING}'].median():.4g}"
            for task, m in self.metrics.items()
        )
        return (
            f"The search is at or above hard sharing on every task at no more parameters in {int(t['holds'].sum())} "
            f"of {n} seeds{where} (every task: {int(t['every_task'].sum())} of {n}; no more parameters: "
            f"{int(t['no_more_params'].sum())} of {n}). Medians: {per_task}; parameters "
            f"{t['params_union'].median():,.0f} vs {t[f'params_union/{HARD_SHARING}'].median():,.0f}."
        )


def _count(v: object) -> float | int:
    """A parameter count as an int (NaN stays NaN: never "no more parameters")."""
    f = float(v)  # type: ignore[arg-type]
    return int(f) if math.isfinite(f) else math.nan


def sharing_comparisons(df: pd.DataFrame, metrics: dict[str, str]) -> list[SharingComparison]:
    """One :class:`SharingComparison` per search setting: each finished supernet trial against the finished
    hard-sharing baseline of its experiment and seed, on each task's metric in ``metrics`` ({task: metric}) and
    ``params_union``. [] when the results hold no hard-sharing baseline or no supernet trial."""
    method, shared = _method_rows(df), _valid_rows(df, HARD_SHARING)
    if method.empty or shared.empty or "params_union" not in df.columns:
        return []
    senses = {task: metric_sense(m, df.attrs.get("metric_senses")) for task, m in metrics.items()}
    keys = _seed_keys(df)
    if shared.duplicated(keys).any():
        raise AnalysisError(
            "several hard-sharing baselines share an experiment and seed: compare one baseline per seed"
        )
    base = shared.set_index(keys)
    out = []
    for label, g in _group(method):
        rows = []
        for _, r in g.iterrows():
            key = tuple(r[k] for k in keys)
            if key not in base.index:
                continue
            b = base.loc[key]
            row = {k: r[k] for k in keys} | {"trial_id": r["trial_id"]}
            row["params_union"] = _count(r["params_union"])
            row[f"params_union/{HARD_SHARING}"] = _count(b["params_union"])
            every = True
            for task, m in metrics.items():
                mine, theirs = float(r[f"metric/{task}/{m}"]), float(b[f"metric/{task}/{m}"])
                ok = mine >= theirs if senses[task] == "max" else mine <= theirs  # a NaN is never at least
                row |= {task: mine, f"{task}/{HARD_SHARING}": theirs, f"{task}/at_least": ok}
                every &= ok
            row["every_task"] = every
            row["no_more_params"] = row["params_union"] <= row[f"params_union/{HARD_SHARING}"]
            row["holds"] = every and row["no_more_params"]
            rows.append(row)
        cols = [*keys, "trial_id", "params_union", f"params_union/{HARD_SHARING}"]
        cols += [c for task in metrics for c in (task, f"{task}/{HARD_SHARING}", f"{task}/at_least")]
        cols += ["every_task", "no_more_params", "holds"]
        out.append(SharingComparison(label, dict(metrics), pd.DataFrame(rows, columns=cols)))
    return out
