"""Pareto kernels on ``Y: ndarray[n_points, n_objectives]`` where every objective is minimised.

Senses are turned into "minimise" once, at the edge (:func:`to_minimise`); nothing here knows about
DataFrames. Conventions, chosen so that sweep tables with repeats and failed trials behave:

- a row with any NaN is never on a front, never dominates, and gets rank -1;
- equal rows do not dominate each other, so duplicates are all non-dominated (both kept);
- hypervolume and IGD+ come from moocore; the dominance kernels here are cross-checked against
  moocore in the tests (moocore keeps only one of equal points by default and does not skip NaN).
"""

from __future__ import annotations

from collections.abc import Sequence

import moocore
import numpy as np

_BLOCK_ELEMENTS = 4_000_000  # bound on the (block, n, k) comparison arrays


def as_matrix(y: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """``y`` as a float ``(n, k)`` array (a copy is not made when it already is one)."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"expected an (n_points, n_objectives) array, got shape {y.shape}")
    return y


def to_minimise(values: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    """Negate the 'max' columns so that every objective is minimised."""
    values = as_matrix(values)
    if len(senses) != values.shape[1]:
        raise ValueError(f"{len(senses)} senses for {values.shape[1]} objectives")
    bad = [s for s in senses if s not in ("min", "max")]
    if bad:
        raise ValueError(f"senses must be 'min' or 'max', got {bad}")
    sign = np.array([-1.0 if s == "max" else 1.0 for s in senses])
    return values * sign  # (n, k)


def finite_rows(y: np.ndarray) -> np.ndarray:
    """Mask of rows without NaN (the rows that take part in dominance)."""
    return ~np.isnan(as_matrix(y)).any(axis=1)


def dominated_by(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``D[i, j]`` = ``a[j]`` strictly dominates ``b[i]`` (<= everywhere, < somewhere); NaN never dominates."""
    a, b = as_matrix(a), as_matrix(b)
    out = np.zeros((len(b), len(a)), dtype=bool)
    step = max(1, _BLOCK_ELEMENTS // max(1, a.size))
    for s in range(0, len(b), step):
        bb = b[s : s + step, None, :]  # (blk, 1, k)
        le = (a[None] <= bb).all(-1)  # (blk, n_a); False for NaN
        lt = (a[None] < bb).any(-1)
        out[s : s + step] = le & lt
    return out


def weakly_dominated_by(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``W[i, j]`` = ``a[j]`` weakly dominates ``b[i]`` (<= in every objective); NaN never does."""
    a, b = as_matrix(a), as_matrix(b)
    out = np.zeros((len(b), len(a)), dtype=bool)
    step = max(1, _BLOCK_ELEMENTS // max(1, a.size))
    for s in range(0, len(b), step):
        out[s : s + step] = (a[None] <= b[s : s + step, None, :]).all(-1)
    return out


def pareto_mask(y: np.ndarray) -> np.ndarray:
    """Rows that no other row strictly dominates; NaN rows are False, duplicates all True."""
    y = as_matrix(y)
    ok = finite_rows(y)
    mask = np.zeros(len(y), dtype=bool)
    f = y[ok]
    mask[ok] = ~dominated_by(f, f).any(axis=1)
    return mask


def nondomination_rank(y: np.ndarray) -> np.ndarray:
    """Front index of every row (0 = the Pareto front, 1 = the front once 0 is removed, ...); NaN rows -1."""
    y = as_matrix(y)
    ok = np.flatnonzero(finite_rows(y))
    rank = np.full(len(y), -1, dtype=int)
    dom = dominated_by(y[ok], y[ok])  # (m, m): dom[i, j] = j dominates i
    left = np.ones(len(ok), dtype=bool)
    r = 0
    while left.any():
        front = left & ~(dom[:, left].any(axis=1))
        rank[ok[front]] = r
        left &= ~front
        r += 1
    return rank


def bounds(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ideal, nadir): per-objective min and max over the rows without NaN."""
    y = as_matrix(y)
    f = y[finite_rows(y)]
    if len(f) == 0:
        raise ValueError("no rows without NaN to take bounds from")
    return f.min(axis=0), f.max(axis=0)


def normalise(y: np.ndarray, ideal: np.ndarray, nadir: np.ndarray) -> np.ndarray:
    """Map ``ideal`` to 0 and ``nadir`` to 1 per objective (a zero span is left unscaled)."""
    y = as_matrix(y)
    ideal, nadir = np.asarray(ideal, float), np.asarray(nadir, float)
    span = nadir - ideal
    span = np.where(span > 0, span, 1.0)
    return (y - ideal) / span


def hypervolume(
    y: np.ndarray,
    ref: float | Sequence[float],
    *,
    ideal: Sequence[float] | None = None,
    nadir: Sequence[float] | None = None,
) -> float:
    """Volume dominated by the rows and bounded by ``ref`` (0 for no row better than ``ref``).

    With ``ideal`` and ``nadir`` the rows are first normalised (:func:`normalise`) and ``ref`` is a
    point in the normalised space (e.g. 1.1 everywhere), so several groups normalised by the same
    bounds share one reference and their volumes compare. NaN rows are skipped.
    """
    y = as_matrix(y)
    if (ideal is None) != (nadir is None):
        raise ValueError("give both ideal and nadir, or neither")
    if ideal is not None:
        y = normalise(y, ideal, nadir)
    ref = np.broadcast_to(np.asarray(ref, float), (y.shape[1],))
    f = y[finite_rows(y)]
    f = f[(f < ref).all(axis=1)]  # only points strictly inside the reference box add volume
    if len(f) == 0:
        return 0.0
    return float(moocore.hypervolume(f, ref=ref))


def igd_plus(y: np.ndarray, reference_set: np.ndarray) -> float:
    """IGD+ of the rows to a reference front (smaller = closer); NaN rows are skipped, no row -> inf."""
    y, r = as_matrix(y), as_matrix(reference_set)
    f = y[finite_rows(y)]
    r = r[finite_rows(r)]
    if len(r) == 0:
        raise ValueError("IGD+ needs a non-empty reference set")
    if len(f) == 0:
        return float("inf")
    return float(moocore.igd_plus(f, ref=r))


def coverage(a: np.ndarray, b: np.ndarray) -> float:
    """C(A, B): fraction of the rows of B weakly dominated by some row of A (Zitzler's set coverage).

    Not symmetric: C(A, B) = 1 and C(B, A) < 1 means A is the better front. NaN rows of B are not
    counted; B without rows gives NaN.
    """
    a, b = as_matrix(a), as_matrix(b)
    b = b[finite_rows(b)]
    if len(b) == 0:
        return float("nan")
    return float(weakly_dominated_by(a, b).any(axis=1).mean())
