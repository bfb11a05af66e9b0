"""Early stopping for sweeps: ASHA on one metric for the method's trials, and Pareto-ASHA on several.

``MethodASHA``: ASHA compares trials on one scalar (``score``, the mean validation loss). A single-task
baseline's score is one task's loss, a hard-sharing baseline's is a different network's: comparing them
with the method's trials would stop baselines for reasons that say nothing about them, and an
early-stopped baseline is no reference for ``delta_mtl`` (analysis refuses it). So ``MethodASHA`` lets
every trial whose ``trial.mode`` is not one of ``METHOD_MODES`` continue, keeps it out of ASHA's rungs,
and hands every other trial to Ray's ``AsyncHyperBandScheduler`` unchanged.

``ParetoASHA``: one scalar throws away exactly the small networks a Pareto front wants (quality against
parameters). It ranks a rung's trials by non-dominated sorting, then an epsilon-net order inside each
front, and keeps the top 1/reduction_factor (MOASHA, Schmucker et al. 2021). It works with any Tune
trainable; ``method_trials_only`` is this project's ``never_stop`` (the baselines run to the end, as above).
"""

from __future__ import annotations

import functools
import math
import pickle
from typing import Any, Callable

import numpy as np
from ray.tune import Callback
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

from analysis import pareto

# the trials ASHA may stop: the method, and full_supernet (the method's warm-up and search without the
# reduction: its score is the same mean multi-task loss of the same network). single_task and hard_sharing
# trials run to the end.
METHOD_MODES = ("supernet", "full_supernet")


def trial_mode(config: dict[str, Any], default: str) -> str:
    """The ``trial.mode`` of a Tune trial config ``{"overrides": {dotted key: value}}``."""
    return (config.get("overrides") or {}).get("trial.mode", default)


class MethodASHA(AsyncHyperBandScheduler):
    """``AsyncHyperBandScheduler`` that never stops, nor ranks, a baseline trial.

    ``default_mode`` is the sweep's shared ``trial.mode`` (a trial's overrides may not name it).
    """

    def __init__(self, *args: Any, default_mode: str = "supernet", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._default_mode = default_mode
        self._baselines: set[str] = set()

    def is_baseline(self, trial) -> bool:
        return trial_mode(trial.config, self._default_mode) not in METHOD_MODES

    def on_trial_add(self, tune_controller, trial) -> None:
        if self.is_baseline(trial):
            self._baselines.add(trial.trial_id)
            return
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if trial.trial_id in self._baselines:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        if trial.trial_id in self._baselines:
            self._baselines.discard(trial.trial_id)
            return
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        if trial.trial_id in self._baselines:
            self._baselines.discard(trial.trial_id)
            return
        super().on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return super().debug_string() + f"\n(baselines never stopped: {len(self._baselines)} running)"


# ----------------------------------------------------------------------------- Pareto-ASHA


def epsilon_net_order(y: np.ndarray) -> np.ndarray:
    """Farthest-first order of the rows of ``y`` (n, k) (Clarkson's epsilon-net, as in Syne Tune's MOASHA).

    Seeded deterministically with the row best in the first column; each next row is the one farthest
    (Euclidean) from the rows already taken. Ties, at the seed and at every step, go to the earlier row,
    so the order is a function of the rows and their order alone (Syne Tune seeds at random unless told a
    column). No NaN: the caller ranks rows with NaN apart.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n == 0:
        return np.zeros(0, dtype=int)
    first = int(np.flatnonzero(y[:, 0] == y[:, 0].min())[0])
    order, left = [first], np.ones(n, dtype=bool)
    left[first] = False
    nearest = np.linalg.norm(y - y[first], axis=1)  # (n,): distance of each row to the rows taken
    while left.any():
        cand = np.flatnonzero(left)
        nxt = int(cand[np.argmax(nearest[cand])])  # argmax takes the first of equal distances
        order.append(nxt)
        left[nxt] = False
        nearest = np.minimum(nearest, np.linalg.norm(y - y[nxt], axis=1))
    return np.asarray(order, dtype=int)


def rung_order(y: np.ndarray) -> np.ndarray:
    """The ranking of a rung: row indices of ``y`` (n, k), every objective minimised, best first.

    Non-dominated sorting first (front 0, then front 1, ...; equal rows share a front), then inside each
    front the epsilon-net order (:func:`epsilon_net_order`) on the objectives scaled to [0, 1] by the
    rung's complete rows (ideal 0, nadir 1; a column without spread is left as it is), so that no
    objective outweighs another by its units. Rows with a NaN come after every complete row, in their
    given order (they are never on a front: ``analysis.pareto``'s rule).
    """
    y = pareto.as_matrix(y)
    rank = pareto.nondomination_rank(y)  # -1 for rows with NaN
    complete = rank >= 0
    if not complete.any():
        return np.arange(len(y))
    scaled = pareto.normalise(y, *pareto.bounds(y))
    out: list[int] = []
    for r in range(rank.max() + 1):
        front = np.flatnonzero(rank == r)
        out += front[epsilon_net_order(scaled[front])].tolist()
    return np.asarray(out + np.flatnonzero(~complete).tolist(), dtype=int)


def promoted(position: int, n: int, reduction_factor: float) -> bool:
    """Whether the trial ranked ``position`` (0 = best) of ``n`` at a rung is within the top 1/reduction_factor:
    ``position < n / reduction_factor``. The best always is, so the first trial to reach a rung continues."""
    return position == 0 or position < n / reduction_factor


class ParetoASHA(FIFOScheduler):
    """Asynchronous successive halving by Pareto rank (MOASHA: Schmucker et al. 2021, "Multi-objective
    Asynchronous Successive Halving"; Salinas et al. 2021), for any Tune trainable.

    ``metrics`` maps reported keys to "min" or "max". Bracket ``s`` (of ``brackets``) has rungs at
    ``grace_period * reduction_factor ** (k + s)`` on ``time_attr`` (k = 0, 1, ...; below ``max_t``), and
    trials join the brackets in turn, in the order Tune adds them. The first report of a trial at or past
    a rung's milestone is the trial's record there: its metric vector is added to the rung's records and
    ranked among them (:func:`rung_order`); the trial continues if its position is within the top
    1/``reduction_factor`` (:func:`promoted`) and stops otherwise. Asynchronous, as ASHA: a trial is
    judged against the trials that reached the rung before it, never waits for the rung to fill, and a
    rung's records stay after their trials end. A trial that jumps past several milestones in one report
    is judged at the highest (as Ray's ASHA). A report at ``time_attr >= max_t`` stops the trial.

    Unknown values (a metric missing from the report, None or NaN): the trial is ranked by the objectives
    it has. Its record keeps NaN where a value is unknown; the rung's trials are compared on the objectives
    the judged trial has, and a recorded trial unknown in one of them is ranked after every trial known in
    all of them. A report that has none of the objectives is not a record: the trial is judged at its next
    report (at the highest rung that report has reached).

    ``never_stop(trial) -> bool``, called once per trial with Tune's ``Trial`` when it is added: those
    trials always continue (``max_t`` included) and are kept out of every rung.

    State: the rungs' records and every decision (``get_state``/``set_state``, ``save``/``restore``).
    Ray Tune (2.60) checkpoints searchers and callbacks with the experiment but not the scheduler, so
    pass :meth:`state_callback` in ``RunConfig(callbacks=[...])``: the state then rides with Tune's
    experiment snapshots and ``Tuner.restore`` brings it back before the trials are re-added. A trial
    that reports at a rung it was judged at before (resumed from an earlier checkpoint) gets the
    same decision again, so a resumed sweep continues the same decisions.
    """

    _supports_buffered_results = False  # one report, one decision: no trainable runs ahead of its judgement

    def __init__(
        self,
        metrics: dict[str, str],
        time_attr: str = "training_iteration",
        grace_period: float = 1,
        reduction_factor: float = 3,
        max_t: float = 100,
        brackets: int = 1,
        never_stop: Callable[[Any], bool] | None = None,
    ):
        super().__init__()
        if not metrics or any(m not in ("min", "max") for m in metrics.values()):
            raise ValueError(f"ParetoASHA: metrics must map each metric to 'min' or 'max', got {metrics!r}")
        if not grace_period > 0 or not reduction_factor > 1 or not max_t > grace_period or int(brackets) < 1:
            raise ValueError(
                f"ParetoASHA: needs grace_period > 0, reduction_factor > 1, max_t > grace_period and "
                f"brackets >= 1; got {grace_period}, {reduction_factor}, {max_t}, {brackets}"
            )
        self.metrics = dict(metrics)
        self.time_attr = time_attr
        self.reduction_factor = float(reduction_factor)
        self.max_t = max_t
        self.never_stop = never_stop
        self._sign = np.array([-1.0 if m == "max" else 1.0 for m in self.metrics.values()])  # to minimise
        self.milestones: list[list[float]] = []  # per bracket, ascending
        for s in range(int(brackets)):
            ms, k = [], 0
            while grace_period * self.reduction_factor ** (k + s) < max_t:
                ms.append(grace_period * self.reduction_factor ** (k + s))
                k += 1
            self.milestones.append(ms)
        self._reset()

    def _reset(self) -> None:
        # rungs[b][k]: trial_id -> recorded vector (minimise form, NaN = unknown), in the order recorded
        self.rungs: list[list[dict[str, list[float]]]] = [[{} for _ in ms] for ms in self.milestones]
        self.bracket: dict[str, int] = {}  # trial_id -> its bracket
        self.decisions: dict[str, dict[int, str]] = {}  # trial_id -> {rung index: CONTINUE | STOP}
        self.stopped: dict[str, dict[str, Any]] = {}  # trial_id -> {"rung", "milestone", "time"} of its stop
        self.free: set[str] = set()  # never_stop trials
        self._added = 0

    # -- Tune's scheduler interface

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # the metrics are fixed at construction

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        tid = trial.trial_id
        if tid in self.bracket or tid in self.free:  # re-added by a restored experiment
            return
        if self.never_stop is not None and self.never_stop(trial):
            self.free.add(tid)
            return
        self.bracket[tid] = self._added % len(self.milestones)
        self._added += 1

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        tid = trial.trial_id
        if tid in self.free:
            return TrialScheduler.CONTINUE
        if tid not in self.bracket:
            self.on_trial_add(tune_controller, trial)
            if tid in self.free:
                return TrialScheduler.CONTINUE
        t = result.get(self.time_attr)
        if t is None:
            return TrialScheduler.CONTINUE
        if t >= self.max_t:
            return TrialScheduler.STOP
        return self.judge(tid, t, result)

    def judge(self, trial_id: str, t: float, result: dict) -> str:
        """The decision for ``trial_id`` reporting ``result`` at ``time_attr`` = ``t`` (see the class docstring)."""
        b = self.bracket[trial_id]
        passed = [k for k, m in enumerate(self.milestones[b]) if t >= m]
        if not passed:
            return TrialScheduler.CONTINUE
        k = passed[-1]
        done = self.decisions.get(trial_id, {})
        if k in done:  # judged there before: the same decision
            return done[k]
        if done and k < max(done):
            return TrialScheduler.CONTINUE
        y = self._vector(result)
        if np.isnan(y).all():
            return TrialScheduler.CONTINUE  # nothing to rank it by yet: judged at a later report
        rung = self.rungs[b][k]
        rung[trial_id] = y.tolist()
        ids = list(rung)
        known = ~np.isnan(y)  # compare on the objectives the judged trial has
        table = np.array([rung[i] for i in ids], dtype=float)[:, known]  # (n, k_known)
        position = int(np.flatnonzero(rung_order(table) == ids.index(trial_id))[0])
        decision = (
            TrialScheduler.CONTINUE if promoted(position, len(ids), self.reduction_factor) else TrialScheduler.STOP
        )
        self.decisions.setdefault(trial_id, {})[k] = decision
        if decision == TrialScheduler.STOP:
            self.stopped[trial_id] = {"rung": k, "milestone": self.milestones[b][k], "time": t}
        return decision

    def _vector(self, result: dict) -> np.ndarray:
        vals = []
        for key in self.metrics:
            v = result.get(key)
            try:
                vals.append(float(v) if v is not None else math.nan)
            except (TypeError, ValueError):
                vals.append(math.nan)
        return np.asarray(vals) * self._sign

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        pass  # its records stay in the rungs: later arrivals are ranked against them

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        pass

    def debug_string(self) -> str:
        parts = [
            f"bracket {b}: " + ", ".join(f"{m:g}: {len(r)}" for m, r in zip(ms, rs))
            for b, (ms, rs) in enumerate(zip(self.milestones, self.rungs))
        ]
        return (
            f"ParetoASHA on {list(self.metrics)} ({self.time_attr} milestone: trials recorded; "
            + "; ".join(parts)
            + f"); stopped {len(self.stopped)}, never stopped {len(self.free)}"
        )

    # -- state

    def get_state(self) -> dict[str, Any]:
        return {
            "rungs": [[list(r.items()) for r in rs] for rs in self.rungs],
            "bracket": dict(self.bracket),
            "decisions": {t: dict(d) for t, d in self.decisions.items()},
            "stopped": dict(self.stopped),
            "free": sorted(self.free),
            "added": self._added,
            "milestones": self.milestones,
            "metrics": self.metrics,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state["milestones"] != self.milestones or state["metrics"] != self.metrics:
            raise ValueError(
                f"ParetoASHA: the saved state has milestones {state['milestones']} on {state['metrics']}, "
                f"this scheduler {self.milestones} on {self.metrics}: restore it with the same settings"
            )
        self.rungs = [[dict(r) for r in rs] for rs in state["rungs"]]
        self.bracket = dict(state["bracket"])
        self.decisions = {t: {int(k): v for k, v in d.items()} for t, d in state["decisions"].items()}
        self.stopped = dict(state["stopped"])
        self.free = set(state["free"])
        self._added = int(state["added"])

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    def state_callback(self) -> "SchedulerState":
        """The Tune callback that saves and restores this scheduler's state with the experiment."""
        return SchedulerState(self)


class SchedulerState(Callback):
    """Carries a scheduler's ``get_state()`` in Tune's experiment snapshots (Tune saves callback states with
    the trials' states and restores them in ``Tuner.restore`` before re-adding the trials)."""

    def __init__(self, scheduler: ParetoASHA):
        self.scheduler = scheduler

    def get_state(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.scheduler.set_state(state["scheduler"])


def method_trials_only(default_mode: str) -> Callable[[Any], bool]:
    """``never_stop`` for this project's sweeps: every trial whose ``trial.mode`` is not in ``METHOD_MODES``
    (the baselines, and the random-architecture control) runs to the end, as with ``MethodASHA``."""
    return functools.partial(_not_method, default_mode=default_mode)


def _not_method(trial: Any, default_mode: str) -> bool:
    return trial_mode(trial.config, default_mode) not in METHOD_MODES
