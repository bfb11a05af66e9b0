"""Stage reuse and scheduling overhead of a small sweep: prints one JSON object.

    python -m bench.sweep [--repeats 3]   # about 6 minutes on 2 CPU cores

A 2x2x2 grid over (M, lambda_sq, tau) runs, each sweep in a Ray session of its own (2 CPUs, 2 trials at a
time) as ``python run.py`` starts one: without stage reuse and with it, in ``--repeats`` interleaved pairs
(figures are medians; each repeat's are printed too: two sweeps on a shared machine differ in speed by up
to 20%), then the floor: a trivial trainable that replays the median reuse sweep's trials (lasts each one's
measured time, with as many reports and checkpoints) under the same Tune settings, so its wall time is
what Tune itself adds to those trials. Figures:
  reuse_compute_ratio  sum of trial times with reuse / without (target: at most reuse_floor + 0.03)
  reuse_floor          that ratio if reuse cost nothing: the no-reuse sweep's trial time minus its repeated
                       warm-ups (one per M kept) and searches (one per (M, lambda_sq) kept), over its trial time
  wall_over_ideal      the reuse sweep's wall time (from Tuner set-up, right after ray.init) / (sum of its
                       trial times / parallel slots) (target <= 1.10)
  floor_wall_over_ideal   the same for the replaying floor: Tune's own start-up, gaps and tail on these trials
  wall_over_ideal_after_startup   wall_over_ideal less the time before the first trial starts (Tuner set-up
                       and the start of each Tune actor: a fresh worker process importing Ray Tune, and for
                       ours torch and the supernet too; the floor imports neither)
  replayed_stage_s     per reuse sweep, the time its trials spent in stages replayed from the stage cache
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

SLOTS = 2
DOC = {
    "preset": "tiny",
    "config": {
        "data.n_train": 768,
        "data.n_val": 32,
        "model.n_nodes": 3,
        "warmup.epochs": 6,
        "search.epochs": 6,
        "finetune.epochs": 2,
        "trial.progress": False,
        "trial.latency_repeats": 1,
    },
    "sweep": {
        "search": "grid",
        "resources": {"cpu": 1},
        "max_concurrent": SLOTS,
        "axes": {
            "model.flow_width": {"grid": [1, 2]},
            "search.lambda_sq": {"grid": [0.1, 1.0]},
            "reduction.tau": {"grid": [0.05, 0.2]},
        },
    },
}


@contextmanager
def session():
    """A Ray session of its own for one sweep: its workers start as they do for ``python run.py``."""
    import ray

    ray.init(num_cpus=SLOTS, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def _key(overrides: dict) -> str:
    return json.dumps(overrides, sort_keys=True)


def replay_trainable(config: dict, setup=None) -> None:
    """The floor: lasts as long as the replayed trial, with as many reports as it made, each with a checkpoint.

    Reports are spread evenly over the trial's time and sleep to their deadline, so the reports' own cost is
    inside the replayed time, as it is in the trial replayed.
    """
    from ray import tune

    seconds, reports = config["_replay"][_key(config["overrides"])]
    start = time.perf_counter()
    for i in range(reports):
        time.sleep(max(0.0, start + seconds * (i + 1) / reports - time.perf_counter()))
        metrics = {"step": i + 1, "trial_finished": int(i == reports - 1)}
        with tempfile.TemporaryDirectory() as d:
            Path(d, "state.pt").write_bytes(b"\0" * 4096)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


def run(storage: str, name: str, reuse: bool, replay: dict | None = None) -> dict:
    from tune.launch import build_tuner
    from tune.space import parse_sweep

    starts = _starts()
    t0 = time.perf_counter()  # right after ray.init, as in launch(): Tuner set-up counts, Ray's start does not
    sweep = parse_sweep({**DOC, "sweep": {**DOC["sweep"], "name": name}})
    if replay is None:
        tuner = build_tuner(sweep, storage, stage_reuse=reuse, callbacks=[starts])
    else:
        tuner = build_tuner(
            sweep,
            storage,
            extra_config={"_replay": replay},
            stage_reuse=False,
            train_fn=replay_trainable,
            results=False,
            callbacks=[starts],
        )
    with contextlib.redirect_stdout(sys.stderr):  # Tune's progress tables; the JSON alone goes to stdout
        grid = tuner.fit()
    wall = time.perf_counter() - t0
    first = min(starts.at) - t0  # Tuner set-up and the first Tune actors' start, before any trial runs
    assert all(r.metrics.get("trial_finished") == 1 for r in grid), "every benchmark trial should finish"
    times = [r.metrics["time_total_s"] for r in grid]
    out = {
        "wall_s": wall,
        "trial_s": sum(times),
        "n_trials": len(times),
        "startup_s": first,
        "replay": {
            _key(r.config["overrides"]): [r.metrics["time_total_s"], r.metrics["training_iteration"]] for r in grid
        },
    }
    if replay is None:
        # what perfect reuse would save: every warm-up but one per M, every search but one per (M, lambda_sq)
        import pyarrow.parquet as pq

        rows = pq.read_table(f"{storage}/{name}/results.parquet").to_pylist()
        stage_s: dict[tuple, list[float]] = {}
        for r in rows:
            stage_s.setdefault(("warmup", r["flow_width"]), []).append(r["time/warmup"])
            stage_s.setdefault(("search", r["flow_width"], r["lambda_sq"]), []).append(r["time/search"])
        out["reusable_s"] = sum(sum(v) - min(v) for v in stage_s.values())
        out["replayed_s"] = sum(r[f"time/{s}"] for r in rows for s in ("warmup", "search") if r[f"reused/{s}"])
    return out


def _starts():
    from ray import tune

    class Starts(tune.Callback):
        """When each trial started (driver clock)."""

        def __init__(self):
            self.at: list[float] = []

        def on_trial_start(self, iteration, trials, trial, **info):
            self.at.append(time.perf_counter())

    return Starts()


def main(repeats: int) -> None:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    nos, yeses = [], []
    with tempfile.TemporaryDirectory() as d:
        for i in range(repeats):  # interleaved: a slow spell of the machine hits both sweeps alike
            with session():
                nos.append(run(d, f"no_reuse_{i}", reuse=False))
            with session():
                yeses.append(run(d, f"reuse_{i}", reuse=True))
        wall = [ratio(y) for y in yeses]
        yes = yeses[wall.index(statistics.median_low(wall))]  # the floor replays the median reuse sweep
        with session():
            floor = run(d, "floor", reuse=False, replay=yes["replay"])

    reuse = [round(y["trial_s"] / n["trial_s"], 3) for n, y in zip(nos, yeses)]
    # the ratio if reuse cost nothing: the no-reuse sweep minus every repeated warm-up and search
    reuse_floor = [round((n["trial_s"] - n["reusable_s"]) / n["trial_s"], 3) for n in nos]
    after = [ratio(y, y["startup_s"]) for y in yeses]
    print(
        json.dumps(
            {
                "reuse_compute_ratio": statistics.median(reuse),
                "reuse_floor": statistics.median(reuse_floor),
                "wall_over_ideal": statistics.median(wall),
                "floor_wall_over_ideal": ratio(floor),
                # the same without the time before the first trial starts (a fixed cost per sweep, not per trial)
                "wall_over_ideal_after_startup": statistics.median(after),
                "floor_wall_over_ideal_after_startup": ratio(floor, floor["startup_s"]),
                # the direct cost of reuse: time in the stages that the reuse sweeps' trials replayed from the cache
                "replayed_stage_s": [round(y["replayed_s"], 2) for y in yeses],
                "each_repeat": {
                    "reuse_compute_ratio": reuse,
                    "reuse_floor": reuse_floor,
                    "wall_over_ideal": wall,
                    "wall_over_ideal_after_startup": after,
                },
                "slots": SLOTS,
                "repeats": repeats,
                **{
                    k: {f: round(v, 2) for f, v in r.items() if f != "replay"}
                    for k, r in (("with_reuse", yes), ("floor", floor))
                },
            },
            indent=1,
        )
    )


def ratio(r: dict, less: float = 0.0) -> float:
    """Wall time (less ``less`` seconds) / the ideal: the sum of trial times spread over the slots."""
    return round((r["wall_s"] - less) / (r["trial_s"] / SLOTS), 3)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="interleaved pairs of sweeps (figures: medians)")
    main(ap.parse_args().repeats)
