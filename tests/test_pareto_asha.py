"""Pareto-ASHA: the rung ranking on hand-made rungs, the asynchronous rule on scripted arrivals, never_stop,
its state across a restored experiment, and sweeps with ``scheduler: {type: pareto_asha}`` under grid and Optuna."""
from __future__ import annotations

import math
import pickle
from types import SimpleNamespace

import numpy as np
import pytest

from tune.scheduler import ParetoASHA, epsilon_net_order, method_trials_only, promoted, rung_order

CONTINUE, STOP = "CONTINUE", "STOP"


# ----------------------------------------------------------------------------- the ranking


def test_rung_order_sorts_fronts_then_spreads_each_front_farthest_first():
    y = [[1, 5], [2, 2], [5, 1], [3, 3], [4, 4], [6, 6]]  # front {0, 1, 2}, then 3, 4, 5 one front each
    # scaled by the rung's bounds (1..6 on both): (0, .8), (.2, .2), (.8, 0); the net starts at the best first
    # objective (row 0), then takes the row farthest from it (row 2, 1.13 away against row 1's 0.63)
    assert rung_order(y).tolist() == [0, 2, 1, 3, 4, 5]


def test_rung_order_scales_objectives_so_units_do_not_decide():
    # one front; scaled, row 2 is farther from rows 0 and 1 (0.67) than row 3 is (0.50); in raw units the
    # params gaps alone decide (450 against 500) and row 3 would come before row 2
    y = [[0, 1000], [1, 0], [0.5, 450], [0.05, 500]]
    assert rung_order(y).tolist() == [0, 1, 2, 3]
    assert epsilon_net_order(np.array(y, float)).tolist() == [0, 1, 3, 2]


def test_equal_rows_share_a_front_and_ties_go_to_the_earlier_row():
    y = [[1, 2], [1, 2], [2, 1]]  # the duplicates do not dominate each other
    assert rung_order(y).tolist() == [0, 2, 1]  # the copy is 0 away from row 0: last
    assert rung_order([[1, 1], [1, 1]]).tolist() == [0, 1]
    assert epsilon_net_order(np.array([[0, 0], [1, 0], [0, 1]])).tolist() == [0, 1, 2]  # equal distances: earlier row


def test_rows_with_nan_come_after_every_complete_row_in_their_order():
    y = [[math.nan, 1], [2, 2], [1, 3], [0, math.nan]]
    assert rung_order(y).tolist() == [2, 1, 0, 3]
    assert rung_order([[math.nan, 1], [math.nan, 2]]).tolist() == [0, 1]


def test_promotion_keeps_the_top_fraction_and_always_the_best():
    assert promoted(0, 1, 3) and promoted(0, 2, 3) and not promoted(1, 2, 3)
    assert [promoted(p, 4, 3) for p in range(4)] == [True, True, False, False]  # p < 4/3
    assert [promoted(p, 6, 2) for p in range(6)] == [True, True, True, False, False, False]


# ----------------------------------------------------------------------------- the scheduler


def trial(tid: str, mode: str | None = None):
    return SimpleNamespace(trial_id=tid, config={"overrides": {"trial.mode": mode}} if mode else {"overrides": {}})


def script(s: ParetoASHA, events):
    """Feed (trial_id, step, loss, params) reports in order; returns each decision."""
    out = []
    for tid, step, loss, params in events:
        t = trial(tid)
        s.on_trial_add(None, t)
        out.append(s.on_trial_result(None, t, {"step": step, "loss": loss, "params": params}))
    return out


def make(**kw) -> ParetoASHA:
    return ParetoASHA({"loss": "min", "params": "min"}, time_attr="step", grace_period=2, reduction_factor=2,
                      max_t=10, **kw)


ARRIVALS = [
    ("A", 1, 1.0, 10), ("A", 2, 1.0, 10),  # no rung at step 1; A is the first at rung 2: continues
    ("B", 2, 2.0, 20),                     # dominated by A: 2nd of 2, not < 2/2: stops
    ("C", 2, 3.0, 1),                      # the worst loss, but on the front with A: 2nd of 3 (< 1.5): continues
    ("D", 2, 1.5, 5),                      # also on the front, but the net takes C before it: 3rd of 4: stops
    ("A", 3, 0.9, 10),                     # judged at rung 2 already: its decision stands
    ("A", 4, 0.8, 10),                     # the first at rung 4: continues
    ("C", 5, 2.0, 1),                      # 2nd of 2 at rung 4, and A is better in loss, C in params: C stops
    ("A", 10, 0.5, 10),                    # max_t: stops
]


def test_asynchronous_promotion_on_a_scripted_arrival_order():
    s = make()
    assert s.milestones == [[2, 4, 8]]
    assert script(s, ARRIVALS) == [CONTINUE, CONTINUE, STOP, CONTINUE, STOP, CONTINUE, CONTINUE, STOP, STOP]
    assert list(s.rungs[0][0]) == ["A", "B", "C", "D"] and list(s.rungs[0][1]) == ["A", "C"]
    assert s.stopped == {"B": {"rung": 0, "milestone": 2, "time": 2}, "D": {"rung": 0, "milestone": 2, "time": 2},
                         "C": {"rung": 1, "milestone": 4, "time": 5}}
    # a single-metric rule on loss would have stopped C at rung 2 (3rd of 3): the small network survives here
    assert rung_order([[1.0], [2.0], [3.0]]).tolist().index(2) == 2


def test_the_same_arrivals_in_another_order_decide_otherwise():
    s = make()
    # D before C: D is 2nd of 3 at rung 2 and continues; C comes 4th and the net puts it 2nd (farthest): continues
    assert script(s, [("A", 2, 1.0, 10), ("B", 2, 2.0, 20), ("D", 2, 1.5, 5), ("C", 2, 3.0, 1)]) == [
        CONTINUE, STOP, CONTINUE, CONTINUE]


def test_a_trial_is_ranked_by_the_objectives_it_has_and_waits_when_it_has_none():
    s = make()
    script(s, [("A", 2, 1.0, 10), ("B", 2, 2.0, 20)])
    # params unknown: E is ranked on loss alone, best of 3; its record keeps NaN for params
    assert script(s, [("E", 2, 0.5, None)]) == [CONTINUE]
    assert math.isnan(s.rungs[0][0]["E"][1])
    # F knows both: E's unknown params put it after every complete row; F is dominated by A and B: 3rd of 4
    assert script(s, [("F", 2, 2.5, 25)]) == [STOP]
    # G reports nothing it can be ranked by: not a record; its next report (still before rung 4) is judged at rung 2
    assert script(s, [("G", 2, math.nan, None)]) == [CONTINUE] and "G" not in s.rungs[0][0]
    assert script(s, [("G", 3, 0.1, 1)]) == [CONTINUE] and s.decisions["G"] == {0: CONTINUE}


def test_never_stop_trials_run_to_the_end_and_stay_out_of_the_rungs():
    s = make(never_stop=method_trials_only("supernet"))
    base = trial("H", "hard_sharing")
    s.on_trial_add(None, base)
    script(s, [("A", 2, 1.0, 10)])
    for step in (2, 4, 10):  # worse than A everywhere, and past max_t
        assert s.on_trial_result(None, base, {"step": step, "loss": 9.0, "params": 99}) == CONTINUE
    assert all("H" not in r for r in s.rungs[0]) and s.free == {"H"}
    t = trial("R", "random_arch")  # not one of METHOD_MODES: never stopped either
    s.on_trial_add(None, t)
    assert s.on_trial_result(None, t, {"step": 2, "loss": 9.0, "params": 99}) == CONTINUE
    s2 = ParetoASHA({"loss": "min"}, time_attr="step", grace_period=2, max_t=10, never_stop=lambda tr: tr.trial_id == "X")
    assert script(s2, [("A", 2, 1.0, 0), ("X", 2, 5.0, 0), ("Y", 2, 5.0, 0)]) == [CONTINUE, CONTINUE, STOP]


def test_brackets_take_trials_in_turn_with_offset_rungs():
    s = ParetoASHA({"loss": "min"}, time_attr="step", grace_period=1, reduction_factor=3, max_t=30, brackets=2)
    assert s.milestones == [[1, 3, 9, 27], [3, 9, 27]]
    for tid in "abc":
        s.on_trial_add(None, trial(tid))
    assert s.bracket == {"a": 0, "b": 1, "c": 0}


def test_state_round_trip_continues_the_same_decisions(tmp_path):
    first, rest = ARRIVALS[:5], ARRIVALS[5:]
    whole = make()
    expected = script(whole, ARRIVALS)[5:]
    s = make()
    script(s, first)
    s.save(str(tmp_path / "sched.pkl"))
    back = make()
    back.restore(str(tmp_path / "sched.pkl"))
    assert back.get_state() == s.get_state()
    # a resumed trial reporting again at a rung it was judged at gets the same answer, and the rest goes on alike
    assert script(back, [("B", 2, 0.1, 1), ("C", 2, 3.0, 1)]) == [STOP, CONTINUE]
    assert script(back, rest) == expected
    cb = s.state_callback()  # the callback Tune checkpoints with the experiment carries the same state
    other = make()
    other.state_callback().set_state(pickle.loads(pickle.dumps(cb.get_state())))
    assert other.get_state() == s.get_state()
    with pytest.raises(ValueError, match="milestones"):
        ParetoASHA({"loss": "min", "params": "min"}, time_attr="step", grace_period=3, max_t=10).set_state(s.get_state())


@pytest.mark.parametrize("kw, needle", [
    ({"metrics": {"loss": "low"}}, "min' or 'max"), ({"metrics": {}}, "metrics"),
    ({"reduction_factor": 1}, "reduction_factor"), ({"grace_period": 12, "max_t": 10}, "max_t > grace_period"),
])
def test_bad_settings_are_errors(kw, needle):
    args = {"metrics": {"loss": "min"}, "time_attr": "step", "grace_period": 1, "max_t": 10, **kw}
    with pytest.raises(ValueError, match=needle):
        ParetoASHA(**args)
