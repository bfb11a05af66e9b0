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
    return ParetoASHA(
        {"loss": "min", "params": "min"}, time_attr="step", grace_period=2, reduction_factor=2, max_t=10, **kw
    )


ARRIVALS = [
    ("A", 1, 1.0, 10),
    ("A", 2, 1.0, 10),  # no rung at step 1; A is the first at rung 2: continues
    ("B", 2, 2.0, 20),  # dominated by A: 2nd of 2, not < 2/2: stops
    ("C", 2, 3.0, 1),  # the worst loss, but on the front with A: 2nd of 3 (< 1.5): continues
    ("D", 2, 1.5, 5),  # also on the front, but the net takes C before it: 3rd of 4: stops
    ("A", 3, 0.9, 10),  # judged at rung 2 already: its decision stands
    ("A", 4, 0.8, 10),  # the first at rung 4: continues
    ("C", 5, 2.0, 1),  # 2nd of 2 at rung 4, and A is better in loss, C in params: C stops
    ("A", 10, 0.5, 10),  # max_t: stops
]


def test_asynchronous_promotion_on_a_scripted_arrival_order():
    s = make()
    assert s.milestones == [[2, 4, 8]]
    assert script(s, ARRIVALS) == [CONTINUE, CONTINUE, STOP, CONTINUE, STOP, CONTINUE, CONTINUE, STOP, STOP]
    assert list(s.rungs[0][0]) == ["A", "B", "C", "D"] and list(s.rungs[0][1]) == ["A", "C"]
    assert s.stopped == {
        "B": {"rung": 0, "milestone": 2, "time": 2},
        "D": {"rung": 0, "milestone": 2, "time": 2},
        "C": {"rung": 1, "milestone": 4, "time": 5},
    }
    # a single-metric rule on loss would have stopped C at rung 2 (3rd of 3): the small network survives here
    assert rung_order([[1.0], [2.0], [3.0]]).tolist().index(2) == 2


def test_the_same_arrivals_in_another_order_decide_otherwise():
    s = make()
    # D before C: D is 2nd of 3 at rung 2 and continues; C comes 4th and the net puts it 2nd (farthest): continues
    assert script(s, [("A", 2, 1.0, 10), ("B", 2, 2.0, 20), ("D", 2, 1.5, 5), ("C", 2, 3.0, 1)]) == [
        CONTINUE,
        STOP,
        CONTINUE,
        CONTINUE,
    ]


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
    s2 = ParetoASHA(
        {"loss": "min"}, time_attr="step", grace_period=2, max_t=10, never_stop=lambda tr: tr.trial_id == "X"
    )
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
        ParetoASHA({"loss": "min", "params": "min"}, time_attr="step", grace_period=3, max_t=10).set_state(
            s.get_state()
        )


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"metrics": {"loss": "low"}}, "min' or 'max"),
        ({"metrics": {}}, "metrics"),
        ({"reduction_factor": 1}, "reduction_factor"),
        ({"grace_period": 12, "max_t": 10}, "max_t > grace_period"),
    ],
)
def test_bad_settings_are_errors(kw, needle):
    args = {"metrics": {"loss": "min"}, "time_attr": "step", "grace_period": 1, "max_t": 10, **kw}
    with pytest.raises(ValueError, match=needle):
        ParetoASHA(**args)


# ----------------------------------------------------------------------------- with Tune


def scripted(config):
    """Any trainable: reports its config's fixed (loss, params) at steps 1..4 (no torch, no supernet)."""
    from ray import tune

    for step in range(1, 5):
        tune.report({"step": step, "loss": config["p"]["loss"], "params": config["p"]["params"]})


def interrupt_at(n: int, armed: str):
    """A Tune callback that aborts the run when the ``n``-th trial starts while the file ``armed`` exists (as a
    driver killed then, after the experiment snapshot of the step before)."""
    from pathlib import Path

    from ray import tune

    class Interrupt(tune.Callback):
        def __init__(self):
            self.started = 0

        def on_trial_start(self, iteration, trials, trial, **info):
            self.started += 1
            if self.started == n and Path(armed).exists():
                raise KeyboardInterrupt(f"interrupted at the start of trial {n}")

    return Interrupt()


def test_a_restored_experiment_continues_the_same_decisions(ray_session, tmp_path, monkeypatch):
    import sys

    from ray import cloudpickle, tune

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the Ray workers get the trainable by value

    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "0")  # an experiment snapshot after every step of the driver
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # in order: A the first at rung 2; B dominated by A stops there; C dominated by both would continue as the
    # first at a rung of a fresh scheduler, but stops against the restored records; D dominates everything
    armed = tmp_path / "armed"
    armed.write_text("")
    points = [
        {"loss": 1.0, "params": 10},
        {"loss": 2.0, "params": 20},
        {"loss": 3.0, "params": 30},
        {"loss": 0.5, "params": 5},
    ]
    sched = ParetoASHA({"loss": "min", "params": "min"}, time_attr="step", grace_period=2, reduction_factor=2, max_t=10)
    tuner = tune.Tuner(
        scripted,
        param_space={"p": tune.grid_search(points)},
        tune_config=tune.TuneConfig(scheduler=sched, max_concurrent_trials=1),
        run_config=tune.RunConfig(
            name="resume",
            storage_path=str(tmp_path),
            verbose=0,
            callbacks=[sched.state_callback(), interrupt_at(3, str(armed))],
        ),
    )
    with pytest.raises(BaseException, match="interrupted"):
        tuner.fit()
    armed.unlink()
    # as run.py --resume (tune.launch.restore_tuner): the scheduler comes back from tuner.pkl, its state from the
    # experiment's last snapshot (without it, C would be the first at rung 2 of a fresh scheduler and finish)
    grid = tune.Tuner.restore(str(tmp_path / "resume"), scripted, resume_unfinished=True).fit()
    last = {r.config["p"]["loss"]: r.metrics["step"] for r in grid}
    assert last == {1.0: 4, 2.0: 2, 3.0: 2, 0.5: 4}


SMALL = {
    "data.n_train": 32,
    "data.n_val": 16,
    "trial.progress": False,
    "trial.latency_repeats": 1,
    "finetune.epochs": 3,
}  # 1 warm-up + 1 search + 3 fine-tune epochs: the rung at step 3, after the reduction


def pareto_sweep(tmp_path, name: str, **sweep):
    """Run a tiny sweep with ``scheduler: {type: pareto_asha}`` through run.py; (results, scheduler state)."""
    import glob

    import pyarrow.parquet as pq
    import yaml

    import run

    doc = {
        "preset": "tiny",
        "config": SMALL,
        "sweep": {
            "name": name,
            "resources": {"cpu": 1},
            "max_concurrent": 2,
            "baselines": ["hard_sharing"],
            "scheduler": {"type": "pareto_asha"},
            **sweep,
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert run.main(["--config", str(path), "--storage", str(tmp_path / "runs"), "--no-report"]) == 0
    exp = tmp_path / "runs" / name
    [state] = glob.glob(str(exp / "callback-states-*.pkl"))  # the scheduler's state, snapshotted with the experiment
    with open(state, "rb") as f:
        sched = next(s["scheduler"] for s in pickle.load(f).values() if s and "scheduler" in s)
    return pq.read_table(exp / "results.parquet").to_pandas(), sched


def check_decisions(df, sched, objectives):
    """The table agrees with the scheduler: every method trial recorded at the rung (step 3) with the sweep's
    objectives, the stopped ones early_stopped at that step, the baseline never ranked and finished."""
    assert sched["metrics"] == objectives and sched["milestones"] == [[3]]
    method, base = df[df["mode"] == "supernet"], df[df["mode"] == "hard_sharing"]
    assert set(dict(sched["rungs"][0][0])) == set(method["trial_id"])
    assert set(sched["free"]) == set(base["trial_id"]) and set(base["status"]) == {"finished"}
    stopped = set(method.loc[method["status"] == "early_stopped", "trial_id"])
    assert stopped == set(sched["stopped"]) == {t for t, d in sched["decisions"].items() if d[0] == "STOP"}
    assert set(method["status"]) <= {"finished", "early_stopped"} and (method["status"] == "finished").any()
    rows = df[df["trial_id"].isin(stopped)]
    assert (rows["stopped_step"] == 3).all() and (rows["stopped_stage"] == "finetune").all()
    assert df.loc[~df["trial_id"].isin(stopped), "stopped_step"].isna().all()


def test_grid_sweep_with_pareto_asha(ray_session, tmp_path):
    df, sched = pareto_sweep(
        tmp_path,
        "pgrid",
        axes={"search.lambda_sq": {"grid": [0.1, 2.0]}, "reduction.tau": {"grid": [0.05, 0.3]}},
        objectives={"score": "min", "params_union": "min"},
    )
    assert len(df) == 5
    check_decisions(df, sched, {"score": "min", "params_union": "min"})


def test_optuna_sweep_with_pareto_asha_stopping(ray_session, tmp_path):
    # NSGA-II proposes, Pareto-ASHA stops; its objectives default to the sweep's
    df, sched = pareto_sweep(
        tmp_path,
        "popt",
        search="optuna",
        num_samples=4,
        sampler="nsga2",
        axes={"search.lambda_sq": {"loguniform": [0.05, 3.0]}, "reduction.tau": {"uniform": [0.0, 0.4]}},
        objectives={"score": "min", "flops_multitask": "min"},
    )
    assert len(df) == 5 and (df["mode"] == "supernet").sum() == 4
    check_decisions(df, sched, {"score": "min", "flops_multitask": "min"})


def test_sweep_file_pareto_asha_defaults_to_the_sweep_objectives_and_the_first_report_after_reduction():
    from tune.space import parse_sweep

    doc = {
        "preset": "tiny",
        "config": {"finetune.epochs": 4},
        "sweep": {
            "name": "t",
            "objectives": {"score": "min", "flops_multitask": "min"},
            "scheduler": {"type": "pareto_asha"},
        },
    }
    s = parse_sweep(doc).scheduler
    # tiny: 1 warm-up + 1 search epoch, then the reduction: step 3 is the first fine-tune epoch's report
    assert s == {
        "type": "pareto_asha",
        "objectives": {"score": "min", "flops_multitask": "min"},
        "grace_period": 3,
        "reduction_factor": 3,
        "max_t": 6,
    }
    doc["sweep"]["scheduler"] = {"type": "pareto_asha", "objectives": {"score": "min"}, "grace_period": 2, "max_t": 5}
    assert parse_sweep(doc).scheduler["objectives"] == {"score": "min"}


@pytest.mark.parametrize(
    "sched, needle",
    [
        ({"type": "pareto_asha", "metric": "score"}, "pareto_asha ranks by objectives"),
        ({"type": "pareto_asha", "objectives": {"score": "least"}}, r"sweep\.scheduler\.objectives\.score"),
        ({"type": "pareto_asha", "reduction_factor": 1}, r"sweep\.scheduler\.reduction_factor"),
        ({"type": "pareto_asha", "grace_period": 6}, r"sweep\.scheduler\.max_t"),
        ({"type": "hyperband"}, r"sweep\.scheduler"),
    ],
)
def test_bad_pareto_asha_entries_name_the_key(sched, needle):
    from supernet.config import ConfigError
    from tune.space import parse_sweep

    with pytest.raises(ConfigError, match=needle):
        parse_sweep({"preset": "tiny", "config": {"finetune.epochs": 4}, "sweep": {"name": "t", "scheduler": sched}})
