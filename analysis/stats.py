"""Statistics of fronts across seeds: does the search beat random architectures of the same size?

The unit of replication is a *seed* (an ``(experiment, seed)`` pair): each seed of a group is one
independent run, and its points are one approximation set. Groups are trial modes: ``supernet`` (the
method), ``random_arch`` (random architectures of a matched size), ``hard_sharing`` and
``single_task`` (the T single-task networks taken together: one point per seed).

Array kernels (every objective minimised, as in :mod:`analysis.pareto`):

- rank tests across seeds: :func:`wilcoxon_test` (paired seeds), :func:`mann_whitney_test` (unpaired),
  :func:`compare_samples` (picks one), :func:`min_p_value` (the smallest p a test can reach with n);
- attainment: :func:`attainment_surface` / :func:`median_surface` (``moocore.eaf``) and
  :func:`eaf_difference` (``moocore.eafdiff``), two objectives.

DataFrame adapters: :func:`seed_hypervolumes` (per-seed hypervolume of each group with ONE shared
normalisation and reference point), :func:`search_vs_random` (the test and the one-sentence answer),
:func:`eaf_data` (median surfaces and the EAF difference, ready for :mod:`analysis.plots`).

Decidability rule: a test is run only when it could reach ``p < alpha`` at all with the seeds there
are: the exact two-sided Wilcoxon signed-rank test on n pairs cannot go below ``2 / 2**n`` (n = 5:
0.0625, so at alpha = 0.05 it needs at least 6 paired seeds), Mann-Whitney U on n1 and n2 seeds not
below ``2 / C(n1 + n2, n1)`` (3 + 3: 0.1; 4 + 4: 0.029). With fewer seeds the answer is "not decidable".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import moocore
import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis import pareto
from analysis.compare import (
    Objective,
    ObjectiveSpec,
    objective_matrix,
    parse_objectives,
    single_task_ensemble,
    usable_rows,
)
from analysis.load import BASELINE_MODE, AnalysisError

METHOD = "supernet"
RANDOM = "random_arch"
GROUPS: tuple[str, ...] = (METHOD, RANDOM, "hard_sharing", BASELINE_MODE)
ALPHA = 0.05
HOW_TO_ADD_RANDOM = "add `sweep.random_archs: k` to the sweep (k random architectures per seed)"


# ----------------------------------------------------------------------------- rank tests (kernels)


@dataclass(frozen=True)
class RankTest:
    """A two-sided test of ``a`` against ``b`` across seeds; ``effect`` > 0 means ``a`` is larger.

    ``n`` is the number of pairs (Wilcoxon) or ``(n_a, n_b)`` (Mann-Whitney). ``effect`` is the
    matched-pairs rank-biserial correlation (Wilcoxon) or the rank-biserial correlation = Cliff's
    delta (Mann-Whitney), both in [-1, 1]. ``min_p`` is the smallest p-value this test could give
    with these n (for Wilcoxon, the pairs left once tied pairs are dropped); ``decidable`` = ``min_p < alpha``.
    """

    test: str
    statistic: float
    p_value: float
    effect: float
    effect_name: str
    n: int | tuple[int, int]
    paired: bool
    min_p: float
    alpha: float = ALPHA
    ties: int = 0  # Wilcoxon: pairs with a zero difference, dropped before ranking

    @property
    def decidable(self) -> bool:
        return self.min_p < self.alpha

    def n_text(self) -> str:
        return f"n = {self.n} paired seeds" if self.paired else f"n = {self.n[0]} and {self.n[1]} seeds"


def min_p_value(paired: bool, n: int | tuple[int, int]) -> float:
    """Smallest two-sided p-value the exact test can reach: ``2 / 2**n`` (Wilcoxon), ``2 / C(n1+n2, n1)`` (MWU)."""
    if paired:
        return min(1.0, 2.0 / 2.0 ** int(n)) if int(n) > 0 else 1.0
    n1, n2 = n  # type: ignore[misc]
    if n1 == 0 or n2 == 0:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def wilcoxon_test(a: np.ndarray, b: np.ndarray, alpha: float = ALPHA) -> RankTest:
    """Wilcoxon signed-rank test of paired samples (``a[i]`` and ``b[i]`` from the same seed), two-sided.

    Zero differences are dropped (Wilcoxon's rule), so they do not count towards ``min_p`` either.
    Effect: matched-pairs rank-biserial correlation ``r = (T+ - T-) / (T+ + T-)`` over the ranks of
    ``|a - b|`` (Kerby 2014): +1 when ``a`` wins every seed.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired samples need equal 1-d shapes, got {a.shape} and {b.shape}")
    d = a - b
    n = len(d)
    nz = d[d != 0]
    if len(nz) == 0:  # every pair tied: no evidence either way
        stat, p, r = 0.0, 1.0, 0.0
    else:
        ranks = sps.rankdata(np.abs(nz))
        t_plus, t_minus = float(ranks[nz > 0].sum()), float(ranks[nz < 0].sum())
        r = (t_plus - t_minus) / (t_plus + t_minus)
        res = sps.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
        stat, p = float(res.statistic), float(res.pvalue)
    return RankTest(
        "Wilcoxon signed-rank",
        stat,
        p,
        float(r),
        "matched-pairs rank-biserial r",
        n,
        True,
        min_p_value(True, len(nz)),
        alpha,
        n - len(nz),
    )


def mann_whitney_test(a: np.ndarray, b: np.ndarray, alpha: float = ALPHA) -> RankTest:
    """Mann-Whitney U test of independent samples, two-sided; effect = Cliff's delta = ``2 U_a / (n_a n_b) - 1``.

    ``U_a`` counts the pairs where ``a`` is larger (ties count 1/2): delta = P(a > b) - P(a < b).
    """
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if len(a) == 0 or len(b) == 0:
        raise ValueError("Mann-Whitney U needs at least one value on each side")
    res = sps.mannwhitneyu(a, b, alternative="two-sided")
    u = float(res.statistic)
    delta = 2.0 * u / (len(a) * len(b)) - 1.0
    p = float(res.pvalue) if np.isfinite(res.pvalue) else 1.0
    return RankTest(
        "Mann-Whitney U",
        u,
        p,
        delta,
        "Cliff's delta",
        (len(a), len(b)),
        False,
        min_p_value(False, (len(a), len(b))),
        alpha,
    )


def compare_samples(a: Mapping[object, float], b: Mapping[object, float], alpha: float = ALPHA) -> RankTest:
    """Test per-seed values ``a`` against ``b`` (seed -> value): Wilcoxon when both have the same seeds, else MWU."""
    if not a or not b:
        raise ValueError("both groups need at least one seed")
    if set(a) == set(b):
        keys = sorted(a, key=str)
        return wilcoxon_test(np.array([a[k] for k in keys]), np.array([b[k] for k in keys]), alpha)
    return mann_whitney_test(np.array(list(a.values())), np.array(list(b.values())), alpha)


# ----------------------------------------------------------------------------- attainment (kernels)


def attainment_surface(y: np.ndarray, sets: np.ndarray, level: int) -> np.ndarray:
    """Minimal points of the region attained (weakly dominated) by at least ``level`` of the sets, 2+ objectives.

    ``y`` (n, k) minimise form, ``sets`` (n,) the set (seed) of each row; NaN rows are skipped (a set
    with no finite row attains nothing). Returns the surface's points sorted by the first objective (empty ``(0, k)``
    if no point is attained).
    """
    y, sets = pareto.as_matrix(y), np.asarray(sets)
    ok = pareto.finite_rows(y)
    y, sets = y[ok], sets[ok]
    if level < 1:
        raise ValueError(f"level must be >= 1, got {level}")
    present = len(np.unique(sets))
    if present == 0 or level > present:
        return np.empty((0, y.shape[1]))
    _, idx = np.unique(sets, return_inverse=True)
    eaf = moocore.eaf(y, idx + 1)  # every level: last column = 100 * count / present
    counts = np.rint(eaf[:, -1] * present / 100.0).astype(int)
    surf = eaf[counts == level, :-1]
    return surf[np.lexsort(surf.T[::-1])]


def median_level(n_sets: int) -> int:
    """Sets that must attain a point for it to be on the median (50 %) surface: ``ceil(n / 2)``, as moocore."""
    return max(1, math.ceil(n_sets / 2))


def median_surface(y: np.ndarray, sets: np.ndarray, n_sets: int | None = None) -> np.ndarray:
    """The median attainment surface: attained by at least half of the ``n_sets`` sets (see :func:`attainment_surface`).

    ``n_sets`` counts the sets (seeds) that have no finite point too; default: the sets present in ``sets``.
    """
    sets = np.asarray(sets)
    n = n_sets if n_sets is not None else len(np.unique(sets[pareto.finite_rows(y)]))
    return attainment_surface(y, sets, median_level(n)) if n else np.empty((0, np.shape(y)[1]))


def eaf_difference(ya: np.ndarray, sa: np.ndarray, yb: np.ndarray, sb: np.ndarray) -> tuple[np.ndarray, int]:
    """EAF(A) - EAF(B) as rectangles, two objectives (minimise form), over the sets (seeds) both sides have.

    Returns ``(rects, n)``: ``rects[:, :4]`` = (x_lo, y_lo, x_hi, y_hi) (``inf`` = unbounded) and
    ``rects[:, 4]`` = the fraction of A's sets minus the fraction of B's sets attaining the rectangle,
    in [-1, 1] (> 0: A attains it more often); rectangles with difference 0 are dropped. ``n`` = the
    number of common sets used (moocore's counts are only comparable for equally many sets per side).
    """
    ya, yb = pareto.as_matrix(ya), pareto.as_matrix(yb)
    if ya.shape[1] != 2 or yb.shape[1] != 2:
        raise ValueError("the EAF difference is defined here for two objectives")
    oka, okb = pareto.finite_rows(ya), pareto.finite_rows(yb)
    ya, sa, yb, sb = ya[oka], np.asarray(sa)[oka], yb[okb], np.asarray(sb)[okb]
    common = sorted(set(sa.tolist()) & set(sb.tolist()), key=str)
    if not common:
        return np.empty((0, 5)), 0
    code = {s: i + 1 for i, s in enumerate(common)}
    ka, kb = np.isin(sa, common), np.isin(sb, common)
    xa = np.column_stack([ya[ka], [code[s] for s in sa[ka]]])
    xb = np.column_stack([yb[kb], [code[s] for s in sb[kb]]])
    try:
        rects = moocore.eafdiff(xa, xb, rectangles=True)
    except ValueError as e:  # moocore 0.3.2 fails to reshape an empty result (both EAFs equal everywhere)
        if "size 0" not in str(e):
            raise
        rects = np.empty((0, 5))
    rects = rects[rects[:, 4] != 0].copy()
    rects[:, 4] /= len(common)
    return rects, len(common)


# ----------------------------------------------------------------------------- DataFrame adapters


def group_points(
    df: pd.DataFrame, objectives: Sequence[Objective], groups: Sequence[str] = GROUPS
) -> dict[str, pd.DataFrame]:
    """Valid rows of each group (mode) present, with finite objectives; single_task = one ensemble row per seed."""
    out = {}
    for g in groups:
        rows = single_task_ensemble(df) if g == BASELINE_MODE else usable_rows(df[df["mode"] == g])
        if rows.empty or any(o.column not in rows.columns for o in objectives):
            continue
        rows = rows[pareto.finite_rows(objective_matrix(rows, objectives))]
        if len(rows):
            out[g] = rows
    return out


def _seed_key(frame: pd.DataFrame) -> list[tuple]:
    return list(zip(frame["experiment"].astype(str), frame["seed"].astype(int)))


@dataclass
class SeedHypervolumes:
    """Per-seed hypervolume of each group, all measured on one normalised scale.

    ``table``: one row per (group, experiment, seed) with its number of points and hypervolume.
    ``ideal``/``nadir`` (minimise form, over all points of all groups and seeds) map to 0 and 1;
    ``ref_point`` is in that normalised space.
    """

    objectives: list[Objective]
    ideal: np.ndarray
    nadir: np.ndarray
    ref_point: np.ndarray
    table: pd.DataFrame
    points: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(self.table["group"]))

    def values(self, group: str) -> dict[tuple, float]:
        """(experiment, seed) -> hypervolume of one group (empty when the group is absent)."""
        t = self.table[self.table["group"] == group]
        return {(e, int(s)): float(h) for e, s, h in zip(t["experiment"], t["seed"], t["hypervolume"])}

    def wide(self) -> pd.DataFrame:
        """Seeds as rows, groups as columns (hypervolume); one experiment -> the index is the seed alone."""
        t = self.table
        idx = ["seed"] if t["experiment"].nunique() <= 1 else ["experiment", "seed"]
        w = t.pivot_table(index=idx, columns="group", values="hypervolume", aggfunc="first")
        w = w[[g for g in self.groups]]
        w.columns.name = None
        return w

    def summary(self) -> pd.DataFrame:
        """Per group: seeds, points per seed, median / min / max of the per-seed hypervolumes, and the median of
        each objective over the group's points (to check that the random architectures are of the method's size)."""
        g = self.table.groupby("group", sort=False)
        out = pd.DataFrame(
            {
                "seeds": g.size(),
                "points_per_seed": g["points"].median(),
                "hv_median": g["hypervolume"].median(),
                "hv_min": g["hypervolume"].min(),
                "hv_max": g["hypervolume"].max(),
            }
        )
        for o in self.objectives:
            out[f"{o.name} median"] = [
                float(self.points[k][o.column].median()) if k in self.points else np.nan for k in out.index
            ]
        return out


def seed_hypervolumes(
    df: pd.DataFrame,
    objectives: ObjectiveSpec | None = None,
    *,
    groups: Sequence[str] = GROUPS,
    ref_point: float | Sequence[float] = 1.1,
) -> SeedHypervolumes:
    """Hypervolume of every seed of every group present, with ONE normalisation and reference point.

    The bounds are taken over all compared points (all groups, all seeds), as in
    :func:`analysis.compare.compare_fronts`, so a seed's volume means the same in every group.
    """
    objs = parse_objectives(objectives, df)
    pts = group_points(df, objs, groups)
    if not pts:
        raise AnalysisError(f"no valid trials of {list(groups)} with values for {[o.name for o in objs]}")
    y_all = np.vstack([objective_matrix(p, objs) for p in pts.values()])
    ideal, nadir = pareto.bounds(y_all)
    ref = np.broadcast_to(np.asarray(ref_point, float), (len(objs),)).copy()
    rows = []
    for g, p in pts.items():
        y = objective_matrix(p, objs)
        keys = _seed_key(p)
        for key in sorted(set(keys), key=lambda k: (k[0], k[1])):
            sel = np.array([k == key for k in keys])
            rows.append(
                {
                    "group": g,
                    "experiment": key[0],
                    "seed": key[1],
                    "points": int(sel.sum()),
                    "hypervolume": pareto.hypervolume(y[sel], ref, ideal=ideal, nadir=nadir),
                }
            )
    table = pd.DataFrame(rows, columns=["group", "experiment", "seed", "points", "hypervolume"])
    return SeedHypervolumes(objs, ideal, nadir, ref, table, pts)


@dataclass
class Answer:
    """The answer to "does the search beat random architectures of the same size?".

    ``verdict``: 'better', 'worse', 'no evidence' or 'not decidable'; ``sentence`` says it in one
    sentence with the test, p-value, effect size and number of seeds; ``tests`` holds the method
    against every other group present (one row each).
    """

    verdict: str
    sentence: str
    hv: SeedHypervolumes | None
    test: RankTest | None = None
    tests: pd.DataFrame = field(default_factory=pd.DataFrame)


def _fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def ties_text(ties: int) -> str:
    """The words a "too few seeds" reason adds for tied pairs, which the exact signed-rank tests drop ("" for none)."""
    return f" ({ties} tied, which the test drops)" if ties else ""


def _min_seeds_text(alpha: float) -> str:
    n = next(k for k in range(1, 64) if min_p_value(True, k) < alpha)
    return f"a two-sided Wilcoxon signed-rank test needs at least {n} paired seeds to reach p < {alpha:g}"


def tests_against(hv: SeedHypervolumes, against: str = METHOD, alpha: float = ALPHA) -> pd.DataFrame:
    """``against`` vs every other group: test, n, p, effect (> 0: ``against`` has the larger hypervolume)."""
    rows = []
    a = hv.values(against)
    for g in hv.groups:
        if g == against or not a:
            continue
        t = compare_samples(a, hv.values(g), alpha)
        rows.append(
            {
                "comparison": f"{against} vs {g}",
                "test": t.test,
                "n": t.n_text().removeprefix("n = "),
                "statistic": t.statistic,
                "p_value": t.p_value,
                "effect": t.effect,
                "effect_size": t.effect_name,
                "decidable": t.decidable,
            }
        )
    return pd.DataFrame(
        rows, columns=["comparison", "test", "n", "statistic", "p_value", "effect", "effect_size", "decidable"]
    )


def answer_from(hv: SeedHypervolumes | None, alpha: float = ALPHA, missing: str | None = None) -> Answer:
    """The one-sentence answer from per-seed hypervolumes (see :func:`search_vs_random`)."""
    if hv is None or missing:
        return Answer("not decidable", f"Not decidable: {(missing or 'no valid trials').rstrip('.')}.", hv)
    tests = tests_against(hv, METHOD, alpha)
    for g, what in (
        (METHOD, "no valid supernet (method) trial"),
        (RANDOM, f"no random_arch rows; {HOW_TO_ADD_RANDOM}"),
    ):
        if g not in hv.groups:
            return Answer("not decidable", f"Not decidable: the results have {what}.", hv, None, tests)
    objs = " and ".join(o.name for o in hv.objectives)
    t = compare_samples(hv.values(METHOD), hv.values(RANDOM), alpha)
    stats_text = f"{t.test}, two-sided p = {_fmt_p(t.p_value)}, {t.effect_name} = {t.effect:+.2f}, {t.n_text()}"
    if not t.decidable:
        why = (
            f"only {t.n} paired seeds of supernet and random_arch{ties_text(t.ties)}"
            if t.paired
            else f"only {t.n[0]} supernet and {t.n[1]} random_arch seeds, not the same seeds"
        )
        sentence = (
            f"Not decidable: {why}, and the smallest p-value {t.test} can reach with them is "
            f"{_fmt_p(t.min_p)} >= alpha = {alpha:g} ({_min_seeds_text(alpha)}); run more seeds."
        )
        return Answer("not decidable", sentence, hv, t, tests)
    med_m = float(np.median(list(hv.values(METHOD).values())))
    med_r = float(np.median(list(hv.values(RANDOM).values())))
    meds = f"median per-seed hypervolume of ({objs}) {med_m:.3g} vs {med_r:.3g}"
    if t.p_value < alpha and t.effect > 0:
        verdict = "better"
        sentence = f"Yes: the search beats random architectures of the same size ({meds}; {stats_text})."
    elif t.p_value < alpha and t.effect < 0:
        verdict = "worse"
        sentence = f"No: random architectures of the same size beat the search ({meds}; {stats_text})."
    else:
        verdict = "no evidence"
        sentence = (
            f"No evidence of a difference at alpha = {alpha:g} between the search and random architectures "
            f"of the same size ({meds}; {stats_text}), which does not show that they are equal."
        )
    return Answer(verdict, sentence, hv, t, tests)


def search_vs_random(
    df: pd.DataFrame,
    objectives: ObjectiveSpec | None = None,
    *,
    alpha: float = ALPHA,
    ref_point: float | Sequence[float] = 1.1,
    groups: Sequence[str] = GROUPS,
) -> Answer:
    """Per-seed hypervolumes of the groups and the test supernet vs random_arch, as one :class:`Answer`.

    Wilcoxon signed-rank when both groups have the same seeds, else Mann-Whitney U (two-sided, at
    ``alpha``); "not decidable" when a group is missing or the seeds are too few for the test to reach
    ``p < alpha`` at all (see the module docstring); p >= alpha is "no evidence of a difference".
    """
    try:
        hv = seed_hypervolumes(df, objectives, groups=groups, ref_point=ref_point)
    except AnalysisError as e:
        return answer_from(None, alpha, missing=str(e))
    return answer_from(hv, alpha)


# ----------------------------------------------------------------------------- EAF plot data


@dataclass
class EafData:
    """Median attainment surfaces of the groups and the EAF difference method minus random, two objectives.

    Everything is in the objectives' own units, ``x`` = the second objective (cost), ``y`` = the first
    (quality), like the fronts figure. ``surfaces[group]`` is a staircase polyline ``(m, 2)`` (the
    boundary of the region attained by at least half of the group's seeds, extended to ``xlim``/``ylim``);
    ``diff`` rows are rectangles (x0, y0, x1, y1, EAF_method - EAF_random) clipped to the limits.
    """

    x_label: str
    y_label: str
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    surfaces: dict[str, np.ndarray]
    seeds: dict[str, int]
    diff: np.ndarray = field(default_factory=lambda: np.empty((0, 5)))
    diff_seeds: int = 0
    diff_pair: tuple[str, str] = (METHOD, RANDOM)


def _staircase(surf: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Minimise-form staircase through the surface points (sorted by f1), from f2 = hi[1] down to f1 = hi[0]."""
    if len(surf) == 0:
        return np.empty((0, 2))
    s = surf[np.argsort(surf[:, 0], kind="mergesort")]
    v = [(s[0, 0], hi[1])]
    for i, p in enumerate(s):
        if i:
            v.append((p[0], s[i - 1, 1]))
        v.append((p[0], p[1]))
    v.append((hi[0], s[-1, 1]))
    return np.array(v, float)


def eaf_data(
    df: pd.DataFrame,
    objectives: ObjectiveSpec | None = None,
    *,
    groups: Sequence[str] = GROUPS,
    pair: tuple[str, str] = (METHOD, RANDOM),
) -> EafData:
    """Plot data of the median attainment surfaces (all groups) and of EAF(pair[0]) - EAF(pair[1])."""
    objs = parse_objectives(objectives, df)
    if len(objs) != 2:
        raise AnalysisError(f"attainment surfaces are drawn for two objectives, got {[o.name for o in objs]}")
    pts = group_points(df, objs, groups)
    if not pts:
        raise AnalysisError(f"no valid trials of {list(groups)} with values for {[o.name for o in objs]}")
    ys = {g: objective_matrix(p, objs) for g, p in pts.items()}
    sets = {g: np.array([f"{e}/{s}" for e, s in _seed_key(p)]) for g, p in pts.items()}
    lo, hi = pareto.bounds(np.vstack(list(ys.values())))
    pad = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0)) * 0.05
    lo, hi = lo - pad, hi + pad
    sign = np.array([-1.0 if o.sense == "max" else 1.0 for o in objs])

    def natural(xy_min: np.ndarray) -> np.ndarray:  # minimise form (f0, f1) -> plot (x = obj 1, y = obj 0)
        nat = xy_min * sign
        return nat[:, ::-1]

    surfaces, seeds = {}, {}
    for g in pts:  # a seed whose trials all errored still counts: it attains nothing
        rows = df[df["mode"] == g] if g != BASELINE_MODE else pts[g]
        n = max(len(np.unique(sets[g])), len(set(_seed_key(rows))))
        seeds[g] = n
        line = natural(_staircase(median_surface(ys[g], sets[g], n), hi))
        surfaces[g] = line[::-1] if len(line) and line[0, 0] > line[-1, 0] else line  # left to right
    diff, n_diff = np.empty((0, 5)), 0
    if pair[0] in pts and pair[1] in pts:
        rects, n_diff = eaf_difference(ys[pair[0]], sets[pair[0]], ys[pair[1]], sets[pair[1]])
        if len(rects):
            lo_c = np.minimum(np.maximum(rects[:, :2], lo), hi)
            hi_c = np.minimum(np.maximum(rects[:, 2:4], lo), hi)
            a, b = natural(lo_c), natural(hi_c)
            diff = np.column_stack([np.minimum(a, b), np.maximum(a, b), rects[:, 4]])
    corners = natural(np.array([lo, hi]))
    arrow = {"max": "↑", "min": "↓"}
    return EafData(
        x_label=f"{objs[1].name} ({arrow[objs[1].sense]} better)",
        y_label=f"{objs[0].name} ({arrow[objs[0].sense]} better)",
        xlim=(float(corners[:, 0].min()), float(corners[:, 0].max())),
        ylim=(float(corners[:, 1].min()), float(corners[:, 1].max())),
        surfaces=surfaces,
        seeds=seeds,
        diff=diff,
        diff_seeds=n_diff,
        diff_pair=pair,
    )
