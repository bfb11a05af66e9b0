"""Pareto kernels against hand-made tables, closed forms and moocore."""

from __future__ import annotations

import math

import moocore
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from analysis import pareto

NAN = np.nan
# minimise both; ties in one objective, an exact duplicate, a NaN row
TABLE = np.array([[1, 5], [2, 3], [2, 3], [3, 3], [4, 1], [NAN, 0], [5, 5], [1, 6]], float)


def test_pareto_mask_hand_table():
    # [2,3] twice: both kept; [3,3] tied with [2,3] in y but worse in x; [1,6] tied in x with [1,5]; NaN never
    assert pareto.pareto_mask(TABLE).tolist() == [True, True, True, False, True, False, False, False]


def test_rank_hand_table():
    assert pareto.nondomination_rank(TABLE).tolist() == [0, 0, 0, 1, 0, -1, 2, 1]


def test_to_minimise_mixed_senses():
    # quality (max) and cost (min): (3, 10) dominates (2, 10) and (3, 20); (1, 5) is cheapest
    raw = np.array([[3, 10], [2, 10], [3, 20], [1, 5], [3, 10]], float)
    y = pareto.to_minimise(raw, ["max", "min"])
    assert y[:, 0].tolist() == [-3, -2, -3, -1, -3]
    assert pareto.pareto_mask(y).tolist() == [True, False, False, True, True]
    with pytest.raises(ValueError):
        pareto.to_minimise(raw, ["max"])
    with pytest.raises(ValueError):
        pareto.to_minimise(raw, ["max", "smallest"])


def test_all_nan_and_empty():
    assert pareto.pareto_mask(np.full((3, 2), NAN)).tolist() == [False] * 3
    assert pareto.pareto_mask(np.empty((0, 2))).tolist() == []
    assert pareto.hypervolume(np.full((2, 2), NAN), 1.0) == 0.0


@settings(max_examples=60, deadline=None)
@given(arrays(np.int8, st.tuples(st.integers(1, 25), st.integers(2, 3)), elements=st.integers(0, 4)))
def test_mask_and_rank_match_moocore(a):
    y = a.astype(float)  # small integers: many ties and duplicates
    assert pareto.pareto_mask(y).tolist() == moocore.is_nondominated(y, keep_weakly=True).tolist()
    assert pareto.nondomination_rank(y).tolist() == moocore.pareto_rank(y).tolist()


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.just(2)), elements=st.floats(0, 1)), st.randoms())
def test_row_order_changes_nothing(y, rnd):
    perm = list(range(len(y)))
    rnd.shuffle(perm)
    assert pareto.pareto_mask(y)[perm].tolist() == pareto.pareto_mask(y[perm]).tolist()
    assert pareto.nondomination_rank(y)[perm].tolist() == pareto.nondomination_rank(y[perm]).tolist()
    assert pareto.hypervolume(y, 1.1) == pytest.approx(pareto.hypervolume(y[perm], 1.1), abs=1e-12)
    assert pareto.coverage(y, y[:3]) == pareto.coverage(y[perm], y[:3][::-1])


# ----------------------------------------------------------------------------- hypervolume


@pytest.mark.parametrize("n", [1, 3, 7])
def test_hv_2d_staircase_closed_form(n):
    # points (i, n+1-i), ref (n+1, n+1): columns of heights 1..n, volume n(n+1)/2
    y = np.array([[i, n + 1 - i] for i in range(1, n + 1)], float)
    assert pareto.hypervolume(y, n + 1) == pytest.approx(n * (n + 1) / 2)
    # dominated points, duplicates and NaN rows add nothing
    extra = np.vstack([y, y[:1], y + 0.5, [[NAN, 0.0]]])
    assert pareto.hypervolume(extra, n + 1) == pytest.approx(n * (n + 1) / 2)


def test_hv_3d_closed_form():
    # three unit-offset boxes [1,2]x[0,2]x[0,2] etc.: 3*4 - 3*2 + 1 = 7 (inclusion-exclusion)
    y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    assert pareto.hypervolume(y, 2.0) == pytest.approx(7.0)
    assert pareto.hypervolume(np.array([[0.5, 0.25, 0.0]]), [1.0, 1.0, 2.0]) == pytest.approx(0.5 * 0.75 * 2)


def test_hv_points_outside_reference_add_nothing():
    y = np.array([[1, 3], [5, 0], [4, 4]], float)  # only (1, 3) is inside the box of ref (4, 4)
    assert pareto.hypervolume(y, 4.0) == pytest.approx(3 * 1)
    assert pareto.hypervolume(np.array([[5.0, 5.0]]), 4.0) == 0.0


def test_hv_normalised_shared_reference():
    y = np.array([[1, 3], [2, 2], [3, 1]], float)
    # ideal (1,1), nadir (3,3): points (0,1), (.5,.5), (1,0); ref 1.1 -> .5*.1 + .5*.6 + .1*1.1 = .46
    hv = pareto.hypervolume(y, 1.1, ideal=[1, 1], nadir=[3, 3])
    assert hv == pytest.approx(0.46)
    # same as the raw volume against ref 3.2 divided by the box of the bounds (2 * 2)
    assert hv == pytest.approx(pareto.hypervolume(y, 3.2) / 4)
    # a maximised objective, turned to minimise at the edge, gives the same volume
    raw = np.array([[1, -3], [2, -2], [3, -1]], float)
    y2 = pareto.to_minimise(raw, ["min", "max"])
    assert pareto.hypervolume(y2, 1.1, ideal=[1, 1], nadir=[3, 3]) == pytest.approx(0.46)
    with pytest.raises(ValueError):
        pareto.hypervolume(y, 1.1, ideal=[1, 1])


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 15), st.integers(2, 3)), elements=st.floats(0, 1)))
def test_hv_wrapper_matches_moocore_and_is_monotone(y):
    assert pareto.hypervolume(y, 1.0) == pytest.approx(moocore.hypervolume(y, ref=np.ones(y.shape[1])), abs=1e-12)
    more = np.vstack([y, np.full((1, y.shape[1]), 0.5)])
    assert pareto.hypervolume(more, 1.0) >= pareto.hypervolume(y, 1.0) - 1e-12


def test_bounds_and_normalise():
    ideal, nadir = pareto.bounds(np.array([[1, 5], [3, 5], [NAN, 0]], float))
    assert ideal.tolist() == [1, 5] and nadir.tolist() == [3, 5]
    # a zero span (constant objective) is left unscaled rather than divided by zero
    assert pareto.normalise(np.array([[2.0, 5.0]]), ideal, nadir).tolist() == [[0.5, 0.0]]


# ----------------------------------------------------------------------------- IGD+, coverage


def test_igd_plus_closed_forms():
    ref = np.array([[1.0, 1.0]])
    assert pareto.igd_plus(np.array([[2.0, 2.0]]), ref) == pytest.approx(math.sqrt(2))
    assert pareto.igd_plus(np.array([[0.0, 2.0]]), ref) == pytest.approx(1.0)  # only the worse coordinate counts
    front = np.array([[0, 1], [1, 0]], float)
    assert pareto.igd_plus(front, front) == 0.0
    assert pareto.igd_plus(np.empty((0, 2)), front) == math.inf


def test_coverage_hand_fronts():
    a = np.array([[1, 1]], float)
    b = np.array([[1, 1], [2, 0], [3, 3], [NAN, 0]], float)
    assert pareto.coverage(a, b) == pytest.approx(2 / 3)  # equal point counts (weak), (2,0) not, NaN not counted
    assert pareto.coverage(b, a) == 1.0
    assert pareto.coverage(a, a) == 1.0
    assert math.isnan(pareto.coverage(a, np.empty((0, 2))))
    # disjoint non-dominating fronts cover nothing of each other
    assert pareto.coverage(np.array([[0, 2.0]]), np.array([[2.0, 0]])) == 0.0
